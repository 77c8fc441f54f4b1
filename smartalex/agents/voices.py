"""The voices and languages an agent can use (the receptionist's text-to-speech and recognition)."""

from __future__ import annotations

VOICE_CHOICES = [
    ("en-us", "English (US)"),
    ("en-gb", "English (UK)"),
    ("en-gb-x-rp", "English (UK, Received Pronunciation)"),
    ("en-gb-scotland", "English (Scotland)"),
    ("en-029", "English (Caribbean)"),
    ("af", "Afrikaans"),
    ("de", "German"),
    ("es", "Spanish (Spain)"),
    ("es-419", "Spanish (Latin America)"),
    ("fr-fr", "French (France)"),
    ("nl", "Dutch"),
]
LANGUAGE_CHOICES = [
    ("en-US", "English (United States)"),
    ("en-GB", "English (United Kingdom)"),
    ("en-ZA", "English (South Africa)"),
    ("en-AU", "English (Australia)"),
    ("af-ZA", "Afrikaans (South Africa)"),
    ("de-DE", "German (Germany)"),
    ("es-ES", "Spanish (Spain)"),
    ("es-MX", "Spanish (Mexico)"),
    ("fr-FR", "French (France)"),
    ("nl-NL", "Dutch (Netherlands)"),
]
VOICES = frozenset(v for v, _ in VOICE_CHOICES)
LANGUAGES = frozenset(v for v, _ in LANGUAGE_CHOICES)
