from __future__ import annotations

import logging
import uuid as uuid_lib
from functools import partial
from pathlib import Path

from django.conf import settings
from django.contrib.auth import forms as auth_forms
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied
from django.core.files.move import file_move_safe
from django.core.files.uploadedfile import UploadedFile
from django.core.paginator import Paginator
from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.text import get_valid_filename
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods
from django_htmx.http import HttpResponseClientRedirect, HttpResponseClientRefresh
from django_htmx.middleware import HtmxDetails

from config.docs import doc_html
from config.site import absolute_url
from outbox.services import email_enqueue, task_enqueue

from . import intake, ratelimit, selectors, tasks
from .forms import ImportUploadForm, UploadPart
from .models import ImportRecord, Role, User

IMPORTS_PER_PAGE = 20
log = logging.getLogger(__name__)
ENQUEUE_FAILED = "the import could not be started; see the server log"


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


@require_GET
@never_cache
@login_not_required
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness and database reachability, for load balancers and compose health checks."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return JsonResponse({"status": "ok"})
    except Exception as exc:  # any database error means "not ready"
        return JsonResponse({"status": "error", "detail": type(exc).__name__}, status=503)


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    summary = selectors.book_summary(user=request.user)
    return render(request, "accounts/home.html", {"summary": summary})


# --- data import (admins only) ----------------------------------------------------------------


def _require_admin(request: HttpRequest) -> None:
    """Imports touch every account: Admin role only; anyone else gets 403 (an admin screen,
    not an object of someone else's book: there is nothing to hide about its existence)."""
    if getattr(request.user, "role", None) != Role.ADMIN:
        raise PermissionDenied("Only an Admin may import data.")


def _store_upload(directory: Path, part: UploadPart) -> str:
    """Write one uploaded file to ``directory/<kind>/<name>`` without reading it into memory:
    a big upload already sits in a temporary file (moved), a small one is copied in chunks."""
    folder = directory / part.kind
    folder.mkdir(parents=True, exist_ok=True)
    upload: UploadedFile = part.file
    name = get_valid_filename(Path(upload.name).name) or f"{part.kind}.csv"
    target = folder / name
    temporary = getattr(upload, "temporary_file_path", None)
    if temporary is not None:  # renamed into place (as FileSystemStorage does)
        file_move_safe(temporary(), str(target), allow_overwrite=True)
    else:
        with target.open("wb") as out:
            for chunk in upload.chunks():
                out.write(chunk)
    return name


def _import_enqueue(record_pk: int) -> None:
    """Hand the import to a worker. Embedded mode (no broker) runs the task inline right
    here, and the request is in autocommit: the detail page then shows the outcome at once.

    An inline task's crash (the service has logged it and marked the record failed) must
    give the uploader the import page saying so, not a 500. An unreachable broker is not a
    failure: the upload is stored and the import starts once the broker is back."""
    try:
        # with the broker away the call is kept and sent when it is back: the record
        # stays queued and the page says so
        task_enqueue(tasks.run_uploaded_import, args=[record_pk])
    except Exception:
        log.exception("import %s: could not run or enqueue", record_pk)
        ImportRecord.objects.filter(
            pk=record_pk, status__in=[ImportRecord.Status.QUEUED, ImportRecord.Status.RUNNING]
        ).update(
            status=ImportRecord.Status.FAILED,
            errors=[{"source": "", "row": 0, "column": "", "message": ENQUEUE_FAILED}],
            finished_at=timezone.now(),
        )


def _import_upload_create(
    *, user: User, parts: list[UploadPart], dry_run: bool, ignore_unknown: bool
) -> ImportRecord:
    """Store the files and record a queued import; the task is enqueued after commit."""
    record_uuid = uuid_lib.uuid4()
    relative = Path("imports") / str(record_uuid)
    names = [_store_upload(Path(settings.MEDIA_ROOT) / relative, p) for p in parts]
    record = ImportRecord.objects.create(
        uuid=record_uuid,
        origin=ImportRecord.Origin.UPLOAD,
        user=user,
        kind=parts[0].kind if len(parts) == 1 else "dir",  # "dir": several kinds at once
        filename=", ".join(names)[:500],
        stored_file=str(relative),
        dry_run=dry_run,
        ignore_unknown=ignore_unknown,
        status=ImportRecord.Status.QUEUED,
    )
    transaction.on_commit(partial(_import_enqueue, record.pk))
    return record


# What each kind of file holds, in a few words; its columns come from the intake's own
# definitions (``intake.columns.COLUMNS``, with the kinds other apps register), so the page
# lists what the code accepts.
KIND_SUMMARIES = {
    "accounts": "customers",
    "contracts": "MRR, seats, dates",
    "stakeholders": "people at the customer",
    "tickets": "support tickets",
    "invoices": "billing",
    "events": "product usage",
    "responses": "past NPS, CSAT and CES answers",
}
# Rules between columns that "required" cannot say (the kind's loader checks them).
KIND_RULES = {
    "responses": "stakeholder_email or account_external_id: at least one of them",
}


def import_kinds() -> list[dict]:
    """Every kind of file the intake takes, in import order, with its required and optional
    columns."""
    from .intake.columns import COLUMNS

    return [
        {
            "kind": kind,
            "file": f"{kind}.csv",
            "summary": KIND_SUMMARIES.get(kind, ""),
            "required": [c.name for c in COLUMNS[kind] if c.required],
            "optional": [c.name for c in COLUMNS[kind] if not c.required],
            "rule": KIND_RULES.get(kind, ""),
            "anchor": _doc_anchor(kind),
        }
        for kind in intake.kinds()
    ]


def _doc_anchor(kind: str) -> str:
    """The id of the doc's section of a kind ("## events.csv / events.csv.gz"); "" if none."""
    _html, headings = doc_html("data-import.md")
    return next((i for text, i in headings.items() if text.startswith(f"{kind}.csv")), "")


@require_GET
def import_format(request: HttpRequest) -> HttpResponse:
    """docs/data-import.md, the full contract of the files: columns, meanings and rules."""
    _require_admin(request)
    return render(request, "accounts/import_format.html", {"html": doc_html("data-import.md")[0]})


@require_http_methods(["GET", "POST"])
def import_list(request: HtmxHttpRequest) -> HttpResponse:
    """The upload form and the history of imports from every door."""
    _require_admin(request)
    if request.method == "POST":
        form = ImportUploadForm(request.POST, request.FILES)
        if form.is_valid():
            record = _import_upload_create(
                user=request.user,
                parts=form.cleaned_data["parts"],
                dry_run=form.cleaned_data["dry_run"],
                ignore_unknown=form.cleaned_data["ignore_unknown"],
            )
            url = record_url(record)
            return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
        if request.htmx:  # htmx 2 does not swap 4xx: re-render the form with 200
            return render(request, "accounts/import_list.html#upload-form", {"form": form})
    else:
        form = ImportUploadForm()

    history = Paginator(
        ImportRecord.objects.select_related("user").order_by("-created_at", "-id"),
        IMPORTS_PER_PAGE,
    ).get_page(request.GET.get("page"))
    template = "accounts/import_list.html"
    if request.htmx and request.method == "GET":
        template += "#import-history"
    return render(request, template, {"form": form, "history": history, "kinds": import_kinds()})


def record_url(record: ImportRecord) -> str:
    return reverse("accounts:import-detail", kwargs={"uuid": record.uuid})


@require_GET
def import_detail(request: HtmxHttpRequest, uuid: uuid_lib.UUID) -> HttpResponse:
    """An import's outcome; while it is queued or running, a progress fragment polls."""
    _require_admin(request)
    record = get_object_or_404(ImportRecord.objects.select_related("user"), uuid=uuid)
    running = record.status in (ImportRecord.Status.QUEUED, ImportRecord.Status.RUNNING)
    if request.htmx:
        if not running:  # done: reload the page to show counts and errors
            return HttpResponseClientRefresh()
        return render(
            request,
            "accounts/_import_progress.html",
            {"record": record, "progress": tasks.import_progress(record.pk)},
        )
    return render(
        request,
        "accounts/import_detail.html",
        {
            "record": record,
            "running": running,
            "progress": tasks.import_progress(record.pk) if running else None,
            "per_kind": _per_kind_rows(record),
            "errors": _error_rows(record),
            "duration": _duration(record),
        },
    )


def _per_kind_rows(record: ImportRecord) -> list[dict]:
    """Counts per source file, in the order they were imported."""
    return list(record.per_kind.values())


def _error_rows(record: ImportRecord) -> list[dict]:
    """The stored row errors (source, row, column, message); the intake stores them already
    safe to show (no NUL, no undecodable bytes)."""
    return record.errors


def _duration(record: ImportRecord) -> str:
    """How long the import ran, for people: "0.4 s", "3 min 12 s"; "" when unknown."""
    if not (record.started_at and record.finished_at):
        return ""
    seconds = max(0.0, (record.finished_at - record.started_at).total_seconds())
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes} min {seconds} s"


# --- password reset ----------------------------------------------------------------------------

PASSWORD_RESET_LIMIT = 10  # reset requests per address per hour


def _duration_text(seconds: int) -> str:
    """How long a reset link works, for people: "3 days", "1 day", "12 hours", "1 hour"."""
    days, rest = divmod(int(seconds), 24 * 60 * 60)
    if days and not rest:
        return f"{days} day{'s' if days != 1 else ''}"
    hours = max(1, round(seconds / 3600))
    return f"{hours} hour{'s' if hours != 1 else ''}"


class PasswordResetForm(auth_forms.PasswordResetForm):
    """Django's reset form, sending through the outbox: retried if SMTP is down, and sent
    once per (user, token) even if the request is repeated."""

    def send_mail(
        self,
        subject_template_name,
        email_template_name,
        context,
        from_email,
        to_email,
        html_email_template_name=None,
    ):
        # the link on SITE_URL like every other email's, not on the host the request came
        # in by (an internal name or port behind a proxy)
        link = reverse(
            "password_reset_confirm", kwargs={"uidb64": context["uid"], "token": context["token"]}
        )
        context = {
            **context,
            "reset_url": absolute_url(link),
            "valid_for": _duration_text(settings.PASSWORD_RESET_TIMEOUT),
        }
        subject = "".join(render_to_string(subject_template_name, context).splitlines())
        body = render_to_string(email_template_name, context)
        email_enqueue(
            key=f"password-reset:{context['uid']}:{context['token']}",
            to=[to_email],
            subject=subject,
            text=body,
            source="password-reset",
        )


@method_decorator(login_not_required, name="dispatch")
class PasswordResetView(auth_views.PasswordResetView):
    """The same answer whether or not the email belongs to a user (nothing to enumerate),
    and at most PASSWORD_RESET_LIMIT requests an hour from one address."""

    form_class = PasswordResetForm
    email_template_name = "registration/password_reset_email.txt"

    def post(self, request, *args, **kwargs):
        if not ratelimit.allow(
            f"password-reset:{ratelimit.client_ip(request)}",
            limit=PASSWORD_RESET_LIMIT,
            window=3600,
        ):
            return render(request, "registration/password_reset_limited.html", status=429)
        return super().post(request, *args, **kwargs)
