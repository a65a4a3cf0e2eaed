"""The KPI engine on edge books and edge periods, through both doors (the API for each role,
``manage.py kpis``) and the functions: scopes with nothing to divide by, an option given
twice on the command line, a ``period`` + ``date`` that starts after today, the movement
identity on contracts that start and end on the period's own days, and the cohort table's
empty and unfinished months."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from accounts import utc
from metrics.kpis.common import pct_text
from tests.factories import AccountFactory, ContractFactory, token_client

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
