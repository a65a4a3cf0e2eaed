"""Which KPIs of ``docs/metrics.md`` can have a target, where each lives in a KPI report,
the range a target may take, the default tier (review cadence) and the defaults offered
from common benchmarks. Pure: no database."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

AT_LEAST, AT_MOST = "at_least", "at_most"
WEEKLY, MONTHLY, QUARTERLY = "weekly", "monthly", "quarterly"
CADENCES = (WEEKLY, MONTHLY, QUARTERLY)


@dataclass(frozen=True)
class Kpi:
    key: str
    section: str  # of the KPI report
    label: str
    unit: str  # "%", "days", "hours", "score", "money"
    low: Decimal | None  # the smallest sensible target (None: unbounded)
    high: Decimal | None
    tier: str  # the default review cadence
    higher_is_better: bool
    revenue: bool = False  # explained by the MRR movements

    @property
    def doc_anchor(self) -> str:
        """The heading of docs/metrics.md (served at /docs/metrics/) that explains it: the
        same anchors as the dashboard's "how is this computed?" hints."""
        return DOC_ANCHORS.get(self.key) or DOC_ANCHORS[self.section]


# docs/metrics.md's heading anchors, by KPI report section, or by KPI where one has its own
# (MRR is explained with the basics, as on the dashboard's MRR tile); a test checks that each
# heading exists and that they agree with the dashboard's tiles.
DOC_ANCHORS: dict[str, str] = {
    "mrr_end": "basics-mrr-customers-the-two-days-of-a-period",
    "revenue": "revenue-and-retention-revenue-retention",
    "retention": "revenue-and-retention-revenue-retention",
    "adoption": "adoption-and-engagement-adoption",
    "support": "support-support",
    "billing": "billing-billing",
    "voice_of_customer": "voice-of-the-customer-voice_of_customer",
}


def _d(value) -> Decimal | None:
    return None if value is None else Decimal(str(value))


KPIS: dict[str, Kpi] = {
    k.key: k
    for k in [
        # weekly: core health
        Kpi("logo_churn_rate", "retention", "Logo churn", "%", _d(0), _d(100), WEEKLY, False, True),
        Kpi("nrr", "retention", "NRR", "%", _d(0), _d(1000), WEEKLY, True, True),
        Kpi("grr", "retention", "GRR", "%", _d(0), _d(100), WEEKLY, True, True),
        Kpi(
            "expansion_rate",
            "retention",
            "Expansion rate",
            "%",
            _d(0),
            _d(1000),
            WEEKLY,
            True,
            True,
        ),
        Kpi("renewal_rate", "retention", "Renewal rate", "%", _d(0), _d(100), WEEKLY, True),
        # monthly: performance
        Kpi("seat_utilisation", "adoption", "Seat utilisation", "%", _d(0), _d(100), MONTHLY, True),
        Kpi("ttfv", "adoption", "Median TTFV", "days", _d(0), _d(3650), MONTHLY, False),
        Kpi("csat", "voice_of_customer", "CSAT", "%", _d(0), _d(100), MONTHLY, True),
        Kpi(
            "resolution_hours",
            "support",
            "Resolution time",
            "hours",
            _d(0),
            _d(8760),
            MONTHLY,
            False,
        ),
        Kpi("nps", "voice_of_customer", "NPS", "score", _d(-100), _d(100), MONTHLY, True),
        # quarterly: strategic
        Kpi("clv", "retention", "CLV", "money", _d(0), None, QUARTERLY, True),
        Kpi("ces", "voice_of_customer", "CES", "score", _d(1), _d(7), QUARTERLY, True),
        Kpi(
            "revenue_churn_rate",
            "retention",
            "Revenue churn",
            "%",
            _d(0),
            _d(100),
            QUARTERLY,
            False,
            True,
        ),
        Kpi("dso", "billing", "DSO", "days", _d(0), _d(3650), QUARTERLY, False),
        Kpi("mrr_end", "revenue", "MRR", "money", _d(0), None, QUARTERLY, True, True),
    ]
}

# (kpi, direction, value): benchmarks commonly quoted for B2B SaaS; editable after loading.
# CLV and MRR depend on the business: no default, the editor offers them without a target.
DEFAULTS: list[tuple[str, str, str]] = [
    ("logo_churn_rate", AT_MOST, "2"),
    ("nrr", AT_LEAST, "100"),
    ("grr", AT_LEAST, "90"),
    ("expansion_rate", AT_LEAST, "1"),
    ("renewal_rate", AT_LEAST, "85"),
    ("seat_utilisation", AT_LEAST, "70"),
    ("ttfv", AT_MOST, "30"),
    ("csat", AT_LEAST, "80"),
    ("resolution_hours", AT_MOST, "24"),
    ("nps", AT_LEAST, "30"),
    ("ces", AT_LEAST, "5"),
    ("revenue_churn_rate", AT_MOST, "1"),
    ("dso", AT_MOST, "45"),
]


def value_check(kpi_key: str, value: Any) -> list[str]:
    """Why ``value`` cannot be a target of ``kpi_key`` (empty when it can)."""
    kpi = KPIS.get(kpi_key)
    if kpi is None:
        return [f"unknown KPI {kpi_key!r}"]
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return [f"{value!r} is not a number"]
    if not number.is_finite():
        return [f"{value!r} is not a number"]
    # "0%" as a rate prints everywhere (``percent_text``), "30 days" with its space
    unit = {"money": "", "score": "", "%": "%"}.get(kpi.unit, f" {kpi.unit}")
    if kpi.low is not None and number < kpi.low:
        return [f"{kpi.label} cannot be below {kpi.low}{unit}, got {number}"]
    if kpi.high is not None and number > kpi.high:
        return [f"{kpi.label} cannot be above {kpi.high}{unit}, got {number}"]
    return []


def number(value: Any) -> Decimal | None:
    """A KPI value of a report as a Decimal (None when missing or not a single number)."""
    if value is None or isinstance(value, dict | list | bool):
        return None
    try:
        out = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return out if out.is_finite() else None


def value_in(report: dict, kpi_key: str) -> Decimal | None:
    kpi = KPIS[kpi_key]
    return number((report.get(kpi.section) or {}).get(kpi_key, {}).get("value"))


def on_track(value: Decimal | None, direction: str, target: Decimal) -> bool | None:
    """None without a value."""
    if value is None:
        return None
    return value >= target if direction == AT_LEAST else value <= target


# --- periods ---------------------------------------------------------------------------------


def period_ending(cadence: str, as_of: dt.date) -> str | None:
    """The key of the cadence's period that ends with the day ``as_of`` (the pipeline's last
    complete day), or None when none ends that day: weekly ISO weeks end on Sunday (the
    Monday run evaluates them), months on their last day (the run on the 1st), quarters on
    the last day of March, June, September and December."""
    following = as_of + dt.timedelta(days=1)
    if cadence == WEEKLY:
        if following.isoweekday() != 1:
            return None
        year, week, _ = as_of.isocalendar()
        return f"{year}-W{week:02d}"
    if following.day != 1:
        return None
    if cadence == MONTHLY:
        return f"{as_of.year}-{as_of.month:02d}"
    if cadence == QUARTERLY:
        if as_of.month % 3:
            return None
        return f"{as_of.year}-Q{as_of.month // 3}"
    raise ValueError(f"unknown cadence {cadence!r}")


def period_key_end(key: str) -> tuple[str, dt.date] | None:
    """The cadence and the last day of the period a key names (``period_ending``'s keys):
    "2026-W47" → (weekly, 22 Nov 2026), "2026-11" → (monthly, 30 Nov 2026), "2026-Q4" →
    (quarterly, 31 Dec 2026); None for a key that is none of these."""
    try:
        year, _, rest = key.partition("-")
        if rest.startswith("W"):
            return WEEKLY, dt.date.fromisocalendar(int(year), int(rest[1:]), 7)
        if rest.startswith("Q") and rest[1:] in ("1", "2", "3", "4"):
            month = int(rest[1:]) * 3
        elif len(rest) == 2 and 1 <= int(rest) <= 12:
            month = int(rest)
        else:
            return None
        following = dt.date(int(year) + month // 12, month % 12 + 1, 1)
    except ValueError:
        return None
    return (QUARTERLY if rest.startswith("Q") else MONTHLY), following - dt.timedelta(days=1)


def previous_period_end(cadence: str, as_of: dt.date) -> dt.date:
    """The last day of the period before the one ending ``as_of``."""
    if cadence == WEEKLY:
        return as_of - dt.timedelta(days=7)
    months = 1 if cadence == MONTHLY else 3
    first = as_of.replace(day=1)
    for _ in range(months):
        first = (first - dt.timedelta(days=1)).replace(day=1)
    # the last day of ``first``'s month
    return (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)


def period_ends(cadence: str, last: dt.date, count: int) -> list[dt.date]:
    """``count`` period ends, oldest first, the last one being ``last``."""
    days = [last]
    for _ in range(count - 1):
        days.append(previous_period_end(cadence, days[-1]))
    return days[::-1]
