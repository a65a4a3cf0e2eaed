"""The nightly pipeline entry points: run_nightly, the Celery task and run_pipeline."""

from __future__ import annotations

import datetime as dt
import gc
import time
import uuid
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from accounts.models import UsageDaily, UsageEvent, UsageFeatureDaily
from config.celery import app as celery_app
from metrics import pipeline
from metrics.models import PipelineRun
from metrics.tasks import run_nightly_pipeline
from tests.factories import AccountFactory
from tests.waiting import pipeline_lock_holders

pytestmark = pytest.mark.django_db

AS_OF = dt.date(2024, 3, 5)


def _at(day: dt.date, hour: int = 12, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute, second), tzinfo=dt.UTC)


def _event(account, when: dt.datetime, event: str = "report_created", user: str = "u1", value=None):
    """A raw event written straight to the table, as a bug or a manual fix would: the
    rollups are NOT updated, which is what the nightly reconcile is for."""
    return UsageEvent.objects.create(
        account=account,
        user_id=user,
        event=event,
        occurred_at=when,
        value=value,
        dedup_key=uuid.uuid4(),
    )


def _daily(account, day):
    return (
        UsageDaily.objects.filter(account=account, day=day)
        .values_list("events", "active_users", "value_sum")
        .first()
    )


def _features(account, day):
    return {
        e: (n, u)
        for e, n, u in UsageFeatureDaily.objects.filter(account=account, day=day).values_list(
            "event", "events", "users"
        )
    }


def test_command_records_a_run_and_rebuilds_yesterdays_rollup():
    yesterday = pipeline.default_as_of()
    account = AccountFactory()
    _event(account, _at(yesterday, 9), user="u1", value=2.5)
    _event(account, _at(yesterday, 10), user="u2", value=1.5)
    _event(account, _at(yesterday, 23, 59, 59), event="export", user="u1")
    _event(account, _at(yesterday, 11), event="export", user="")  # anonymous: no active user
    assert not UsageDaily.objects.exists()

    out = StringIO()
    call_command("run_pipeline", stdout=out)

    run = PipelineRun.objects.get()
    assert run.status == PipelineRun.Status.SUCCEEDED
    assert run.as_of == yesterday
    assert run.finished_at is not None and run.finished_at >= run.started_at
    assert [s["name"] for s in run.steps] == [
        "usage_rollups",
        "usage_events",
        "health",
        "standings",
        "kpi_snapshots",
    ]
    assert run.steps[0]["account_days"] == 1
    assert _daily(account, yesterday) == (4, 2, 4.0)
    assert _features(account, yesterday) == {"report_created": (2, 2), "export": (2, 1)}
    text = out.getvalue()
    assert f"Nightly pipeline as of {yesterday} (run #{run.pk}): succeeded" in text
    assert "usage_rollups:" in text and "account_days=1" in text


def test_reconcile_corrects_wrong_rows_and_removes_stale_ones_within_the_window_only():
    active, gone, old = AccountFactory(), AccountFactory(), AccountFactory()
    day_before = AS_OF - dt.timedelta(days=1)
    _event(active, _at(AS_OF, 0, 0, 0), user="a")  # first instant of the day counts
    _event(active, _at(day_before, 8), user="b")
    _event(active, _at(AS_OF + dt.timedelta(days=1), 0, 0, 0), user="c")  # next day: outside
    # wrong totals, a day whose events are gone, a feature no longer used
    UsageDaily.objects.create(account=active, day=AS_OF, events=99, active_users=9)
    UsageFeatureDaily.objects.create(account=active, day=AS_OF, event="ghost", events=5, users=1)
    UsageDaily.objects.create(account=gone, day=AS_OF, events=3, active_users=1)
    # outside the window: left alone even though no event backs it
    outside = AS_OF - dt.timedelta(days=2)
    UsageDaily.objects.create(account=old, day=outside, events=7, active_users=2)

    summary = pipeline.run_nightly(AS_OF)

    step = summary["steps"][0]
    assert step["first_day"] == "2024-03-04" and step["last_day"] == "2024-03-05"
    # events on 2 (account, day) pairs; 3 pairs corrected: active on both days (wrong
    # totals, a missing row) and gone on AS_OF (no events back it)
    assert step["account_days_before"] == 2 and step["account_days"] == 2
    assert step["corrected"] == 3
    assert _daily(active, AS_OF) == (1, 1, 0.0)
    assert _daily(active, day_before) == (1, 1, 0.0)
    assert _features(active, AS_OF) == {"report_created": (1, 1)}
    assert _daily(gone, AS_OF) is None
    assert _daily(active, AS_OF + dt.timedelta(days=1)) is None
    assert _daily(old, outside) == (7, 2, 0.0)


def test_rerunning_a_day_is_harmless():
    account = AccountFactory()
    _event(account, _at(AS_OF, 9))
    first = pipeline.run_nightly(AS_OF)
    rows = list(UsageDaily.objects.values_list("account_id", "day", "events", "active_users"))
    second = pipeline.run_nightly(AS_OF)
    assert rows == list(
        UsageDaily.objects.values_list("account_id", "day", "events", "active_users")
    )
    assert second["run_id"] != first["run_id"]
    assert PipelineRun.objects.filter(as_of=AS_OF, status="succeeded").count() == 2
    # the second run found the day's snapshot as it was, and its words say so
    health = {s["name"]: s for s in second["steps"]}["health"]
    assert (health["accounts"], health["written"]) == (1, 0)
    assert {s["name"]: s for s in first["steps"]}["health"]["written"] == 1
    assert pipeline.health_words(second["steps"]).endswith(
        "; 0 snapshots written, 1 already recorded as they are (unchanged)"
    )


def _pipeline_queries(as_of: dt.date) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        summary = pipeline.run_nightly(as_of)
    assert summary["status"] == "succeeded"
    return len(ctx.captured_queries)


def test_the_whole_pipeline_is_set_based(django_assert_max_num_queries):
    """The number of queries of a whole run does not grow with the number of accounts: the
    same for 10 and for 40 accounts (one health chunk, the same scopes)."""
    day = AS_OF - dt.timedelta(days=3)
    # creates the default health model, and the partitions of the months the runs keep ready
    pipeline.run_nightly(day)
    for account in AccountFactory.create_batch(10, segment="SMB"):
        _event(account, _at(day, 9))
        _event(account, _at(day, 10), event="export")
    ten = _pipeline_queries(day)
    for account in AccountFactory.create_batch(30, segment="SMB"):
        _event(account, _at(day, 9))
    # (the second run of the day finds the 10 first accounts' rollups right and rebuilds
    # the 30 new ones: the same statements)
    assert _pipeline_queries(day) == ten
    with django_assert_max_num_queries(ten):
        pipeline.run_nightly(AS_OF)


def test_reconcile_is_set_based(django_assert_max_num_queries):
    """The number of queries does not grow with the number of accounts."""
    for account in AccountFactory.create_batch(30):
        _event(account, _at(AS_OF, 9))
        _event(account, _at(AS_OF, 10), event="export")
    # all steps, the first run (creates the model): 121 on PostgreSQL (its lock and upserts,
    # and the usage_events step's partition queries: March to May 2024 created, the events
    # moved there out of the DEFAULT partition), 93 on SQLite; of them the reconcile's
    # temporary table of the events (2), the health chunk's survey, voice and band-change
    # reads (7), the KPI snapshots' survey reads (3 a scope) and the standings step (9, 11 on
    # PostgreSQL). That the count does not grow with the accounts is pinned by
    # test_the_whole_pipeline_is_set_based. +11 (measured) since the usage_rollups step also
    # stores the usage windows (adoption.usage_windows_refresh: savepoint, rollup lock,
    # window ends, the end's row, account ids, the direct usage read, and ANALYZE on
    # PostgreSQL or the two INSERTs on SQLite), the health step reads them back (fewer
    # queries than the direct read) and each KPI report reads the as-of day's contracts;
    # +1 a scope since TTFV reads the recorded first-value milestones without
    # FIRST_VALUE_EVENT too (one scope here); +1 since a run reads the latest day processed
    # (pipeline.past_day: an older day rebuilds its history only); +1 since the standings
    # step looks for accounts rescored after the night's day (none here); +1 since taking
    # the lock looks for a run fanned out to the workers still running (pipeline.exclusive);
    # +1 since the health step reads the active versions for two components of one name
    # (pipeline._twin_names)
    # Django's probe of SQLite's JSON support is one query per connection, paid by the first
    # test of a run that reads JSON: paid here. On SQLite this test alone makes 110 queries
    # (measured; 108 or fewer after other tests of a suite)
    connection.features.supports_json_field  # noqa: B018
    with django_assert_max_num_queries(137 if connection.vendor == "postgresql" else 110):
        summary = pipeline.run_nightly(AS_OF)
    assert summary["steps"][0]["account_days"] == 30
    assert summary["steps"][0]["corrected"] == 30  # the events were written without rollups
    assert UsageFeatureDaily.objects.filter(day=AS_OF).count() == 60


def test_command_as_of_picks_the_day():
    account = AccountFactory()
    _event(account, _at(AS_OF, 9))
    out = StringIO()
    call_command("run_pipeline", "--as-of", "2024-03-05", stdout=out)
    assert PipelineRun.objects.get().as_of == AS_OF
    assert _daily(account, AS_OF) == (1, 1, 0.0)
    assert "as of 2024-03-05" in out.getvalue()


@pytest.mark.parametrize("raw", ["2024-13-01", "yesterday", "05/03/2024"])
def test_command_rejects_a_bad_date(raw):
    with pytest.raises(CommandError, match=r"^--as-of: .*not a (valid )?date"):
        call_command("run_pipeline", "--as-of", raw)
    assert not PipelineRun.objects.exists()


def test_command_rejects_a_future_day():
    future = (pipeline.default_as_of() + dt.timedelta(days=3)).isoformat()
    with pytest.raises(CommandError, match=r"is in the future"):
        call_command("run_pipeline", "--as-of", future)
    assert not PipelineRun.objects.exists()


def test_failing_step_is_recorded_and_reported(monkeypatch):
    def broken(*, as_of):
        raise RuntimeError("disk full")

    monkeypatch.setattr(pipeline, "AFTER_HEALTH", [*pipeline.AFTER_HEALTH, ("broken", broken)])
    with pytest.raises(CommandError, match=r"pipeline run #\d+ failed: broken: RuntimeError"):
        call_command("run_pipeline", "--as-of", "2024-03-05")
    run = PipelineRun.objects.get()
    assert run.status == PipelineRun.Status.FAILED
    assert run.error == "broken: RuntimeError: disk full"
    assert [s["name"] for s in run.steps] == [
        "usage_rollups",
        "usage_events",
        "health",
        "standings",
        "kpi_snapshots",
    ]  # kept
    assert run.finished_at is not None


def test_each_step_starts_with_what_is_alive_frozen_and_the_run_ends_unfrozen(monkeypatch, request):
    """The collector's full passes in a step walk what the step allocated, not what earlier
    steps and Django left alive; nothing stays frozen after the run, failed or not."""
    request.addfinalizer(gc.unfreeze)  # a regression must not leave later tests frozen
    assert gc.get_freeze_count() == 0
    seen = {}

    def probe(*, as_of):
        young = []  # allocated by the step: still the collector's to walk
        seen["frozen"] = gc.get_freeze_count()
        seen["young_tracked"] = any(o is young for o in gc.get_objects())
        seen["run_tracked"] = any(type(o) is PipelineRun for o in gc.get_objects())
        return {}

    def broken(*, as_of):
        raise RuntimeError("disk full")

    monkeypatch.setattr(pipeline, "AFTER_HEALTH", [*pipeline.AFTER_HEALTH, ("probe", probe)])
    pipeline.run_nightly(AS_OF)
    assert seen["frozen"] > 10_000  # Django, the apps, the run: alive before the step
    assert seen["young_tracked"] is True
    assert seen["run_tracked"] is False  # the run's row, loaded before the steps: frozen
    assert gc.get_freeze_count() == 0

    monkeypatch.setattr(pipeline, "AFTER_HEALTH", [("broken", broken)])
    with pytest.raises(pipeline.PipelineError):
        pipeline.run_nightly(AS_OF)
    assert gc.get_freeze_count() == 0


@pytest.mark.skipif(connection.vendor != "postgresql", reason="forks need PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_the_run_in_one_process_forks_the_standings_once_the_kpi_thread_has_ended(monkeypatch):
    """A forked child copies the locks of every running thread but not the threads: the
    standings step forks only after the KPI snapshots' thread (started beside the health
    step) has ended, and leaves its result to the kpi_snapshots step."""
    from metrics import standings

    AccountFactory.create_batch(3)
    forks = []
    real = standings.in_processes

    def spy(work, chunks, *, processes):
        kpi = list(pipeline._kpi_beside.values())
        forks.append((processes, len(kpi), all(f.done() for f in kpi)))
        return real(work, chunks, processes=processes)

    slow_kpi = pipeline.services.kpi_snapshots_record

    def kpi_still_running_when_health_ends(**kwargs):
        time.sleep(1)
        return slow_kpi(**kwargs)

    monkeypatch.setattr(
        pipeline.services, "kpi_snapshots_record", kpi_still_running_when_health_ends
    )
    monkeypatch.setattr(standings, "in_processes", spy)
    summary = pipeline.run_nightly(AS_OF)
    assert summary["status"] == "succeeded"
    # one fork of the standings' chunks; the KPI thread was there, done, not yet collected
    assert forks == [(pipeline.STANDINGS_PROCESSES, 1, True)]
    assert [s["name"] for s in summary["steps"]][3:5] == ["standings", "kpi_snapshots"]
    assert summary["steps"][4]["scopes"] >= 1  # its result reached the kpi_snapshots step
    assert pipeline._in_one_process is False


def test_outside_the_run_in_one_process_the_standings_step_forks_nothing(monkeypatch):
    """A worker's continuation of a fanned-out run (or any other caller of the step)."""
    from metrics import standings

    def no_fork(*args, **kwargs):
        raise AssertionError("forked")

    monkeypatch.setattr(standings, "in_processes", no_fork)
    AccountFactory.create_batch(2)
    assert pipeline.account_standings(as_of=AS_OF)["accounts"] == 2


def test_the_standings_step_keeps_a_newer_snapshot_on_the_row():
    """An account rescored after the night's day (new data or an override the next
    morning, before the run) has a newer snapshot: its queue row shows that one, as its
    page does, not the night's older day; the other account's row has the night's."""
    from metrics.models import AccountStanding
    from tests.playbooks.helpers import snapshot

    night, rescored = AccountFactory.create_batch(2)
    for account in (night, rescored):
        snapshot(account, AS_OF, score=70.0, band="yellow")
    snapshot(rescored, AS_OF + dt.timedelta(days=1), score=85.0, band="green")
    result = pipeline.account_standings(as_of=AS_OF)
    assert (result["accounts"], result["newer"]) == (2, 1)
    rows = {r.account_id: r for r in AccountStanding.objects.all()}
    assert (rows[night.pk].day, rows[night.pk].score, rows[night.pk].band) == (
        AS_OF,
        70.0,
        "yellow",
    )
    assert (rows[rescored.pk].day, rows[rescored.pk].score, rows[rescored.pk].band) == (
        AS_OF + dt.timedelta(days=1),
        85.0,
        "green",
    )
    from metrics.pipeline_words import step_words

    words = step_words({"name": "standings", **result})
    assert (
        words
        == "2 accounts' queue rows refreshed; 1 account rescored since show that newer snapshot"
    )


def test_celery_task_runs_the_pipeline():
    account = AccountFactory()
    _event(account, _at(AS_OF, 9))
    result = run_nightly_pipeline.apply(kwargs={"as_of": "2024-03-05"})
    assert result.successful(), result.traceback
    assert result.result["as_of"] == "2024-03-05"
    assert result.result["status"] == "succeeded"
    assert PipelineRun.objects.get().status == PipelineRun.Status.SUCCEEDED
    assert _daily(account, AS_OF) == (1, 1, 0.0)


def test_beat_schedule_names_the_registered_task():
    celery_app.loader.import_default_modules()
    entry = celery_app.conf.beat_schedule["run-nightly-pipeline"]
    assert entry["task"] == run_nightly_pipeline.name == "metrics.tasks.run_nightly_pipeline"
    assert entry["task"] in celery_app.tasks


def test_a_database_outage_in_a_step_reaches_the_task_for_a_retry(monkeypatch):
    from django.db import OperationalError

    from metrics import tasks

    def flaky(*, as_of):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(pipeline, "AFTER_HEALTH", [*pipeline.AFTER_HEALTH, ("flaky", flaky)])
    # the task's autoretry_for=(OperationalError,) only fires if that very error reaches it
    assert OperationalError in tasks.run_nightly_pipeline.autoretry_for
    with pytest.raises(OperationalError):
        pipeline.run_nightly(as_of=AS_OF)
    assert PipelineRun.objects.get().status == PipelineRun.Status.FAILED


def _succeeded_run(day: dt.date) -> PipelineRun:
    return PipelineRun.objects.create(as_of=day, status=PipelineRun.Status.SUCCEEDED)


def test_missed_days_are_the_gap_after_the_last_succeeded_run():
    today = AS_OF
    assert pipeline.missed_days(today) == []  # never ran: a new install backfills nothing
    _succeeded_run(today - dt.timedelta(days=4))  # Mar 1 ran; Mar 2, 3, 4 were missed
    PipelineRun.objects.create(as_of=today - dt.timedelta(days=2), status="failed")
    assert pipeline.missed_days(today) == [
        dt.date(2024, 3, 2),
        dt.date(2024, 3, 3),
        dt.date(2024, 3, 4),
    ]
    # bounded: a month-long gap catches up only the last week
    PipelineRun.objects.all().delete()
    _succeeded_run(today - dt.timedelta(days=30))
    assert pipeline.missed_days(today) == [today - dt.timedelta(days=n) for n in range(7, 0, -1)]


def test_the_scheduled_run_catches_up_missed_nights_first(monkeypatch):
    yesterday = pipeline.default_as_of()
    account = AccountFactory()
    two_days_ago = yesterday - dt.timedelta(days=1)
    _succeeded_run(yesterday - dt.timedelta(days=2))  # the night before that ran
    _event(account, _at(two_days_ago, 9))  # the missed night's data
    _event(account, _at(yesterday, 9))
    _event(account, _at(yesterday, 10), user="u2")

    result = run_nightly_pipeline.apply()  # what beat sends: no as_of
    assert result.successful(), result.traceback

    runs = list(PipelineRun.objects.filter(status="succeeded").order_by("as_of"))
    assert [r.as_of for r in runs] == [yesterday - dt.timedelta(days=2), two_days_ago, yesterday]
    assert _daily(account, two_days_ago) == (1, 1, 0.0)  # rebuilt by the catch-up run
    assert _daily(account, yesterday) == (2, 2, 0.0)
    # and the next night has nothing left to catch up
    assert pipeline.missed_days(yesterday + dt.timedelta(days=1)) == []


def test_the_command_reports_caught_up_nights():
    yesterday = pipeline.default_as_of()
    _succeeded_run(yesterday - dt.timedelta(days=2))
    out = StringIO()
    call_command("run_pipeline", stdout=out)
    assert f"Caught up the missed night {yesterday - dt.timedelta(days=1)}" in out.getvalue()
    assert PipelineRun.objects.filter(status="succeeded").count() == 3


# --- the run's health counts in words (admin) ----------------------------------------------


def test_health_words_say_that_churned_accounts_are_counted():
    steps = [
        {"name": "usage_rollups", "seconds": 0.1, "account_days": 4},
        {"name": "health", "seconds": 2.0, "accounts": 100_000, "green": 60_000},
    ]
    steps[1] |= {"yellow": 30_000, "red": 9_000, "no_data": 1_000, "no_model": 0}
    assert pipeline.health_words(steps) == (
        "100,000 accounts scored (churned ones too): 60,000 green, 30,000 yellow, 9,000 red, "
        "1,000 without data, 0 without a model"
    )
    # a run that recorded how many it wrote (a re-run of the day: few or none)
    steps[1]["written"] = 1_234
    assert pipeline.health_words(steps).endswith(
        "0 without a model; 1,234 snapshots written, 98,766 already recorded as they are "
        "(unchanged)"
    )
    one = [{"name": "health", "accounts": 1, "green": 1}]
    assert pipeline.health_words(one).startswith("1 account scored (churned ones too): 1 green")
    # not run yet, or its chunks still running: nothing to say
    assert pipeline.health_words(steps[:1]) == ""
    assert pipeline.health_words([{"name": "health", "chunks": 20}]) == ""


def test_admin_shows_the_runs_count_of_every_account_scored(client, admin_user):
    """The run scores churned accounts too, unlike the dashboard's current customers: the
    admin's list and the run's page say how many, and that churned ones are in it."""
    from django.urls import reverse

    from accounts.models import Account, AccountLifecycle

    AccountFactory.create_batch(2)
    AccountFactory(lifecycle_stage=AccountLifecycle.CHURNED)
    pipeline.run_nightly(AS_OF)
    run = PipelineRun.objects.get()
    scored = Account.objects.count()
    assert Account.objects.exclude(lifecycle_stage=AccountLifecycle.CHURNED).count() < scored
    words = f"{scored} accounts scored (churned ones too)"
    client.force_login(admin_user)
    listing = client.get(reverse("admin:metrics_pipelinerun_changelist")).content.decode()
    assert words in listing
    page = client.get(reverse("admin:metrics_pipelinerun_change", args=[run.pk]))
    assert words in page.content.decode()


# --- interrupted runs ------------------------------------------------------------------------


def _interrupt(exc: BaseException):
    def step(**kwargs):
        raise exc

    return step


def test_an_interrupted_step_fails_the_run_naming_it_and_goes_on_up(monkeypatch):
    monkeypatch.setattr(pipeline, "HEALTH", ("health", _interrupt(KeyboardInterrupt())))
    with pytest.raises(KeyboardInterrupt) as raised:
        pipeline.run_nightly(AS_OF)
    run = PipelineRun.objects.get()
    assert run.status == PipelineRun.Status.FAILED and run.finished_at is not None
    assert run.error == "health: interrupted (SIGINT)"
    assert [s["name"] for s in run.steps] == ["usage_rollups", "usage_events"]
    assert raised.value.__notes__ == [
        f"pipeline run #{run.pk} for {AS_OF} recorded as failed: health: interrupted (SIGINT)"
    ]


def test_an_interruption_between_steps_fails_the_run_too(monkeypatch):
    def interrupted(run):
        raise SystemExit(1)

    monkeypatch.setattr(pipeline, "_run_finish", interrupted)
    with pytest.raises(SystemExit):
        pipeline.run_nightly(AS_OF)
    run = PipelineRun.objects.get()
    assert run.status == PipelineRun.Status.FAILED and run.finished_at is not None
    assert run.error == "after kpi_snapshots: interrupted (SystemExit)"


def test_ctrl_c_stops_the_command_with_one_line_and_exit_code_130(monkeypatch):
    monkeypatch.setattr(pipeline, "HEALTH", ("health", _interrupt(KeyboardInterrupt())))
    with pytest.raises(CommandError) as raised:
        call_command("run_pipeline", "--as-of", AS_OF.isoformat(), stdout=StringIO())
    run = PipelineRun.objects.get()
    assert str(raised.value) == (
        f"stopped: pipeline run #{run.pk} for {AS_OF} recorded as failed: "
        "health: interrupted (SIGINT)"
    )
    assert raised.value.returncode == 130


def test_sigterm_stops_the_command_like_ctrl_c_and_its_handler_is_put_back(monkeypatch):
    import os
    import signal

    def terminated(**kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises at the next instruction
        raise AssertionError("SIGTERM did not stop the step")

    before = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(pipeline, "AFTER_HEALTH", [("standings", terminated)])
    with pytest.raises(CommandError) as raised:
        call_command("run_pipeline", "--as-of", AS_OF.isoformat(), stdout=StringIO())
    run = PipelineRun.objects.get()
    assert run.status == PipelineRun.Status.FAILED and run.finished_at is not None
    assert run.error == "standings: interrupted (SIGTERM)"
    assert str(raised.value).endswith("recorded as failed: standings: interrupted (SIGTERM)")
    assert raised.value.returncode == 128 + signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_sigterm_in_a_forked_chunk_process_comes_back_as_itself():
    """The chunk processes inherit the handler; their errors are pickled back."""
    import pickle
    import signal

    back = pickle.loads(pickle.dumps(pipeline.Interrupted(signal.SIGTERM)))
    assert isinstance(back, pipeline.Interrupted)
    assert (back.code, pipeline.interrupted_words(back)) == (143, "interrupted (SIGTERM)")


# --- one run at a time -----------------------------------------------------------------------


def _busy(holder: PipelineRun) -> str:
    started = holder.started_at.astimezone(dt.UTC)
    return (
        f"another pipeline run is in progress (run #{holder.pk} for {holder.as_of}, "
        f"started {started:%H:%M} UTC); wait for it or stop it"
    )


def test_a_second_command_does_not_run_while_a_run_holds_the_lock(lock_held_elsewhere):
    yesterday = pipeline.default_as_of()
    _succeeded_run(yesterday - dt.timedelta(days=3))  # two nights to catch up: not even those
    holder = PipelineRun.objects.create(as_of=yesterday)  # the other process's run
    with pytest.raises(CommandError) as raised:
        call_command("run_pipeline", stdout=StringIO())
    assert str(raised.value) == _busy(holder)
    assert PipelineRun.objects.count() == 2
    assert PipelineRun.objects.get(pk=holder.pk).status == PipelineRun.Status.RUNNING
    with pytest.raises(pipeline.PipelineBusy):
        pipeline.run_nightly(AS_OF)  # from a shell, too


def test_the_nightly_task_logs_and_returns_while_a_run_holds_the_lock(lock_held_elsewhere, caplog):
    holder = PipelineRun.objects.create(as_of=pipeline.default_as_of())
    result = run_nightly_pipeline.apply()
    assert result.successful(), result.traceback
    assert result.result == {"busy": _busy(holder)}
    assert f"nightly pipeline not run: {_busy(holder)}" in caplog.text
    assert PipelineRun.objects.count() == 1


def test_the_lock_goes_with_the_run(monkeypatch):
    """Released when a run ends, succeeded, failed or interrupted: the next one runs."""
    monkeypatch.setattr(pipeline, "HEALTH", ("health", _interrupt(KeyboardInterrupt())))
    with pytest.raises(KeyboardInterrupt):
        pipeline.run_nightly(AS_OF)
    monkeypatch.undo()
    assert pipeline.run_nightly(AS_OF)["status"] == "succeeded"
    assert pipeline.run_nightly(AS_OF)["status"] == "succeeded"
    if connection.vendor == "postgresql":  # no session holds it now (in this database:
        # an advisory lock is per database, and another's pipeline may run on this server)
        assert pipeline_lock_holders() == 0


def test_another_thread_of_this_process_cannot_run_meanwhile():
    """The lock in this process (SQLite's only one): a run in another thread is refused."""
    import threading

    holding, done = threading.Event(), threading.Event()

    def hold():
        with pipeline.exclusive():
            holding.set()
            done.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert holding.wait(10)
        # no run has begun yet in the holder: the words cannot name one
        with pytest.raises(pipeline.PipelineBusy, match="another pipeline run or health rescore"):
            pipeline.run_nightly(AS_OF)
    finally:
        done.set()
        thread.join()
    assert pipeline.run_nightly(AS_OF)["status"] == "succeeded"


def test_the_lock_file_of_a_database_in_memory_is_none():
    """The test database is in memory on SQLite (one process sees it): no file; PostgreSQL
    has its advisory lock."""
    assert pipeline.lock_file() is None


# the project's own lock, taken in a process of its own with embedded mode's settings and
# its database at argv[1] minus ".pipeline-lock": the file it locks is named by lock_file()
_EMBEDDED_HOLD = """
import sys
import django
django.setup()
from metrics import pipeline
path = pipeline.lock_file()
assert str(path) == sys.argv[1], path
with pipeline._file_lock(path):
    print("held", flush=True)
    sys.stdin.read()
"""


def test_a_run_in_another_process_holds_embedded_modes_lock(tmp_path, monkeypatch):
    """Embedded mode (SQLite): the lock is an OS lock on a file beside the database, so a
    ``run_pipeline`` from cron and the server's rescore (or a second ``run_pipeline``)
    exclude each other as on PostgreSQL. While another process holds it a run is refused in
    the same words and writes nothing; a caller that waits takes it once the holder dies
    (killed outright: the OS lets go of its lock); and a run here holds it for its length."""
    import os
    import signal
    import threading

    from django.conf import settings

    from tests.waiting import hold_lock_file, lock_file_free

    if connection.vendor != "sqlite" or pipeline.fcntl is None:
        pytest.skip("embedded mode's lock file (SQLite, with fcntl)")
    monkeypatch.setattr(pipeline, "FILE_LOCK_POLL_SECONDS", 0.05)
    path = tmp_path / "book.sqlite3.pipeline-lock"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env |= {
        "SQLITE_PATH": str(tmp_path / "book.sqlite3"),
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    holder = hold_lock_file(path, code=_EMBEDDED_HOLD, env=env, cwd=settings.BASE_DIR)
    try:
        monkeypatch.setattr(pipeline, "lock_file", lambda: path)  # this one's is in memory
        with pytest.raises(CommandError) as raised:
            call_command("run_pipeline", stdout=StringIO())
        assert str(raised.value) == (
            "another pipeline run or health rescore is in progress; wait for it or stop it"
        )
        assert not PipelineRun.objects.exists()
        started = time.monotonic()
        with pytest.raises(pipeline.PipelineBusy), pipeline.exclusive(wait=0.3):
            pytest.fail("ran while another process held the lock")
        assert time.monotonic() - started >= 0.3  # it tried for that long
        threading.Timer(0.3, holder.send_signal, [signal.SIGKILL]).start()
        with pipeline.exclusive(wait=10):  # taken once the holder is gone
            assert holder.poll() == -signal.SIGKILL
            assert not lock_file_free(path)
    finally:
        holder.kill()
        holder.communicate()
    assert lock_file_free(path)  # let go at the end of the block
    seen: list[bool] = []
    name, health = pipeline.HEALTH

    def looking(**kwargs):  # the health step, noting whether the file is locked meanwhile
        seen.append(lock_file_free(path))
        return health(**kwargs)

    monkeypatch.setattr(pipeline, "HEALTH", (name, looking))
    assert pipeline.run_nightly(AS_OF)["status"] == "succeeded"
    assert seen == [False]  # held by the run
    assert lock_file_free(path)


# --- the catch-up follows the latest day processed -------------------------------------------


def test_a_past_day_rebuild_does_not_make_the_latest_day_catch_up_the_week_before_it():
    """The review's sequence: a run for the 23rd, a rebuild of an old day, the 23rd again
    (by hand or by the nightly task): the week before the 23rd was never processed, and
    nothing ran for it then; it is not caught up now."""
    yesterday = pipeline.default_as_of()
    pipeline.run_nightly(yesterday)
    assert pipeline.run_nightly(AS_OF)["past"]  # a past day's history rebuilt
    assert pipeline.missed_days(yesterday) == []
    out = StringIO()
    call_command("run_pipeline", stdout=out)  # yesterday again, catch-up first
    assert "Caught up" not in out.getvalue()
    assert run_nightly_pipeline.apply().successful()
    assert sorted({r.as_of for r in PipelineRun.objects.all()}) == [AS_OF, yesterday]
    # the nights after the latest day are caught up, as before
    assert pipeline.missed_days(yesterday + dt.timedelta(days=3)) == [
        yesterday + dt.timedelta(days=1),
        yesterday + dt.timedelta(days=2),
    ]
    assert pipeline.missed_days(yesterday - dt.timedelta(days=1)) == []  # not newer: none
