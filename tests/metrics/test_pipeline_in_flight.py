"""A nightly run fanned out to the workers keeps the other writers of its days out while its
health chunks and its continuation run in other tasks, when no process holds the pipeline
lock in between: ``manage.py recompute``, the Manage page's rescore, another run (by hand
or the nightly task) are refused, naming the run, while it shows life; a run that has shown
none for PIPELINE_RUN_STALE_MINUTES (its worker killed) is superseded and blocks nothing;
the continuation holds the lock itself. Tasks run eagerly when we deliver them."""

from __future__ import annotations

import datetime as dt
import threading
from io import StringIO
from unittest import mock

import pytest
from celery.exceptions import Retry
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import TestCase
from django.urls import reverse
from django.utils import timezone

from metrics import pipeline, tasks
from metrics.models import HealthSnapshot, PipelineChunk, PipelineRun
from tests.metrics.test_tasks import build_book
from tests.waiting import pipeline_lock_holders
from workspace import services as workspace_services
from workspace.tasks import health_backfill as backfill_task

pytestmark = pytest.mark.django_db

D = pipeline.default_as_of()


@pytest.fixture(autouse=True)
def _eager(celery_eager, settings):
    """Tasks run in this process when sent (the Manage page's rescore, the continuation);
    a run counts as dead after 30 minutes without progress."""
    settings.PIPELINE_RUN_STALE_MINUTES = 30


@pytest.fixture
def sent_chunks(monkeypatch) -> list[tuple[list, dict]]:
    """The health chunk tasks a fanned-out run sends, kept here instead of run: they wait
    on the broker until the test delivers them (``deliver``)."""
    sent: list[tuple[list, dict]] = []
    monkeypatch.setattr(
        tasks.recompute_health_chunk,
        "apply_async",
        lambda args, kwargs, **options: sent.append((args, kwargs)),
    )
    return sent


def deliver(chunk: tuple[list, dict]) -> None:
    """A worker runs one chunk task (the last one sends the continuation, run eagerly)."""
    args, kwargs = chunk
    result = tasks.recompute_health_chunk.apply(args=args, kwargs=kwargs)
    assert result.successful(), result.traceback


def fan_out(n_accounts: int = 4, chunk_size: int = 2) -> PipelineRun:
    """A run of D sent to the workers: its first part done, its chunks pending, started on
    a whole minute (its words' times are then known to the minute)."""
    build_book(D, n=n_accounts)
    # sent at the commit: the test's transaction, when the test runs in one, commits nothing
    with TestCase.captureOnCommitCallbacks(execute=True):
        summary = pipeline.run_nightly(D, fan_out=True, chunk_size=chunk_size)
    assert summary["status"] == "running"
    started = timezone.now().replace(second=0, microsecond=0) - dt.timedelta(minutes=2)
    PipelineRun.objects.filter(pk=summary["run_id"]).update(started_at=started)
    return PipelineRun.objects.get(pk=summary["run_id"])


def hm(moment: dt.datetime) -> str:
    return f"{moment.astimezone(dt.UTC):%H:%M}"


def in_flight_words(run: PipelineRun, *, done: int, progress: dt.datetime) -> str:
    dead_from = progress + dt.timedelta(minutes=30)
    return (
        f"another pipeline run is in progress in the workers (run #{run.pk} for {D}, started "
        f"{hm(run.started_at)} UTC, health chunks {done}/{run.chunks_total} done, last progress "
        f"{hm(progress)} UTC); wait for it to finish. If it is stuck (its worker gone), it "
        "counts as dead after 30 minutes without progress (PIPELINE_RUN_STALE_MINUTES), from "
        f"{hm(dead_from)} UTC, and the next run or rescore supersedes it"
    )


def recompute(day: dt.date = D) -> str:
    out = StringIO()
    call_command("recompute", "--from", day.isoformat(), "--to", day.isoformat(), stdout=out)
    return out.getvalue()


def rescore_on_the_manage_page(client) -> str:
    """The admin asks for a rescore of yesterday; returns the progress page's text."""
    page = client.post(reverse("workspace:backfill-start"), {"days": "1"}, follow=True)
    assert page.status_code == 200
    return page.content.decode()


def test_pending_chunks_refuse_recompute_the_rescore_and_another_run_which_write_nothing(
    client, admin_user, sent_chunks
):
    run = fan_out()
    assert len(sent_chunks) == 2 and not HealthSnapshot.objects.exists()
    if connection.vendor == "postgresql":
        assert pipeline_lock_holders() == 0  # nothing holds the lock: the row keeps them out
    words = in_flight_words(run, done=0, progress=run.started_at)

    with pytest.raises(CommandError) as raised:
        recompute()
    assert str(raised.value) == f"{words}; or run recompute with --wait to start when it ends"

    # the Manage page's rescore, its task in a worker (called as a worker calls it, not
    # eagerly): waiting, in the same words, to try again in a minute
    client.force_login(admin_user)
    with mock.patch("workspace.tasks.health_backfill.delay") as delay:
        rescore_on_the_manage_page(client)
    with pytest.raises(Retry):
        backfill_task(*delay.call_args.args)
    job = workspace_services.backfill_recent()[0]["job"]
    progress = workspace_services.backfill_progress(job)
    assert (progress["status"], progress["busy"]) == ("waiting", words)

    with pytest.raises(CommandError) as raised:  # a run by hand: refused, not superseding
        call_command("run_pipeline", "--as-of", D.isoformat(), stdout=StringIO())
    assert str(raised.value) == words
    assert tasks.run_nightly_pipeline.apply().result == {"busy": words}  # the next night's
    with pytest.raises(pipeline.PipelineBusy):  # from a shell, too, any day
        pipeline.run_nightly(D - dt.timedelta(days=1))

    assert not HealthSnapshot.objects.exists()  # none of them wrote a snapshot
    assert list(PipelineRun.objects.values_list("pk", "status")) == [(run.pk, "running")]

    # one chunk done: still in progress, the words count it and date the progress by it
    deliver(sent_chunks[0])
    done_at = PipelineChunk.objects.get(run=run, index=0).done_at
    with pytest.raises(CommandError) as raised:
        recompute()
    assert str(raised.value).startswith(in_flight_words(run, done=1, progress=done_at) + "; ")
    assert HealthSnapshot.objects.filter(day=D).count() == 2  # the chunk's own, only

    # the last chunk: the continuation runs the steps after health and ends the run
    deliver(sent_chunks[1])
    run.refresh_from_db()
    assert run.status == PipelineRun.Status.SUCCEEDED
    assert "Recomputed health for 1 day(s)" in recompute()  # nothing in flight now
    if connection.vendor == "postgresql":
        assert pipeline_lock_holders() == 0


def test_a_run_with_no_progress_for_the_stale_limit_is_dead_and_superseded(sent_chunks):
    """Its worker died with a chunk done and one lost: the chunk done 31 minutes ago is its
    last sign of life. recompute supersedes it, says so, and rescores; the lost chunk,
    redelivered later, skips its work."""
    run = fan_out()
    deliver(sent_chunks[0])
    long_ago = run.started_at - dt.timedelta(minutes=29)
    PipelineRun.objects.filter(pk=run.pk).update(started_at=long_ago - dt.timedelta(minutes=5))
    PipelineChunk.objects.filter(run=run, index=0).update(done_at=long_ago)

    out = recompute()

    run.refresh_from_db()
    error = (
        f"stopped; superseded: no progress since {long_ago.astimezone(dt.UTC):%Y-%m-%d %H:%M} "
        "UTC, over 30 minutes (PIPELINE_RUN_STALE_MINUTES): treated as dead"
    )
    assert (run.status, run.error) == (PipelineRun.Status.SUPERSEDED, error)
    assert out.startswith(f"Pipeline run #{run.pk} for {D} {error}.\n")
    assert "Recomputed health for 1 day(s)" in out
    assert HealthSnapshot.objects.filter(day=D).count() == 4  # rescored

    lost = sent_chunks[1][0][0]
    HealthSnapshot.objects.filter(account_id__in=lost).delete()
    deliver(sent_chunks[1])  # the lost chunk comes back: the run is not running, it skips
    assert not HealthSnapshot.objects.filter(account_id__in=lost).exists()
    assert PipelineRun.objects.get(pk=run.pk).status == PipelineRun.Status.SUPERSEDED


def test_a_recent_chunk_keeps_a_long_run_alive(sent_chunks):
    """Started long ago (a big book, a busy queue), but a chunk was done 29 minutes ago:
    still in progress."""
    run = fan_out()
    deliver(sent_chunks[0])
    recent = run.started_at - dt.timedelta(minutes=27)
    PipelineRun.objects.filter(pk=run.pk).update(started_at=recent - dt.timedelta(hours=2))
    PipelineChunk.objects.filter(run=run, index=0).update(done_at=recent)
    run.refresh_from_db()
    with pytest.raises(CommandError) as raised:
        recompute()
    assert str(raised.value).startswith(in_flight_words(run, done=1, progress=recent) + "; ")
    assert PipelineRun.objects.get(pk=run.pk).status == PipelineRun.Status.RUNNING


def test_a_stale_run_does_not_block_the_next_night_which_supersedes_it(sent_chunks):
    run = fan_out()
    PipelineRun.objects.filter(pk=run.pk).update(
        started_at=run.started_at - dt.timedelta(minutes=29)
    )
    out = StringIO()
    call_command("run_pipeline", "--as-of", D.isoformat(), stdout=out)
    run.refresh_from_db()
    assert run.status == PipelineRun.Status.SUPERSEDED
    assert out.getvalue().startswith(f"Pipeline run #{run.pk} for {D} stopped; superseded: ")
    new = PipelineRun.objects.exclude(pk=run.pk).get()
    assert new.status == PipelineRun.Status.SUCCEEDED


@pytest.mark.django_db(transaction=True)
def test_the_continuation_holds_the_lock_while_it_runs(sent_chunks, monkeypatch):
    """The steps after health run in the continuation's task under the pipeline lock: a
    recompute started meanwhile (another thread here; another process: the advisory lock)
    is refused in words naming the run."""
    run = fan_out(n_accounts=2, chunk_size=2)
    seen: dict[str, object] = {}

    def probe(*, as_of: dt.date) -> dict:
        if connection.vendor == "postgresql":
            seen["holders"] = pipeline_lock_holders()

        def other() -> None:
            try:
                recompute()
            except CommandError as exc:
                seen["refused"] = str(exc)
            finally:
                connection.close()

        thread = threading.Thread(target=other)
        thread.start()
        thread.join(30)
        return {}

    monkeypatch.setattr(pipeline, "AFTER_HEALTH", [*pipeline.AFTER_HEALTH, ("probe", probe)])
    deliver(sent_chunks[0])

    run.refresh_from_db()
    assert run.status == PipelineRun.Status.SUCCEEDED
    assert seen["refused"] == (
        f"another pipeline run is in progress (run #{run.pk} for {D}, started "
        f"{hm(run.started_at)} UTC, health chunks 1/1 done); wait for it or stop it; or run "
        "recompute with --wait to start when it ends"
    )
    if connection.vendor == "postgresql":
        assert seen["holders"] == 1
        assert pipeline_lock_holders() == 0


def test_a_continuation_of_a_superseded_run_does_nothing(sent_chunks):
    run = fan_out(n_accounts=2, chunk_size=2)
    PipelineRun.objects.filter(pk=run.pk).update(status=PipelineRun.Status.SUPERSEDED)
    assert pipeline.continue_after_health(run.pk) is None
    assert PipelineRun.objects.get(pk=run.pk).steps == run.steps  # nothing run


def test_a_stale_limit_shorter_than_a_chunk_can_take_is_refused(monkeypatch):
    import importlib

    from django.core.exceptions import ImproperlyConfigured

    import config.settings

    monkeypatch.setenv("PIPELINE_RUN_STALE_MINUTES", "5")
    with pytest.raises(ImproperlyConfigured, match="must be at least 10, got 5"):
        importlib.reload(config.settings)
    monkeypatch.delenv("PIPELINE_RUN_STALE_MINUTES")
    importlib.reload(config.settings)
