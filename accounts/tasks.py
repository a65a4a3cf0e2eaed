"""Celery tasks of the accounts app: thin interfaces that load by id and call a service."""

from __future__ import annotations

import logging
import shutil
import time
from datetime import timedelta
from pathlib import Path

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.db.models import Q
from django.utils import timezone

from . import intake, once, services
from .models import ImportRecord

log = logging.getLogger(__name__)

PROGRESS_TTL = 60 * 60  # seconds a progress entry outlives its last write
PROGRESS_EVERY = 0.5  # seconds between cache writes: the page polls once a second


def progress_cache_key(record_pk: int) -> str:
    return f"import-progress:{record_pk}"


def import_progress(record_pk: int) -> dict | None:
    """{"rows": int, "bytes_done": int, "bytes_total": int, "percent": 0..100}, or None
    before the first report (or in another process's local-memory cache)."""
    return cache.get(progress_cache_key(record_pk))


class _ProgressWriter:
    """The ``progress`` callback of ``run_import``: writes to the cache at most twice a second."""

    def __init__(self, record_pk: int, bytes_total: int, clock=time.monotonic):
        self.key = progress_cache_key(record_pk)
        self.bytes_total = bytes_total
        self.clock = clock
        self.last = float("-inf")

    def write(self, rows: int, bytes_done: int, bytes_total: int) -> None:
        total = bytes_total or self.bytes_total
        percent = min(100, round(100 * bytes_done / total)) if total else 0
        value = {"rows": rows, "bytes_done": bytes_done, "bytes_total": total, "percent": percent}
        cache.set(self.key, value, PROGRESS_TTL)

    def __call__(self, rows: int, bytes_done: int, bytes_total: int) -> None:
        now = self.clock()
        if now - self.last < PROGRESS_EVERY:
            return
        self.last = now
        self.write(rows, bytes_done, bytes_total)


def upload_files(record: ImportRecord) -> list[tuple[str, Path]]:
    """(kind, path) of an upload's stored files in dependency order.

    The upload page stores each file as ``MEDIA_ROOT/imports/<uuid>/<kind>/<name>``."""
    root = Path(settings.MEDIA_ROOT) / record.stored_file
    found = []
    for kind in intake.kinds():
        folder = root / kind
        if folder.is_dir():
            found.extend((kind, p) for p in sorted(folder.iterdir()) if p.is_file())
    return found


@shared_task(ignore_result=True, acks_late=True)
def run_uploaded_import(record_pk: int) -> None:
    """Run an uploaded import, then delete its files.

    Idempotent: the record is claimed by a conditional UPDATE, so a second delivery of the
    same message or a double enqueue skips. A record left "running" by a worker that died is
    claimed again once it has been running longer than the task time limit (no live worker
    can still hold it then); its import rolled back with the worker, so running it again is
    safe."""
    now = timezone.now()
    abandoned = now - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT)
    claimed = (
        ImportRecord.objects.filter(pk=record_pk)
        .filter(
            Q(status=ImportRecord.Status.QUEUED)
            | Q(status=ImportRecord.Status.RUNNING, started_at__lt=abandoned)
        )
        .update(status=ImportRecord.Status.RUNNING, started_at=now)
    )
    if not claimed:
        log.info("import %s is gone or already being run; skipping", record_pk)
        return
    record = ImportRecord.objects.get(pk=record_pk)
    try:
        files = upload_files(record)
        if not files:
            raise intake.IntakeError("the uploaded files are missing on the server")
        sources = [intake.source_from_path(path, kind=kind) for kind, path in files]
        progress = _ProgressWriter(record.pk, sum(p.stat().st_size for _, p in files))
        progress.write(0, 0, progress.bytes_total)
        services.import_record_run(record=record, sources=sources, progress=progress)
    except intake.IntakeError as exc:
        # an unusable file (no header, not UTF-8, not gzip …): say so on the record
        ImportRecord.objects.filter(pk=record.pk).update(
            status=ImportRecord.Status.FAILED,
            errors=[{"source": record.filename, "row": 0, "column": "", "message": str(exc)}],
            finished_at=timezone.now(),
        )
    finally:
        if record.stored_file:
            shutil.rmtree(Path(settings.MEDIA_ROOT) / record.stored_file, ignore_errors=True)
        cache.delete(progress_cache_key(record.pk))


@shared_task(ignore_result=True)
def clear_old_form_keys() -> int:
    """Daily: forget the form keys older than ``once.KEEP`` (``once.keys_clear``)."""
    cleared = once.keys_clear()
    log.info("cleared %s form keys", cleared)
    return cleared
