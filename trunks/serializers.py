"""API shapes of trunks, their status, connection details, history and DIDs.

Never an HA1: the serializers name every field they return. The plain password appears only in
the responses of create and regenerate-password (`TrunkWithPasswordSerializer`).
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from .connection import connection_details
from .models import DEFAULT_CODECS, AuthType, Did, PbxVendor, SipTrunk, Transport, TrunkEvent
from .presentation import event_result, public_detail, status_view

STATUS_CHOICES = ["registered", "not_registered", "unreachable", "suspended"]


class RegistrationSerializer(serializers.Serializer):
    contact = serializers.CharField()
    source = serializers.CharField(help_text="ip:port the last REGISTER came from")
    transport = serializers.CharField()
    user_agent = serializers.CharField()
    registered_at = serializers.DateTimeField(allow_null=True)
    last_register_at = serializers.DateTimeField(allow_null=True)
    expires_at = serializers.DateTimeField(allow_null=True)
    options_latency_ms = serializers.FloatField(allow_null=True)
    last_failure = serializers.CharField(help_text="In words, e.g. 'wrong password'; empty when none")
    last_failure_at = serializers.DateTimeField(allow_null=True)
    sip_alg_suspected = serializers.BooleanField(help_text="A private Contact arrived from a public address")


class ConnectionSerializer(serializers.Serializer):
    """What to enter on the PBX: the guide's table."""

    registrar = serializers.CharField()
    outbound_proxy = serializers.CharField()
    port = serializers.IntegerField(help_text="5060 for UDP/TCP, 5061 for TLS")
    transport = serializers.CharField()
    auth_username = serializers.CharField(allow_null=True)
    auth_realm = serializers.CharField(help_text="Leave blank on the PBX unless it requires one")
    codec_priority = serializers.ListField(child=serializers.CharField())
    dtmf = serializers.CharField()
    max_concurrent_calls = serializers.IntegerField()


class LinkedAgentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class TrunkSerializer(serializers.Serializer):
    """A trunk's settings (writable) with its status, registration and connection details (read-only)."""

    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(max_length=100)
    pbx_vendor = serializers.ChoiceField(choices=PbxVendor.choices, default=PbxVendor.OTHER)
    pbx_domain = serializers.CharField(
        max_length=260, help_text="Hostname or IP your PBX presents (required)"
    )
    auth_type = serializers.ChoiceField(choices=AuthType.choices, default=AuthType.CREDENTIALS)
    auth_username = serializers.CharField(
        required=False,
        allow_blank=True,
        allow_null=True,
        max_length=64,
        help_text="Set on create only; blank generates one.",
    )
    auth_password = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        style={"input_type": "password"},
        help_text="Set on create only; blank generates a 24-character one (recommended).",
    )
    allowed_ips = serializers.ListField(
        child=serializers.CharField(max_length=64),
        required=False,
        default=list,
        help_text="Addresses or CIDRs",
    )
    codecs = serializers.ListField(
        child=serializers.CharField(max_length=8),
        required=False,
        default=lambda: list(DEFAULT_CODECS),
        help_text="In priority order: PCMU, PCMA, G722 (G.729: contact support)",
    )
    transport = serializers.ChoiceField(choices=Transport.choices, default=Transport.UDP)
    max_concurrent_calls = serializers.IntegerField(min_value=1, max_value=1000, default=10)
    dtmf_mode = serializers.CharField(read_only=True)
    status = serializers.SerializerMethodField()
    registration = serializers.SerializerMethodField()
    connection = serializers.SerializerMethodField()
    agent = serializers.SerializerMethodField()
    dids = serializers.SerializerMethodField()
    suspended_at = serializers.DateTimeField(read_only=True)
    credentials_rotated_at = serializers.DateTimeField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)

    @extend_schema_field(serializers.ChoiceField(choices=STATUS_CHOICES))
    def get_status(self, trunk: SipTrunk) -> str:
        return status_view(trunk=trunk).state

    @extend_schema_field(RegistrationSerializer)
    def get_registration(self, trunk: SipTrunk) -> dict:
        view = status_view(trunk=trunk, hide_credentials=not self._show_credentials)
        s = view.status
        return {
            "contact": view.contact,
            "source": s.source,
            "transport": s.transport,
            "user_agent": s.user_agent,
            "registered_at": s.registered_at,
            "last_register_at": s.last_register_at,
            "expires_at": s.expires_at,
            "options_latency_ms": s.options_latency_ms,
            "last_failure": view.last_failure,
            "last_failure_at": s.last_failure_at,
            "sip_alg_suspected": view.sip_alg_hint,
        }

    @extend_schema_field(ConnectionSerializer)
    def get_connection(self, trunk: SipTrunk) -> dict:
        d = connection_details(trunk=trunk)
        return ConnectionSerializer(
            {
                "registrar": d.registrar,
                "outbound_proxy": d.outbound_proxy,
                "port": d.port,
                "transport": d.transport,
                "auth_username": d.auth_username if self._show_credentials else None,
                "auth_realm": d.realm,
                "codec_priority": list(d.codecs),
                "dtmf": "rfc2833",
                "max_concurrent_calls": d.max_concurrent_calls,
            }
        ).data

    @extend_schema_field(LinkedAgentSerializer(allow_null=True))
    def get_agent(self, trunk: SipTrunk) -> dict | None:
        agent = getattr(trunk, "agent", None)  # RelatedObjectDoesNotExist is an AttributeError
        return {"id": agent.pk, "name": agent.name} if agent else None

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_dids(self, trunk: SipTrunk) -> list[str]:
        return sorted(d.number for d in trunk.dids.all())

    @property
    def _show_credentials(self) -> bool:
        request = self.context.get("request")
        return not getattr(getattr(request, "user", None), "is_support", False)

    def to_representation(self, trunk: SipTrunk) -> dict:
        data = super().to_representation(trunk)
        if not trunk.uses_credentials or not self._show_credentials:
            data["auth_username"] = None
        return data


class TrunkWithPasswordSerializer(TrunkSerializer):
    """Create and regenerate-password answers: the trunk, plus its password this one time."""

    auth_password = serializers.SerializerMethodField(
        help_text="Shown once, never again: enter it on the PBX now. Null for IP Whitelist trunks."
    )

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_auth_password(self, trunk: SipTrunk) -> str | None:
        return self.context.get("password")


class TrunkEventSerializer(serializers.ModelSerializer):
    result = serializers.SerializerMethodField()
    detail = serializers.SerializerMethodField()

    class Meta:
        model = TrunkEvent
        fields = ["id", "kind", "at", "result", "detail"]

    def get_result(self, event: TrunkEvent) -> str:
        return event_result(event)

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_detail(self, event: TrunkEvent) -> dict:
        return public_detail(event)


class DidCreateSerializer(serializers.Serializer):
    number = serializers.CharField(max_length=32, help_text="E.164, e.g. +14155550100")


class DidSerializer(serializers.ModelSerializer):
    trunk_name = serializers.CharField(source="trunk.name", read_only=True)
    agent = serializers.SerializerMethodField()

    class Meta:
        model = Did
        fields = ["id", "number", "trunk", "trunk_name", "agent", "created_at"]
        read_only_fields = fields

    @extend_schema_field(LinkedAgentSerializer(allow_null=True))
    def get_agent(self, did: Did) -> dict | None:
        agent = getattr(did.trunk, "agent", None)
        return {"id": agent.pk, "name": agent.name} if agent else None
