"""``run_pipeline`` for a day older than the latest day processed rebuilds that day's
history (usage, health and KPI snapshots) and leaves the present alone: open CTAs, the
queue's standings, KPI alerts. Catching up missed nights still runs every step."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from accounts import utc
from metrics import pipeline
from metrics.models import AccountStanding, HealthSnapshot, KpiSnapshot, PipelineRun
from playbooks.models import Cta, CtaStatus
from playbooks.services import cta_open
from tests.factories import AccountFactory, ContractFactory, UserFactory, failed_invoice

from .helpers import make_playbook

pytestmark = pytest.mark.django_db

OLD = dt.date(2020, 1, 1)


@pytest.fixture
def every_hook(settings):
    """The final steps as deployed: the playbooks, then the KPI targets' alerts."""
    settings.PIPELINE_FINAL_HOOKS = [
        "playbooks.services.playbooks_evaluate_all",
        "reports.services.targets_evaluate",
    ]


def _late_payer(day: dt.date):
    """An account with an invoice overdue on ``day`` (issued in 2026 or so: none in 2020)
    and an open CTA whose success is "no overdue or failed invoice": met as of 2020 only."""
    account = AccountFactory(owner=UserFactory())
    ContractFactory(account=account, start_date=day - dt.timedelta(days=200), quantity=10)
    failed_invoice(account, day)
    playbook = make_playbook("ticket_escalated", success="payments_clear")
    cta = cta_open(playbook=playbook, account=account, evidence="escalated", as_of=day)
    assert cta is not None
    return account, cta


def test_a_past_day_rebuilds_history_and_leaves_ctas_and_standings_alone(day, every_hook):
    account, cta = _late_payer(day)
    call_command("run_pipeline", "--as-of", day.isoformat(), stdout=StringIO())
    cta.refresh_from_db()
    assert cta.status == CtaStatus.OPEN  # the invoice is still overdue on the latest day
    standing = AccountStanding.objects.get(account=account)
    assert standing.day == day

    out = StringIO()
    call_command("run_pipeline", "--date", OLD.isoformat(), stdout=out)

    cta.refresh_from_db()
    assert cta.status == CtaStatus.OPEN and cta.closed_at is None
    assert not Cta.objects.exclude(status=CtaStatus.OPEN).exists()
    standing.refresh_from_db()
    assert standing.day == day
    assert set(AccountStanding.objects.values_list("day", flat=True)) == {day}
    # the history of that day is rebuilt
    assert HealthSnapshot.objects.filter(account=account, day=OLD).exists()
    assert KpiSnapshot.objects.filter(day=OLD, scope_kind="all").exists()
    run = PipelineRun.objects.get(as_of=OLD)
    assert run.status == PipelineRun.Status.SUCCEEDED
    skipped = [s["name"] for s in run.steps if "skipped" in s]
    assert skipped == ["usage_events", "standings", "playbooks", "reports"]
    ran = [s["name"] for s in run.steps if "skipped" not in s]
    assert ran == ["usage_rollups", "health", "kpi_snapshots"]
    text = out.getvalue()
    assert f"{OLD} is older than {day}, the latest day processed" in text
    assert "skipped the steps that act on the present (usage_events, standings" in text
    assert "  playbooks: skipped: CTAs are opened and closed on the latest data only" in text
    # the latest day processed is still the latest one: running it again runs everything
    call_command("run_pipeline", "--as-of", day.isoformat(), stdout=StringIO())
    latest = PipelineRun.objects.filter(as_of=day).order_by("-pk").first()
    assert not any("skipped" in s for s in latest.steps)


def test_a_fanned_out_past_day_skips_the_same_steps(
    day, every_hook, celery_eager, django_capture_on_commit_callbacks
):
    """The continuation after the health chunks (a worker's) decides the same way."""
    account, cta = _late_payer(day)
    pipeline.run_nightly(day)
    with django_capture_on_commit_callbacks(execute=True) as sent:
        summary = pipeline.run_nightly(OLD, fan_out=True, chunk_size=1)
    assert len(sent) == 1  # the health chunk of the one account
    assert summary["past"] == f"{OLD} is older than {day}, the latest day processed"
    run = PipelineRun.objects.get(pk=summary["run_id"])
    assert run.status == PipelineRun.Status.SUCCEEDED and run.chunks_total == 1
    assert [s["name"] for s in run.steps if "skipped" in s] == [
        "usage_events",
        "standings",
        "playbooks",
        "reports",
    ]
    cta.refresh_from_db()
    assert cta.status == CtaStatus.OPEN
    assert AccountStanding.objects.get(account=account).day == day


def test_a_catch_up_of_missed_nights_runs_the_playbooks_of_each(day, every_hook):
    """Each missed night is newer than the last one processed: every step runs, and the CTA
    whose invoices were paid on the first missed night closes on that night."""
    first_missed = day - dt.timedelta(days=2)
    account, cta = _late_payer(day)
    PipelineRun.objects.create(
        as_of=day - dt.timedelta(days=3), status=PipelineRun.Status.SUCCEEDED
    )
    account.invoices.update(status="paid", paid_on=first_missed, failed_attempts=0)

    out = StringIO()
    call_command("run_pipeline", stdout=out)

    runs = list(PipelineRun.objects.filter(as_of__gte=first_missed).order_by("as_of"))
    assert [r.as_of for r in runs] == [first_missed, day - dt.timedelta(days=1), day]
    for run in runs:
        assert run.status == PipelineRun.Status.SUCCEEDED
        assert not any("skipped" in s for s in run.steps), run.steps
        assert [s["name"] for s in run.steps][-2:] == ["playbooks", "reports"]
    assert runs[0].steps[-2]["successes"] == 1  # closed on the first missed night
    cta.refresh_from_db()
    assert cta.status != CtaStatus.OPEN
    assert AccountStanding.objects.get(account=account).day == day
    assert "is older than" not in out.getvalue()


def test_today_is_refused_and_nothing_is_written():
    today = utc.today()
    for flag in ("--as-of", "--date"):
        with pytest.raises(CommandError) as caught:
            call_command("run_pipeline", flag, today.isoformat())
        assert str(caught.value) == (
            f"--as-of/--date {today} is today (UTC), a day not complete yet; "
            f"the latest complete day is {today - dt.timedelta(days=1)}"
        )
    assert not PipelineRun.objects.exists()
    assert not HealthSnapshot.objects.exists()
