"""What a valid extension looks like. One set of rules for the page, the API and CSV rows."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MAX_NUMBER_LENGTH = 32
MAX_NAME_LENGTH = 100
MAX_ALIAS_LENGTH = 64
MAX_ALIASES = 20
ALIAS_SEPARATOR = "|"

# RFC 3261 `user`: unreserved / escaped / user-unreserved. Transfers are sent to
# sip:<number>@<pbx_domain>, so anything else would make a broken Refer-To.
_SIP_USER = re.compile(r"^(?:[A-Za-z0-9\-_.!~*'()&=+$,;?/]|%[0-9A-Fa-f]{2})+$")

NUMBER_HELP = "digits (like 101) or a SIP user name (letters, digits and - _ . ! ~ * ' ( ) & = + $ , ; ? /)"


@dataclass(frozen=True)
class ExtensionValues:
    """An extension as a customer describes it; cleaned by `clean_values`."""

    number: str
    display_name: str
    owner: str = ""
    department: str = ""
    aliases: tuple[str, ...] = ()


@dataclass
class Cleaned:
    values: ExtensionValues | None
    aliases: tuple[str, ...] = ()  # the valid aliases, even when another field failed
    errors: dict[str, list[str]] = field(default_factory=dict)
    warnings: dict[str, list[str]] = field(default_factory=dict)


def split_aliases(cell: str) -> list[str]:
    return [alias.strip() for alias in cell.split(ALIAS_SEPARATOR) if alias.strip()]


def join_aliases(aliases: list[str] | tuple[str, ...]) -> str:
    return ALIAS_SEPARATOR.join(aliases)


def alias_key(alias: str) -> str:
    """Aliases are compared as spoken: case and inner spacing do not matter."""
    return " ".join(alias.casefold().split())


def number_error(number: str) -> str | None:
    if not number:
        return "Extension is required."
    if len(number) > MAX_NUMBER_LENGTH:
        return f"Extension is longer than {MAX_NUMBER_LENGTH} characters."
    if not _SIP_USER.match(number):
        return f"Extension “{number}” must be {NUMBER_HELP}."
    return None


def _text_error(label: str, value: str, *, required: bool) -> str | None:
    if required and not value:
        return f"{label} is required."
    if len(value) > MAX_NAME_LENGTH:
        return f"{label} is longer than {MAX_NAME_LENGTH} characters ({len(value)})."
    return None


def clean_aliases(aliases: list[str] | tuple[str, ...]) -> tuple[tuple[str, ...], list[str], list[str]]:
    """Returns (aliases, errors, warnings); an alias listed twice on one extension is kept once."""
    kept: list[str] = []
    seen: set[str] = set()
    errors: list[str] = []
    warnings: list[str] = []
    for alias in aliases:
        alias = " ".join(alias.split())
        if not alias:
            continue
        if ALIAS_SEPARATOR in alias or "," in alias:
            errors.append(f"Alias “{alias}” may not contain “|” or “,”.")
        elif len(alias) > MAX_ALIAS_LENGTH:
            errors.append(f"Alias “{alias[:20]}…” is longer than {MAX_ALIAS_LENGTH} characters.")
        elif alias_key(alias) in seen:
            warnings.append(f"Alias “{alias}” is listed twice; it is kept once.")
        else:
            seen.add(alias_key(alias))
            kept.append(alias)
    if len(kept) > MAX_ALIASES:
        errors.append(f"An extension may have at most {MAX_ALIASES} aliases ({len(kept)} given).")
    return tuple(kept), errors, warnings


def clean_values(
    *, number: str, display_name: str, owner: str = "", department: str = "", aliases: list[str] | tuple = ()
) -> Cleaned:
    """Strips and checks every field; errors are keyed by CSV column name."""
    number, display_name = number.strip(), " ".join(display_name.split())
    owner, department = " ".join(owner.split()), " ".join(department.split())
    errors: dict[str, list[str]] = {}
    warnings: dict[str, list[str]] = {}
    checks = {
        "extension": number_error(number),
        "display_name": _text_error("Display name", display_name, required=True),
        "owner": _text_error("Owner", owner, required=False),
        "department": _text_error("Department", department, required=False),
    }
    for column, error in checks.items():
        if error:
            errors[column] = [error]
    cleaned_aliases, alias_errors, alias_warnings = clean_aliases(aliases)
    if alias_errors:
        errors["aliases"] = alias_errors
    if alias_warnings:
        warnings["aliases"] = alias_warnings
    if errors:
        return Cleaned(values=None, aliases=cleaned_aliases, errors=errors, warnings=warnings)
    values = ExtensionValues(number, display_name, owner, department, cleaned_aliases)
    return Cleaned(values=values, aliases=cleaned_aliases, warnings=warnings)
