"""Loads that cross batch boundaries: every row the intake writes is counted once in the
rollups (duplicates of stored events add nothing, the rest add exactly themselves), and
the pieces built outside the importing thread (the COPY text) or for the whole load (the
first-usage facts) give what the row-by-row code gave."""

from __future__ import annotations

import datetime as dt

import pytest

from accounts import intake
from accounts.intake import events, loader
from accounts.models import TimelineEntry, UsageDaily, UsageEvent
from tests.accounts.test_usage_rollups import ev, load, rebuilt_from_raw, state
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db

HEADER = "account_external_id,user_id,event,occurred_at,value\n"


@pytest.fixture
def small_batches(monkeypatch):
    """Four rows per batch: the files below span several batches."""
    monkeypatch.setattr(loader, "EVENT_BATCH", 4)


def csv_import(tmp_path, name: str, lines: list[str]) -> intake.ImportResult:
    path = tmp_path / name
    path.write_text(HEADER + "".join(f"{line}\n" for line in lines))
    result = intake.run_import([intake.source_from_path(path, kind="events")])
    assert result.ok, result.errors
    return result


def lines_for(numbers) -> list[str]:
    """Event n: one of 2 accounts, 3 users, 2 features, 3 days; a value on every third."""
    out = []
    for n in numbers:
        account, user, feature = f"A{n % 2}", f"u{n % 3}", ("login", "export")[n % 5 % 2]
        day = 1 + n % 3
        value = str(n) if n % 3 == 0 else ""
        out.append(
            f"{account},{user},{feature},2024-03-0{day}T{n // 60 % 24:02d}:{n % 60:02d}:00Z,{value}"
        )
    return out


def test_a_file_half_of_duplicates_adds_exactly_the_other_half(tmp_path, small_batches):
    AccountFactory(external_id="A0")
    AccountFactory(external_id="A1")
    first = csv_import(tmp_path, "first.csv", lines_for(range(0, 30, 2)))  # 15 even events
    assert first.total("created") == 15
    after_first = state()
    # the evens again, interleaved with 15 odd ones: duplicates in every batch
    both = csv_import(tmp_path, "both.csv", lines_for(range(30)))
    assert (both.total("created"), both.total("unchanged")) == (15, 15)
    assert UsageEvent.objects.count() == 30
    assert sum(UsageDaily.objects.values_list("events", flat=True)) == 30
    incremental = state()
    assert incremental != after_first
    assert incremental == rebuilt_from_raw()


def test_rollups_equal_a_recount_after_loads_over_many_batches(tmp_path, small_batches):
    AccountFactory(external_id="A0")
    AccountFactory(external_id="A1")
    # overlapping files; a file that repeats rows of its own in later batches
    csv_import(tmp_path, "a.csv", lines_for(range(0, 20)))
    csv_import(tmp_path, "b.csv", lines_for([*range(10, 40), *range(35, 45), 3, 4]))
    repeat = csv_import(tmp_path, "c.csv", lines_for(range(0, 45)))
    assert (repeat.total("created"), repeat.total("unchanged")) == (0, 45)
    incremental = state()
    assert sum(row[2] for row in incremental[0]) == 45
    assert incremental == rebuilt_from_raw()


def test_names_with_copy_escapes_and_accents_are_stored_as_sent():
    account = AccountFactory(external_id="A1")
    names = [("back\\slash", "tab\there"), ("caf\u00e9", "new\nline"), ("cr\rlf", "plain")]
    load(
        [ev("A1", user, event, f"2024-03-01T09:0{i}:00Z") for i, (user, event) in enumerate(names)]
    )
    stored = set(UsageEvent.objects.filter(account=account).values_list("user_id", "event"))
    assert stored == set(names)
    assert (
        events.copy_payload(
            [(1, "a\\b", "c\td", dt.datetime(2024, 3, 1, tzinfo=dt.UTC), None, "k")]
        )
        == b"1\ta\\\\b\tc\\td\t2024-03-01T00:00:00+00:00\t\\N\tk\n"
    )


def test_first_usage_is_written_once_and_moves_only_to_an_earlier_event():
    a1 = AccountFactory(external_id="A1")
    a2 = AccountFactory(external_id="A2")
    load(
        [
            ev("A1", "u1", "login", "2024-03-02T09:00:00Z"),
            ev("A1", "u1", "x", "2024-03-03T09:00:00Z"),
        ]
    )

    def first(account) -> dt.datetime | None:
        fact = TimelineEntry.objects.filter(account=account, key="usage:first").first()
        return fact and fact.occurred_at

    assert first(a1) == dt.datetime(2024, 3, 2, 9, tzinfo=dt.UTC)
    assert first(a2) is None
    # later events leave it; an earlier one moves it; another account gets its own
    load(
        [
            ev("A1", "u1", "login", "2024-03-05T09:00:00Z"),
            ev("A2", "u1", "x", "2024-03-04T00:00:00Z"),
        ]
    )
    assert first(a1) == dt.datetime(2024, 3, 2, 9, tzinfo=dt.UTC)
    load([ev("A1", "u2", "login", "2024-03-01T08:00:00Z")])
    assert first(a1) == dt.datetime(2024, 3, 1, 8, tzinfo=dt.UTC)
    assert first(a2) == dt.datetime(2024, 3, 4, tzinfo=dt.UTC)
    fact = TimelineEntry.objects.get(account=a1, key="usage:first")
    assert (fact.kind, fact.title, fact.data) == ("usage_first", "First product usage", {})
    assert TimelineEntry.objects.filter(key="usage:first").count() == 2
