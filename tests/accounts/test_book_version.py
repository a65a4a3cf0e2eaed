"""The book's version (``accounts.book``) as the server reads it: an import made by another
process (``import_data`` on the command line while the embedded server runs, each with its
own in-process cache) shows on the server's next request, not when its cached reads
expire; and a request reads the version once, however many cached reads name it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts import book
from accounts.models import BookVersion

# the embedded mode's cache: one per process, as the server and the command each have
LOCMEM = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}


def _version_reads(queries) -> int:
    return sum('"accounts_bookversion"' in q["sql"] for q in queries)


@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")),
    reason="a second process needs the test database on disk (SQLite tests run in memory)",
)
@pytest.mark.django_db(transaction=True)
def test_an_import_by_another_process_shows_on_the_next_request(
    client, admin_user, settings, tmp_path
):
    from tests.metrics.test_worker import _database_url

    settings.CACHES = LOCMEM
    client.force_login(admin_user)
    assert "<option>Enterprise</option>" not in client.get(reverse("home")).content.decode()

    (tmp_path / "accounts.csv").write_text("external_id,name,segment\nACME,Acme Corp,Enterprise\n")
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}  # its own LocMem cache
    done = subprocess.run(
        [sys.executable, "manage.py", "import_data", str(tmp_path / "accounts.csv")],
        cwd=settings.BASE_DIR,
        env={**env, "DATABASE_URL": _database_url()},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # the segments were kept five minutes in this process's cache: the new version is read
    assert "<option>Enterprise</option>" in client.get(reverse("home")).content.decode()


@pytest.mark.django_db
def test_a_change_in_the_table_is_read_by_the_next_request(client, admin_user, settings):
    """Whoever writes the row (here plain SQL, as another process would), the next request
    keys its cached reads on it."""
    from accounts.models import Account

    settings.CACHES = LOCMEM
    client.force_login(admin_user)
    assert "<option>Enterprise</option>" not in client.get(reverse("home")).content.decode()
    Account.objects.create(name="Acme Corp", external_id="ACME", segment="Enterprise")
    # no new version: the cached segments stand (five minutes)
    assert "<option>Enterprise</option>" not in client.get(reverse("home")).content.decode()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO accounts_bookversion (id, token, changed_at) "
            "VALUES (1, 'from-elsewhere', CURRENT_TIMESTAMP)"
        )
    assert "<option>Enterprise</option>" in client.get(reverse("home")).content.decode()


@pytest.mark.django_db
def test_a_request_reads_the_version_once(client, admin_user, settings):
    """The cohorts page of an admin names the version twice (the segments of its filter,
    the cohorts): one primary-key read of ``BookVersion``, on the first page and when both
    reads come from the cache."""
    settings.CACHES = LOCMEM
    book.changed()
    client.force_login(admin_user)
    for _ in range(2):  # computed, then from the cache
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(reverse("workspace:cohorts")).status_code == 200
        assert _version_reads(ctx.captured_queries) == 1


@pytest.mark.django_db
def test_outside_a_request_each_call_reads_and_a_change_is_seen_at_once(
    django_assert_num_queries,
):
    assert book.version() == "0"  # no change yet: no row
    book.changed()  # the first: an update finding no row, the row, the update again
    first = BookVersion.objects.get().token
    assert book.version() == first and len(first) == 32
    with book.memo():
        with django_assert_num_queries(1):
            assert book.version() == book.version() == first
        book.changed()  # an upload page's import: the same request reads the new one
        assert book.version() not in (first, "0")
    with django_assert_num_queries(1):
        book.version()  # a command or a task reads at each call
