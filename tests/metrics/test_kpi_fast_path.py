"""The KPI report's fast paths equal the direct computations they replace, on random books:

- the contracts summed by the database (``revenue.book_summary``) against the per-account
  facts (``contract_facts`` → ``classify``, ``lifetime_kpis``, ``cohort_table``, seats and
  customers on the as-of day);
- the stored usage windows (``adoption.usage_inputs`` after ``usage_windows_refresh``)
  against the direct read over the rollups and presences (``usage_inputs_direct``), and the
  scope's totals the database sums from them with the contracts on the as-of day
  (``adoption.usage_totals``) against the totals of the per-account reads,
  including when rows are missing: before the first night, for an end no night stored,
  for accounts whose usage changed after the night (new events, a rollup rebuild), for new
  accounts, and after KEY_FEATURES changed;
- and the whole ``kpi_report`` with and without stored windows."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import pytest
from django.db import transaction

from accounts.intake import events as intake_events
from accounts.models import Account, Ticket, UsageDaily
from metrics.kpis import adoption, kpi_report, revenue
from metrics.models import UsageWindow, UsageWindowDay, UsageWindowFeature
from tests.factories import AccountFactory, ContractFactory
from tests.metrics.usage import load_events

pytestmark = pytest.mark.django_db

END = dt.date(2024, 4, 1)  # usage windows: [03-02, 04-01) and the 30 days before
EVENTS = ["login", "report", "export", "share"]


def _contract_book(rng: random.Random, n: int = 40) -> None:
    """Accounts with 0..4 contracts over 2022–2024: paid and free, open-ended and ending on
    awkward days (month ends, period edges), some back to back, some overlapping."""
    segments = ["SMB", "MM", "ENT"]
    for i in range(n):
        account = AccountFactory(external_id=f"acc-{i}", segment=rng.choice(segments))
        day = dt.date(2022, 1, 1) + dt.timedelta(days=rng.randrange(0, 900))
        for _ in range(rng.randrange(0, 5)):
            length = rng.choice([None, 0, 27, 30, 31, 90, 180, 365, rng.randrange(1, 700)])
            end = None if length is None else day + dt.timedelta(days=length)
            mrr = rng.choice(["0", "0.01", "10.10", "99.99", "100", "250.55", "1000"])
            ContractFactory(
                account=account,
                start_date=day,
                end_date=end,
                mrr=Decimal(mrr),
                quantity=rng.choice([None, 0, 1, 5, 20]),
            )
            if end is None:
                break
            day = end + dt.timedelta(days=rng.choice([1, 1, 2, 15, 60, -10]))
    AccountFactory(external_id="no-contracts")


def _facts_based(accounts, start: dt.date, end: dt.date) -> dict:
    """What ``kpi_report`` computed before ``book_summary``: from the per-account facts."""
    as_of = end - dt.timedelta(days=1)
    days = {start, end, as_of, *revenue.month_boundaries(start, end)}
    days |= set(revenue.cohort_days(start, end))
    facts = revenue.contract_facts(accounts, days=days, seats_day=as_of, paid_between=(start, end))
    mv = revenue.classify(facts, start=start, end=end)
    on_day = revenue.AsOf.of(facts, as_of)
    return {
        "accounts": len(facts),
        "movements": _movements(mv),
        "customers_in_period": sum(f.paid_between for f in facts),
        "lifetime": revenue.lifetime_kpis(facts, start=start, end=end, arpa=Decimal("12.5")),
        "cohorts": revenue.cohort_table(accounts, start=start, end=end, facts=facts),
        "seats": on_day.seats,
        "customers": sorted(on_day.customers),
    }


def _summary_based(accounts, start: dt.date, end: dt.date) -> dict:
    summary = revenue.book_summary(accounts, start=start, end=end, as_of=end - dt.timedelta(1))
    return {
        "accounts": summary.accounts,
        "movements": _movements(summary.movements),
        "customers_in_period": summary.customers_in_period,
        "lifetime": revenue.lifetime_from_counts(
            summary.at_start, summary.lost, arpa=Decimal("12.5"), start=start
        ),
        "cohorts": revenue.cohort_table_from_sums(summary.cohorts, end=end),
        "seats": summary.as_of.seats,
        "customers": sorted(summary.as_of.customers),
    }


def _movements(mv: revenue.Movements) -> dict:
    return {
        "start_mrr": mv.start_mrr,
        "end_mrr": mv.end_mrr,
        "amounts": mv.amounts,
        "counts": mv.counts,
        "customers": (mv.customers_start, mv.customers_end),
        "logos": (mv.churned_logos, mv.gained_logos),
    }


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_book_summary_equals_the_per_account_facts(seed):
    rng = random.Random(seed)
    _contract_book(rng)
    periods = [
        (dt.date(2023, 11, 22), dt.date(2024, 11, 22)),  # a year, mid-month
        (dt.date(2024, 1, 1), dt.date(2024, 4, 1)),  # a quarter
        (dt.date(2023, 1, 31), dt.date(2023, 3, 31)),  # month ends
        (dt.date(2024, 2, 3), dt.date(2024, 2, 20)),  # shorter than a month: no cohort day
        # over 62 days to look at (month edges and cohort days): PostgreSQL's flags per day
        # no longer fit in a bigint, one column per day instead
        (dt.date(2018, 1, 15), dt.date(2024, 6, 1)),
    ]
    for _ in range(3):
        first = dt.date(2022, 1, 1) + dt.timedelta(days=rng.randrange(0, 900))
        periods.append((first, first + dt.timedelta(days=rng.randrange(1, 800))))
    everyone = Account.objects.all()
    smb = Account.objects.filter(segment="SMB")
    for start, end in periods:
        for scope in (everyone, smb):
            slow, fast = _facts_based(scope, start, end), _summary_based(scope, start, end)
            assert fast == slow, (start, end)
            identity = fast["movements"]
            net = sum(identity["amounts"][k] for k in ("new", "reactivation", "expansion"))
            net -= identity["amounts"]["contraction"] + identity["amounts"]["churn"]
            assert identity["start_mrr"] + net == identity["end_mrr"]
    assert _summary_based(Account.objects.none(), *periods[0]) == {
        "accounts": 0,
        "movements": _movements(revenue.Movements(start=periods[0][0], end=periods[0][1])),
        "customers_in_period": 0,
        "lifetime": _facts_based(Account.objects.none(), *periods[0])["lifetime"],
        "cohorts": revenue.cohort_table_from_sums({}, end=periods[0][1]),
        "seats": {},
        "customers": [],
    }


# --- usage windows ----------------------------------------------------------------------------


def _usage_book(rng: random.Random, n: int = 12) -> list[Account]:
    """Accounts with events over the 70 days before END (and a few after it), users shared
    within an account and the same user id in two accounts, events without a user."""
    accounts = [AccountFactory(segment=rng.choice(["SMB", "ENT"])) for _ in range(n)]
    accounts.append(AccountFactory(segment="SMB"))  # no usage at all
    rows = []
    for account in accounts[:-1]:
        users = [f"u{k}" for k in range(rng.randrange(1, 6))]
        for _ in range(rng.randrange(0, 40)):
            day = END - dt.timedelta(days=rng.randrange(-3, 75))
            when = dt.datetime.combine(day, dt.time(rng.randrange(24)), tzinfo=dt.UTC)
            user = rng.choice([*users, ""])
            rows.append((account, user, rng.choice(EVENTS), when))
    load_events(rows)
    return accounts


def _event(account: Account, day: dt.date, user: str = "late", event: str = "export") -> None:
    when = dt.datetime.combine(day, dt.time(9), tzinfo=dt.UTC)
    load_events([(account, user, event, when)])


def _same(accounts, end: dt.date = END, **flags) -> adoption.UsageInputs:
    """``usage_inputs`` equals ``usage_inputs_direct``; returns the fast one."""
    fast = adoption.usage_inputs(accounts, end=end, **flags)
    slow = adoption.usage_inputs_direct(accounts, end=end, **flags)
    assert fast.per_account == slow.per_account
    assert fast.cells == slow.cells
    assert {c: dict(f) for c, f in fast.features.items() if f} == {
        c: dict(f) for c, f in slow.features.items() if f
    }
    return fast


def _same_totals(accounts, end: dt.date = END) -> adoption.UsageTotals:
    """``usage_totals`` (summed by the database, stored windows where there are) equals the
    totals of the per-account direct read and the per-account contract facts; returns it."""
    as_of = end - dt.timedelta(days=1)
    fast = adoption.usage_totals(accounts, end=end, as_of=as_of)
    facts = revenue.contract_facts(accounts, days=[as_of], seats_day=as_of)
    slow = adoption.UsageTotals.of(
        adoption.usage_inputs_direct(accounts, end=end), revenue.AsOf.of(facts, as_of)
    )
    assert fast == slow
    return fast


def _usage_contracts(rng: random.Random, accounts: list[Account]) -> None:
    """Contracts on the as-of day (END − 1) for most accounts: paid and free, with and
    without seats, two on one account; some ended before it or starting on it."""
    as_of = END - dt.timedelta(days=1)
    for account in accounts:
        for _ in range(rng.choice([0, 1, 1, 2])):
            start = as_of - dt.timedelta(days=rng.choice([0, 10, 400]))
            end = rng.choice([None, as_of, as_of - dt.timedelta(days=1), END])
            ContractFactory(
                account=account,
                start_date=start,
                end_date=end if end is None or end >= start else None,
                mrr=Decimal(rng.choice(["0", "0.01", "99.99"])),
                quantity=rng.choice([None, 0, 3, 20]),
            )


def _stored(account: Account, end: dt.date = END) -> bool:
    return UsageWindow.objects.filter(account=account, end_day=end).exists()


@pytest.mark.parametrize("seed", [1, 2])
def test_stored_windows_equal_the_direct_read(
    seed, settings, monkeypatch, django_assert_num_queries
):
    settings.KEY_FEATURES = ["login", "report"]
    rng = random.Random(seed)
    accounts = _usage_book(rng)
    _usage_contracts(rng, accounts)
    everyone, smb = Account.objects.all(), Account.objects.filter(segment="SMB")
    scopes = (everyone, smb, Account.objects.filter(pk=accounts[0].pk))

    # before the first night: nothing stored, read directly
    assert not UsageWindow.objects.exists()
    _same(everyone)
    for scope in scopes:
        _same_totals(scope)

    counts = adoption.usage_windows_refresh(end=END)
    assert counts["accounts"] == len(accounts) == UsageWindow.objects.count()
    assert UsageWindowFeature.objects.exists()
    for scope in scopes:
        _same(scope)
        _same(scope, known=False, features=False)
        _same_totals(scope)
    totals = _same_totals(everyone)
    with django_assert_num_queries(2):  # the accounts with their rows and contracts, features
        adoption.usage_totals(everyone, end=END, as_of=END - dt.timedelta(days=1))
    assert totals.active > 0 and totals.seated_active > 0 and totals.features
    assert totals.customers > 0 and totals.seats > 0
    assert (
        adoption.usage_totals(Account.objects.none(), end=END, as_of=END - dt.timedelta(days=1))
        == adoption.UsageTotals()
    )
    # an end no night stored (e.g. a report ending earlier): read directly
    _same(everyone, end=END - dt.timedelta(days=3))
    _same_totals(everyone, end=END - dt.timedelta(days=3))

    # usage that changes after the night deletes the stale rows of its account only
    changed, untouched = accounts[1], accounts[2]
    _event(changed, END - dt.timedelta(days=40))  # in the previous window of END
    assert not _stored(changed) and _stored(untouched)
    _same(everyone)
    # an event on or after END changes nothing before it: the rows stay
    _event(untouched, END)
    assert _stored(untouched)
    # a user's first day long before the window changes "known": rows ending later go
    _event(untouched, END - dt.timedelta(days=200), user="veteran")
    assert not _stored(untouched)
    _same(everyone)
    for scope in scopes:
        _same_totals(scope)
    # more accounts without a row than are read by id: read with the stored ones excluded
    monkeypatch.setattr(adoption, "DIRECT_BY_ID", 1)
    _same_totals(everyone)
    monkeypatch.undo()

    # a rollup rebuild (the nightly reconcile's path) deletes and rewrites presences; a
    # rebuild of a day without events changes nothing, and the rows stay
    rebuilt, day = (
        UsageDaily.objects.filter(day__lt=END).order_by("day").values_list("account", "day")[0]
    )
    rebuilt = Account.objects.get(pk=rebuilt)
    adoption.usage_windows_refresh(end=END)
    assert _stored(rebuilt) and _stored(changed)
    quiet = UsageDaily.objects.filter(account=rebuilt).values_list("day", flat=True)
    nothing = next(d for d in (day + dt.timedelta(n) for n in range(1, 99)) if d not in quiet)
    with transaction.atomic():
        intake_events.rollups_rebuild(pairs=[(rebuilt.pk, nothing)])
    assert _stored(rebuilt)
    with transaction.atomic():
        intake_events.rollups_rebuild(pairs=[(rebuilt.pk, day)])
    assert not _stored(rebuilt)
    _same(everyone)

    # a new account has no row until the next night
    newcomer = AccountFactory(segment="SMB")
    _event(newcomer, END - dt.timedelta(days=2), user="first")
    _same(everyone)
    _same_totals(everyone)
    counts = adoption.usage_windows_refresh(end=END)
    assert counts["accounts"] == 2  # only the rows that were missing: newcomer and rebuilt
    assert _stored(newcomer)
    _same(everyone)
    _same_totals(everyone)

    # other key features: the stored key_used no longer count, read directly, then replaced
    settings.KEY_FEATURES = ["export"]
    _same(everyone)
    _same_totals(everyone)
    adoption.usage_windows_refresh(end=END)
    assert UsageWindowDay.objects.get(end_day=END).key_features == "export"
    _same(everyone)
    _same_totals(everyone)


def test_refresh_keeps_the_last_window_ends(settings):
    settings.KEY_FEATURES = []
    accounts = _usage_book(random.Random(5), n=3)
    ends = [END - dt.timedelta(days=k) for k in range(4, -1, -1)]
    for end in ends:
        adoption.usage_windows_refresh(end=end)
    kept = sorted(UsageWindowDay.objects.values_list("end_day", flat=True))
    assert kept == ends[-adoption.KEEP_WINDOW_ENDS :]
    assert set(UsageWindow.objects.values_list("end_day", flat=True)) == set(kept)
    assert UsageWindow.objects.filter(end_day=END).count() == len(accounts)
    for end in ends:
        _same(Account.objects.all(), end=end)


def test_kpi_report_is_the_same_with_and_without_stored_windows(settings):
    settings.KEY_FEATURES = ["login", "report"]
    settings.FIRST_VALUE_EVENT = "report"
    rng = random.Random(7)
    _usage_book(rng)
    _contract_book(rng, n=15)
    start = END - dt.timedelta(days=365)
    scopes = [{}, {"segment": "SMB"}]
    direct = [kpi_report(start=start, end=END, **scope) for scope in scopes]
    adoption.usage_windows_refresh(end=END)
    assert UsageWindow.objects.exists()
    assert [kpi_report(start=start, end=END, **scope) for scope in scopes] == direct


@pytest.mark.parametrize("seed", [3, 4])
def test_ticket_hours_summary_equals_the_percentiles_of_the_hours(seed):
    """The support KPIs' median and p90 (``_ticket_figures``: percentile_cont in the counts'
    aggregate on PostgreSQL) are bit for bit what ``common.percentile`` gives over the hours
    of ``_hours`` of the tickets opened in the period, and count the same tickets; tickets
    answered or resolved after ``t1`` only count for what came before it, tickets opened
    before ``t0`` not at all."""
    from metrics.kpis import support
    from metrics.kpis.common import median, percentile
    from tests.factories import TicketFactory

    rng = random.Random(seed)
    account = AccountFactory()
    t1 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    t0 = t1 - dt.timedelta(days=60)
    for _ in range(rng.randint(80, 140)):
        opened = t1 - dt.timedelta(seconds=rng.randint(3600, 90 * 86400))
        responded = opened + dt.timedelta(seconds=rng.randint(1, 30 * 86400), microseconds=7)
        resolved = responded + dt.timedelta(seconds=rng.randint(0, 40 * 86400))
        TicketFactory(
            account=account,
            opened_at=opened,
            first_response_at=responded if rng.random() < 0.9 else None,
            resolved_at=resolved if rng.random() < 0.7 else None,
        )
    in_period = Ticket.objects.filter(opened_at__gte=t0, opened_at__lt=t1)
    assert 0 < in_period.count() < Ticket.objects.count()
    response, resolution = support._hours(in_period, t1)
    assert len(response) > 10 and len(resolution) > 10 and any(r > 0 for r in resolution)
    counts, got_response, got_resolution = support._ticket_figures(Ticket.objects.all(), t0, t1)
    assert counts["opened"] == in_period.count()
    assert got_response == (median(response), percentile(response, 90), len(response))
    assert got_resolution == (median(resolution), percentile(resolution, 90), len(resolution))
    _, *nothing = support._ticket_figures(Ticket.objects.none(), t0, t1)
    assert nothing == [(None, None, 0)] * 2


@pytest.mark.parametrize("seed", [5, 6])
def test_renewal_rate_equals_a_brute_force_count(seed, settings):
    """``renewal_rate`` (an EXISTS per ending contract, counted by the database) against a
    contract-by-contract count in Python, on random contracts, with and without ``known_on``."""
    from accounts.models import Contract

    settings.RENEWAL_GRACE_DAYS = grace = 30
    rng = random.Random(seed)
    base = dt.date(2024, 1, 1)
    for _ in range(25):
        account = AccountFactory()
        day = base + dt.timedelta(days=rng.randint(-200, 200))
        for _ in range(rng.randint(1, 4)):
            end = day + dt.timedelta(days=rng.randint(20, 200))
            ContractFactory(account=account, start_date=day, end_date=end)
            day = end + dt.timedelta(days=rng.choice([1, 2, 29, 30, 31, 45]))
    contracts = list(Contract.objects.values_list("account_id", "start_date", "end_date"))
    for _ in range(6):
        start = base + dt.timedelta(days=rng.randint(-100, 150))
        end = start + dt.timedelta(days=rng.randint(30, 200))
        known_on = rng.choice([None, end - dt.timedelta(days=1), end + dt.timedelta(days=10)])
        ending = renewed = awaiting = 0
        for account_id, _, last in contracts:
            if last is None or not start <= last < end:
                continue
            ending += 1
            follows = any(
                a == account_id
                and last < first <= last + dt.timedelta(days=grace)
                and (known_on is None or first <= known_on)
                for a, first, _ in contracts
            )
            renewed += follows
            awaiting += bool(
                not follows and known_on and last + dt.timedelta(days=grace) > known_on
            )
        got = revenue.renewal_rate(Account.objects.all(), start=start, end=end, known_on=known_on)
        assert (got["inputs"]["contracts_ending"], got["inputs"]["contracts_renewed"]) == (
            ending,
            renewed,
        )
        if known_on is not None:
            assert got["inputs"]["awaiting_renewal"] == awaiting
    assert ending > 0  # the random book had contracts ending in the last period
