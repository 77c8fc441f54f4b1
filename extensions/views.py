"""Settings → PBX: a workspace's trunks, each trunk's extension directory, CSV import and export.

Thin views: they parse the request, call selectors/services and pick the page or the partial.
htmx requests get the partial they target (errors included, as 200 so htmx swaps them); plain
form posts get the whole page or a redirect, so everything also works without JavaScript.
"""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.text import slugify
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from smartalex.errors import ApplicationError
from smartalex.tenancy.decorators import workspace_required
from smartalex.tenancy.roles import Action, role_can
from trunks.models import SipTrunk
from trunks.selectors import trunk_get

from .csv_format import csv_lines
from .forms import ExtensionForm, ImportForm, TryForm
from .importing import ImportReport
from .models import Extension, ImportStatus
from .selectors import (
    directory_counts,
    directory_export_rows,
    extension_get,
    extension_list,
    extension_match,
    import_job_get,
    trunks_with_extension_counts,
)
from .services import (
    BACKGROUND_ROWS,
    PAGE_MAX_ROWS,
    extension_create,
    extension_delete,
    extension_update,
    import_job_commit,
    import_job_create,
    import_job_progress,
)

PAGE_SIZE = 50
TEMPLATE = "extensions/directory.html"
directory_page = workspace_required(Action.READ, write=Action.MANAGE_DIRECTORY)


@directory_page
@require_GET
def pbx(request: HttpRequest) -> HttpResponse:
    trunks = trunks_with_extension_counts(tenant=request.tenant)
    return render(request, "extensions/pbx.html", {"trunks": trunks})


def _context(request: HttpRequest, trunk: SipTrunk, **extra) -> dict:
    search = request.GET.get("q", "").strip()
    page = Paginator(extension_list(tenant=request.tenant, trunk=trunk, search=search), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    context = {
        "trunk": trunk,
        "page": page,
        "q": search,
        "counts": directory_counts(tenant=request.tenant, trunk=trunk),
        "can_write": role_can(request.membership.role, Action.MANAGE_DIRECTORY),
        "add_form": ExtensionForm(),
        "import_form": ImportForm(),
        "try_form": TryForm(),
        "background_rows": BACKGROUND_ROWS,
        "max_rows": PAGE_MAX_ROWS,
    }
    context.update(extra)
    return context


def _directory_url(trunk: SipTrunk) -> str:
    return reverse("extensions:directory", args=[trunk.pk])


@directory_page
@require_GET
def directory(request: HttpRequest, trunk_id: int) -> HttpResponse:
    trunk = trunk_get(tenant=request.tenant, trunk_id=trunk_id)
    template = f"{TEMPLATE}#table" if request.htmx else TEMPLATE
    return render(request, template, _context(request, trunk))


@directory_page
@require_POST
def extension_add(request: HttpRequest, trunk_id: int) -> HttpResponse:
    trunk = trunk_get(tenant=request.tenant, trunk_id=trunk_id)
    form = ExtensionForm(request.POST)
    if form.is_valid():
        try:
            extension = extension_create(trunk=trunk, values=form.values())
        except ApplicationError as exc:
            form.add_service_errors(exc.extra.get("fields", {}), exc.message)
        else:
            if not request.htmx:
                messages.success(request, f"Extension {extension.number} added.")
                return redirect(_directory_url(trunk))
            # The fresh form, plus the table swapped out of band so the new row shows.
            context = _context(request, trunk, added=extension, oob=True)
            return HttpResponse(
                render(request, f"{TEMPLATE}#add_form", context).content
                + render(request, f"{TEMPLATE}#table", context).content
            )
    if request.htmx:
        return render(request, f"{TEMPLATE}#add_form", _context(request, trunk, add_form=form))
    return render(request, TEMPLATE, _context(request, trunk, add_form=form), status=400)


@directory_page
@require_http_methods(["GET", "POST"])
def extension_edit(request: HttpRequest, trunk_id: int, extension_id: int) -> HttpResponse:
    trunk = trunk_get(tenant=request.tenant, trunk_id=trunk_id)
    extension = extension_get(tenant=request.tenant, trunk=trunk, extension_id=extension_id)
    if request.method == "GET":
        form = ExtensionForm.for_extension(extension)
        return _edit_response(request, trunk, extension, form)
    form = ExtensionForm(request.POST)
    if form.is_valid():
        try:
            extension = extension_update(extension=extension, values=form.values())
        except ApplicationError as exc:
            form.add_service_errors(exc.extra.get("fields", {}), exc.message)
        else:
            if request.htmx:
                return render(request, f"{TEMPLATE}#row", _context(request, trunk, extension=extension))
            messages.success(request, f"Extension {extension.number} saved.")
            return redirect(_directory_url(trunk))
    extension.refresh_from_db()
    return _edit_response(request, trunk, extension, form, status=200 if request.htmx else 400)


def _edit_response(
    request: HttpRequest, trunk: SipTrunk, extension: Extension, form: ExtensionForm, status: int = 200
) -> HttpResponse:
    context = _context(request, trunk, extension=extension, editing_id=extension.pk, edit_form=form)
    template = f"{TEMPLATE}#edit_row" if request.htmx else TEMPLATE
    return render(request, template, context, status=status)


@directory_page
@require_POST
def extension_remove(request: HttpRequest, trunk_id: int, extension_id: int) -> HttpResponse:
    trunk = trunk_get(tenant=request.tenant, trunk_id=trunk_id)
    extension = extension_get(tenant=request.tenant, trunk=trunk, extension_id=extension_id)
    number = extension.number
    extension_delete(extension=extension)
    if request.htmx:
        return render(request, f"{TEMPLATE}#table", _context(request, trunk))
    messages.success(request, f"Extension {number} deleted.")
    return redirect(_directory_url(trunk))


@directory_page
@require_GET
def try_it(request: HttpRequest, trunk_id: int) -> HttpResponse:
    trunk = trunk_get(tenant=request.tenant, trunk_id=trunk_id)
    form = TryForm(request.GET)
    result = None
    if form.is_valid() and form.cleaned_data["phrase"].strip():
        result = extension_match(
            tenant=request.tenant, trunk_id=trunk.pk, phrase=form.cleaned_data["phrase"], cached=False
        )
    context = _context(request, trunk, try_form=form, match=result)
    return render(request, f"{TEMPLATE}#try_results" if request.htmx else TEMPLATE, context)


@directory_page
@require_GET
def export(request: HttpRequest, trunk_id: int) -> StreamingHttpResponse:
    trunk = trunk_get(tenant=request.tenant, trunk_id=trunk_id)
    lines = csv_lines(directory_export_rows(tenant=request.tenant, trunk=trunk))
    if request.GET.get("bom"):  # Excel only reads UTF-8 names right with a BOM
        lines = _with_bom(lines)
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    filename = f"{slugify(trunk.name) or 'trunk'}-extensions.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _with_bom(lines):
    yield "\ufeff"
    yield from lines


@directory_page
@require_POST
def import_upload(request: HttpRequest, trunk_id: int) -> HttpResponse:
    trunk = trunk_get(tenant=request.tenant, trunk_id=trunk_id)
    form = ImportForm(request.POST, request.FILES)
    if form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            job = import_job_create(
                trunk=trunk,
                user=request.user,
                data=upload.read(),
                filename=upload.name or "",
                mode=form.cleaned_data["mode"],
            )
        except ApplicationError as exc:
            form.add_error("file", exc.message)
        else:
            return redirect(reverse("extensions:import-job", args=[trunk.pk, job.token]))
    return render(request, TEMPLATE, _context(request, trunk, import_form=form), status=400)


_FIELD_LABELS = {
    "display_name": "Display name",
    "owner": "Owner",
    "department": "Department",
    "aliases": "Aliases",
}


def _shown(value: object) -> str:
    return " | ".join(value) if isinstance(value, list) else str(value or "")


def _change_rows(report: ImportReport | None) -> list[dict]:
    """The report's changes as the preview table shows them: (label, old, new) per field."""
    if report is None:
        return []
    rows = []
    for change in report.changes:
        if change.action == "update":
            diffs = change.changes or {}
            fields = [
                (label, _shown(diffs[name]["old"]), _shown(diffs[name]["new"]))
                for name, label in _FIELD_LABELS.items()
                if name in diffs
            ]
        else:  # in the file's column order (jsonb does not keep the keys' order)
            values = change.values or {}
            fields = [
                (label, "", _shown(values[name])) for name, label in _FIELD_LABELS.items() if values.get(name)
            ]
        rows.append(
            {"action": change.action, "line": change.line, "extension": change.extension, "fields": fields}
        )
    return rows


def _job_context(request: HttpRequest, trunk: SipTrunk, job) -> dict:
    data = job.result or job.preview
    report = ImportReport.from_dict(data) if data else None
    return {
        "trunk": trunk,
        "job": job,
        "report": report,
        "changes": _change_rows(report),
        "committed": job.status == ImportStatus.COMMITTED,
        "progress": import_job_progress(job=job) if job.is_running else None,
        "can_write": role_can(request.membership.role, Action.MANAGE_DIRECTORY),
        "statuses": ImportStatus,
    }


@directory_page
@require_GET
def import_job(request: HttpRequest, trunk_id: int, token: uuid.UUID) -> HttpResponse:
    trunk = trunk_get(tenant=request.tenant, trunk_id=trunk_id)
    job = import_job_get(tenant=request.tenant, trunk=trunk, token=token)
    template = "extensions/import.html#status" if request.htmx else "extensions/import.html"
    return render(request, template, _job_context(request, trunk, job))


@directory_page
@require_POST
def import_commit(request: HttpRequest, trunk_id: int, token: uuid.UUID) -> HttpResponse:
    trunk = trunk_get(tenant=request.tenant, trunk_id=trunk_id)
    job = import_job_commit(job=import_job_get(tenant=request.tenant, trunk=trunk, token=token))
    if request.htmx:
        return render(request, "extensions/import.html#status", _job_context(request, trunk, job))
    return redirect(reverse("extensions:import-job", args=[trunk.pk, job.token]))
