"""Manage › Nightly pipeline: the recent runs, each step in words, and the book's freshness."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts import utc
from metrics import pipeline_words
from metrics.models import PipelineRun
from metrics.pipeline import run_nightly
from tests.factories import AccountFactory, ContractFactory

pytestmark = pytest.mark.django_db

PAGE = "workspace:pipeline-runs"


def _run(as_of: dt.date, status: str, steps: list, **extra) -> PipelineRun:
    started = timezone.now() - dt.timedelta(hours=1)
    return PipelineRun.objects.create(
        as_of=as_of,
        status=status,
        steps=steps,
        started_at=started,
        finished_at=started + dt.timedelta(seconds=42.5),
        **extra,
    )


def test_the_steps_read_in_words(client, admin_user):
    yesterday = utc.yesterday()
    _run(
        yesterday,
        PipelineRun.Status.SUCCEEDED,
        [
            {
                "name": "health",
                "seconds": 12.34,
                "accounts": 1200,
                "green": 700,
                "yellow": 400,
                "red": 90,
                "no_data": 10,
                "no_model": 0,
            },
            {
                "name": "playbooks",
                "seconds": 3.9,
                "playbooks": 6,
                "opened": 1,
                "pending": 2,
                "promoted": 0,
                "successes": 3,
                "escalated": 4,
                "failures": 0,
            },
            {"name": "something_new", "seconds": 0.1, "widgets": 7},
        ],
    )
    client.force_login(admin_user)
    page = client.get(reverse(PAGE)).content.decode()
    assert "Up to date" in page
    assert f"as of <strong>{utc.day_text(yesterday)}</strong>" in page
    assert "42.5 s" in page  # the run's wall time
    assert '<strong>Health snapshots</strong> <span class="muted">(12.3 s)</span>' in page
    assert "1,200 accounts scored (churned ones too): 700 green, 400 yellow, 90 red" in page
    assert "6 playbooks: 1 CTA opened, 2 held over a CSM&#x27;s cap" in page
    # a step this page has no words for still says what it counted
    assert "something new" in page and "widgets 7" in page


def test_a_book_behind_says_how_many_days_and_that_the_next_run_catches_up(client, admin_user):
    four_back = utc.yesterday() - dt.timedelta(days=4)
    _run(four_back, PipelineRun.Status.SUCCEEDED, [])
    # a failed night is not a completed one, even for a later day
    _run(
        utc.yesterday(),
        PipelineRun.Status.FAILED,
        [
            {
                "name": "usage_rollups",
                "seconds": 1.0,
                "account_days": 5,
                "first_day": "2026-11-01",
                "last_day": "2026-11-02",
                "corrected": 0,
                "rebuilt": 0,
            }
        ],
        error="health: the database went away",
    )
    client.force_login(admin_user)
    page = client.get(reverse(PAGE)).content.decode()
    # yesterday - (yesterday - 4 days) = 4 days behind
    assert "4 days behind" in page
    assert "the database went away" in page
    assert "5 account-days of usage reconciled for 1 Nov 2026 to 2 Nov 2026" in page


def test_no_run_yet(client, admin_user):
    client.force_login(admin_user)
    page = client.get(reverse(PAGE)).content.decode()
    assert "No night has completed yet" in page
    assert "No run yet." in page


def test_a_real_night_reads_in_words_with_a_fixed_number_of_queries(
    client, admin_user, django_assert_num_queries
):
    ContractFactory(account=AccountFactory())
    run_nightly(utc.yesterday())
    run_nightly(utc.yesterday())  # twice: two rows, the same queries
    client.force_login(admin_user)
    # session, user, the user's groups (the navigation), the runs, the newest succeeded run
    with django_assert_num_queries(5):
        page = client.get(reverse(PAGE)).content.decode()
    recorded = [s["name"] for s in PipelineRun.objects.latest("started_at").steps]
    assert {"usage_rollups", "health", "standings", "kpi_snapshots"} <= set(recorded)
    for name in recorded:  # every step the night recorded has its label and its words
        assert f"<strong>{pipeline_words.STEP_LABELS[name]}</strong>" in page
    assert "1 account scored (churned ones too)" in page
    assert "Up to date" in page


def test_step_words_of_a_skipped_step():
    assert pipeline_words.step_words({"name": "playbooks", "skipped": "an older day"}) == (
        "skipped: an older day"
    )


def test_a_past_day_run_shows_its_skipped_steps_without_a_time(client, admin_user):
    """A rebuild of an old day records the steps that act on the present as skipped."""
    _run(
        utc.yesterday() - dt.timedelta(days=400),
        PipelineRun.Status.SUCCEEDED,
        [
            {
                "name": "playbooks",
                "skipped": "an older day than the latest processed",
                "seconds": 0.0,
            }
        ],
    )
    client.force_login(admin_user)
    page = client.get(reverse(PAGE)).content.decode()
    assert "<strong>Playbooks</strong>: skipped: an older day than the latest processed" in page


def test_a_superseded_run_took_the_time_of_its_recorded_steps_not_until_it_was_superseded(
    client, admin_user
):
    """A run that died 0.15 s in and was superseded 7.7 s later took 0.15 s, as far as
    anyone saw: not 7.7 s. With no step recorded it shows no time."""
    day = utc.yesterday()
    died = _run(day, PipelineRun.Status.RUNNING, [{"name": "usage_rollups", "seconds": 0.15}])
    PipelineRun.objects.filter(pk=died.pk).update(finished_at=None)
    new = run_nightly(day)
    died.refresh_from_db()
    assert died.status == PipelineRun.Status.SUPERSEDED
    assert died.error == f"stopped; superseded by run #{new['run_id']}"
    assert died.duration == 0.15  # its finished_at is when the new run superseded it
    nothing = _run(day, PipelineRun.Status.SUPERSEDED, [])
    assert nothing.duration is None
    client.force_login(admin_user)
    page = client.get(reverse(PAGE)).content.decode()
    row = page[page.index(f'id="run-{died.pk}"') :]
    row = row[: row.index("</tr>")]
    assert '<td data-label="Took" class="num">0.2 s</td>' in row  # 0.15, to a tenth
    assert f"stopped; superseded by run #{new['run_id']}" in row
    row = page[page.index(f'id="run-{nothing.pk}"') :]
    assert '<td data-label="Took" class="num">—</td>' in row[: row.index("</tr>")]
