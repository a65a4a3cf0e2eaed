"""A version of the book's accounts and contracts, for the pages that keep a read of them in
the cache (the queue's segments, the dashboard's cohorts): a key that names the version is
read afresh after an import that created or changed accounts or contracts, instead of
showing the book from before the import until its cache expires (a new installation's
first import showed no segment and "No account started paying").

The version lives in the database (``BookVersion``, one row), not in the cache: the embedded
mode's cache is per process, so an ``import_data`` run in another process than the server
(the command line) would be seen only when the cached reads expire (minutes). Every
process shares the database, in both modes. It is written once the import's rows are
committed (``services.import_record_run``), so a page never sees the new version before
them (it would keep the old book under the new key).

The cost: one primary-key read per request that uses the version, however many cached
reads name it (``memo`` keeps it for the rest of the request, ``BookVersionMemo`` opens and
closes that memo around each request); code outside a request (commands, tasks) reads it
at each call."""

from __future__ import annotations

import contextlib
import uuid
from contextvars import ContextVar

from django.utils import timezone

from .models import BookVersion

# the version read by the current request, once it is read; None outside a request
_memo: ContextVar[dict | None] = ContextVar("book_version_memo", default=None)


def version() -> str:
    """The current version, to put in a cache key: "0" until the first change."""
    memo = _memo.get()
    if memo is not None and "version" in memo:
        return memo["version"]
    found = BookVersion.objects.filter(pk=1).values_list("token", flat=True).first() or "0"
    if memo is not None:
        memo["version"] = found
    return found


def changed() -> None:
    """A new version: every key made with the old one is read afresh. The first change makes
    the row; when another process made it meanwhile, the update after it still leaves this
    change's own token (the version a page reads is never one from before this change)."""
    token, now = uuid.uuid4().hex, timezone.now()
    row = BookVersion.objects.filter(pk=1)
    if not row.update(token=token, changed_at=now):
        BookVersion.objects.bulk_create(
            [BookVersion(pk=1, token=token, changed_at=now)], ignore_conflicts=True
        )
        row.update(token=token, changed_at=now)
    memo = _memo.get()
    if memo is not None:
        memo.pop("version", None)  # an import in a request reads the new one after it


@contextlib.contextmanager
def memo():
    """Read the version at most once inside the block (a request)."""
    token = _memo.set({})
    try:
        yield
    finally:
        _memo.reset(token)
