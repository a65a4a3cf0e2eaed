"""python manage.py kpis --start YYYY-MM-DD --end YYYY-MM-DD [--segment S] [--owner EMAIL]
[--account EXTERNAL_ID] [--json]: every KPI for a period, as a table or as the API's JSON.
A period reaching past today is reported to date, and says so (``kpis.period_to_date``).
The table rounds for reading (``_value``, ``_input``); ``--json`` keeps every digit."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from metrics import kpis
from metrics.kpis.common import pct_text, percent_text
from metrics.management.arguments import ONCE, day_option, once

SECTIONS = ("revenue", "retention", "adoption", "support", "billing", "voice_of_customer")


class Command(BaseCommand):
    help = "Print every KPI for a period [start, end) and a scope (definitions: docs/metrics.md)."

    def add_arguments(self, parser) -> None:
        # days are read in handle() (day_option): a bad one is a one-line error
        # each given at most once (ONCE: a repeat is an error, not the last one quietly)
        parser.add_argument("--start", metavar="YYYY-MM-DD", help="first day", **ONCE)
        parser.add_argument(
            "--end", metavar="YYYY-MM-DD", help="day after the period (exclusive)", **ONCE
        )
        parser.add_argument(
            "--period",
            choices=kpis.PERIODS,
            help="instead of --start/--end: the calendar period containing --date (or today)",
            **ONCE,
        )
        parser.add_argument("--date", metavar="YYYY-MM-DD", help="with --period", **ONCE)
        parser.add_argument("--segment", help="only accounts of this segment", **ONCE)
        parser.add_argument("--owner", metavar="EMAIL", help="only this CSM's accounts", **ONCE)
        parser.add_argument("--account", metavar="EXTERNAL_ID", help="only this account", **ONCE)
        parser.add_argument("--json", action="store_true", help="print the API's JSON instead")
        parser.add_argument(
            "--movements",
            action="store_true",
            help="also list the accounts behind each MRR movement",
        )

    def handle(self, *args, **options) -> None:
        given = {
            key: once(options[key], f"--{key}")
            for key in ("start", "end", "period", "date", "segment", "owner", "account")
        }
        days = {key: day_option(given[key], f"--{key}") for key in ("start", "end", "date")}
        try:
            start, end = kpis.period_resolve(
                start=days["start"], end=days["end"], period=given["period"], on=days["date"]
            )
            # an empty --segment "" is an error (scope_resolve), not the whole book
            scope = {key: given[key] for key in ("segment", "owner", "account")}
            report = kpis.kpi_report(start=start, end=end, **scope)
            movements = (
                kpis.movements_report(start=start, end=end, **scope)
                if options["movements"]
                else None
            )
        except ValidationError as exc:
            raise CommandError(_message(exc)) from None
        if movements is not None:
            report["movements"] = movements["movements"]
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2))
            return
        self._table(report)

    def _table(self, report: dict) -> None:
        period, scope = report["period"], report["scope"]
        narrowed = ", ".join(
            f"{k}={v}" for k, v in scope.items() if v and k != "accounts_with_contracts"
        )
        self.stdout.write(
            f"KPIs for [{period['start']}, {period['end']}) ({period['days']} days), "
            f"scope: {narrowed or 'all accounts'}"
        )
        if period.get("to_date"):
            self.stdout.write(f"TO DATE ONLY: {period['note']}")
        for section in SECTIONS:
            self.stdout.write(f"\n{section.replace('_', ' ').title()}")
            for name, item in report[section].items():
                unit = item["unit"]
                value = _value(item["value"], unit=unit)
                inputs = _inputs(item["inputs"])
                line = f"  {name:<28} {value:>18} {unit:<14}"
                self.stdout.write(f"{line} {inputs}".rstrip())
        self.stdout.write("\nCohorts (% of logos / % of first-month MRR retained, k = 0, 1, …)")
        for row in report["cohorts"]["rows"]:
            cells = " ".join(
                f"{_value(c['logos'], unit='%')}/{_value(c['mrr'], unit='%')}"
                for c in row["columns"]
            )
            self.stdout.write(f"  {row['cohort']} ({row['size']:>3}) {cells}")
        if not report["cohorts"]["rows"]:  # a heading with nothing under it reads as cut off
            self.stdout.write(
                f"  none: no account first paid from {period['start']} to {period['as_of']}"
            )
        for name, movement in report.get("movements", {}).items():
            self.stdout.write(f"\n{name.title()}: {_input('amount', movement['amount'])}")
            for acc in movement["accounts"]:
                self.stdout.write(
                    f"  {acc['external_id']:<16} {acc['name']:<30} "
                    f"{_input('amount', acc['m0']):>12} → {_input('amount', acc['m1']):>12} "
                    f"({_input('amount', acc['amount'])})"
                )
        self.stdout.write("\nn/a = no data (the denominator is 0). Definitions: docs/metrics.md")


# How the table prints a number (the JSON keeps every digit): money to the cent,
# percentages to one decimal as every page prints them (``pct_text``: more only where one
# would make a rate that is not exactly 100 or 0 read as such), counts whole, any other
# mean (hours, days, users a day, a ratio) to 2 decimals. A KPI's kind is its unit
# (percentages also say "%" there). An input's is its name when that ends in one of
# PERCENT_INPUTS ("mean_monthly_logo_churn_rate", "easy_pct"), else its value's type:
# money is a Decimal in the KPI functions (``kpis.common.money``, ``ZERO``), a string of
# decimals in the JSON-ready report, printed to the cent as every mean is; a count is an int.
PERCENT_INPUTS = ("_rate", "_rates", "_pct")
PERCENT_UNITS = ("%", "% per feature")


def _number(value) -> Decimal | None:
    """``value`` as a number when it is one (the report's money and ratios are strings of
    decimals); None for anything else: a day, a note, a flag, None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float | Decimal):
        return Decimal(str(value))
    try:
        return Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        return None


def _value(value, *, unit: str = "") -> str:
    """A KPI's value beside its ``unit``, for reading: money to the cent, percentages as
    ``pct_text`` prints them, a count whole, any other number (a mean: hours, days, a ratio) to 2
    decimals."""
    if value is None:
        return "n/a"
    if isinstance(value, dict):
        return "see →" if value else "n/a"
    number = _number(value)
    if number is None:
        return str(value)
    if unit in PERCENT_UNITS:
        return pct_text(number)
    if isinstance(value, int) and unit != settings.CURRENCY:
        return f"{value:,}"
    return f"{number:,.2f}"


def _input(key: str, value) -> str:
    """One input's value: a percentage (its name ends in one of PERCENT_INPUTS) as
    ``pct_text`` prints it, with "%", a count (an int) whole, any other number (money, a
    mean: a Decimal, a string in the report) to 2 decimals; anything else as it is."""
    if isinstance(value, list):
        return "[" + ", ".join(_input(key, v) for v in value) + "]"
    if value is None:
        return "n/a"
    number = _number(value)
    if number is None:
        return str(value)
    if key.endswith(PERCENT_INPUTS):
        return percent_text(number)
    if isinstance(value, int):
        return f"{value:,}"
    return f"{number:,.2f}"


def _inputs(inputs: dict) -> str:
    parts = []
    for key, value in inputs.items():
        if isinstance(value, list):
            if value and isinstance(value[0], dict) and "why" in value[0]:  # months skipped
                value = "[" + "; ".join(f"{v['month_start']}: {v['why']}" for v in value) + "]"
            elif value and isinstance(value[0], dict):  # TTFV's accounts not there yet
                value = f"{len(value)} accounts"
            else:
                value = _input(key, value)
        elif isinstance(value, dict):  # counts by name (users per feature, first values)
            value = ", ".join(f"{k}: {_input(key, v)}" for k, v in value.items()) or "-"
            value = "{" + value + "}"
        else:
            value = _input(key, value)
        parts.append(f"{key}={value}")
    return " ".join(parts)


def _message(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        return "; ".join(
            f"--{field}: {' '.join(messages)}" for field, messages in exc.message_dict.items()
        )
    return " ".join(exc.messages)
