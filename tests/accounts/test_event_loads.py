"""Event loads over several batches: the worker thread that reads, validates and keys the
rows, and the importing thread that looks accounts up and writes, behave as one loop did."""

from __future__ import annotations

import threading

import pytest
from django.db import DatabaseError

from accounts import intake
from accounts.intake import events, loader
from accounts.models import UsageDaily, UsageEvent
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db

HEADER = "account_external_id,user_id,event,occurred_at,value\n"


@pytest.fixture
def small_batches(monkeypatch):
    """Three rows per batch, so that a few rows span several batches."""
    monkeypatch.setattr(loader, "EVENT_BATCH", 3)


def write_events(tmp_path, lines: list[str]):
    path = tmp_path / "events.csv"
    path.write_text(HEADER + "".join(f"{line}\n" for line in lines))
    return path


def workers_alive() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "intake-events"]


def test_accounts_met_in_later_batches_are_looked_up_and_loaded(tmp_path, small_batches):
    for name in ("A1", "A2", "A3"):
        AccountFactory(external_id=name)
    # 7 rows, batches of 3: A2 first appears in the second batch, A3 in the third
    lines = [f"A1,u{i},login,2024-03-01T09:0{i}:00Z," for i in range(3)]
    lines += [f"A2,u{i},login,2024-03-01T10:0{i}:00Z,1" for i in range(3)]
    lines += ["A3,u1,login,2024-03-02T09:00:00Z,"]
    result = intake.run_import([intake.source_from_path(write_events(tmp_path, lines))])
    assert result.ok, result.errors
    assert (result.total("rows"), result.total("created")) == (7, 7)
    per_account = dict(
        UsageDaily.objects.values_list("account__external_id", "events").order_by("account")
    )
    assert per_account == {"A1": 3, "A2": 3, "A3": 1}
    assert not workers_alive()


def test_bad_rows_of_later_batches_are_all_reported_and_nothing_is_written(tmp_path, small_batches):
    AccountFactory(external_id="A1")
    lines = [f"A1,u1,login,2024-03-01T09:0{i}:00Z," for i in range(4)]
    lines += [
        "NOPE,u1,login,2024-03-01T10:00:00Z,",  # row 6 (the header is row 1)
        "A1,u1,login,2024-03-01T10:01:00Z,",
        "A1,u1,login,yesterday,",  # row 8
        "A1,u1,login,2024-03-01T10:02:00Z,",
        "A1,u1,login,2024-03-01T10:03:00Z,",
    ]
    result = intake.run_import([intake.source_from_path(write_events(tmp_path, lines))])
    assert not result.ok
    assert [(e.row, e.column) for e in result.errors] == [
        (6, "account_external_id"),
        (8, "occurred_at"),
    ]
    assert "unknown account NOPE" in result.errors[0].message
    assert (result.total("rows"), result.total("rejected")) == (9, 2)
    assert not UsageEvent.objects.exists()
    assert not UsageDaily.objects.exists()
    assert not workers_alive()


def test_a_dry_run_over_several_batches_counts_and_writes_nothing(tmp_path, small_batches):
    AccountFactory(external_id="A1")
    lines = [f"A1,u1,login,2024-03-01T09:0{i}:00Z," for i in range(8)]
    result = intake.run_import(
        [intake.source_from_path(write_events(tmp_path, lines))], dry_run=True
    )
    assert result.ok and result.dry_run
    assert (result.total("rows"), result.total("created")) == (8, 8)
    assert not UsageEvent.objects.exists()


def test_progress_is_reported_from_the_importing_thread(tmp_path, small_batches, monkeypatch):
    """The progress callback may write (the upload page's cache): it runs in the thread
    that owns the connection, never in the worker."""
    monkeypatch.setattr(loader, "PROGRESS_EVERY", 2)
    AccountFactory(external_id="A1")
    lines = [f"A1,u1,login,2024-03-01T09:0{i}:00Z," for i in range(7)]
    calls = []

    def progress(rows, done, total):
        calls.append((rows, threading.current_thread() is threading.main_thread()))

    result = intake.run_import(
        [intake.source_from_path(write_events(tmp_path, lines))], progress=progress
    )
    assert result.ok
    # a report each time a batch passes a multiple of 2 (3 passes 2; 6 passes 4 and 6; 7
    # none), and one at the end of the source
    assert calls == [(3, True), (6, True), (7, True)]


def test_a_database_error_while_writing_stops_the_worker(tmp_path, small_batches, monkeypatch):
    AccountFactory(external_id="A1")
    lines = [f"A1,u1,login,2024-03-01T09:0{i}:00Z," for i in range(9)]
    original, calls = events.load_chunk, []

    def failing(rows, payload=None):
        calls.append(len(rows))
        if len(calls) == 2:
            raise DatabaseError("disk full")
        return original(rows, payload)

    monkeypatch.setattr(events, "load_chunk", failing)
    with pytest.raises(DatabaseError, match="disk full"):
        intake.run_import([intake.source_from_path(write_events(tmp_path, lines))])
    assert calls == [3, 3]
    assert not workers_alive()
    assert not UsageEvent.objects.exists()


def test_an_error_in_the_worker_reaches_the_importing_thread(tmp_path, monkeypatch):
    AccountFactory(external_id="A1")

    def broken(*args):
        raise RuntimeError("key function broke")

    monkeypatch.setattr(events, "dedup_key", broken)
    path = write_events(tmp_path, ["A1,u1,login,2024-03-01T09:00:00Z,"])
    with pytest.raises(RuntimeError, match="key function broke"):
        intake.run_import([intake.source_from_path(path)])
    assert not workers_alive()
    assert not UsageEvent.objects.exists()
