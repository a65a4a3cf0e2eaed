"""The Celery side of the pipeline, run eagerly: the health step fanned out into chunk
tasks leaves exactly the rows of the one-process run; chunks delivered twice count once;
crashed runs are superseded; retries only for OperationalError; the debounced incremental
recompute and the ``account_changed`` hook. (A real worker: test_worker.py.)"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from celery.exceptions import Retry
from django.db import OperationalError, connection
from django.utils import timezone

from accounts.models import UsageEvent
from metrics import pipeline, services, tasks
from metrics.models import HealthSnapshot, KpiSnapshot, PipelineChunk, PipelineRun
from tests.factories import (
    AccountFactory,
    ContractFactory,
    InvoiceFactory,
    StakeholderFactory,
    TicketFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _eager(celery_eager):
    """Tasks run in this process (as in embedded mode), also when REDIS_URL is set."""


@pytest.fixture(autouse=True)
def _debounce_keys(monkeypatch):
    """Debounce keys of this test only (the cache outlives a test's database rows)."""
    monkeypatch.setattr(tasks, "DEBOUNCE_KEY", f"test-{uuid.uuid4().hex}:{{}}")


def _at(day: dt.date, hour: int) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC)


def build_book(day: dt.date, n: int = 7) -> list:
    """``n`` accounts with varied data up to ``day``: seats and active users, tickets,
    invoices, stakeholders, two segments, two owners, one account without data, one with an
    override in force. Returns the accounts."""
    owners = [UserFactory(), UserFactory()]
    accounts = []
    for i in range(n):
        account = AccountFactory(
            segment=("SMB", "ENT", "")[i % 3],
            owner=owners[i % 2] if i % 4 else None,
            lifecycle_stage=("adoption", "mature", "onboarding")[i % 3],
        )
        accounts.append(account)
        if i == n - 1:
            continue  # no data at all
        ContractFactory(
            account=account,
            start_date=day - dt.timedelta(days=90 + 10 * i),
            end_date=day + dt.timedelta(days=30 * i) if i % 2 else None,
            mrr=Decimal(100 * (i + 1)),
            quantity=5 + i,
        )
        for u in range(i + 1):
            UsageEvent.objects.create(
                account=account,
                user_id=f"u{u}",
                event=("login", "report_created")[u % 2],
                occurred_at=_at(day - dt.timedelta(days=u % 5), 9 + u % 8),
                dedup_key=uuid.uuid4(),
            )
        if i % 2:
            TicketFactory(account=account, opened_at=_at(day - dt.timedelta(days=3), 10))
        if i % 3 == 1:
            InvoiceFactory(
                account=account,
                issued_on=day - dt.timedelta(days=40),
                due_on=day - dt.timedelta(days=10),
                amount=Decimal("300.00"),
            )
        StakeholderFactory(account=account, role=("champion", "user")[i % 2])
    override = services.health_override_create(
        account=accounts[0],
        reason="renewal signed, usage dip is seasonal",
        expires_at=timezone.now() + dt.timedelta(days=10),
        score=90,
    )
    type(override).objects.filter(pk=override.pk).update(created_at=_at(day, 1))
    return accounts


def snapshot_rows(day: dt.date) -> dict[str, list]:
    """Every health and KPI snapshot of ``day``, without ids and timestamps."""
    health = list(
        HealthSnapshot.objects.filter(day=day)
        .order_by("account__external_id")
        .values_list(
            "account__external_id",
            "day",
            "model_version_id",
            "score",
            "band",
            "computed_score",
            "computed_band",
            "components",
            "left_out",
            "reasons",
            "overrides",
        )
    )
    kpi = list(
        KpiSnapshot.objects.filter(day=day)
        .order_by("scope_kind", "scope_key")
        .values_list("day", "scope_kind", "scope_key", "period_start", "period_end", "report")
    )
    return {"health": health, "kpi": kpi}


def _clear(day: dt.date) -> None:
    HealthSnapshot.objects.filter(day=day).delete()
    KpiSnapshot.objects.filter(day=day).delete()


D = pipeline.default_as_of()


def test_fanned_out_run_leaves_exactly_the_one_process_rows(django_capture_on_commit_callbacks):
    build_book(D)
    eager = pipeline.run_nightly(D)
    expected = snapshot_rows(D)
    assert len(expected["health"]) == 7 and len(expected["kpi"]) == 5  # book, 2 segments, 2 owners
    assert {row[4] for row in expected["health"]} >= {"green", ""}  # varied, one without data
    assert any(row[10] for row in expected["health"])  # the override is applied
    _clear(D)

    with django_capture_on_commit_callbacks(execute=True):
        first = pipeline.run_nightly(D, fan_out=True, chunk_size=3)

    assert snapshot_rows(D) == expected
    run = PipelineRun.objects.get(pk=first["run_id"])
    assert run.status == PipelineRun.Status.SUCCEEDED and run.finished_at is not None
    assert run.chunks_total == 3  # 3 + 3 + 1 accounts
    assert list(run.chunks.values_list("accounts", flat=True)) == [3, 3, 1]
    assert not run.chunks.filter(done_at=None).exists()
    assert [s["name"] for s in run.steps] == [s["name"] for s in eager["steps"]]
    health_eager, health_fanned = eager["steps"][2], run.steps[2]
    for key in ("day", "accounts", "green", "yellow", "red", "no_data", "no_model"):
        assert health_fanned[key] == health_eager[key], key
    assert health_fanned["chunks"] == 3


def test_the_task_fans_out_only_in_a_worker(django_capture_on_commit_callbacks):
    """``.apply()`` / eager mode: one process, the summary is final. Sent to a worker
    (``is_eager`` false, simulated here) the same task fans out into chunk tasks."""
    build_book(D, n=4)
    result = tasks.run_nightly_pipeline.apply(kwargs={"as_of": D.isoformat()})
    assert result.successful(), result.traceback
    assert result.result["status"] == "succeeded"
    assert PipelineRun.objects.get(pk=result.result["run_id"]).chunks_total == 0
    expected = snapshot_rows(D)
    _clear(D)

    sent = []
    original = tasks.recompute_health_chunk.apply_async

    def send(args, kwargs, **options):
        sent.append((args, kwargs))
        return original(args, kwargs, **options)

    tasks.recompute_health_chunk.apply_async = send
    try:
        with django_capture_on_commit_callbacks(execute=True):
            summary = tasks.run_nightly_pipeline.run(as_of=D.isoformat(), chunk_size=2)
    finally:
        del tasks.recompute_health_chunk.apply_async
    assert summary["status"] == "running"  # returned before the chunks ran
    assert len(sent) == 2 and [kw["chunk"] for _, kw in sent] == [0, 1]
    assert all(isinstance(a[0], list) and a[1] == D.isoformat() for a, _ in sent)
    assert PipelineRun.objects.get(pk=summary["run_id"]).status == PipelineRun.Status.SUCCEEDED
    assert snapshot_rows(D) == expected


def test_fanned_out_run_of_an_empty_book_goes_straight_on(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as sent:
        summary = pipeline.run_nightly(D, fan_out=True)
    assert sent == []  # no chunk task
    run = PipelineRun.objects.get(pk=summary["run_id"])
    assert run.status == PipelineRun.Status.SUCCEEDED and run.chunks_total == 0
    assert run.steps[2]["name"] == "health" and run.steps[2]["accounts"] == 0
    assert KpiSnapshot.objects.filter(day=D, scope_kind="all").count() == 1


def test_a_chunk_delivered_twice_counts_once(django_capture_on_commit_callbacks, monkeypatch):
    accounts = build_book(D, n=4)
    with django_capture_on_commit_callbacks(execute=False) as sent:
        summary = pipeline.run_nightly(D, fan_out=True, chunk_size=2)
    assert len(sent) == 2 and summary["status"] == "running"
    run_id = summary["run_id"]
    ids = sorted(a.pk for a in accounts)
    continued = []
    monkeypatch.setattr(tasks.continue_nightly_pipeline, "delay", continued.append)

    for _ in range(2):  # acks_late: chunk 0 runs twice
        tasks.recompute_health_chunk.apply(
            args=(ids[:2], D.isoformat()), kwargs={"run_id": run_id, "chunk": 0}
        )
    assert PipelineChunk.objects.filter(run_id=run_id, done_at__isnull=False).count() == 1
    assert continued == []  # chunk 1 still to do
    tasks.recompute_health_chunk.apply(
        args=(ids[2:], D.isoformat()), kwargs={"run_id": run_id, "chunk": 1}
    )
    tasks.recompute_health_chunk.apply(
        args=(ids[2:], D.isoformat()), kwargs={"run_id": run_id, "chunk": 1}
    )
    assert continued == [run_id]  # one continuation, although the last chunk ran twice

    tasks.continue_nightly_pipeline.apply(args=(run_id,))
    tasks.continue_nightly_pipeline.apply(args=(run_id,))  # redelivered: nothing more
    run = PipelineRun.objects.get(pk=run_id)
    assert run.status == PipelineRun.Status.SUCCEEDED
    assert [s["name"] for s in run.steps] == [
        "usage_rollups",
        "usage_events",
        "health",
        "standings",
        "kpi_snapshots",
    ]
    assert run.steps[2]["accounts"] == 4
    assert HealthSnapshot.objects.filter(day=D).count() == 4


def test_running_twice_leaves_the_same_rows():
    build_book(D, n=5)
    pipeline.run_nightly(D)
    first = snapshot_rows(D)
    ids = sorted(HealthSnapshot.objects.values_list("pk", flat=True))
    kpi_ids = sorted(KpiSnapshot.objects.values_list("pk", flat=True))
    pipeline.run_nightly(D)
    assert snapshot_rows(D) == first
    assert sorted(HealthSnapshot.objects.values_list("pk", flat=True)) == ids  # updated in place
    assert sorted(KpiSnapshot.objects.values_list("pk", flat=True)) == kpi_ids


def test_a_crashed_run_is_superseded_and_its_leftover_chunks_skip(
    django_capture_on_commit_callbacks, settings
):
    """A fanned-out run whose worker died (its chunks lost) counts as dead once it has shown
    no progress for PIPELINE_RUN_STALE_MINUTES: the next run supersedes it, saying why."""
    settings.PIPELINE_RUN_STALE_MINUTES = 30
    accounts = build_book(D, n=3)
    with django_capture_on_commit_callbacks(execute=False):  # the worker died: chunks lost
        crashed = pipeline.run_nightly(D, fan_out=True, chunk_size=2)
    sent = PipelineRun.objects.get(pk=crashed["run_id"]).started_at - pipeline.stale_after()
    PipelineRun.objects.filter(pk=crashed["run_id"]).update(started_at=sent)  # long ago
    other_day = PipelineRun.objects.create(as_of=D - dt.timedelta(days=1))  # running, elsewhere

    new = pipeline.run_nightly(D)

    old = PipelineRun.objects.get(pk=crashed["run_id"])
    assert old.status == PipelineRun.Status.SUPERSEDED
    assert old.error == (
        f"stopped; superseded: no progress since {sent.astimezone(dt.UTC):%Y-%m-%d %H:%M} "
        "UTC, over 30 minutes (PIPELINE_RUN_STALE_MINUTES): treated as dead"
    )
    assert old.finished_at is not None
    assert PipelineRun.objects.get(pk=new["run_id"]).status == PipelineRun.Status.SUCCEEDED
    assert PipelineRun.objects.get(pk=other_day.pk).status == PipelineRun.Status.RUNNING

    # a leftover chunk task of the crashed run, delivered late, does nothing
    HealthSnapshot.objects.all().delete()
    tasks.recompute_health_chunk.apply(
        args=([accounts[0].pk], D.isoformat()), kwargs={"run_id": old.pk, "chunk": 0}
    )
    assert not HealthSnapshot.objects.exists()
    assert PipelineRun.objects.get(pk=old.pk).status == PipelineRun.Status.SUPERSEDED


def test_a_failing_chunk_fails_the_run(django_capture_on_commit_callbacks, monkeypatch):
    build_book(D, n=2)

    def broken(**kwargs):
        raise RuntimeError("bad data")

    monkeypatch.setattr(services, "health_snapshots_record", broken)
    with pytest.raises(RuntimeError), django_capture_on_commit_callbacks(execute=True):
        pipeline.run_nightly(D, fan_out=True, chunk_size=5)
    run = PipelineRun.objects.get()
    assert run.status == PipelineRun.Status.FAILED
    assert run.error == "health chunk 0: RuntimeError: bad data"
    assert not KpiSnapshot.objects.exists()  # the steps after health did not run


def test_operational_errors_are_retried_others_are_not(monkeypatch):
    account = AccountFactory()
    calls = []

    def flaky(**kwargs):
        calls.append(kwargs)
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(services, "health_snapshots_record", flaky)
    with pytest.raises(Retry) as retry:  # eagerly, a retry is raised, not re-run
        tasks.recompute_health_chunk.apply(args=([account.pk], D.isoformat()))
    assert isinstance(retry.value.exc, OperationalError)

    monkeypatch.setattr(services, "health_snapshots_record", lambda **kw: calls.append(kw) or 1 / 0)
    with pytest.raises(ZeroDivisionError):  # not retried
        tasks.recompute_health_chunk.apply(args=([account.pk], D.isoformat()))
    assert len(calls) == 2


def test_a_chunk_out_of_retries_fails_the_run(django_capture_on_commit_callbacks, monkeypatch):
    account = AccountFactory()
    with django_capture_on_commit_callbacks(execute=False):
        summary = pipeline.run_nightly(D, fan_out=True)
    run_id = summary["run_id"]

    def down(**kwargs):
        raise OperationalError("could not connect to server")

    monkeypatch.setattr(services, "health_snapshots_record", down)
    kwargs = {"run_id": run_id, "chunk": 0}
    with pytest.raises(Retry):
        tasks.recompute_health_chunk.apply(args=([account.pk], D.isoformat()), kwargs=kwargs)
    assert PipelineRun.objects.get(pk=run_id).status == PipelineRun.Status.RUNNING
    with pytest.raises(OperationalError):  # the 5th retry failed too: give up
        tasks.recompute_health_chunk.apply(
            args=([account.pk], D.isoformat()), kwargs=kwargs, retries=5
        )
    run = PipelineRun.objects.get(pk=run_id)
    assert run.status == PipelineRun.Status.FAILED
    assert run.error == "health chunk 0: OperationalError: could not connect to server"


def test_task_options_follow_the_style_guide():
    for task in (
        tasks.recompute_health_chunk,
        tasks.recompute_account_health,
        tasks.continue_nightly_pipeline,
    ):
        assert task.acks_late is True, task.name
        assert task.autoretry_for == (OperationalError,), task.name
        assert 0 < task.max_retries <= 5, task.name
        assert task.ignore_result is True


def test_recompute_account_health_records_today_for_that_account_only(django_assert_num_queries):
    a, b = AccountFactory(), AccountFactory()
    ContractFactory(account=a, start_date=dt.date(2024, 1, 1), quantity=4)
    services.health_model_ensure_default()
    today = timezone.now().astimezone(dt.UTC).date()
    # fixed: a chunk of one (PostgreSQL's upsert: staging table, merge, empty; SQLite: one),
    # with its survey, voice and band-change reads (7), then the account's standing (9; its
    # upsert on PostgreSQL: staging table, merge, empty: 2 more), and the stored usage
    # windows' read (1, measured: none stored for today, so the usage is read directly)
    # one more than before: the recompute removes the arrival it read (metrics.arrivals)
    with django_assert_num_queries(38 if connection.vendor == "postgresql" else 34):
        tasks.recompute_account_health.apply(args=(a.pk,))
    assert list(HealthSnapshot.objects.values_list("account_id", "day")) == [(a.pk, today)]
    assert not HealthSnapshot.objects.filter(account=b).exists()
    missing = b.pk + 1000
    assert tasks.recompute_account_health.apply(args=(missing,)).successful()  # gone: skipped


def test_account_changed_is_debounced_and_waits_for_the_commit(
    django_capture_on_commit_callbacks, monkeypatch
):
    a, b = AccountFactory(), AccountFactory()
    sent = []
    monkeypatch.setattr(
        tasks.recompute_account_health,
        "apply_async",
        lambda args, countdown: sent.append((args, countdown)),
    )
    with django_capture_on_commit_callbacks(execute=False) as pending:
        tasks.account_changed([a.pk])
    assert sent == [] and len(pending) == 1  # nothing before the commit
    pending[0]()
    assert sent == [((a.pk,), 30)]

    with django_capture_on_commit_callbacks(execute=True):  # a burst: nothing more for a
        for _ in range(5):
            tasks.account_changed([a.pk, b.pk, b.pk])
    assert sent == [((a.pk,), 30), ((b.pk,), 30)]

    # once the task has started, a change schedules a new recompute
    tasks.recompute_account_health.run(a.pk)
    with django_capture_on_commit_callbacks(execute=True):
        tasks.account_changed([a.pk])
    assert sent[-1] == ((a.pk,), 30) and len(sent) == 3

    with django_capture_on_commit_callbacks(execute=True):
        tasks.account_changed([])
    assert len(sent) == 3


def test_account_changed_for_many_accounts_sends_chunk_tasks(
    django_capture_on_commit_callbacks, monkeypatch
):
    sent = []
    monkeypatch.setattr(
        tasks.recompute_health_chunk, "apply_async", lambda args, **kw: sent.append(args)
    )
    monkeypatch.setattr(tasks.recompute_account_health, "apply_async", sent.append)
    ids = list(range(1, 151))
    with django_capture_on_commit_callbacks(execute=True):
        tasks.account_changed(reversed(ids))
    today = timezone.now().astimezone(dt.UTC).date().isoformat()
    assert sent == [(ids, today)]


def test_account_changed_in_eager_mode_records_at_once(django_capture_on_commit_callbacks):
    """Embedded mode: the debounced task runs in-process, right after the commit."""
    account = AccountFactory()
    ContractFactory(account=account, start_date=dt.date(2024, 1, 1), quantity=4)
    with django_capture_on_commit_callbacks(execute=True):
        tasks.account_changed([account.pk])
    today = timezone.now().astimezone(dt.UTC).date()
    assert HealthSnapshot.objects.filter(account=account, day=today).exists()
