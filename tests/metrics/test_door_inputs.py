"""What the KPI doors accept, through the doors themselves (the API with a token, the
commands with call_command or their command line): a day is exactly YYYY-MM-DD at every
door; a parameter given empty or twice is an error naming it, not the whole book or the
last value; a command's bad day is one line, not argparse's usage block. And the figures
the reviewer read off the report: exact lifetimes, the months the mean is over, the
accounts with a contract in force in the period."""

from __future__ import annotations

import datetime as dt
import io
import json
from decimal import Decimal
from fractions import Fraction

import pytest
from django.core.management import CommandError, call_command, load_command_class
from django.urls import reverse

from accounts.days import parse_day
from accounts.intake import cells
from accounts.models import Account
from metrics.kpis import revenue
from metrics.models import PipelineRun
from tests.factories import AccountFactory, ContractFactory, InvoiceFactory, token_client

Q1 = {"start": "2024-01-01", "end": "2024-04-01"}
# each read as 1 Oct 2026 or 5 Jan 2026 by date.fromisoformat or Django's parse_date
LOOSE = ["2026-1-5", "20261001", "2026-W40-4", " 2026-10-01", "2026-10-01T00:00"]


def _kpis_args(start: str, end: str) -> list[str]:
    return ["--start", start, "--end", end]


def _shown(raw: str) -> str:
    return f"“{raw}” is not a date: use YYYY-MM-DD, e.g. 2026-03-01"


# --- one parser ---------------------------------------------------------------------------


@pytest.mark.parametrize("raw", LOOSE)
def test_the_parser_takes_only_yyyy_mm_dd(raw):
    with pytest.raises(ValueError, match="is not a date: use YYYY-MM-DD"):
        parse_day(raw)
    assert parse_day("2026-10-01") == dt.date(2026, 10, 1)
    with pytest.raises(ValueError, match="2026-02-29 is not a valid date"):
        parse_day("2026-02-29")  # the right shape, no such day


@pytest.mark.parametrize("raw", ["2026-W40-4", "20261001", "2026-1-5"])
def test_an_import_cell_takes_only_yyyy_mm_dd_too(raw):
    # "2026-W40-4" is ten characters, like a day: the length check let it through
    with pytest.raises(ValueError, match=r"not a date: .* \(expected YYYY-MM-DD\)"):
        cells.date(raw)
    assert cells.date(" 2026-10-01 ") == dt.date(2026, 10, 1)  # cells are trimmed


# --- the API ------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("raw", LOOSE)
@pytest.mark.parametrize(
    ("url", "params", "field"),
    [
        ("kpis:report", {"end": "2026-11-01"}, "start"),
        ("kpis:movements", {"start": "2026-01-01"}, "end"),
        ("kpis:cohorts", {"period": "month"}, "date"),
        ("api:contract-list", {}, "active_on"),
        ("api:invoice-list", {}, "issued_after"),
    ],
)
def test_the_api_refuses_a_day_that_is_not_yyyy_mm_dd(admin_user, url, params, field, raw):
    r = token_client(admin_user).get(reverse(url), {**params, field: raw})
    assert r.status_code == 400, r.content
    assert r.json()[field] == [_shown(raw)]


@pytest.mark.django_db
def test_the_health_endpoints_and_bodies_refuse_it_too(admin_user, csm):
    account = AccountFactory(owner=csm)
    client = token_client(admin_user, scope="write")
    history = reverse("health-api:history", args=[account.pk])
    r = client.get(history, {"start": "2026-W40-4", "end": "2026-11-01"})
    assert r.status_code == 400 and r.json() == {"start": [_shown("2026-W40-4")]}
    changes = reverse("health-api:changes", args=[account.pk])
    r = client.get(changes, {"from": "2026-1-5"})
    assert r.status_code == 400 and r.json() == {"from": [_shown("2026-1-5")]}
    milestones = reverse("api:milestone-list", kwargs={"account_id": account.pk})
    r = client.post(milestones, {"kind": "first_value", "reached_on": "20261001"}, format="json")
    assert r.status_code == 400 and r.json()["reached_on"] == [_shown("20261001")]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({**Q1, "segment": ""}, "segment", "empty: give a value, or leave segment out"),
        ({**Q1, "owner": ""}, "owner", "empty: give a value, or leave owner out"),
        ({**Q1, "account": " "}, "account", "empty: give a value, or leave account out"),
        ({"start": "", "end": "2024-04-01"}, "start", "empty: give a day (YYYY-MM-DD), or "),
        (
            {**Q1, "segment": ["SMB", "Enterprise"]},
            "segment",
            "given 2 times (“SMB”, “Enterprise”): give it once",
        ),
        (
            {"start": ["2024-01-01", "2024-02-01"], "end": "2024-04-01"},
            "start",
            "given 2 times (“2024-01-01”, “2024-02-01”): give it once",
        ),
    ],
)
def test_an_empty_or_repeated_parameter_is_a_400_naming_it(admin_user, params, field, message):
    AccountFactory(segment="SMB")
    AccountFactory(segment="Enterprise")
    for url in ("kpis:report", "kpis:movements", "kpis:cohorts"):
        r = token_client(admin_user).get(reverse(url), params)
        assert r.status_code == 400, r.content
        assert list(r.json()) == [field]
        assert r.json()[field][0].startswith(message)


@pytest.mark.django_db
def test_the_health_changes_refuse_an_empty_or_repeated_day(csm):
    account = AccountFactory(owner=csm)
    url = reverse("health-api:changes", args=[account.pk])
    r = token_client(csm).get(url, {"to": ""})
    assert r.status_code == 400
    assert r.json() == {"to": ["empty: give a day (YYYY-MM-DD), or leave to out"]}
    r = token_client(csm).get(url, {"to": ["2024-03-01", "2024-03-02"]})
    assert r.json() == {"to": ["given 2 times (“2024-03-01”, “2024-03-02”): give it once"]}


# --- the commands ---------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("raw", LOOSE)
def test_the_kpis_command_refuses_the_same_days(raw):
    with pytest.raises(CommandError) as caught:
        call_command("kpis", "--start", raw, "--end", "2026-11-01", stdout=io.StringIO())
    assert str(caught.value) == f"--start: {_shown(raw)}"


@pytest.mark.django_db
@pytest.mark.parametrize("option", ["--segment", "--owner", "--account"])
def test_the_kpis_command_refuses_an_empty_scope(option):
    AccountFactory()
    with pytest.raises(CommandError) as caught:
        call_command("kpis", *_kpis_args(*Q1.values()), option, "", stdout=io.StringIO())
    name = option[2:]
    assert str(caught.value).startswith(f"{option}: empty: name ")
    assert str(caught.value).endswith(f"or leave {name} out for every account")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("command", "args", "option"),
    [
        ("recompute", ["--from", "2026-W40-4", "--to", "2026-10-02"], "--from"),
        ("recompute", ["--from", "2026-10-01", "--to", "20261002"], "--to"),
        ("backtest", ["--as-of", "2026-1-5"], "--as-of"),
        ("run_pipeline", ["--as-of", "20261001"], "--as-of"),
        ("voice_refresh", ["--as-of", "2026-W40-4"], "--as-of"),
        ("seed_demo", ["--today", "2026-1-5", "--accounts", "1"], "--today"),
    ],
)
def test_every_command_reads_its_days_the_same_way(command, args, option):
    raw = args[args.index(option) + 1]
    with pytest.raises(CommandError) as caught:
        call_command(command, *args, stdout=io.StringIO())
    assert str(caught.value) == f"{option}: {_shown(raw)}"
    assert not PipelineRun.objects.exists() and not Account.objects.exists()  # nothing written


@pytest.mark.parametrize(
    ("app", "command", "args"),
    [
        ("metrics", "kpis", _kpis_args("2026-1-5", "2026-11-01")),
        ("metrics", "recompute", ["--from", "2026-1-5", "--to", "2026-11-01"]),
    ],
)
def test_a_bad_day_on_the_command_line_is_one_line_and_exit_1(capsys, app, command, args):
    """As typed in a shell (``run_from_argv``): ``CommandError: --start: …`` on stderr and
    exit status 1, like the commands' other errors; not argparse's usage block and 2. The
    day is refused before anything touches the database."""
    err = io.StringIO()
    cmd = type(load_command_class(app, command))(stderr=err)
    with pytest.raises(SystemExit) as exited:
        cmd.run_from_argv(["manage.py", command, *args])
    assert exited.value.code == 1
    lines = err.getvalue().strip().splitlines()
    assert lines == [f"CommandError: {args[0]}: {_shown('2026-1-5')}"]
    assert "usage:" not in capsys.readouterr().err


# --- the figures --------------------------------------------------------------------------


@pytest.fixture
def q1_2024(settings):
    """The first quarter of 2024, month by month (customers on each month's first day, and
    how many of them are gone on the next month's first day):

    - Jan: A and B (100 each, 2023-12-01 .. 2024-01-31) are the customers on 01-01; both
      are gone on 02-01: 2 of 2 lost, 100 %.
    - Feb: nobody is a customer on 02-01: the month is skipped (no rate).
    - Mar: C1..C7 (from 2024-02-15) are the customers on 03-01; C7 ends 2024-03-31, so on
      04-01 1 of 7 is gone: 14.2857… %.

    Also: J's contract ended in 2022; K's starts on 04-01 (the end day: new MRR of March);
    L has a free contract (mrr 0) through February."""
    settings.GROSS_MARGIN = "0.80"
    for name in ("A", "B"):
        ContractFactory(
            account=AccountFactory(external_id=name),
            start_date=dt.date(2023, 12, 1),
            end_date=dt.date(2024, 1, 31),
        )
    for n in range(1, 8):
        ContractFactory(
            account=AccountFactory(external_id=f"C{n}"),
            start_date=dt.date(2024, 2, 15),
            end_date=dt.date(2024, 3, 31) if n == 7 else None,
        )
    ContractFactory(
        account=AccountFactory(external_id="J"),
        start_date=dt.date(2022, 1, 1),
        end_date=dt.date(2022, 12, 31),
    )
    ContractFactory(account=AccountFactory(external_id="K"), start_date=dt.date(2024, 4, 1))
    ContractFactory(
        account=AccountFactory(external_id="L"),
        start_date=dt.date(2024, 1, 10),
        end_date=dt.date(2024, 2, 29),
        mrr=Decimal("0.00"),
    )


@pytest.mark.django_db
def test_the_lifetime_is_exact_and_says_which_months_counted(admin_user, q1_2024):
    body = token_client(admin_user).get(reverse("kpis:report"), Q1).json()
    lifetime = body["retention"]["customer_lifetime_months"]
    # mean monthly rate over the 2 months with customers = (100 + 100/7) / 2 = 400/7 %;
    # lifetime = 100 / (400/7) = 7/4 = 1.75 months: exactly, as k / Σ lostᵢ/customersᵢ =
    # 2 / (2/2 + 1/7) = 2 / (8/7) = 14/8
    assert lifetime["value"] == "1.75"
    assert lifetime["inputs"] == {
        "month_starts": ["2024-01-01", "2024-02-01", "2024-03-01"],
        "monthly_logo_churn_rates": ["100", None, str(Decimal(100) / Decimal(7))],
        "mean_monthly_logo_churn_rate": str(Decimal(400) / Decimal(7)),  # 57.142857…714
        "months": 2,
        "months_skipped": [
            {"month_start": "2024-02-01", "why": "no customers on 2024-02-01, its first day"}
        ],
    }
    # CLV = ARPA × margin × lifetime; ARPA = start MRR / customers on 01-01 = 200 / 2 = 100;
    # 100 × 0.80 × 7/4 = 140
    clv = body["retention"]["clv"]
    assert Decimal(clv["value"]) == 140 and clv["inputs"]["lifetime_months"] == "1.75"
    # the command prints the months skipped and why
    table = io.StringIO()
    call_command("kpis", *_kpis_args(*Q1.values()), stdout=table)
    assert "months=2 months_skipped=[2024-02-01: no customers on 2024-02-01, its first day]" in (
        table.getvalue()
    )


@pytest.mark.django_db
def test_the_command_table_rounds_for_reading_and_the_json_keeps_every_digit(q1_2024):
    """The table: percentages to one decimal as the pages print them (``pct_text``) with
    "%", money to the cent, counts whole, other means to 2 decimals; --json unchanged. Q1
    2024 (``q1_2024``): monthly rates 100 % (exactly: "100.0"), none (February), 100/7 =
    14.2857… % → 14.3%; their mean 400/7 = 57.142857… % → 57.1%; lifetime 100 / (400/7) = 1.75 months; ARPA 200 / 2 = 100.00;
    CLV 100 × 0.80 × 1.75 = 140.00."""
    table = io.StringIO()
    call_command("kpis", *_kpis_args(*Q1.values()), stdout=table)
    text = table.getvalue()
    lifetime = next(line for line in text.splitlines() if "customer_lifetime_months" in line)
    assert "1.75 months" in lifetime
    assert "monthly_logo_churn_rates=[100.0%, n/a, 14.3%]" in lifetime
    assert "mean_monthly_logo_churn_rate=57.1% months=2" in lifetime
    clv = next(line for line in text.splitlines() if line.split()[:1] == ["clv"])
    assert "140.00 USD" in clv and "arpa=100.00 gross_margin=0.80 lifetime_months=1.75" in clv
    assert "57142857" not in text  # no raw decimal anywhere
    out = io.StringIO()
    call_command("kpis", *_kpis_args(*Q1.values()), "--json", stdout=out)
    inputs = json.loads(out.getvalue())["retention"]["customer_lifetime_months"]["inputs"]
    assert inputs["mean_monthly_logo_churn_rate"] == str(Decimal(400) / Decimal(7))


@pytest.mark.django_db
def test_the_command_table_prints_money_inputs_to_the_cent_and_counts_whole(q1_2024):
    """Money is told by its type, not a list of names: a Decimal in the KPI functions (a
    string in the report) prints to the cent, whole amounts and zeros too; an int (a count)
    prints whole. Two invoices (1,234.50 issued in January, overdue on 04-01; 77 issued in
    March) give the billing's money; Q1's movements (``q1_2024``) the revenue's."""
    invoiced = AccountFactory(external_id="INV")
    InvoiceFactory(
        account=invoiced,
        issued_on=dt.date(2024, 1, 5),
        due_on=dt.date(2024, 2, 5),
        amount=Decimal("1234.5"),
    )
    InvoiceFactory(
        account=invoiced, issued_on=dt.date(2024, 3, 5), due_on=dt.date(2024, 5, 5), amount=77
    )
    table = io.StringIO()
    call_command("kpis", *_kpis_args(*Q1.values()), "--movements", stdout=table)
    lines = {line.split()[0]: line for line in table.getvalue().splitlines() if line.strip()}
    assert lines["arr_end"].endswith(" mrr_end=700.00")
    assert lines["nrr"].endswith(" start_mrr=200.00 expansion=0.00 contraction=0.00 churn=200.00")
    assert lines["expansion_share"].endswith(" new=700.00 reactivation=0.00 expansion=0.00")
    assert lines["quick_ratio"].endswith(" gained=700.00 lost=200.00")
    assert lines["arpa"].endswith(" start_mrr=200.00 customers_start=2")
    assert lines["clv"].endswith(" arpa=100.00 gross_margin=0.80 lifetime_months=1.75")
    assert lines["overdue_invoices"].endswith(" amount=1,234.50")
    assert lines["dso"].endswith(
        " receivable_at_end=1,311.50 invoiced_in_period=1,311.50 days_in_period=91"
    )
    assert lines["New:"] == "New: 700.00"
    assert lines["K"].endswith(" 0.00 →       100.00 (100.00)")


@pytest.mark.django_db
def test_a_month_without_churn_has_a_mean_of_0_like_its_rate(admin_user, q1_2024):
    # March 2025: C1..C6 and K are the customers on 03-01 and still on 04-01: 0 of 7
    # lost, 0 %; the lifetime is n/a (no churn: infinite), not 0
    march = {"start": "2025-03-01", "end": "2025-04-01"}
    body = token_client(admin_user).get(reverse("kpis:report"), march).json()
    lifetime = body["retention"]["customer_lifetime_months"]
    assert lifetime["value"] is None
    assert lifetime["inputs"]["monthly_logo_churn_rates"] == ["0"]
    assert lifetime["inputs"]["mean_monthly_logo_churn_rate"] == "0"
    assert (lifetime["inputs"]["months"], lifetime["inputs"]["months_skipped"]) == (1, [])


def test_a_lifetime_that_is_not_whole_is_rounded_once():
    # one month, 3 of 28 lost: 300/28 % a month; lifetime = 28/3 = 9.333… months, rounded
    # once to 28 significant digits (dividing 100 by the rounded rate gave …328)
    k = revenue.lifetime_from_counts([28], [3], arpa=None, start=dt.date(2024, 1, 1))
    value = k["customer_lifetime_months"]["value"]
    assert value == Decimal(28) / Decimal(3)
    assert str(value) == "9.333333333333333333333333333"
    assert abs(Fraction(value) - Fraction(28, 3)) < Fraction(1, 10**26)


@pytest.mark.django_db
def test_accounts_with_contracts_are_those_in_force_in_the_period(admin_user, q1_2024):
    client = token_client(admin_user)
    # Q1 2024: A, B, C1..C7 (paying), K (starts on the end day, new MRR of the period) and L
    # (free) = 2 + 7 + 1 + 1 = 11; J (ended 2022) had no contract in force
    body = client.get(reverse("kpis:report"), Q1).json()
    assert body["scope"]["accounts_with_contracts"] == 11
    # January 2020: no contract had started
    jan_2020 = {"start": "2020-01-01", "end": "2020-02-01"}
    body = client.get(reverse("kpis:report"), jan_2020).json()
    assert body["scope"]["accounts_with_contracts"] == 0
    # and the command's JSON says the same
    out = io.StringIO()
    call_command("kpis", *_kpis_args(*jan_2020.values()), "--json", stdout=out)
    assert json.loads(out.getvalue())["scope"]["accounts_with_contracts"] == 0
