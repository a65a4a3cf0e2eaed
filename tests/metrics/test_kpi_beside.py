"""In one process on PostgreSQL (outside a transaction) the nightly KPI snapshots are
recorded in a thread of their own, started by the health step, while the health and
standings steps run (``pipeline._kpi_beside_start``): the same rows as recorded after the
standings step, the step still in the run's list in its place, its error the run's error;
a run that fails before the step waits for that thread."""

from __future__ import annotations

import random
import threading

import pytest
from django.db import connection

from metrics import pipeline, services
from metrics.models import KpiSnapshot, PipelineRun
from tests.metrics.test_health_fast_path import D, _random_book

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="the thread needs its own PostgreSQL connection"
    ),
    pytest.mark.django_db(transaction=True),
]


def _reports() -> dict[tuple[str, str], tuple]:
    return {
        (s.scope_kind, s.scope_key): (s.period_start, s.period_end, s.report)
        for s in KpiSnapshot.objects.filter(day=D)
    }


def _where_recorded(monkeypatch) -> list[int]:
    threads: list[int] = []
    record = services.kpi_snapshots_record

    def spy(**kwargs):
        threads.append(threading.get_ident())
        return record(**kwargs)

    monkeypatch.setattr(services, "kpi_snapshots_record", spy)
    return threads


def test_kpi_snapshots_beside_the_health_step_are_the_ones_recorded_after_it(settings, monkeypatch):
    settings.KEY_FEATURES = ["export", "share"]
    settings.PIPELINE_FINAL_HOOKS = []
    _random_book(random.Random(11), 24)
    threads = _where_recorded(monkeypatch)

    beside = pipeline.run_nightly(D)
    assert beside["status"] == "succeeded"
    assert [s["name"] for s in beside["steps"]] == [
        "usage_rollups",
        "usage_events",
        "health",
        "standings",
        "kpi_snapshots",
    ]
    assert threads and threads[0] != threading.get_ident()  # in a thread of its own
    assert not pipeline._kpi_beside
    recorded = _reports()
    assert len(recorded) == beside["steps"][-1]["scopes"] >= 3

    KpiSnapshot.objects.all().delete()
    monkeypatch.setattr(pipeline, "KPI_BESIDE_HEALTH", False)
    after = pipeline.run_nightly(D)
    assert threads[1] == threading.get_ident()  # after the standings, in this thread
    assert _reports() == recorded
    # the steps from health on say the same (the second run found the windows stored), but
    # for the snapshots written: the first run wrote the day's 24, the second found them so
    assert (beside["steps"][2]["written"], after["steps"][2]["written"]) == (24, 0)
    same = [
        {k: v for k, v in s.items() if k not in ("seconds", "written")} for s in beside["steps"][2:]
    ]
    assert [
        {k: v for k, v in s.items() if k not in ("seconds", "written")} for s in after["steps"][2:]
    ] == same


def test_an_error_of_the_kpi_thread_fails_the_run_in_its_step(settings, monkeypatch):
    settings.PIPELINE_FINAL_HOOKS = []
    _random_book(random.Random(12), 6)

    def broken(**kwargs):
        raise RuntimeError("no KPIs tonight")

    monkeypatch.setattr(services, "kpi_snapshots_record", broken)
    with pytest.raises(pipeline.PipelineError) as failed:
        pipeline.run_nightly(D)
    assert failed.value.step == "kpi_snapshots"
    run = PipelineRun.objects.get()
    assert run.status == PipelineRun.Status.FAILED
    assert "no KPIs tonight" in run.error
    assert [s["name"] for s in run.steps] == [
        "usage_rollups",
        "usage_events",
        "health",
        "standings",
    ]


def test_a_run_failing_before_the_kpi_step_waits_for_its_thread(settings, monkeypatch):
    settings.PIPELINE_FINAL_HOOKS = []
    _random_book(random.Random(13), 6)
    threads = _where_recorded(monkeypatch)
    started = threading.Event()
    record = services.kpi_snapshots_record

    def slow(**kwargs):
        started.set()
        return record(**kwargs)

    monkeypatch.setattr(services, "kpi_snapshots_record", slow)

    def standings_fail(*, as_of):
        assert started.wait(30)
        raise RuntimeError("standings broke")

    steps = [("standings", standings_fail), *pipeline.AFTER_HEALTH[1:]]
    monkeypatch.setattr(pipeline, "AFTER_HEALTH", steps)
    with pytest.raises(pipeline.PipelineError) as failed:
        pipeline.run_nightly(D)
    assert failed.value.step == "standings"
    assert not pipeline._kpi_beside  # waited for and dropped
    assert len(threads) == 1 and KpiSnapshot.objects.filter(day=D).exists()  # it had ended
    assert not [t for t in threading.enumerate() if t.name.startswith("kpi-snapshots")]
