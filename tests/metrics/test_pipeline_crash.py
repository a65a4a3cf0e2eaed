"""The nightly pipeline met as an operator meets it, on PostgreSQL: ``run_pipeline`` killed
with SIGKILL in the middle of its health step (the lock goes with its session; the next run
supersedes the dead one and leaves the rows of a clean run), and a health step that raises
after some of its chunks committed (the run fails naming it; the next run of the day leaves
the rows of a clean run). A real subprocess for the kill, bounded by timeouts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest
from django.conf import settings

from metrics import pipeline
from metrics.models import HealthSnapshot, PipelineRun
from tests.metrics.test_tasks import build_book, snapshot_rows
from tests.metrics.test_worker import _database_url
from tests.waiting import pipeline_lock_holders, wait_until

pytestmark = [
    pytest.mark.skipif(
        not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")),
        reason="an advisory lock and forked chunk processes of PostgreSQL",
    ),
    pytest.mark.django_db(transaction=True),
]

TIMEOUT = 120  # seconds for anything we wait on (a loaded 2-core box)

# run_pipeline in a process of its own, its health step in chunks of 2 accounts (in
# pipeline.HEALTH_PROCESSES forked processes), the chunk holding the last account stopping
# before its work after writing a marker: the test kills the command there
_SCRIPT = textwrap.dedent(
    """
    import functools, pathlib, sys, time
    import django
    django.setup()
    from django.core.management import call_command
    from metrics import services

    marker, last, day = pathlib.Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    record_chunk = services._record_chunk

    def slow(scope, **kwargs):
        if scope.filter(pk=last).exists():
            marker.write_text(str(__import__("os").getpid()))
            time.sleep(600)
        return record_chunk(scope, **kwargs)

    services._record_chunk = slow
    services.health_snapshots_record = functools.partial(
        services.health_snapshots_record, chunk_size=2
    )
    call_command("run_pipeline", "--as-of", day)
    """
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead too (its parent, the killed command, is gone; init reaps it)
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[-1][0] != "Z"
    except FileNotFoundError:
        return False


def _wait(predicate, what: str):
    return wait_until(predicate, what, timeout=TIMEOUT)


def test_run_pipeline_killed_mid_health_frees_the_lock_and_the_next_run_finishes_it(tmp_path):
    day = pipeline.default_as_of()
    accounts = build_book(day, n=7)  # chunks of 2: [0, 1], [2, 3], [4, 5], [6]
    clean = pipeline.run_nightly(day)
    expected = snapshot_rows(day)
    HealthSnapshot.objects.all().delete()

    marker = tmp_path / "in-last-chunk"
    env = {**os.environ, "DATABASE_URL": _database_url()}
    log = tmp_path / "run_pipeline.log"
    last = max(a.pk for a in accounts)
    with open(log, "wb") as out:
        command = subprocess.Popen(
            [sys.executable, "-c", _SCRIPT, str(marker), str(last), day.isoformat()],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    child = None
    try:
        _wait(lambda: marker.exists() or command.poll() is not None, "the last health chunk")
        assert command.poll() is None, log.read_text()
        child = int(marker.read_text())
        # the chunks before the last one committed: the step really was cut off mid-way
        _wait(lambda: HealthSnapshot.objects.filter(day=day).count() == 6, "the other chunks")
        assert pipeline_lock_holders() == 1
        command.send_signal(signal.SIGKILL)
        command.wait(timeout=10)
        # the lock goes with the dead process's session, and so do its forked chunks
        _wait(lambda: pipeline_lock_holders() == 0, "the lock to be freed")
        _wait(lambda: not _alive(child), "the forked chunk process to end")
    finally:
        if command.poll() is None:
            command.kill()
        if child is not None and _alive(child):
            os.kill(child, signal.SIGKILL)

    dead = PipelineRun.objects.exclude(pk=clean["run_id"]).get()
    assert dead.status == PipelineRun.Status.RUNNING  # nobody could record the SIGKILL
    assert [s["name"] for s in dead.steps] == ["usage_rollups", "usage_events"]

    again = pipeline.run_nightly(day)
    assert again["status"] == "succeeded"
    dead.refresh_from_db()
    assert dead.status == PipelineRun.Status.SUPERSEDED
    assert dead.error == f"stopped; superseded by run #{again['run_id']}"
    assert snapshot_rows(day) == expected


def _standings() -> list[tuple]:
    from metrics.models import AccountStanding

    return sorted(
        tuple(row.values())
        for row in AccountStanding.objects.values().order_by()
        for row in [{k: v for k, v in row.items() if k not in ("id", "updated_at", "created_at")}]
    )


def _ctas() -> list[tuple]:
    from playbooks.models import Cta

    return sorted(
        Cta.objects.values_list(
            "account_id", "playbook__name", "status", "opened_on", "priority", "title"
        )
    )


def _clear_outputs() -> None:
    from metrics.models import AccountStanding, KpiSnapshot
    from playbooks.models import Cta

    Cta.objects.all().delete()
    AccountStanding.objects.all().delete()
    HealthSnapshot.objects.all().delete()
    KpiSnapshot.objects.all().delete()


def test_a_health_step_failing_after_some_chunks_committed_then_the_next_run_leaves_clean_rows(
    monkeypatch, settings
):
    """The health step in one process raises in its last chunk, after the others
    committed (in forked processes): the run fails naming the step and the error, the
    committed chunks stay (each its own transaction), no standing or CTA is written; the next
    run of the day leaves exactly a clean run's snapshots, KPI snapshots, standings and
    CTAs."""
    import functools

    from config import settings as project_settings
    from metrics import services
    from playbooks.models import Playbook
    from tests.playbooks.helpers import make_playbook

    settings.PIPELINE_FINAL_HOOKS = project_settings.PIPELINE_FINAL_HOOKS
    day = pipeline.default_as_of()
    accounts = build_book(day, n=7)  # chunks of 2: [0, 1], [2, 3], [4, 5], [6]
    Playbook.objects.all().delete()
    make_playbook("seat_utilisation", {"at_least": 1}, name="Welcome")
    clean = pipeline.run_nightly(day)
    expected = (snapshot_rows(day), _standings(), _ctas())
    assert len(expected[2]) >= 3  # the playbook fired
    _clear_outputs()

    last = max(a.pk for a in accounts)
    record_chunk = services._record_chunk

    def broken(scope, **kwargs):
        if scope.filter(pk=last).exists():
            raise RuntimeError("disk full")
        return record_chunk(scope, **kwargs)

    monkeypatch.setattr(services, "_record_chunk", broken)
    monkeypatch.setattr(
        services,
        "health_snapshots_record",
        functools.partial(services.health_snapshots_record, chunk_size=2),
    )
    with pytest.raises(pipeline.PipelineError, match="^health: RuntimeError: disk full$"):
        pipeline.run_nightly(day)
    monkeypatch.undo()
    failed = PipelineRun.objects.exclude(pk=clean["run_id"]).get()
    assert failed.status == PipelineRun.Status.FAILED
    assert failed.error == "health: RuntimeError: disk full"
    assert [s["name"] for s in failed.steps] == ["usage_rollups", "usage_events"]
    # the chunks before the failing one committed; nothing after health ran
    assert HealthSnapshot.objects.filter(day=day).count() == 6
    assert _ctas() == [] and _standings() == []

    again = pipeline.run_nightly(day)
    assert again["status"] == "succeeded"
    assert (snapshot_rows(day), _standings(), _ctas()) == expected
