"""The in-process health step records its chunks two at a time, each thread on its own
connection (``config.db.in_threads``): the snapshots are the ones recorded one chunk after
the other; inside a transaction (where a thread's connection would not see the
caller's rows) and on SQLite the chunks run in the calling thread. The standings step does
the same. And the nightly band-change facts, written by COPY, are what ``timeline_upsert``
writes."""

from __future__ import annotations

import datetime as dt
import gc
import os
import random
import threading

import pytest
from django.db import connection, transaction

from config.db import heap_frozen, in_processes, in_threads
from metrics import services
from metrics.kpis.common import midnight
from metrics.models import HealthSnapshot
from tests.metrics.test_health_fast_path import D, _random_book, _recorded, _typed

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="threads need their own PostgreSQL connections"
)


def _where(chunk: int) -> tuple[int, int, int | None]:
    """(chunk, thread, PostgreSQL backend pid) of one unit of work."""
    pid = None
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pid = cursor.fetchone()[0]
    return chunk, threading.get_ident(), pid


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_chunks_run_in_two_threads_on_their_own_connections():
    me = _where(-1)
    got = in_threads(_where, list(range(6)), threads=2)
    assert [c for c, _, _ in got] == list(range(6))  # results in the chunks' order
    threads = {t for _, t, _ in got}
    assert len(threads) == 2 and me[1] not in threads
    assert me[2] not in {pid for _, _, pid in got}  # not the caller's connection
    assert _where(-1) == me  # and the caller's connection is still there


@pytest.mark.django_db(transaction=True)
def test_in_a_transaction_or_on_sqlite_the_chunks_run_in_the_calling_thread():
    me = _where(-1)
    with transaction.atomic():
        got = in_threads(_where, list(range(4)), threads=2)
    assert got == [(c, me[1], me[2]) for c in range(4)]
    if connection.vendor != "postgresql":
        assert in_threads(_where, [0, 1], threads=2) == [(c, me[1], None) for c in (0, 1)]


@postgres_only
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("seed", "at_once"), [(5, {"threads": 2}), (6, {"processes": 2})], ids=["threads", "processes"]
)
def test_health_snapshots_in_threads_or_processes_equal_the_sequential_ones(
    settings, seed, at_once
):
    settings.KEY_FEATURES = ["export", "share"]
    _random_book(random.Random(seed), 30)
    # 30 accounts in chunks of 4: 8 chunks, two at a time
    counts = services.health_snapshots_record(as_of=D, chunk_size=4, **at_once)
    parallel = _recorded(D)
    assert len(parallel) == counts["accounts"] == 30
    HealthSnapshot.objects.all().delete()
    assert services.health_snapshots_record(as_of=D, chunk_size=4) == counts
    sequential = _recorded(D)
    assert {pk: _typed(list(r)) for pk, r in parallel.items()} == {
        pk: _typed(list(r)) for pk, r in sequential.items()
    }


@postgres_only
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "at_once", [{"threads": 2}, {"processes": 2}], ids=["threads", "processes"]
)
def test_standings_in_threads_or_processes_equal_the_sequential_ones(
    settings, monkeypatch, at_once
):
    from metrics import standings
    from metrics.models import AccountStanding

    settings.KEY_FEATURES = ["export"]
    _random_book(random.Random(8), 21)
    services.health_snapshots_record(as_of=D)
    monkeypatch.setattr(standings, "CHUNK", 5)  # 21 accounts: 5 chunks, two at a time
    fields = [f.name for f in AccountStanding._meta.fields if f.name != "updated_at"]

    def rows() -> list[tuple]:
        return list(AccountStanding.objects.order_by("account_id").values_list(*fields))

    assert standings.account_standings_refresh(day=D, **at_once)["accounts"] == 21
    threaded = rows()
    AccountStanding.objects.all().delete()
    assert standings.account_standings_refresh(day=D, threads=1)["accounts"] == 21
    assert rows() == threaded and len(threaded) == 21


def _where_forked(chunk: int) -> tuple[int, int, int | None]:
    """(chunk, process id, PostgreSQL backend pid) of one unit of work."""
    return chunk, os.getpid(), _where(chunk)[2]


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_chunks_run_in_two_forked_processes_on_their_own_connections():
    me = _where_forked(-1)
    started = []
    got = in_processes(_where_forked, list(range(6)), processes=2, forked=lambda: started.append(1))
    assert started == [1]
    assert [c for c, _, _ in got] == list(range(6))  # results in the chunks' order
    processes = {p for _, p, _ in got}
    assert len(processes) == 2 and me[1] not in processes
    assert me[2] not in {pid for _, _, pid in got}  # not the caller's connection
    assert _where_forked(-1)[1] == me[1]  # the caller goes on (on a new connection)


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_forking_inside_a_frozen_block_leaves_the_block_frozen(request):
    """A pipeline step freezes what is alive (``heap_frozen``); the health chunks' fork
    freezes too, and its end must not unfreeze the step's objects."""
    request.addfinalizer(gc.unfreeze)

    def collected(obj) -> bool:  # frozen objects are in no generation the collector walks
        return any(o is obj for o in gc.get_objects())

    # the step's own object (not the freeze count: a frozen object that dies, a frame of
    # the moment of the freeze, leaves it, so the count may drop by itself)
    step_object: list = []
    assert collected(step_object)
    with heap_frozen():
        assert not collected(step_object)
        got = in_processes(_where_forked, list(range(4)), processes=2)
        assert [c for c, _, _ in got] == list(range(4))
        assert not collected(step_object)  # still frozen after the fork's block ended
    assert collected(step_object) and gc.get_freeze_count() == 0


@pytest.mark.django_db(transaction=True)
def test_in_a_transaction_or_on_sqlite_no_process_is_forked():
    me = _where_forked(-1)
    started = []
    with transaction.atomic():
        got = in_processes(_where_forked, [0, 1], processes=2, forked=lambda: started.append(1))
    assert got == [(c, me[1], me[2]) for c in (0, 1)] and started == [1]


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_an_error_in_a_forked_chunk_is_raised_in_the_caller():
    def work(chunk: int) -> int:
        if chunk == 2:
            raise ValueError("chunk 2 failed")
        return chunk

    with pytest.raises(ValueError, match="chunk 2 failed"):
        in_processes(work, list(range(4)), processes=2)


@postgres_only
@pytest.mark.django_db
def test_band_changes_copied_are_what_timeline_upsert_writes():
    """The nightly band changes (``announce=False`` on PostgreSQL) go in by COPY: the same
    rows as ``timeline_upsert``, a fact already there updated in place."""
    from accounts.models import TimelineEntry
    from accounts.timeline import timeline_upsert
    from tests.factories import AccountFactory

    a, b = AccountFactory(), AccountFactory()
    key, at = "health-band:2024-03-31", midnight(D) + dt.timedelta(hours=23)

    def facts() -> list[TimelineEntry]:
        return [
            TimelineEntry(
                account_id=account.pk,
                occurred_at=at,
                kind="health_band_changed",
                key=key,
                title=f"Health green → {band} (80 → {score})",
                data={"from": "green", "to": band, "score_from": 80, "score_to": score},
            )
            for account, band, score in ((a, "red", 12), (b, "yellow", None))
        ]

    def written(write) -> tuple[int, list[tuple]]:
        TimelineEntry.objects.all().delete()
        old = TimelineEntry.objects.create(
            account=a, occurred_at=at, kind="health_band_changed", key=key, title="old", data={}
        )
        write(facts())
        rows = TimelineEntry.objects.order_by("account_id").values_list(
            "account_id", "occurred_at", "kind", "key", "title", "detail", "data"
        )
        return TimelineEntry.objects.get(account=a).pk == old.pk, list(rows)

    copied, bulk = written(services._band_facts_copy), written(timeline_upsert)
    assert copied == bulk
    assert copied[0] is True and len(copied[1]) == 2
    assert copied[1][0][4] == "Health green → red (80 → 12)"
    assert copied[1][1][6] == {"from": "green", "to": "yellow", "score_from": 80, "score_to": None}
