"""Forms of the Connect Your Carrier wizard, the trunk settings and the DID lists (parsing only)."""

from __future__ import annotations

from django import forms
from django.urls import reverse

from smartalex.errors import ApplicationError
from smartalex.tenancy.models import Tenant

from .models import AuthType, PbxVendor, SipTrunk, Transport
from .services import TrunkSettings
from .validators import (
    normalise_e164,
    private_ranges_in,
    validate_allowed_ips,
    validate_pbx_domain,
    validate_sip_password,
    validate_sip_username,
)
from .vendors import vendor_profile

CODEC_PRESETS: dict[str, str] = {
    "PCMU,PCMA,G722": "G.711 u-law (PCMU), then G.711 A-law (PCMA), then G.722 — recommended",
    "PCMA,PCMU,G722": "G.711 A-law (PCMA), then G.711 u-law (PCMU), then G.722",
    "PCMU,PCMA": "G.711 u-law (PCMU), then G.711 A-law (PCMA) — no G.722",
    "PCMA,PCMU": "G.711 A-law (PCMA), then G.711 u-law (PCMU) — no G.722",
    "G722,PCMU,PCMA": "G.722 first (wideband), then G.711 u-law, then A-law",
}
AUTH_CHOICES = [
    (AuthType.CREDENTIALS, "Credentials — most common: your PBX registers with a username and password"),
    (AuthType.IP_WHITELIST, "IP Whitelist — if your PBX has a static public IP"),
    (AuthType.BOTH, "Both — credentials, accepted only from the whitelisted addresses"),
]
TRANSPORT_CHOICES = [
    (Transport.UDP, "UDP (default) — port 5060"),
    (Transport.TCP, "TCP — port 5060"),
    (Transport.TLS, "TLS — port 5061"),
]


def add_application_error(form: forms.Form, exc: ApplicationError) -> None:
    """Shows a service's error on the field it names (or on the form)."""
    field = exc.extra.get("field")
    if field == "codecs":
        field = "codec_preset"
    if field in form.fields:
        form.add_error(field, exc.message)
    elif isinstance(exc.extra.get("fields"), dict):
        for name, messages in exc.extra["fields"].items():
            form.add_error(name if name in form.fields else None, messages)
    else:
        form.add_error(None, exc.message)


def _run(validator, value, *args):
    """Runs a domain validator, turning its ApplicationError into a form error."""
    try:
        return validator(value, *args)
    except ApplicationError as exc:
        raise forms.ValidationError(exc.message) from exc


class TrunkSettingsForm(forms.Form):
    pbx_vendor = forms.ChoiceField(label="What PBX are you using?", choices=PbxVendor.choices)
    name = forms.CharField(
        label="Trunk Name", max_length=100, help_text="Label it so you recognise it later."
    )
    pbx_domain = forms.CharField(
        label="PBX SIP Domain",
        max_length=260,
        help_text="The hostname or IP your PBX presents. Required: transfers are addressed to it "
        "(sip:101@your-pbx).",
    )
    auth_type = forms.ChoiceField(
        label="Authentication", choices=AUTH_CHOICES, widget=forms.RadioSelect, initial=AuthType.CREDENTIALS
    )
    allowed_ips = forms.CharField(
        label="Whitelisted addresses",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "203.0.113.10\n198.51.100.0/28"}),
        help_text="Your PBX's public IP addresses or CIDR blocks, one per line (IP Whitelist only).",
    )
    codec_preset = forms.ChoiceField(label="Codec priority", choices=list(CODEC_PRESETS.items()))
    transport = forms.ChoiceField(
        label="Transport", choices=TRANSPORT_CHOICES, widget=forms.RadioSelect, initial=Transport.UDP
    )
    max_concurrent_calls = forms.IntegerField(
        label="Concurrent-call limit",
        min_value=1,
        max_value=1000,
        initial=10,
        help_text="1–1000 (default 10). In 3CX this is the Number of SIM Calls.",
    )

    def __init__(self, *args, tenant: Tenant, trunk: SipTrunk | None = None, **kwargs) -> None:
        if trunk is not None and "initial" not in kwargs:
            kwargs["initial"] = initial_from_trunk(trunk)
        super().__init__(*args, **kwargs)
        self.tenant = tenant
        self.trunk = trunk
        self.warnings: dict[str, list[str]] = {}
        initial_codecs = self.initial.get("codec_preset")
        if initial_codecs and initial_codecs not in CODEC_PRESETS:  # an order set through the API
            self.fields["codec_preset"].choices = [
                (initial_codecs, initial_codecs.replace(",", ", "))
            ] + list(CODEC_PRESETS.items())

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        taken = SipTrunk.objects.filter(tenant=self.tenant, name__iexact=name)
        if self.trunk is not None:
            taken = taken.exclude(pk=self.trunk.pk)
        if taken.exists():
            raise forms.ValidationError(f"This workspace already has a trunk called “{name}”.")
        return name

    def clean_pbx_domain(self) -> str:
        return _run(validate_pbx_domain, self.cleaned_data["pbx_domain"])

    def clean_allowed_ips(self) -> list[str]:
        addresses = _run(validate_allowed_ips, self.cleaned_data.get("allowed_ips") or "")
        private = private_ranges_in(addresses)
        if private:
            self.warnings["allowed_ips"] = [
                f"{', '.join(private)}: private address{'es' if len(private) > 1 else ''}. SmartAlex sees "
                "your PBX from the public address its traffic leaves through: whitelist that one."
            ]
        return addresses

    def clean_codec_preset(self) -> tuple[str, ...]:
        return tuple(self.cleaned_data["codec_preset"].split(","))

    def clean(self) -> dict:
        data = super().clean()
        uses_ip = data.get("auth_type") in (AuthType.IP_WHITELIST, AuthType.BOTH)
        if uses_ip and "allowed_ips" in data and not data["allowed_ips"]:
            self.add_error("allowed_ips", "IP Whitelist needs at least one address or CIDR block.")
        return data

    def to_settings(self) -> TrunkSettings:
        data = self.cleaned_data
        return TrunkSettings(
            name=data["name"],
            pbx_domain=data["pbx_domain"],
            auth_type=data["auth_type"],
            pbx_vendor=data["pbx_vendor"],
            allowed_ips=tuple(data["allowed_ips"]),
            codecs=data["codec_preset"],
            transport=data["transport"],
            max_concurrent_calls=data["max_concurrent_calls"],
        )


class TrunkWizardForm(TrunkSettingsForm):
    """The wizard also takes optional credentials: blank ones are generated (recommended)."""

    auth_username = forms.CharField(
        label="SIP Username", required=False, max_length=64, help_text="Leave blank to auto-generate."
    )
    auth_password = forms.CharField(
        label="SIP Password",
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Leave blank to auto-generate a 24-character password (recommended).",
    )

    # The fields validated inline as the customer leaves them (see views.wizard_check).
    INLINE_FIELDS = (
        "name",
        "pbx_domain",
        "allowed_ips",
        "auth_username",
        "auth_password",
        "max_concurrent_calls",
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        check_url = reverse("trunks:wizard-check")
        for name in self.INLINE_FIELDS:
            self.fields[name].widget.attrs.update(
                {
                    "hx-post": check_url,
                    "hx-trigger": "change",
                    "hx-target": f"#feedback-{name}",
                    "hx-swap": "innerHTML",
                    "aria-describedby": f"feedback-{name}",
                }
            )

    def clean_auth_username(self) -> str:
        username = (self.cleaned_data.get("auth_username") or "").strip()
        if not username:
            return ""
        username = _run(validate_sip_username, username)
        if SipTrunk.objects.filter(auth_username=username).exists():
            raise forms.ValidationError("That username is already taken: choose another or leave it blank.")
        return username

    def clean_auth_password(self) -> str:
        password = self.cleaned_data.get("auth_password") or ""
        return _run(validate_sip_password, password) if password else ""


def initial_from_trunk(trunk: SipTrunk) -> dict:
    return {
        "pbx_vendor": trunk.pbx_vendor,
        "name": trunk.name,
        "pbx_domain": trunk.pbx_domain,
        "auth_type": trunk.auth_type,
        "allowed_ips": "\n".join(trunk.allowed_ips),
        "codec_preset": ",".join(trunk.codecs),
        "transport": trunk.transport,
        "max_concurrent_calls": trunk.max_concurrent_calls,
    }


def initial_for_vendor(vendor: str, typed: dict | None = None) -> dict:
    """The wizard's starting values for a PBX: its defaults, keeping what the customer already typed."""
    profile = vendor_profile(vendor)
    typed = typed or {}
    return {
        "pbx_vendor": profile.vendor.value,
        "name": typed.get("name", ""),
        "pbx_domain": typed.get("pbx_domain", ""),
        "auth_username": typed.get("auth_username", ""),
        "allowed_ips": typed.get("allowed_ips", ""),
        "max_concurrent_calls": typed.get("max_concurrent_calls") or 10,
        "auth_type": profile.auth_type,
        "transport": profile.transport,
        "codec_preset": ",".join(profile.codecs),
    }


class DidForm(forms.Form):
    number = forms.CharField(
        label="Phone number (E.164)",
        max_length=32,
        widget=forms.TextInput(attrs={"placeholder": "+14155550100", "inputmode": "tel"}),
        help_text="+ country code and number, e.g. +14155550100 or +27215550100.",
    )

    def clean_number(self) -> str:
        return _run(normalise_e164, self.cleaned_data["number"])


class PhoneNumberForm(DidForm):
    """The Phone Numbers page adds a number to any of the workspace's trunks."""

    trunk = forms.ModelChoiceField(queryset=SipTrunk.objects.none(), label="Trunk", empty_label=None)

    def __init__(self, *args, tenant: Tenant, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["trunk"].queryset = SipTrunk.objects.filter(tenant=tenant).order_by("name")
