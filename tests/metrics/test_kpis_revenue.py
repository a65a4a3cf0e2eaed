"""Revenue and retention KPIs against small books whose figures are worked out by hand
(the arithmetic is in the comments), the movement identity on random books (hypothesis),
and null where a denominator is 0."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import Account, Contract
from metrics.kpis import kpi_report, revenue
from tests.factories import AccountFactory, ContractFactory

pytestmark = pytest.mark.django_db

D = Decimal
JAN, APR = dt.date(2024, 1, 1), dt.date(2024, 4, 1)  # Q1 2024 = [JAN, APR)


def _contract(account, start, end=None, mrr="100.00", quantity=10):
    return ContractFactory(
        account=account, start_date=start, end_date=end, mrr=D(mrr), quantity=quantity
    )


@pytest.fixture
def q1_book():
    """One account per movement, and the boundary cases, for Q1 2024."""
    a = AccountFactory(external_id="new", name="A new")
    _contract(a, dt.date(2024, 2, 1), mrr="100")  # m0 0 → m1 100: new
    b = AccountFactory(external_id="react", name="B react")
    _contract(b, dt.date(2023, 1, 1), dt.date(2023, 6, 30), mrr="50")  # paid before JAN
    _contract(b, dt.date(2024, 3, 1), mrr="80")  # m0 0 → m1 80: reactivation
    c = AccountFactory(external_id="exp", name="C exp")
    _contract(c, dt.date(2023, 6, 1), mrr="200")
    _contract(c, dt.date(2024, 2, 15), mrr="50")  # 200 → 250: expansion 50
    d = AccountFactory(external_id="contr", name="D contr")
    _contract(d, dt.date(2023, 1, 1), dt.date(2024, 1, 31), mrr="300")
    _contract(d, dt.date(2024, 2, 1), mrr="240")  # 300 → 240: contraction 60
    e = AccountFactory(external_id="churn", name="E churn")
    # last day of service = last day of the period: not a customer on APR → churn in Q1
    _contract(e, dt.date(2023, 1, 1), dt.date(2024, 3, 31), mrr="500")
    f = AccountFactory(external_id="stay", name="F stay")
    # end_date is inclusive: a contract ending ON the end day still covers it → unchanged
    _contract(f, dt.date(2023, 1, 1), dt.date(2024, 4, 1), mrr="100")
    g = AccountFactory(external_id="free", name="G free")
    _contract(g, dt.date(2023, 1, 1), mrr="0")  # never a customer
    h = AccountFactory(external_id="blip", name="H blip")
    _contract(h, dt.date(2024, 1, 10), dt.date(2024, 2, 10), mrr="70")  # 0 → 0: no movement
    i = AccountFactory(external_id="next", name="I next")
    _contract(i, dt.date(2024, 4, 1), mrr="90")  # starts on the end day: m1 = 90 → new
    AccountFactory(external_id="none", name="J none")  # no contracts at all


def test_mrr_on_a_day_sums_covering_contracts(q1_book):
    # on JAN: C 200 + D 300 + E 500 + F 100 = 1100 (G pays 0 and is no customer)
    assert revenue.mrr_on(Account.objects.all(), JAN) == {
        "mrr": D("1100.00"),
        "arr": D("13200.00"),
        "customers": 4,
    }
    # on APR: A 100 + B 80 + C 250 + D 240 + F 100 (its last day) + I 90 = 860
    assert revenue.mrr_on(Account.objects.all(), APR)["mrr"] == D("860.00")


def test_movements_by_hand(q1_book):
    mv = revenue.mrr_movements(Account.objects.all(), start=JAN, end=APR)
    assert mv.start_mrr == D("1100.00")  # C 200 + D 300 + E 500 + F 100
    assert mv.end_mrr == D("860.00")  # A 100 + B 80 + C 250 + D 240 + F 100 + I 90
    assert mv.amounts == {
        "new": D("190.00"),  # A 100 + I 90
        "reactivation": D("80.00"),  # B
        "expansion": D("50.00"),  # C 250 − 200
        "contraction": D("60.00"),  # D 300 − 240
        "churn": D("500.00"),  # E
    }
    # 1100 + 190 + 80 + 50 − 60 − 500 = 860
    assert (
        mv.start_mrr
        + sum(mv.amounts[k] for k in ("new", "reactivation", "expansion"))
        - (mv.amounts["contraction"] + mv.amounts["churn"])
        == mv.end_mrr
    )
    drill = {k: [row["external_id"] for row in rows] for k, rows in mv.accounts.items()}
    assert drill == {
        "new": ["new", "next"],  # largest first: 100, 90
        "reactivation": ["react"],
        "expansion": ["exp"],
        "contraction": ["contr"],
        "churn": ["churn"],
    }
    churned = mv.accounts["churn"][0]
    assert (churned["name"], churned["m0"], churned["m1"]) == ("E churn", D("500.00"), D("0.00"))
    assert (mv.customers_start, mv.customers_end) == (4, 6)  # CDEF; ABCDFI
    assert (mv.churned_logos, mv.gained_logos) == (1, 3)  # E; A B I


def test_retention_kpis_by_hand(q1_book):
    mv = revenue.mrr_movements(Account.objects.all(), start=JAN, end=APR)
    k = {name: item["value"] for name, item in revenue.retention_kpis(mv).items()}
    # NRR = (1100 + 50 − 60 − 500) / 1100 × 100 = 590 / 1100 × 100 = 53.63…
    assert k["nrr"] == D(590) * 100 / D(1100)
    # GRR = (1100 − 60 − 500) / 1100 × 100 = 49.09…
    assert k["grr"] == D(540) * 100 / D(1100)
    # revenue churn = (500 + 60) / 1100 × 100 = 50.90…
    assert k["revenue_churn_rate"] == D(560) * 100 / D(1100)
    # expansion rate = 50 / 1100 × 100; share = 50 / (190 + 80 + 50) × 100 = 15.625
    assert k["expansion_rate"] == D(50) * 100 / D(1100)
    assert k["expansion_share"] == D("15.625")
    # quick ratio = (190 + 80 + 50) / (60 + 500) = 320 / 560
    assert k["quick_ratio"] == D(320) / D(560)
    # logo churn = 1 (E) / 4 (C D E F) × 100 = 25; CRR = (6 − 3) / 4 × 100 = 75 = 100 − 25
    assert k["logo_churn_rate"] == D(25)
    assert k["customer_retention_rate"] == D(75)
    # ARPA = 1100 / 4 = 275
    assert k["arpa"] == D(275)


def test_lifetime_and_clv_use_the_mean_of_monthly_churn(q1_book, settings):
    settings.GROSS_MARGIN = "0.80"
    facts = revenue.contract_facts(
        Account.objects.all(), days=revenue.month_boundaries(JAN, APR) + [APR]
    )
    k = revenue.lifetime_kpis(facts, start=JAN, end=APR, arpa=D(275))
    # Jan: customers on 01-01 C D E F, all still customers on 02-01 → 0 %
    # Feb: on 02-01 A C D E F H (H: 01-10..02-10); on 03-01 H is gone → 1/6 = 16.67 %
    # Mar: on 03-01 A B C D E F; on 04-01 E is gone → 1/6 = 16.67 %
    rates = k["customer_lifetime_months"]["inputs"]["monthly_logo_churn_rates"]
    assert rates == [D(0), D(100) / 6, D(100) / 6]
    # mean = (0 + 16.67 + 16.67) / 3 = 11.11 %; lifetime = 1 / 0.1111 = 9 months
    lifetime = k["customer_lifetime_months"]["value"]
    assert abs(lifetime - 9) < D("1e-20")
    # CLV = ARPA × margin × lifetime = 275 × 0.80 × 9 = 1980
    assert abs(k["clv"]["value"] - D(1980)) < D("1e-17")


def test_lifetime_is_null_without_churn_or_without_a_whole_month():
    a = AccountFactory()
    _contract(a, dt.date(2023, 1, 1), mrr="100")
    facts = revenue.contract_facts(Account.objects.all(), days=[JAN, dt.date(2024, 2, 1)])
    k = revenue.lifetime_kpis(facts, start=JAN, end=dt.date(2024, 2, 1), arpa=D(100))
    assert k["customer_lifetime_months"]["value"] is None  # churn 0 → lifetime undefined
    assert k["clv"]["value"] is None
    short = revenue.lifetime_kpis(facts, start=JAN, end=dt.date(2024, 1, 20), arpa=D(100))
    assert short["customer_lifetime_months"]["inputs"]["months"] == 0
    assert short["clv"]["value"] is None


def test_renewal_rate_by_hand(settings):
    settings.RENEWAL_GRACE_DAYS = 30
    r1 = AccountFactory()
    _contract(r1, dt.date(2023, 4, 1), dt.date(2024, 3, 31))
    _contract(r1, dt.date(2024, 4, 1))  # next day, even after the period: renewed
    r2 = AccountFactory()
    _contract(r2, dt.date(2023, 2, 16), dt.date(2024, 2, 15))
    _contract(r2, dt.date(2024, 3, 16))  # 30 days after: renewed (grace is inclusive)
    r3 = AccountFactory()
    _contract(r3, dt.date(2023, 2, 16), dt.date(2024, 2, 15))
    _contract(r3, dt.date(2024, 3, 17))  # 31 days after: not renewed
    r4 = AccountFactory()
    _contract(r4, dt.date(2023, 2, 1), dt.date(2024, 1, 31))  # no follower
    r5 = AccountFactory()
    _contract(r5, dt.date(2023, 4, 2), dt.date(2024, 4, 1))  # ends after the period: not counted
    r6 = AccountFactory()
    _contract(r6, dt.date(2024, 1, 1))  # started before: an add-on, not a renewal
    _contract(r6, dt.date(2024, 1, 1), dt.date(2024, 3, 10))
    result = revenue.renewal_rate(Account.objects.all(), start=JAN, end=APR)
    # ending in Q1: r1 r2 r3 r4 r6 = 5; renewed r1 r2 = 2 → 2 / 5 × 100 = 40
    assert result["value"] == D(40)
    assert result["inputs"] == {"contracts_ending": 5, "contracts_renewed": 2, "grace_days": 30}


def test_cohort_table_by_hand():
    a = AccountFactory(external_id="a")
    _contract(a, dt.date(2024, 1, 15), mrr="100")
    b = AccountFactory(external_id="b")
    _contract(b, dt.date(2024, 1, 1), dt.date(2024, 2, 29), mrr="200")
    c = AccountFactory(external_id="c")
    _contract(c, dt.date(2024, 2, 10), mrr="50")
    _contract(c, dt.date(2024, 3, 1), mrr="25")
    old = AccountFactory(external_id="old")
    _contract(old, dt.date(2023, 12, 1), mrr="999")  # first paid before the period
    e = AccountFactory(external_id="e")
    _contract(e, dt.date(2024, 1, 5), mrr="0")  # a free pilot is not "becoming a customer"
    _contract(e, dt.date(2024, 3, 5), mrr="40")

    table = revenue.cohort_table(Account.objects.all(), start=JAN, end=APR)
    rows = {row["cohort"]: row for row in table["rows"]}
    assert list(rows) == ["2024-01", "2024-02", "2024-03"]

    def cells(cohort):
        return [
            (col["on"].isoformat(), col["logos"], col["mrr"]) for col in rows[cohort]["columns"]
        ]

    # first-month MRR (metrics.md) = the cohort's MRR at the end of its first month, on the
    # 1st of the next month (column 0's day)
    # 2024-01: a (100 from 01-15) and b (200 until 02-29): size 2; on 02-01 100 + 200 = 300
    assert (rows["2024-01"]["size"], rows["2024-01"]["first_mrr"]) == (2, D("300.00"))
    assert cells("2024-01") == [
        ("2024-02-01", D(100), D(100)),  # a 100 + b 200 = 300 / 300
        ("2024-03-01", D(50), D(100) * 100 / D(300)),  # b gone: 1/2 logos, 100 / 300 MRR
        ("2024-04-01", D(50), D(100) * 100 / D(300)),
    ]
    # 2024-02: c pays 50 from 02-10 and 25 more from 03-01; its first month ends on 03-01
    # with 50 + 25 = 75 (not the 50 of its first day): 75 / 75 = 100 % on 03-01 and 04-01
    assert rows["2024-02"]["first_mrr"] == D("75.00")
    assert cells("2024-02") == [("2024-03-01", D(100), D(100)), ("2024-04-01", D(100), D(100))]
    # 2024-03: e pays 40 from 03-05 (its free contract does not count): 40 on 04-01
    assert rows["2024-03"]["first_mrr"] == D("40.00")
    assert cells("2024-03") == [("2024-04-01", D(100), D(100))]


def test_cohort_base_is_the_first_month_not_the_first_day():
    """A cohort that contracts and churns inside its first month: the base is what it still
    paid when that month ended, and a cohort whose first month has not ended has no base."""
    f = AccountFactory(external_id="f")
    _contract(f, dt.date(2024, 1, 3), dt.date(2024, 1, 20), mrr="300")  # gone within January
    g = AccountFactory(external_id="g")
    _contract(g, dt.date(2024, 1, 10), dt.date(2024, 1, 24), mrr="100")
    _contract(g, dt.date(2024, 1, 25), mrr="60")  # downgraded to 60 on 01-25
    _contract(g, dt.date(2024, 2, 15), mrr="30")  # +30 from 02-15: 90 on 03-01
    h = AccountFactory(external_id="h")
    _contract(h, dt.date(2024, 3, 20), mrr="10")  # March: its month ends on 04-01 > end

    table = revenue.cohort_table(Account.objects.all(), start=JAN, end=dt.date(2024, 3, 15))
    rows = {row["cohort"]: row for row in table["rows"]}
    # January cohort f + g: first day MRR would be 300 + 100 = 400; on 02-01 it is 0 + 60 = 60
    jan = rows["2024-01"]
    assert (jan["size"], jan["first_mrr"]) == (2, D("60.00"))
    # 02-01: 1 of 2 logos (50 %), 60 / 60 = 100 %; 03-01: 90 / 60 × 100 = 150 %
    assert [(c["on"].isoformat(), c["logos"], c["mrr"]) for c in jan["columns"]] == [
        ("2024-02-01", D(50), D(100)),
        ("2024-03-01", D(50), D(150)),
    ]
    assert "2024-03" not in rows  # h first paid on 03-20, after end
    partial = revenue.cohort_table(Account.objects.all(), start=JAN, end=dt.date(2024, 1, 31))
    [row] = partial["rows"]
    assert (row["cohort"], row["first_mrr"], row["columns"]) == ("2024-01", None, [])


def test_revenue_ratios_are_null_on_an_empty_book():
    report = kpi_report(start=JAN, end=APR)
    retention = report["retention"]
    for name in (
        "nrr",
        "grr",
        "revenue_churn_rate",
        "expansion_rate",
        "expansion_share",
        "quick_ratio",
        "logo_churn_rate",
        "customer_retention_rate",
        "arpa",
        "renewal_rate",
        "customer_lifetime_months",
        "clv",
    ):
        assert retention[name]["value"] is None, name
    assert report["revenue"]["mrr_start"]["value"] == "0.00"


def test_quick_ratio_is_null_without_losses_and_share_null_without_gains():
    a = AccountFactory()
    _contract(a, dt.date(2023, 1, 1), mrr="100")
    mv = revenue.mrr_movements(Account.objects.all(), start=JAN, end=APR)
    k = revenue.retention_kpis(mv)
    assert k["nrr"]["value"] == D(100)  # (100 + 0 − 0 − 0) / 100 × 100
    assert k["quick_ratio"]["value"] is None  # 0 / 0: no losses
    assert k["expansion_share"]["value"] is None  # no gains


def test_report_carries_movements_and_identity_as_strings(q1_book):
    report = kpi_report(start=JAN, end=APR, segment="SMB")
    rev = report["revenue"]
    assert rev["mrr_start"]["value"] == "1100.00"
    assert rev["churn_mrr"] == {"value": "500.00", "unit": "USD", "inputs": {"accounts": 1}}
    assert rev["net_new_mrr"]["value"] == "-240.00"  # 190 + 80 + 50 − 60 − 500
    assert rev["net_new_mrr"]["inputs"]["identity_holds"] is True
    assert D(report["retention"]["nrr"]["value"]) == D(590) * 100 / D(1100)


def test_scope_by_account_and_segment(q1_book):
    Account.objects.filter(external_id__in=["exp", "churn"]).update(segment="ENT")
    ent = kpi_report(start=JAN, end=APR, segment="ENT")["revenue"]
    assert ent["mrr_start"]["value"] == "700.00"  # C 200 + E 500
    assert ent["mrr_end"]["value"] == "250.00"  # C 250
    one = kpi_report(start=JAN, end=APR, account="exp")["retention"]
    assert D(one["nrr"]["value"]) == D(125)  # (200 + 50) / 200 × 100


# --- the identity on random books ---------------------------------------------------------

BASE = dt.date(2023, 1, 1)
MRRS = [D("0"), D("0.01"), D("19.99"), D("100.00"), D("250.50"), D("1234.56")]
ONE = dt.timedelta(days=1)


@st.composite
def book_and_period(draw):
    """A period ``[t0, t1)`` and up to 8 accounts of up to 4 contracts each. A contract's
    days are often the period's own edges (the day before, on and after ``t0``, ``t1 − 1``
    and ``t1``), where the rules change (a contract ending on ``t1 − 1`` is churn, one ending
    on ``t1`` is not), and otherwise any day of two years around it; an end drawn before
    its start makes a one-day contract (``end_date == start_date``). Some periods are years
    long."""
    t0 = BASE + dt.timedelta(days=draw(st.integers(0, 500)))
    # up to 200 days, or 3 to 6 years: over 62 days to look at (month edges and cohort
    # days), where PostgreSQL's per-account flags no longer fit a bigint (book_summary)
    length = draw(st.one_of(st.integers(1, 200), st.integers(1000, 2200)))
    t1 = t0 + dt.timedelta(days=length)
    edges = [t0 - ONE, t0, t0 + ONE, t1 - ONE, t1, t1 + ONE]
    day = st.one_of(
        st.sampled_from(edges), st.integers(0, 730).map(lambda n: BASE + dt.timedelta(days=n))
    )
    contract = st.tuples(day, st.one_of(st.none(), day), st.sampled_from(MRRS)).map(
        lambda c: (c[0], None if c[1] is None else max(c[0], c[1]), c[2])
    )
    book = draw(st.lists(st.lists(contract, max_size=4), min_size=1, max_size=8))
    return book, t0, t1


def _mrr(contracts, day):
    return sum(
        (m for s, e, m in contracts if s <= day and (e is None or day <= e)),
        D(0),
    )


def _movement(contracts, t0, t1):
    """(kind, amount) of one account by metrics.md's table, from its raw contracts."""
    m0, m1 = _mrr(contracts, t0), _mrr(contracts, t1)
    if m0 == 0 and m1 > 0:
        paid_before = any(s < t0 and m > 0 for s, _, m in contracts)
        return ("reactivation" if paid_before else "new"), m1
    if m0 > 0 and m1 > m0:
        return "expansion", m1 - m0
    if m0 > 0 and 0 < m1 < m0:
        return "contraction", m0 - m1
    if m0 > 0 and m1 == 0:
        return "churn", m0
    return None, D(0)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(drawn=book_and_period())
def test_identity_holds_on_random_books(drawn):
    book, t0, t1 = drawn
    Contract.objects.all().delete()
    Account.objects.all().delete()
    accounts = Account.objects.bulk_create(
        [Account(external_id=f"R{i}", name=f"R{i}") for i in range(len(book))]
    )
    rows = [
        Contract(
            account=account,
            external_id=f"{account.external_id}-{n}",
            start_date=start,
            end_date=end,
            mrr=mrr,
        )
        for account, contracts in zip(accounts, book, strict=True)
        for n, (start, end, mrr) in enumerate(contracts)
    ]
    Contract.objects.bulk_create(rows)

    # the expected movements, account by account from the raw rows
    amounts, counts = dict.fromkeys(revenue.MOVEMENTS, D(0)), dict.fromkeys(revenue.MOVEMENTS, 0)
    for contracts in book:
        kind, amount = _movement(contracts, t0, t1)
        if kind:
            amounts[kind] += amount
            counts[kind] += 1
    start_mrr = sum((_mrr(c, t0) for c in book), D(0))
    end_mrr = sum((_mrr(c, t1) for c in book), D(0))

    # per-account facts (the movements drill-down) and the database's sums (the report)
    summary = revenue.book_summary(Account.objects.all(), start=t0, end=t1, as_of=None)
    for mv in (revenue.mrr_movements(Account.objects.all(), start=t0, end=t1), summary.movements):
        a = mv.amounts
        assert mv.end_mrr == (
            mv.start_mrr
            + a["new"]
            + a["reactivation"]
            + a["expansion"]
            - a["contraction"]
            - a["churn"]
        )
        assert (mv.start_mrr, mv.end_mrr) == (start_mrr, end_mrr)
        assert a == amounts
        assert mv.counts == counts
    # and the monthly figures the database sums (whole months of the lifetime, cohort days)
    # are those of the per-account facts on the same edge contracts
    days = {t0, t1, *revenue.month_boundaries(t0, t1), *revenue.cohort_days(t0, t1)}
    facts = revenue.contract_facts(Account.objects.all(), days=days)
    assert revenue.lifetime_from_counts(
        summary.at_start, summary.lost, arpa=D(10), start=t0
    ) == revenue.lifetime_kpis(facts, start=t0, end=t1, arpa=D(10))
    assert revenue.cohort_table_from_sums(summary.cohorts, end=t1) == revenue.cohort_table(
        Account.objects.all(), start=t0, end=t1, facts=facts
    )
