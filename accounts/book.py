"""A version of the book's accounts and contracts, for the pages that keep a read of them in
the cache (the queue's segments, the dashboard's cohorts): a key that names the version is
read afresh after an import that created or changed accounts or contracts, instead of
showing the book from before the import until its cache expires (a new installation's
first import showed no segment and "No account started paying").

The version lives in the cache itself: with Redis (deployed) every process sees an import's
new version; the embedded mode's cache is per process, so an import run inline by the web
process (the upload page) is seen at once and one by ``import_data`` in another process
when the cached reads expire (minutes)."""

from __future__ import annotations

import uuid

from django.core.cache import cache

KEY = "accounts:book-version"


def version() -> str:
    """The current version, to put in a cache key: "0" until the first change."""
    return cache.get(KEY) or "0"


def changed() -> None:
    """A new version: every key made with the old one is read afresh. Kept without expiry
    (an expired version would bring back keys of an older book of the same name)."""
    cache.set(KEY, uuid.uuid4().hex, None)
