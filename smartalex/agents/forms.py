"""Agent Studio forms: the Settings tab and the Telephony tab (parsing only)."""

from __future__ import annotations

from django import forms

from smartalex.tenancy.models import Tenant
from trunks.models import SipTrunk

from .models import DEFAULT_MAX_CALL_SECONDS, DEFAULT_SILENCE_TIMEOUT_SECONDS, MAX_CALL_SECONDS_LIMIT, Agent
from .services import AgentSettings
from .voices import LANGUAGE_CHOICES, VOICE_CHOICES


class AgentSettingsForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="Shown only in SmartAlex, e.g. “Reception”.")
    first_message = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="What the AI says when it answers, e.g. “Thanks for calling Acme Dental, how can I help?”",
    )
    system_prompt = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text="How the AI should behave: who you are, what callers usually want, whom to transfer to.",
    )
    voice = forms.ChoiceField(choices=VOICE_CHOICES, initial="en-us")
    language = forms.ChoiceField(
        choices=LANGUAGE_CHOICES, initial="en-US", help_text="The language callers speak."
    )
    max_call_duration = forms.IntegerField(
        label="Max call duration (seconds)",
        min_value=10,
        max_value=MAX_CALL_SECONDS_LIMIT,
        initial=DEFAULT_MAX_CALL_SECONDS,
        help_text=f"Default {DEFAULT_MAX_CALL_SECONDS} s, up to {MAX_CALL_SECONDS_LIMIT:,} s (4 hours). "
        "At the limit the AI says a closing line and hangs up.",
    )
    silence_timeout = forms.IntegerField(
        label="Silence timeout (seconds)",
        min_value=5,
        max_value=600,
        initial=DEFAULT_SILENCE_TIMEOUT_SECONDS,
        help_text=f"Default {DEFAULT_SILENCE_TIMEOUT_SECONDS} s: the AI ends a call after this long without speech.",
    )
    fallback_extension = forms.CharField(
        required=False,
        max_length=32,
        help_text="Where the AI transfers a caller it cannot help, e.g. 100 (reception).",
    )

    def __init__(self, *args, agent: Agent | None = None, **kwargs) -> None:
        if agent is not None and "initial" not in kwargs:
            kwargs["initial"] = AgentSettings.of(agent).__dict__
        super().__init__(*args, **kwargs)

    def to_settings(self) -> AgentSettings:
        return AgentSettings(**self.cleaned_data)


class TelephonyForm(forms.Form):
    trunk = forms.ModelChoiceField(
        queryset=SipTrunk.objects.none(),
        required=False,
        empty_label="— No trunk: this agent takes no calls —",
        help_text="The trunk whose calls this agent answers. One agent per trunk.",
    )
    move_trunk = forms.BooleanField(
        required=False,
        label="If this trunk already answers for another agent, move it to this one",
    )

    def __init__(self, *args, tenant: Tenant, agent: Agent | None = None, **kwargs) -> None:
        if agent is not None and "initial" not in kwargs:
            kwargs["initial"] = {"trunk": agent.trunk_id}
        super().__init__(*args, **kwargs)
        trunks = SipTrunk.objects.filter(tenant=tenant).select_related("agent").order_by("name")
        self.fields["trunk"].queryset = trunks
        self.fields["trunk"].label_from_instance = lambda t: _trunk_label(t, agent)


def _trunk_label(trunk: SipTrunk, agent: Agent | None) -> str:
    try:
        other = trunk.agent
    except SipTrunk.agent.RelatedObjectDoesNotExist:
        other = None
    label = f"{trunk.name} ({trunk.pbx_domain})"
    if other is not None and (agent is None or other.pk != agent.pk):
        label += f" — answers for “{other.name}”"
    if trunk.is_suspended:
        label += " — suspended"
    return label
