"""The KPI engine on edge books and edge periods, through both doors (the API for each role,
``manage.py kpis``) and the functions: scopes with nothing to divide by, an option given
twice on the command line, a ``period`` + ``date`` that starts after today, the movement
identity on contracts that start and end on the period's own days, and the cohort table's
empty and unfinished months."""

from __future__ import annotations

import datetime as dt
import io
import json
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command, load_command_class
from django.urls import reverse

from accounts import utc
from metrics.kpis import cohorts_report, kpi_report
from metrics.kpis.common import change_text, pct_text
from tests.factories import (
    AccountFactory,
    ContractFactory,
    InvoiceFactory,
    TicketFactory,
    token_client,
)
from tests.metrics.usage import load_events

pytestmark = pytest.mark.django_db

Q1 = ["--start", "2024-01-01", "--end", "2024-04-01"]


# --- the command line: an option given twice ------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--start", "2024-01-01", "--start", "2024-02-01", "--end", "2024-04-01"],
            "--start: given 2 times (“2024-01-01”, “2024-02-01”): give it once",
        ),
        (
            [*Q1, "--end", "2024-05-01"],
            "--end: given 2 times (“2024-04-01”, “2024-05-01”): give it once",
        ),
        (
            [*Q1, "--segment", "SMB", "--segment", "ENT"],
            "--segment: given 2 times (“SMB”, “ENT”): give it once",
        ),
        (
            [*Q1, "--owner", "a@example.com", "--owner", "b@example.com", "--owner", "c@x.io"],
            "--owner: given 3 times (“a@example.com”, “b@example.com”, “c@x.io”): give it once",
        ),
        (
            [*Q1, "--account", "a1", "--account", "a1"],
            "--account: given 2 times (“a1”, “a1”): give it once",
        ),
        (
            ["--period", "month", "--period", "year"],
            "--period: given 2 times (“month”, “year”): give it once",
        ),
        (
            ["--period", "month", "--date", "2024-01-15", "--date", "2024-02-15"],
            "--date: given 2 times (“2024-01-15”, “2024-02-15”): give it once",
        ),
    ],
)
def test_the_command_refuses_an_option_given_twice(args, message):
    """argparse keeps the last of a repeated option: ``--segment SMB --segment ENT`` printed
    ENT's KPIs and ``--start`` twice the second period, where the API answers 400."""
    AccountFactory(segment="SMB")
    AccountFactory(segment="ENT")
    with pytest.raises(CommandError) as caught:
        call_command("kpis", *args, "--json", stdout=io.StringIO())
    assert str(caught.value) == message


def test_a_repeated_option_on_the_command_line_is_one_line_and_exit_1(capsys):
    """As typed in a shell (``run_from_argv``): one line on stderr and status 1."""
    err = io.StringIO()
    cmd = type(load_command_class("metrics", "kpis"))(stderr=err)
    with pytest.raises(SystemExit) as exited:
        cmd.run_from_argv(["manage.py", "kpis", *Q1, "--segment", "SMB", "--segment", "ENT"])
    assert exited.value.code == 1
    assert err.getvalue().strip().splitlines() == [
        "CommandError: --segment: given 2 times (“SMB”, “ENT”): give it once"
    ]
    assert "usage:" not in capsys.readouterr().err


def test_the_command_still_takes_each_option_once_and_by_keyword():
    AccountFactory(segment="SMB")
    out = io.StringIO()
    call_command("kpis", *Q1, "--segment", "SMB", "--json", stdout=out)
    assert '"segment": "SMB"' in out.getvalue()
    out = io.StringIO()
    call_command("kpis", start="2024-01-01", end="2024-04-01", segment="SMB", stdout=out)
    assert "scope: segment=SMB" in out.getvalue()


# --- a period + date that starts after today ---------------------------------------------


@pytest.mark.parametrize(
    ("period", "day", "first"),
    [("month", "2999-01-15", "2999-01-01"), ("quarter", "2999-05-31", "2999-04-01")],
)
def test_a_period_around_a_future_date_is_an_error_on_date(admin_user, period, day, first):
    """The caller gave ``period`` and ``date``, not ``start``: the 400 names ``date`` (it named
    ``start``, a parameter nobody gave)."""
    today = utc.today()
    words = (
        f"the {period} containing {day} starts on {first}, after today ({today}, UTC): "
        "there is nothing to report yet"
    )
    for name in ("kpis:report", "kpis:movements", "kpis:cohorts"):
        r = token_client(admin_user).get(reverse(name), {"period": period, "date": day})
        assert r.status_code == 400, r.content
        assert r.json() == {"date": [words]}
    with pytest.raises(CommandError) as caught:
        call_command("kpis", "--period", period, "--date", day, stdout=io.StringIO())
    assert str(caught.value) == f"--date: {words}"


# --- a rate next to 100, 0 or −100 in the table ---------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (-100, "-100.0"),  # a usage trend when the events stopped: read ">99.9999"
        (-99.99999, "<-99.9999"),  # read ">99.9999"
        (100.000001, "<100.0001"),  # NRR just above 100: read ">99.9999", i.e. below
        (-0.00001, ">-0.0001"),  # a trend just below 0: read "<0.0001", a rise
        (99.99999, ">99.9999"),
        (0.00001, "<0.0001"),
        (-99.96, "-99.96"),  # one decimal would say -100.0
        (-37.25, "-37.2"),
    ],
)
def test_pct_text_keeps_the_sign_and_the_side_of_100(value, text):
    assert pct_text(value) == text


@pytest.mark.parametrize(
    ("change", "unit", "signed", "text"),
    [
        (Decimal("-25"), "%", True, "−25.0 pp"),  # NRR 100 % → 75 %: 25 points
        (Decimal("-25"), "pct", True, "−25.0 pp"),  # the dashboard's name of the same unit
        (Decimal("-0.01"), "pct", True, "−0.01 pp"),  # one decimal would say −0.0
        (Decimal("1234.56"), "money", True, "+$1,234.56"),  # CURRENCY=USD in the tests
        (Decimal("1.5"), "days", True, "+1.5 days"),
        (Decimal("2"), "hours", False, "2.0 hours"),  # a target's max change: no sign
        (Decimal("0.04"), "", True, "+0.04"),  # an NPS moved by 0.04: not "+0.0"
    ],
)
def test_change_text_speaks_each_unit(change, unit, signed, text):
    assert change_text(change, unit, signed=signed) == text


def test_change_text_writes_money_with_the_callers_form():
    # the dashboard's tile: the short form from 50 cents on
    assert change_text(Decimal("-1500"), "money", money=lambda v: f"${v / 1000:.1f}k") == "−$1.5k"


def test_the_command_table_shows_an_nrr_just_above_100_as_above_it():
    """NRR = (1,000,000.00 + 0.01 expansion) / 1,000,000.00 × 100 = 100.000001: the table
    printed ">99.9999", a retention below 100, for a book that lost nothing."""
    account = AccountFactory()
    ContractFactory(account=account, start_date=dt.date(2023, 1, 1), mrr=Decimal("1000000.00"))
    ContractFactory(account=account, start_date=dt.date(2024, 2, 1), mrr=Decimal("0.01"))
    out = io.StringIO()
    call_command("kpis", *Q1, stdout=out)
    [nrr] = [line for line in out.getvalue().splitlines() if line.split()[:1] == ["nrr"]]
    assert nrr.split()[1:3] == ["<100.0001", "%"]


# --- scopes with nothing to divide by ---------------------------------------------------------

# every KPI of metrics.md that is a ratio: with no customers, usage, tickets, invoices or
# answers in the scope each has a denominator of 0, so null, never 0
RATIOS = {
    "retention": [
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
    ],
    "adoption": [
        "seat_utilisation",
        "dau_pct",
        "wau_pct",
        "stickiness",
        "key_feature_adoption",
        "usage_trend_events",
        "usage_trend_active_users",
    ],
    "support": ["tickets_per_account", "tickets_per_100_seats", "fcr"],
    "billing": ["dso"],
    "voice_of_customer": ["nps", "csat", "ces", "response_rate"],
}


@pytest.fixture
def churned_book(csm, settings):
    """The CSM's only account (segment SMB, external id "gone") paid 100 until 2023-06-30;
    someone else's (ENT) pays 300 through Q1 2024 with a ticket and an invoice in it."""
    settings.KEY_FEATURES = ["login"]
    gone = AccountFactory(external_id="gone", owner=csm, segment="SMB")
    ContractFactory(
        account=gone,
        start_date=dt.date(2022, 1, 1),
        end_date=dt.date(2023, 6, 30),
        mrr=Decimal("100.00"),
    )
    live = AccountFactory(external_id="live", segment="ENT")
    ContractFactory(account=live, start_date=dt.date(2023, 1, 1), mrr=Decimal("300.00"))
    TicketFactory(account=live, opened_at=dt.datetime(2024, 2, 1, 9, tzinfo=dt.UTC))
    InvoiceFactory(account=live, issued_on=dt.date(2024, 2, 1), amount=Decimal("300.00"))
    return gone


def _no_ratio(report: dict) -> None:
    for section, names in RATIOS.items():
        for name in names:
            assert report[section][name]["value"] is None, (section, name)
    revenue = report["revenue"]
    assert (revenue["mrr_start"]["value"], revenue["customers_start"]["value"]) == ("0.00", 0)
    # the inputs are still there, so the n/a can be checked
    assert report["retention"]["nrr"]["inputs"]["start_mrr"] == "0.00"
    assert report["retention"]["logo_churn_rate"]["inputs"] == {
        "customers_start": 0,
        "churned_customers": 0,
    }
    assert report["support"]["ticket_volume"]["value"] == 0  # a count: a real 0


@pytest.mark.parametrize(
    "scope", [{"segment": "SMB"}, {"owner": "csm@example.com"}, {"account": "gone"}]
)
def test_a_scope_that_churned_before_the_period_has_no_ratio_at_either_door(
    churned_book, admin_user, manager, csm, scope
):
    q1 = {"start": "2024-01-01", "end": "2024-04-01"}
    for user in (admin_user, manager, csm):
        r = token_client(user).get(reverse("kpis:report"), {**q1, **scope})
        assert r.status_code == 200, (user.email, r.content)
        _no_ratio(r.json())
    [(option, value)] = scope.items()
    out = io.StringIO()
    call_command("kpis", *Q1, f"--{option}", value, "--json", stdout=out)
    _no_ratio(json.loads(out.getvalue()))
    out = io.StringIO()
    call_command("kpis", *Q1, f"--{option}", value, stdout=out)
    lines = {line.split()[0]: line for line in out.getvalue().splitlines() if line[:2] == "  "}
    for names in RATIOS.values():
        for name in names:
            assert lines[name].split()[1] == "n/a", lines[name]
    assert "start_mrr=0.00 expansion=0.00 contraction=0.00 churn=0.00" in lines["nrr"]


# --- the cohort table's empty and unfinished months ----------------------------------------


def test_cohorts_with_no_base_no_later_month_and_the_current_month(admin_user):
    """Today is 2024-03-24 (``today``): Q1 is reported through today, end 2024-03-25, so the
    cohort days are 02-01 and 03-01 (04-01 is after the end).

    - 2024-01 "jan": pays 100 from 01-05, +20 from 02-15. Base (MRR on 02-01) 100.00; k=0
      on 02-01: 100/100 = 100 %; k=1 on 03-01: 120/100 × 100 = 120 %, 1 of 1 logo = 100 %.
    - 2024-02 "blip": pays 50 from 02-10 to 02-19 only. Base (on 03-01) 0.00: its mrr
      retention has nothing to divide by (null), while 0 of 1 logo is a real 0 %.
    - 2024-03 "late": first pays on 03-20, the current month: its base day 04-01 is after
      the end, so no base (null) and no column yet.
    - December 2023 is in no row: nobody first paid in it ("old" paid before the period).
    """
    jan = AccountFactory(external_id="jan")
    ContractFactory(account=jan, start_date=dt.date(2024, 1, 5), mrr=Decimal("100.00"))
    ContractFactory(account=jan, start_date=dt.date(2024, 2, 15), mrr=Decimal("20.00"))
    blip = AccountFactory(external_id="blip")
    ContractFactory(
        account=blip,
        start_date=dt.date(2024, 2, 10),
        end_date=dt.date(2024, 2, 19),
        mrr=Decimal("50.00"),
    )
    late = AccountFactory(external_id="late")
    ContractFactory(account=late, start_date=dt.date(2024, 3, 20), mrr=Decimal("70.00"))
    old = AccountFactory(external_id="old")
    ContractFactory(account=old, start_date=dt.date(2023, 6, 1), mrr=Decimal("10.00"))

    def column(k, on, customers, logos, amount, mrr):
        return {
            "k": k,
            "on": on,
            "customers": customers,
            "logos": logos,
            "mrr_amount": amount,
            "mrr": mrr,
        }

    expected = [
        {
            "cohort": "2024-01",
            "size": 1,
            "first_mrr": "100.00",
            "columns": [
                column(0, "2024-02-01", 1, "100", "100.00", "100"),
                column(1, "2024-03-01", 1, "100", "120.00", "120"),
            ],
        },
        {
            "cohort": "2024-02",
            "size": 1,
            "first_mrr": "0.00",
            "columns": [column(0, "2024-03-01", 0, "0", "0.00", None)],
        },
        {"cohort": "2024-03", "size": 1, "first_mrr": None, "columns": []},
    ]
    today = dt.date(2024, 3, 24)
    q1 = {"start": dt.date(2023, 12, 1), "end": dt.date(2024, 4, 1), "today": today}
    # the report sums the cohorts in the database, the cohorts endpoint from each account
    report = kpi_report(**q1)
    assert report["period"]["end"] == "2024-03-25" and report["period"]["to_date"] is True
    assert report["cohorts"]["rows"] == expected
    assert cohorts_report(**q1)["rows"] == expected
    # the same period asked for with that end, at both doors
    asked = {"start": "2023-12-01", "end": "2024-03-25"}
    r = token_client(admin_user).get(reverse("kpis:cohorts"), asked)
    assert r.status_code == 200 and r.json()["rows"] == expected
    out = io.StringIO()
    call_command("kpis", "--start", asked["start"], "--end", asked["end"], stdout=out)
    rows = [line.split() for line in out.getvalue().splitlines() if line.startswith("  2024-")]
    assert rows == [
        ["2024-01", "(", "1)", "100.0/100.0", "100.0/120.0"],
        ["2024-02", "(", "1)", "0.0/n/a"],
        ["2024-03", "(", "1)"],
    ]


# --- every edge period on a full book ----------------------------------------------------------


@pytest.fixture
def full_book(csm):
    """Contracts starting and ending on edge days (a 29 February, month ends, one-day
    contracts), seats, usage, a ticket and an invoice."""
    ent = AccountFactory(external_id="ent", owner=csm, segment="ENT")
    ContractFactory(account=ent, start_date=dt.date(2020, 2, 29), mrr=Decimal("500.00"))
    ContractFactory(
        account=ent,
        start_date=dt.date(2024, 1, 31),
        end_date=dt.date(2024, 2, 29),
        mrr=Decimal("50.00"),
        quantity=5,
    )
    smb = AccountFactory(external_id="smb", segment="SMB")
    ContractFactory(
        account=smb,
        start_date=dt.date(2024, 2, 29),
        end_date=dt.date(2024, 2, 29),
        mrr=Decimal("30.00"),
    )
    ContractFactory(
        account=smb,
        start_date=dt.date(2023, 3, 31),
        end_date=dt.date(2024, 3, 30),
        mrr=Decimal("80.00"),
    )
    load_events(
        (ent, user, "login", dt.datetime(2024, 2, day, 12, tzinfo=dt.UTC))
        for user, day in (("u1", 28), ("u1", 29), ("u2", 29))
    )
    TicketFactory(account=ent, opened_at=dt.datetime(2024, 2, 29, 9, tzinfo=dt.UTC))
    InvoiceFactory(account=smb, issued_on=dt.date(2024, 2, 29), due_on=dt.date(2024, 3, 31))


TOMORROW = utc.today() + dt.timedelta(days=1)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2024-02-29", "2024-03-01"),  # one day: the leap day
        ("2024-02-28", "2024-03-02"),  # across it
        ("2024-01-31", "2024-05-31"),  # from a 31st: months end 02-29, 03-31, 04-30, 05-31
        ("2024-03-31", "2024-04-01"),  # a one-day month end
        ("2010-01-01", "2011-01-01"),  # before the first contract
        ("2004-02-29", "2024-02-29"),  # the longest period: 20 years from a 29 February
        ("2024-01-01", (TOMORROW + dt.timedelta(days=400)).isoformat()),  # cut to date
    ],
)
def test_every_edge_period_on_a_full_book_answers_at_both_doors(admin_user, full_book, start, end):
    r = token_client(admin_user).get(reverse("kpis:report"), {"start": start, "end": end})
    assert r.status_code == 200, r.content
    report = r.json()
    period = report["period"]
    assert period["start"] == start and period["requested_end"] == end
    assert period["end"] == min(dt.date.fromisoformat(end), TOMORROW).isoformat()
    revenue = report["revenue"]
    assert revenue["net_new_mrr"]["inputs"]["identity_holds"] is True
    net = Decimal(revenue["net_new_mrr"]["value"])
    assert Decimal(revenue["mrr_start"]["value"]) + net == Decimal(revenue["mrr_end"]["value"])
    for row in report["cohorts"]["rows"]:  # no cohort day after the end
        assert all(column["on"] <= period["end"] for column in row["columns"])
    out = io.StringIO()
    call_command("kpis", "--start", start, "--end", end, "--json", stdout=out)
    assert json.loads(out.getvalue()) == report


def test_the_leap_day_alone_by_hand(admin_user, full_book):
    """[2024-02-29, 2024-03-01). On 02-29: ent 500 + 50 = 550, smb 30 + 80 = 110, start MRR
    660; on 03-01 the one-day and the month contracts are over: ent 500, smb 80, end 580.
    Two contractions: 50 + 30 = 80 (660 − 80 = 580). NRR = GRR = 580 / 660 × 100. Seats on
    02-29 (each contract 10 unless said): ent 10 + 5, smb 10 + 10 = 35; active in the 30
    days to 02-29: u1, u2 of ent = 2, so 2 / 35 × 100; the ticket of 02-29: 1 / 35 × 100
    per 100 seats."""
    r = token_client(admin_user).get(
        reverse("kpis:report"), {"start": "2024-02-29", "end": "2024-03-01"}
    )
    report = r.json()
    revenue, retention = report["revenue"], report["retention"]
    assert (revenue["mrr_start"]["value"], revenue["mrr_end"]["value"]) == ("660.00", "580.00")
    assert revenue["contraction_mrr"] == {
        "value": "80.00",
        "unit": "USD",
        "inputs": {"accounts": 2},
    }
    assert Decimal(retention["nrr"]["value"]) == Decimal("580.00") * 100 / Decimal("660.00")
    assert retention["grr"]["value"] == retention["nrr"]["value"]
    assert retention["customer_lifetime_months"]["value"] is None  # no whole month in a day
    adoption = report["adoption"]["seat_utilisation"]
    assert adoption["inputs"]["licensed_seats"] == 35
    assert Decimal(adoption["value"]) == Decimal(2) * 100 / Decimal(35)
    per_seat = report["support"]["tickets_per_100_seats"]["value"]
    assert Decimal(per_seat) == Decimal(1) * 100 / Decimal(35)
