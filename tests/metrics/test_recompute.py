"""manage.py recompute: rebuilds health snapshots day by day, as of each day (no future
data), and the health step of the nightly pipeline."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts import utc
from accounts.models import Activity, Stakeholder
from metrics import pipeline, services
from metrics.models import HealthSnapshot
from tests.factories import (
    AccountFactory,
    ContractFactory,
    InvoiceFactory,
    StakeholderFactory,
    TicketFactory,
    failed_invoice,
)
from tests.metrics.usage import load_event

pytestmark = pytest.mark.django_db

D = dt.date(2024, 3, 20)
NEXT = dt.datetime(2024, 3, 21, 0, 0, tzinfo=dt.UTC)  # the first instant after D


def _event(account, when, user="u1"):
    load_event(account, when, user=user)


def _snapshot(account, day):
    return (
        HealthSnapshot.objects.filter(account=account, day=day)
        .values("score", "band", "components", "left_out", "reasons", "model_version")
        .get()
    )


def test_recompute_rebuilds_each_day_and_says_what_it_did():
    a, b = AccountFactory(), AccountFactory()
    ContractFactory(account=a, start_date=dt.date(2024, 1, 1), quantity=10)
    for i in range(5):  # 5 of 10 seats on Mar 18: 50 % → 100 points (usage only) → green
        _event(a, dt.datetime(2024, 3, 18, 9 + i, tzinfo=dt.UTC), user=f"u{i}")
    out = StringIO()
    call_command("recompute", "--from", "2024-03-17", "--to", "2024-03-19", stdout=out)
    assert HealthSnapshot.objects.count() == 6
    assert out.getvalue().splitlines() == [
        # Mar 17: no events yet, 0 of 10 seats → 0 → red; b has no data at all
        "2024-03-17: 2 accounts: 0 green, 0 yellow, 1 red, 1 without data; 2 new or changed",
        "2024-03-18: 2 accounts: 1 green, 0 yellow, 0 red, 1 without data; 2 new or changed",
        "2024-03-19: 2 accounts: 1 green, 0 yellow, 0 red, 1 without data; 2 new or changed",
        "Recomputed health for 3 day(s), 2024-03-17 to 2024-03-19: 6 snapshots, "
        "6 of them new or changed.",
        "Refreshed the standings of 2 account(s) from their latest snapshot.",
    ]
    assert HealthSnapshot.objects.get(account=a, day=dt.date(2024, 3, 17)).score == 0
    assert HealthSnapshot.objects.get(account=a, day=dt.date(2024, 3, 18)).score == 100
    assert HealthSnapshot.objects.get(account=b, day=dt.date(2024, 3, 18)).score is None
    # again: same rows, no duplicates, and it says that nothing changed
    out = StringIO()
    call_command("recompute", "--from", "2024-03-17", "--to", "2024-03-19", stdout=out)
    assert HealthSnapshot.objects.count() == 6
    lines = out.getvalue().splitlines()
    assert lines[0] == (
        "2024-03-17: 2 accounts: 0 green, 0 yellow, 1 red, 1 without data; 0 new or changed"
    )
    assert lines[3] == (
        "Recomputed health for 3 day(s), 2024-03-17 to 2024-03-19: 6 snapshots, "
        "0 of them new or changed."
    )
    # one event more on Mar 19 (6 of 10 seats, still 100 points: usage caps at 50 %) changes
    # that day's raw inputs, so its snapshot of a, and only it, is written again
    _event(a, dt.datetime(2024, 3, 19, 9, tzinfo=dt.UTC), user="u5")
    out = StringIO()
    call_command("recompute", "--from", "2024-03-17", "--to", "2024-03-19", stdout=out)
    assert "6 snapshots, 1 of them new or changed." in out.getvalue()


def test_data_after_the_day_does_not_change_its_snapshot(settings):
    settings.KEY_FEATURES = ["login"]
    account = AccountFactory()
    ContractFactory(account=account, start_date=dt.date(2024, 1, 1), quantity=10)
    _event(account, dt.datetime(2024, 3, 20, 23, 59, 59, tzinfo=dt.UTC), user="u1")
    call_command("recompute", "--from", "2024-03-20", "--to", "2024-03-20", stdout=StringIO())
    before = _snapshot(account, D)

    # everything below happens after D ends
    for i in range(2, 9):
        _event(account, NEXT + dt.timedelta(seconds=i), user=f"u{i}")
    TicketFactory(account=account, opened_at=NEXT, escalated=True)
    InvoiceFactory(
        account=account,
        issued_on=dt.date(2024, 3, 21),
        due_on=dt.date(2024, 3, 21),
        amount=Decimal("10.00"),
        failed_attempts=3,
    )
    StakeholderFactory(account=account, role="champion")
    Stakeholder.objects.update(created_at=NEXT)
    Activity.objects.create(account=account, kind="call", occurred_at=NEXT)

    call_command("recompute", "--from", "2024-03-20", "--to", "2024-03-21", stdout=StringIO())
    assert _snapshot(account, D) == before
    after = _snapshot(account, D + dt.timedelta(days=1))
    assert after != before
    # on D only usage and feature adoption had data; on D + 1 everything but sentiment
    assert set(before["left_out"]) == {"support", "payments", "sentiment", "relationship"}
    assert after["left_out"] == ["sentiment"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "2024-03-05", "--to", "2024-03-01"], "--to 2024-03-01 is before --from"),
        (["--from", "2024-13-01", "--to", "2024-03-01"], "--from: 2024-13-01 is not a valid date"),
        (["--from", "2024-03-01", "--to", "2024-03-02", "--chunk-size", "0"], "whole number"),
        (["--from", "2024-03-01"], "--to"),
    ],
)
def test_recompute_rejects_bad_input(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("recompute", *args, stdout=StringIO())
    assert not HealthSnapshot.objects.exists()


def test_recompute_rejects_future_days():
    tomorrow = timezone.now().astimezone(dt.UTC).date() + dt.timedelta(days=1)
    with pytest.raises(CommandError, match="is in the future"):
        call_command(
            "recompute", "--from", "2024-03-01", "--to", tomorrow.isoformat(), stdout=StringIO()
        )


def test_the_nightly_pipeline_records_health_for_its_day():
    account = AccountFactory()
    ContractFactory(account=account, start_date=dt.date(2024, 1, 1), quantity=4)
    _event(account, dt.datetime(2024, 3, 5, 9, tzinfo=dt.UTC))
    summary = pipeline.run_nightly(dt.date(2024, 3, 5))
    health_step = summary["steps"][2]
    assert health_step["name"] == "health"
    assert health_step["accounts"] == 1 and health_step["day"] == "2024-03-05"
    # 1 of 4 seats: 25 % on [0, 50] → 50 points; usage is the only component with data
    assert HealthSnapshot.objects.get(account=account, day=dt.date(2024, 3, 5)).score == 50
    pipeline.run_nightly(dt.date(2024, 3, 5))  # twice: still one snapshot
    assert HealthSnapshot.objects.count() == 1


# --- the rescore after a model change: later days and the standings follow (bug 2) ----------


def _standing(account):
    from metrics.models import AccountStanding

    return AccountStanding.objects.filter(account=account).values_list("day", "score", "band").get()


def _latest(account):
    snap = HealthSnapshot.objects.filter(account=account).order_by("-day").first()
    return snap.day, snap.score, snap.band


def _book(yesterday):
    """Two accounts scored by the night of ``yesterday``: ``a`` uses 5 of its 10 seats,
    ``b`` has no data."""
    a, b = AccountFactory(), AccountFactory()
    ContractFactory(account=a, start_date=dt.date(2024, 1, 1), quantity=10)
    for i in range(5):
        _event(a, dt.datetime.combine(yesterday, dt.time(9 + i), tzinfo=dt.UTC), user=f"u{i}")
    pipeline.run_nightly(yesterday)
    return a, b


def _overdue_today(account, today):
    """Data of today that lowers the account's health: a failed, overdue invoice."""
    failed_invoice(account, today, attempts=3)


def test_recompute_of_the_last_complete_day_moves_the_standings_to_the_latest_snapshot():
    """The reviewer's case: a recompute of a day after the night's left the queue's row on
    the night's day and score while the account's health said the later day's. (It used
    today as that day; today is refused now, so: the night two days back, the recompute
    of yesterday, the last complete day.)"""
    yesterday = utc.yesterday()
    night = yesterday - dt.timedelta(days=1)
    a, b = _book(night)
    assert _standing(a) == _latest(a) and _standing(a)[0] == night
    _overdue_today(a, yesterday)

    out = StringIO()
    day = yesterday.isoformat()
    call_command("recompute", "--from", day, "--to", day, stdout=out)

    for account in (a, b):
        assert _standing(account) == _latest(account)
        assert _standing(account)[0] == yesterday
    recorded = HealthSnapshot.objects.get(account=a, day=night)
    assert _standing(a)[1] < recorded.score  # the overdue invoice counts: a different score
    assert out.getvalue().splitlines()[-1] == (
        "Refreshed the standings of 2 account(s) from their latest snapshot."
    )


def test_recompute_rescores_the_later_snapshots_with_the_model_active_now():
    """A snapshot dated after --to (an account recomputed today) is rescored too, with the
    new version, like the Manage page's rescore; each standing is its latest snapshot."""
    today = utc.today()
    yesterday = today - dt.timedelta(days=1)
    a, b = _book(yesterday)
    _overdue_today(a, today)
    services.health_snapshots_record(account_ids=[a.pk], as_of=today)  # the incremental path
    before = HealthSnapshot.objects.get(account=a, day=today).model_version
    new = services.health_model_version_create(
        model=before.model, components=before.components, green_min=99, yellow_min=98
    )

    out = StringIO()
    call_command(
        "recompute", "--from", yesterday.isoformat(), "--to", yesterday.isoformat(), stdout=out
    )

    later = HealthSnapshot.objects.get(account=a, day=today)
    assert later.model_version == new != before
    assert HealthSnapshot.objects.get(account=a, day=yesterday).model_version == new
    assert not HealthSnapshot.objects.filter(account=b, day=today).exists()  # none made
    assert _standing(a) == _latest(a) and _standing(a)[0] == today
    assert _standing(b) == _latest(b) and _standing(b)[0] == yesterday
    # the later day's snapshot moved to the new version: it changed
    assert (
        f"Rescored the snapshots of 1 later day(s), {today} to {today}: 1 snapshots, "
        "1 of them changed." in out.getvalue()
    )


def test_recompute_of_some_accounts_leaves_the_others_alone():
    """(It recomputed today; today is refused now: the night two days back, yesterday.)"""
    yesterday = utc.yesterday()
    a, b = _book(yesterday - dt.timedelta(days=1))
    _overdue_today(a, yesterday)
    _overdue_today(b, yesterday)
    b_before = _standing(b)

    call_command(
        "recompute", "--from", yesterday.isoformat(), "--to", yesterday.isoformat(),
        "--account", str(a.pk), "--account", str(a.pk), stdout=StringIO(),
    )  # fmt: skip

    assert set(HealthSnapshot.objects.filter(day=yesterday).values_list("account", flat=True)) == {
        a.pk
    }
    assert _standing(a) == _latest(a) and _standing(a)[0] == yesterday
    assert _standing(b) == b_before


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("x7", "--account: expected an account id (a whole number), got 'x7'"),
        ("0", "expected an account id"),
        ("999999", "--account: no account with id 999999"),
    ],
)
def test_recompute_rejects_an_unknown_account_and_writes_nothing(raw, message):
    a = AccountFactory()
    day = "2024-03-05"
    args = ["--from", day, "--to", day, "--account", str(a.pk), "--account", raw]
    with pytest.raises(CommandError) as caught:
        call_command("recompute", *args, stdout=StringIO())
    assert message in str(caught.value)
    assert not HealthSnapshot.objects.exists()


# --- complete days only, none before the book's data (review bugs A and B) ------------------


def test_recompute_refuses_today_in_run_pipelines_words():
    today, yesterday = utc.today(), utc.yesterday()
    AccountFactory()
    words = (
        f"{today} is today (UTC), a day not complete yet; the latest complete day is {yesterday}"
    )
    with pytest.raises(CommandError) as caught:
        call_command("recompute", "--from", str(today), "--to", str(today), stdout=StringIO())
    assert str(caught.value) == f"--to {words}"
    with pytest.raises(CommandError) as night:
        call_command("run_pipeline", "--date", str(today), stdout=StringIO())
    assert str(night.value) == f"--as-of/--date {words}"
    assert not HealthSnapshot.objects.exists()


def test_the_rescore_service_refuses_today_and_later():
    """The Manage page's rescore goes through the same service: the same words."""
    today = utc.today()
    for end in (today, today + dt.timedelta(days=3)):
        with pytest.raises(ValidationError) as caught:
            services.health_rescore(start=end - dt.timedelta(days=1), end=end)
        assert caught.value.message_dict["to"] == [utc.incomplete_day_words(end)]
    assert utc.incomplete_day_words(today) == (
        f"{today} is today (UTC), a day not complete yet; the latest complete day is "
        f"{utc.yesterday()}"
    )
    assert utc.incomplete_day_words(utc.yesterday()) == ""
    assert not HealthSnapshot.objects.exists()


def _book_from(first: dt.date):
    """Two accounts whose data starts on ``first`` (one's contract), a night recorded on
    ``first`` + 2 days."""
    a, b = AccountFactory(), AccountFactory()
    ContractFactory(account=a, start_date=first, quantity=10)
    ContractFactory(account=b, start_date=first + dt.timedelta(days=5), quantity=10)
    pipeline.run_nightly(first + dt.timedelta(days=2))
    return a, b


def test_the_first_day_with_data_is_the_earliest_row_of_any_source():
    assert services.health_first_data_day() is None  # no data: no day
    account = AccountFactory(customer_since=dt.date(2020, 1, 1))  # not data to score
    assert services.health_first_data_day() is None
    ContractFactory(account=account, start_date=dt.date(2022, 11, 15))
    assert services.health_first_data_day() == dt.date(2022, 11, 15)
    _event(account, dt.datetime(2022, 10, 3, 9, tzinfo=dt.UTC))  # usage during a trial
    assert services.health_first_data_day() == dt.date(2022, 10, 3)


def test_recompute_refuses_a_range_before_any_data_and_writes_nothing():
    _book_from(dt.date(2022, 11, 15))
    before = HealthSnapshot.objects.count()
    with pytest.raises(CommandError) as caught:
        call_command("recompute", "--from", "2020-01-01", "--to", "2020-01-02", stdout=StringIO())
    assert str(caught.value) == "no account has data before 2022-11-15; recompute from that day on"
    assert HealthSnapshot.objects.count() == before
    with pytest.raises(ValidationError, match="no account has data before 2022-11-15"):
        services.health_rescore(start=dt.date(2022, 11, 1), end=dt.date(2022, 11, 14))


def test_recompute_starting_before_the_data_starts_on_its_first_day_and_says_so():
    """Asked 2022-11-10 .. 2022-11-16 with data from 2022-11-15: 2 days recorded (15, 16)
    × 2 accounts = 4 snapshots; the night of 2022-11-17 is the one later day (2 snapshots),
    announced before it is rescored."""
    _book_from(dt.date(2022, 11, 15))
    out = StringIO()
    call_command("recompute", "--from", "2022-11-10", "--to", "2022-11-16", stdout=out)
    lines = out.getvalue().splitlines()
    assert (
        lines[0]
        == "No account has data before 2022-11-15: recomputing from 2022-11-15, not 2022-11-10."
    )
    assert not HealthSnapshot.objects.filter(day__lt=dt.date(2022, 11, 15)).exists()
    announce = (
        "Rescoring the snapshots of 1 later day(s), 2022-11-17 to 2022-11-17 (2 snapshots), "
        "with the models active now."
    )
    done = (  # rescored with the model that recorded them: nothing changed
        "Rescored the snapshots of 1 later day(s), 2022-11-17 to 2022-11-17: 2 snapshots, "
        "0 of them changed."
    )
    assert (
        lines.index(announce)
        < lines.index(
            "2022-11-17: 2 accounts: 0 green, 0 yellow, 1 red, 1 without data; 0 new or changed"
        )
        < lines.index(done)
    )
    assert (
        "Recomputed health for 2 day(s), 2022-11-15 to 2022-11-16: 4 snapshots, 4 of them new "
        "or changed." in lines
    )


def test_recompute_help_says_later_snapshots_take_the_current_model():
    from metrics.management.commands.recompute import Command

    assert "snapshot dated after --to, also with the current model" in Command.help


def _first_data_day_reads(queries) -> int:
    """How many of ``queries`` are ``health_first_data_day``'s statement (a 0.5 s scan of
    every source on a big book)."""
    sources = [services._source_rows(s) for s in services._DATA_SOURCES]
    statement = "SELECT " + ", ".join(f"({sql})" for sql, _params in sources)
    return sum(q["sql"] == statement for q in queries)


def test_recompute_reads_the_first_day_with_data_once():
    """The command and its service check the range once: one read of the first day, also
    when the range is moved to it (the message is the service's day, the same words)."""
    _book_from(dt.date(2022, 11, 15))
    out = StringIO()
    with CaptureQueriesContext(connection) as captured:
        call_command("recompute", "--from", "2022-11-10", "--to", "2022-11-16", stdout=out)
    assert out.getvalue().splitlines()[0] == (
        "No account has data before 2022-11-15: recomputing from 2022-11-15, not 2022-11-10."
    )
    assert _first_data_day_reads(captured.captured_queries) == 1
    with CaptureQueriesContext(connection) as captured:
        services.health_first_data_day()
    assert _first_data_day_reads(captured.captured_queries) == 1  # the statement is known


# --- one writer of the snapshots at a time ----------------------------------------------------


def test_recompute_while_another_run_or_rescore_holds_the_lock_is_refused(lock_held_elsewhere):
    """Another process holds the pipeline lock: a night's run (a running run to name) or a
    rescore (none): the recompute is refused in words saying which and how to wait for it
    instead (--wait), and writes nothing."""
    account = AccountFactory()
    ContractFactory(account=account, start_date=dt.date(2024, 1, 1), quantity=4)
    args = ["recompute", "--from", "2024-03-18", "--to", D.isoformat()]
    with pytest.raises(CommandError) as raised:
        call_command(*args, stdout=StringIO())
    assert str(raised.value) == (
        "another pipeline run or health rescore is in progress; wait for it or stop it; or "
        "run recompute with --wait to start when it ends"
    )
    holder = pipeline.PipelineRun.objects.create(as_of=D)
    with pytest.raises(
        CommandError, match=rf"^another pipeline run is in progress \(run #{holder.pk} "
    ):
        call_command(*args, stdout=StringIO())
    assert not HealthSnapshot.objects.exists()


def test_a_run_or_another_recompute_started_while_a_recompute_runs_is_refused():
    """Two writers of the same days at once: whatever starts second, in another thread of
    this process (another process: the advisory lock, test above), is refused, the
    recompute goes on, and its rows are the rows of a recompute alone."""
    import threading

    account = AccountFactory()
    ContractFactory(account=account, start_date=dt.date(2024, 1, 1), quantity=4)
    _event(account, dt.datetime(2024, 3, 19, 9, tzinfo=dt.UTC))
    refused: list[str] = []

    def start_others(day: dict) -> None:  # the recompute's progress, after its first day
        if refused:
            return

        def other() -> None:
            for start in (
                lambda: pipeline.run_nightly(D),
                lambda: call_command(
                    "recompute", "--from", "2024-03-19", "--to", D.isoformat(), stdout=StringIO()
                ),
            ):
                try:
                    start()
                except (pipeline.PipelineBusy, CommandError) as exc:
                    refused.append(str(exc))

        thread = threading.Thread(target=other)
        thread.start()
        thread.join(30)

    original = services.health_rescore

    def rescore(**kwargs):
        return original(**{**kwargs, "progress": _both(kwargs["progress"], start_others)})

    import unittest.mock

    with unittest.mock.patch.object(services, "health_rescore", rescore):
        call_command("recompute", "--from", "2024-03-18", "--to", D.isoformat(), stdout=StringIO())
    busy = "another pipeline run or health rescore is in progress; wait for it or stop it"
    assert refused == [busy, f"{busy}; or run recompute with --wait to start when it ends"]
    assert not pipeline.PipelineRun.objects.exists()
    alone = {d: _snapshot(account, d) for d in (dt.date(2024, 3, 18), dt.date(2024, 3, 19), D)}
    HealthSnapshot.objects.all().delete()
    call_command("recompute", "--from", "2024-03-18", "--to", D.isoformat(), stdout=StringIO())
    assert {d: _snapshot(account, d) for d in alone} == alone


def _both(first, second):
    def call(result):
        first(result)
        second(result)

    return call


def test_recompute_with_wait_starts_when_the_lock_frees(monkeypatch, tmp_path):
    """``--wait``: another process (the night's run) holds the lock for a moment; the
    recompute says it waits, tries again, and rescores once it is free: the rows of a
    recompute alone. On PostgreSQL another session's advisory lock; on SQLite another
    process's lock of the lock file, gone with that process."""
    import threading

    from django.db import DEFAULT_DB_ALIAS, connections

    from tests.waiting import hold_lock_file

    monkeypatch.setattr(pipeline, "WAIT_POLL_SECONDS", 0.1)
    account = AccountFactory()
    ContractFactory(account=account, start_date=dt.date(2024, 1, 1), quantity=4)
    if connection.vendor == "postgresql":
        other = connections.create_connection(DEFAULT_DB_ALIAS)
        other.inc_thread_sharing()  # closed by the timer's thread
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s, %s)", pipeline.RUN_LOCK)
        let_go = other.close
    elif pipeline.fcntl is None:
        pytest.skip("no OS file lock here (Windows): the lock covers this process only")
    else:
        path = tmp_path / "book.sqlite3.pipeline-lock"
        monkeypatch.setattr(pipeline, "lock_file", lambda: path)
        holder = hold_lock_file(path)
        let_go = holder.kill
    out = StringIO()

    class Said(StringIO):  # the command's output; the lock goes once it says it waits
        def write(self, text):
            out.write(text)
            if text.startswith("Waiting: "):
                threading.Timer(0.3, let_go).start()
            return len(text)

    call_command(
        "recompute", "--from", "2024-03-18", "--to", D.isoformat(), "--wait", stdout=Said()
    )
    if connection.vendor != "postgresql":
        holder.communicate()
    lines = out.getvalue().splitlines()
    assert lines[0] == (
        "Waiting: another pipeline run or health rescore is in progress. Trying again every "
        "0.1 s for up to 60 minute(s) (--wait); nothing is rescored until then."
    )
    assert lines[1] == "The pipeline is free: rescoring."
    assert lines[-1].startswith("Refreshed the standings of 1 account(s)")
    waited = {d: _snapshot(account, d) for d in (dt.date(2024, 3, 18), dt.date(2024, 3, 19), D)}
    HealthSnapshot.objects.all().delete()
    call_command("recompute", "--from", "2024-03-18", "--to", D.isoformat(), stdout=StringIO())
    assert {d: _snapshot(account, d) for d in waited} == waited


def test_waiting_for_the_lock_ends_when_its_time_is_up(lock_held_elsewhere, monkeypatch):
    """Still held when the time is up: the refusal's words, nothing run. (The command
    says "still busy after waiting N minute(s) (--wait): …; nothing rescored".)"""
    monkeypatch.setattr(pipeline, "WAIT_POLL_SECONDS", 0.1)
    told: list[str] = []
    with (
        pytest.raises(pipeline.PipelineBusy) as raised,
        pipeline.exclusive_when_free(timeout=0.35, waiting=told.append),
    ):
        pytest.fail("ran while the lock was held")
    assert told == ["another pipeline run or health rescore is in progress"]  # once
    assert str(raised.value) == (
        "another pipeline run or health rescore is in progress; wait for it or stop it"
    )


def test_wait_takes_whole_minutes():
    with pytest.raises(CommandError, match=r"expected a whole number >= 1, got '0'"):
        call_command("recompute", "--from", "2024-03-18", "--to", D.isoformat(), "--wait", "0")
