"""/api/v1/trunks/{trunk_id}/extensions/: the directory over the API, on the tenant-scoped base.

The trunk in the URL is looked up in the caller's workspace first, so another workspace's trunk
id is a 404 for every method, exactly like a missing one.
"""

from __future__ import annotations

from functools import cached_property

from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import mixins, parsers, renderers, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from smartalex.errors import ApplicationError
from smartalex.tenancy.api_base import TenantScopedAPIView, TenantScopedViewSet
from smartalex.tenancy.roles import Action
from trunks.models import SipTrunk
from trunks.selectors import trunk_get

from .csv_format import csv_lines
from .models import Extension, ImportMode
from .rules import ExtensionValues
from .selectors import directory_export_rows, extension_list
from .services import (
    API_MAX_BYTES,
    API_MAX_ROWS,
    extension_create,
    extension_delete,
    extension_import,
    extension_update,
)


class ExtensionSerializer(serializers.ModelSerializer):
    extension = serializers.CharField(source="number", max_length=64, help_text="Digits or a SIP user name.")
    aliases = serializers.ListField(
        child=serializers.CharField(max_length=200), required=False, help_text="What callers may say instead."
    )
    owner = serializers.CharField(required=False, allow_blank=True, max_length=200)
    department = serializers.CharField(required=False, allow_blank=True, max_length=200)
    display_name = serializers.CharField(max_length=200)

    class Meta:
        model = Extension
        fields = [
            "id",
            "trunk",
            "extension",
            "display_name",
            "owner",
            "department",
            "aliases",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "trunk", "created_at", "updated_at"]
        validators: list = []  # uniqueness of numbers and aliases is the service's rule

    def to_values(self, current: Extension | None = None) -> ExtensionValues:
        """The full set of values: what is not sent comes from `current` (PATCH), else is empty."""
        data = self.validated_data

        def pick(name: str, attribute: str) -> object:
            if name in data:
                return data[name]
            return getattr(current, attribute) if current else ""

        return ExtensionValues(
            number=pick("number", "number"),
            display_name=pick("display_name", "display_name"),
            owner=pick("owner", "owner"),
            department=pick("department", "department"),
            aliases=tuple(data.get("aliases", current.aliases if current else ())),
        )


class ImportProblemSerializer(serializers.Serializer):
    line = serializers.IntegerField(allow_null=True, help_text="The file's line (1 is the header).")
    column = serializers.CharField(allow_null=True)
    extension = serializers.CharField(allow_null=True)
    message = serializers.CharField()


class ImportChangeSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=["create", "update", "delete"])
    extension = serializers.CharField()
    line = serializers.IntegerField(allow_null=True)
    values = serializers.DictField(allow_null=True, help_text="create/delete: the extension's values.")
    changes = serializers.DictField(allow_null=True, help_text="update: field -> {old, new}.")


class ImportReportSerializer(serializers.Serializer):
    mode = serializers.ChoiceField(choices=ImportMode.values)
    dry_run = serializers.BooleanField()
    committed = serializers.BooleanField()
    rows = serializers.IntegerField()
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    deleted = serializers.IntegerField()
    error_count = serializers.IntegerField()
    warning_count = serializers.IntegerField()
    errors = ImportProblemSerializer(many=True)
    warnings = ImportProblemSerializer(many=True)
    changes = ImportChangeSerializer(many=True)
    changes_truncated = serializers.BooleanField()


_ERROR = inline_serializer(
    "ExtensionImportError",
    {
        "message": serializers.CharField(),
        "extra": serializers.DictField(help_text="`report` when rows are bad."),
    },
)


class TrunkScopedMixin:
    """Resolves the URL's trunk inside the caller's workspace (404 otherwise)."""

    @cached_property
    def trunk(self) -> SipTrunk:
        return trunk_get(tenant=self.tenant, trunk_id=self.kwargs["trunk_id"])


@extend_schema_view(
    list=extend_schema(
        parameters=[OpenApiParameter("search", str, description="Number, name, owner, department or alias.")]
    )
)
class ExtensionViewSet(
    TrunkScopedMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    TenantScopedViewSet,
):
    """A trunk's extensions. Owners, Admins and Managers may write; Viewers read."""

    model = Extension
    serializer_class = ExtensionSerializer
    write_action = Action.MANAGE_DIRECTORY
    lookup_value_regex = r"\d+"

    def scoped_queryset(self, queryset: QuerySet) -> QuerySet:
        search = self.request.query_params.get("search", "") if self.action == "list" else ""
        return extension_list(tenant=self.tenant, trunk=self.trunk, search=search)

    def perform_create(self, serializer: ExtensionSerializer) -> None:
        serializer.instance = extension_create(trunk=self.trunk, values=serializer.to_values())

    def perform_update(self, serializer: ExtensionSerializer) -> None:
        # PUT replaces the extension (left-out fields become empty); PATCH keeps what is not sent.
        current = serializer.instance if serializer.partial else None
        serializer.instance = extension_update(
            extension=serializer.instance, values=serializer.to_values(current)
        )

    def perform_destroy(self, instance: Extension) -> None:
        extension_delete(extension=instance)


class CsvBodyParser(parsers.BaseParser):
    """The request body is the CSV file itself (bytes; decoding is the import's job)."""

    media_type = "text/csv"

    def parse(self, stream, media_type=None, parser_context=None) -> bytes:
        data = stream.read(API_MAX_BYTES + 1) if stream is not None else b""
        return data or b""


class CsvRenderer(renderers.BaseRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        # Only error bodies come through here (the export streams its own response).
        return renderers.JSONRenderer().render(data)


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


class ExtensionImportView(TrunkScopedMixin, TenantScopedAPIView):
    """Imports a CSV file (the body) into the trunk's directory: all rows or none."""

    write_action = Action.MANAGE_DIRECTORY
    parser_classes = [CsvBodyParser]

    @extend_schema(
        operation_id="v1_trunks_extensions_import",
        summary="Import extensions from CSV",
        description=(
            f"The body is the CSV file (`Content-Type: text/csv`, UTF-8), header "
            f"`extension,display_name,owner,department,aliases`, aliases separated by `|`. At most "
            f"{API_MAX_ROWS} rows per call. Rows are upserted by extension number; with `mode=replace` "
            "extensions not in the file are deleted. A file with any bad row imports nothing and answers "
            "400 with the report in `extra.report`."
        ),
        request={"text/csv": OpenApiTypes.STR},
        parameters=[
            OpenApiParameter("dry_run", bool, description="Only check and report what would change."),
            OpenApiParameter("mode", str, enum=ImportMode.values, description="merge (default) or replace."),
        ],
        responses={
            200: ImportReportSerializer,
            400: OpenApiResponse(_ERROR, description="Bad rows (nothing imported) or an unreadable file."),
            413: OpenApiResponse(_ERROR, description=f"More than {API_MAX_ROWS} rows."),
        },
    )
    def post(self, request: Request, trunk_id: int) -> Response:
        data = request.data if isinstance(request.data, bytes) else b""
        if not data:
            raise ApplicationError(
                "Send the CSV file as the request body with Content-Type: text/csv.", extra={"code": "empty"}
            )
        report = extension_import(
            trunk=self.trunk,
            data=data,
            mode=request.query_params.get("mode", ImportMode.MERGE),
            dry_run=_flag(request, "dry_run"),
        )
        body = ImportReportSerializer(report.to_dict()).data
        if not report.ok:
            raise ApplicationError(
                f"{report.error_count} problem{'s' if report.error_count != 1 else ''} in the file; "
                "nothing was imported.",
                extra={"report": body},
            )
        return Response(body, status=status.HTTP_200_OK)


class ExtensionExportView(TrunkScopedMixin, TenantScopedAPIView):
    """The trunk's directory as CSV, in the import format (export → import changes nothing)."""

    renderer_classes = [renderers.JSONRenderer, CsvRenderer]

    @extend_schema(
        operation_id="v1_trunks_extensions_export",
        summary="Export extensions as CSV",
        responses={(200, "text/csv"): OpenApiTypes.STR},
    )
    def get(self, request: Request, trunk_id: int) -> StreamingHttpResponse:
        lines = csv_lines(directory_export_rows(tenant=self.tenant, trunk=self.trunk))
        response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="trunk-{self.trunk.pk}-extensions.csv"'
        return response
