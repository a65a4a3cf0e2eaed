"""A new installation's first import: the pages that keep a read in the cache (the segments
of the queue's filter, the dashboard's cohorts) show the imported book at once, not after
their cache expires."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from metrics.services import kpi_snapshots_record

from .conftest import utc_today
from .test_dashboard import _cohort_rows

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media_and_eager(settings, tmp_path, celery_eager):
    settings.MEDIA_ROOT = tmp_path / "media"


def _upload(client, django_capture_on_commit_callbacks, files: dict[str, str]):
    data = {"files": [SimpleUploadedFile(n, c.encode(), "text/csv") for n, c in files.items()]}
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post(reverse("accounts:import-list"), data)
    assert r.status_code == 302, r.content.decode()[:500]


def test_the_first_import_shows_in_the_cached_reads_at_once(
    client, admin_user, django_capture_on_commit_callbacks
):
    yesterday = utc_today() - dt.timedelta(days=1)
    kpi_snapshots_record(as_of=yesterday)  # the first night ran on the empty book
    client.force_login(admin_user)
    # the empty book's reads, now in the cache
    assert "<option>Enterprise</option>" not in client.get(reverse("home")).content.decode()
    assert _cohort_rows(client.get(reverse("workspace:cohorts")).content.decode()) == []

    # Acme first paid 100 days before yesterday: a cohort of one in its month
    start = yesterday - dt.timedelta(days=100)
    _upload(
        client,
        django_capture_on_commit_callbacks,
        {
            "accounts.csv": "external_id,name,segment\nACME,Acme Corp,Enterprise\n",
            "contracts.csv": (
                "external_id,account_external_id,start_date,mrr\n"
                f"C-1,ACME,{start.isoformat()},1000\n"
            ),
        },
    )
    queue = client.get(reverse("home")).content.decode()
    assert "<option>Enterprise</option>" in queue
    cohorts = client.get(reverse("workspace:cohorts")).content.decode()
    assert _cohort_rows(cohorts) == [(start.strftime("%b %Y"), 1)]  # the month as pages name it


def test_an_import_of_events_alone_keeps_the_cached_reads(
    client, admin_user, django_capture_on_commit_callbacks
):
    """Events change neither the segments nor the contracts: the cohorts, which read every
    contract of the scope, are not computed again after each event batch."""
    from accounts import book

    client.force_login(admin_user)
    _upload(
        client,
        django_capture_on_commit_callbacks,
        {"accounts.csv": "external_id,name,segment\nACME,Acme Corp,Enterprise\n"},
    )
    version = book.version()
    _upload(
        client,
        django_capture_on_commit_callbacks,
        {"events.csv": "account_external_id,event,occurred_at\nACME,login,2026-01-05T10:00:00Z\n"},
    )
    assert book.version() == version
    # a re-import that changes nothing keeps it too
    _upload(
        client,
        django_capture_on_commit_callbacks,
        {"accounts.csv": "external_id,name,segment\nACME,Acme Corp,Enterprise\n"},
    )
    assert book.version() == version
