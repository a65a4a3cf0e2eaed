"""Demo data: a believable, deterministic book of customers for trying the product out.

``seed_demo(cfg)`` builds demo users, then accounts with contracts, stakeholders, tickets,
invoices and product usage, and loads them through the same intake path as the import
command and the API (``accounts.intake``), so timeline entries and the daily usage rollups
come out exactly as they would for real data.

How the book is shaped (each account gets a *fate* that the other data follows):

* ``steady`` / ``growing``: renew every year, the growing ones with more seats and add-ons;
  usage flat or rising.
* ``at_risk``: renewal coming up in 10-120 days; usage has been falling for ~75 days, more
  tickets, slower payments.
* ``churned``: the last contract ended in the window and was not renewed. Usage falls in the
  ~90 days **before** the contract ends (active users and events), then stops.
* ``new``: signed within the window; usage ramps up over the first two months.

Everything is drawn from ``random.Random`` seeded per account from ``(seed, index)``, so a
seed gives the same book every time (for a given ``today``), and accounts can be generated
in chunks with flat memory: events are streamed chunk by chunk, never held all at once.
"""

from __future__ import annotations

import calendar
import math
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from . import intake
from .intake import events as intake_events
from .models import (
    Account,
    AccountLifecycle,
    Activity,
    Contract,
    Invoice,
    Role,
    Stakeholder,
    Ticket,
    TimelineEntry,
    UsageDaily,
    UsageEvent,
    UsageFeatureDaily,
    User,
)
from .roles import ensure_roles
from .timeline import timeline_upsert

DEMO_PASSWORD = "demo-password-1"  # noqa: S105 - printed by `demo_logins`; demo installs only
DEMO_DOMAIN = "demo.example"
# the stakeholders of a demo account are known from the morning it became a customer
STAKEHOLDERS_KNOWN_AT = timedelta(hours=9)


@dataclass(frozen=True)
class DemoUser:
    email: str
    first_name: str
    last_name: str
    role: Role
    manager_email: str | None = None


DEMO_USERS: tuple[DemoUser, ...] = (
    DemoUser(f"admin@{DEMO_DOMAIN}", "Ada", "Admin", Role.ADMIN),
    DemoUser(f"manager@{DEMO_DOMAIN}", "Max", "Manager", Role.MANAGER),
    DemoUser(f"csm1@{DEMO_DOMAIN}", "Cleo", "Carter", Role.CSM, f"manager@{DEMO_DOMAIN}"),
    DemoUser(f"csm2@{DEMO_DOMAIN}", "Sam", "Silva", Role.CSM, f"manager@{DEMO_DOMAIN}"),
    DemoUser(f"csm3@{DEMO_DOMAIN}", "Priya", "Patel", Role.CSM, f"manager@{DEMO_DOMAIN}"),
)
CSM_EMAILS = tuple(u.email for u in DEMO_USERS if u.role == Role.CSM)


@dataclass(frozen=True)
class DemoConfig:
    """``accounts`` customers, usage over the last ``days`` days (ending yesterday, UTC),
    ``events_scale`` multiplies the event volume (1.0 ≈ 2,300 events per account per 400
    days on average), ``today`` pins the calendar (default: today, UTC)."""

    accounts: int = 200
    days: int = 400
    seed: int = 1
    events_scale: float = 1.0
    today: date | None = None
    account_chunk: int = 2000  # accounts per entity import transaction
    event_chunk: int = 50_000  # events per events import transaction

    @property
    def end(self) -> date:
        return self.today or timezone.now().date()

    @property
    def start(self) -> date:
        return self.end - timedelta(days=self.days)


# --- vocabulary -----------------------------------------------------------------------------

_NAME_A = (
    "Acme", "Blue", "North", "Bright", "Silver", "Red", "Green", "Summit", "Harbor", "Pine",
    "Cedar", "Iron", "Golden", "Swift", "Clear", "True", "Prime", "Nova", "Atlas", "Orbit",
    "Maple", "River", "Stone", "Falcon", "Lumen", "Vertex", "Quantum", "Polar", "Coral", "Echo",
    "Aurora", "Granite", "Willow", "Beacon", "Crest", "Delta", "Ember", "Fjord", "Helix", "Juniper",
)  # fmt: skip
_NAME_B = (
    "wind", "field", "bridge", "point", "path", "works", "line", "gate", "wave", "rock",
    "leaf", "light", "stream", "peak", "forge", "mark", "shore", "spark", "loop", "grid",
)  # fmt: skip
_NAME_C = (
    "Labs", "Systems", "Logistics", "Health", "Analytics", "Software", "Foods", "Energy",
    "Retail", "Capital", "Media", "Robotics", "Partners", "Group", "Industries", "Bank",
    "Insurance", "Studios", "Networks", "Materials",
)  # fmt: skip
INDUSTRIES = (
    ("Software", 18), ("Financial Services", 12), ("Healthcare", 10), ("Retail", 10),
    ("Manufacturing", 9), ("Education", 7), ("Media", 6), ("Logistics", 7),
    ("Professional Services", 9), ("Energy", 4), ("Nonprofit", 3), ("Hospitality", 5),
)  # fmt: skip
REGIONS = ("EMEA", "Americas", "APAC", "DACH", "Nordics", "UK & Ireland")
FIRST_NAMES = (
    "Alex", "Jordan", "Maria", "Chen", "Fatima", "Lukas", "Sofia", "Omar", "Hannah", "Kenji",
    "Aisha", "Mateo", "Elena", "Noah", "Zara", "Ivan", "Grace", "Ravi", "Leila", "Tom",
    "Nadia", "Felix", "Amara", "Diego", "Ingrid", "Yuki", "Samir", "Clara", "Jonas", "Mei",
)  # fmt: skip
LAST_NAMES = (
    "Smith", "Garcia", "Müller", "Wang", "Okafor", "Rossi", "Kowalski", "Nguyen", "Haddad",
    "Johansson", "Silva", "Kim", "Dubois", "Novak", "Brown", "Ahmed", "Tanaka", "Moreau",
    "Fischer", "Lopez", "Jensen", "Costa", "Murphy", "Singh", "Petrov", "Cohen", "Ito", "Berg",
)  # fmt: skip
TITLES = {
    "champion": ("Operations Manager", "Head of Analytics", "Team Lead", "Product Ops Lead"),
    "decision_maker": ("VP Operations", "Director of IT", "Head of Department", "COO"),
    "executive_sponsor": ("CEO", "CFO", "CTO", "Chief Digital Officer"),
    "user": ("Analyst", "Specialist", "Coordinator", "Engineer", "Associate"),
    "billing": ("Accounts Payable", "Finance Manager", "Procurement Lead"),
}
TICKET_SUBJECTS = (
    "Cannot export report to CSV", "SSO login fails for new users", "Dashboard loads slowly",
    "Question about invoice", "How do I invite my team?", "Integration sync stopped",
    "Feature request: custom fields", "Data missing after import", "API rate limit errors",
    "Password reset email not received", "Charts show wrong totals", "Need help with permissions",
    "Webhook delivery failures", "Mobile app crashes on start", "Change billing contact",
)  # fmt: skip
# What customers complain about before they leave, and what happy customers say: ticket
# subjects and CSM notes drawn from these make the feedback themes (voice app) line up with
# churn. Each topic has near-duplicate phrasings, as real complaints do.
CHURN_TOPICS = {
    "export": (
        "CSV export is very slow", "Export times out on large reports",
        "Exporting reports is slow again", "Report export keeps failing and times out",
        "Large CSV exports take forever",
    ),
    "billing": (
        "Invoice amount is confusing", "Billing confusion after the seat change",
        "We were charged twice on the last invoice", "Invoice does not match our contract",
        "Confusing invoice, the billing amount looks wrong",
    ),
    "sync": (
        "Salesforce sync stopped again", "CRM integration sync keeps failing",
        "Sync with Salesforce is broken", "Integration sync errors every night",
    ),
}  # fmt: skip
HAPPY_TOPICS = {
    "dashboards": (
        "The team loves the new dashboards", "Great feedback on the dashboards redesign",
        "Dashboards are a big hit with their managers", "They love how fast dashboards are now",
    ),
    "onboarding": (
        "Great onboarding session, admins feel confident", "Onboarding training went really well",
        "Excellent training session with the new admins",
    ),
    "automation": (
        "Workflow automation saves them hours every week", "Happy with workflow automation results",
        "Automated workflows are working great for the ops team",
    ),
}  # fmt: skip
NEUTRAL_NOTES = (
    "Quarterly business review scheduled", "Asked about the roadmap for custom fields",
    "Walked through permissions setup", "Renewal timeline discussed with procurement",
    "Shared best practices for report templates",
)  # fmt: skip
NOTE_CLOSERS = (
    "", "Follow up next week.", "Sent a recap by email.", "Logged in the account plan.",
    "They asked us to keep them posted.",
)  # fmt: skip
# Feature events and their relative weights (how often each is seen in the product).
EVENT_WEIGHTS = (
    ("login", 32.0),
    ("dashboard_viewed", 24.0),
    ("report_created", 11.0),
    ("search_performed", 9.0),
    ("comment_added", 7.0),
    ("export_run", 6.0),
    ("workflow_automated", 3.0),
    ("file_uploaded", 5.0),
    ("invite_sent", 1.5),
    ("integration_configured", 0.5),
)
# The demo's key features (``KEY_FEATURES``, an environment setting: an admin chooses them,
# and ``make run`` sets these): used often enough to tell adopters apart, not by everyone.
DEMO_KEY_FEATURES = ("report_created", "export_run", "workflow_automated")
_EVENT_NAMES = tuple(n for n, _ in EVENT_WEIGHTS)
_EVENT_CUM = tuple(sum(w for _, w in EVENT_WEIGHTS[: i + 1]) for i in range(len(EVENT_WEIGHTS)))


@dataclass(frozen=True)
class Segment:
    name: str
    share: float
    seats: tuple[int, int]
    plans: tuple[tuple[str, int], ...]  # (product, list price per seat per month)
    discount: tuple[float, float]
    annual_billing: float  # share billed yearly (others monthly)
    open_ended: float  # share on an open-ended month-to-month subscription
    tickets_per_month: float


SEGMENTS = (
    Segment("Enterprise", 0.15, (150, 1500), (("Enterprise", 55),), (0.10, 0.30), 0.8, 0.0, 1.5),
    Segment("Mid-Market", 0.30, (25, 150), (("Business", 38),), (0.0, 0.15), 0.4, 0.0, 0.6),
    Segment("SMB", 0.55, (3, 25), (("Starter", 15), ("Team", 25)), (0.0, 0.05), 0.15, 0.4, 0.25),
)
FATES = (("steady", 0.40), ("growing", 0.20), ("at_risk", 0.12), ("churned", 0.14), ("new", 0.14))
ADDON = ("Add-on: Advanced Analytics", 0.15)


# --- the plan of one account ----------------------------------------------------------------


@dataclass
class Period:
    external_id: str
    product: str
    start: date
    end: date | None
    seats: int
    mrr: float
    billing: int
    auto_renew: bool
    discount: float


@dataclass
class AccountPlan:
    index: int
    external_id: str
    name: str
    domain: str
    segment: Segment
    industry: str
    owner_email: str
    fate: str
    customer_since: date
    parent_external_id: str | None
    periods: list[Period] = field(default_factory=list)
    churn_date: date | None = None  # last day of service of a churned account
    seats: int = 0
    lifecycle: str = AccountLifecycle.MATURE


def account_external_id(index: int) -> str:
    return f"ACC-{index:06d}"


def _rng(seed: int, index: int, purpose: str) -> random.Random:
    # str seeds go through SHA-512: stable across processes (unlike hash()).
    return random.Random(f"{purpose}:{seed}:{index}")


def add_months(d: date, months: int) -> date:
    y, m = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m + 1
    return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


def _weighted(rng: random.Random, pairs) -> Any:
    total = sum(w for _, w in pairs)
    x = rng.random() * total
    for value, w in pairs:
        x -= w
        if x < 0:
            return value
    return pairs[-1][0]


def _is_parent(index: int, n: int) -> bool:
    """Every 40th account heads a small hierarchy: the next two accounts are its divisions."""
    return n >= 10 and index % 40 == 1 and index + 2 <= n


def _parent_of(index: int, n: int) -> int | None:
    for offset in (1, 2):
        if _is_parent(index - offset, n):
            return index - offset
    return None


def plan_account(cfg: DemoConfig, index: int) -> AccountPlan:
    """Everything about account ``index`` (1-based) except its events, drawn from its own RNG."""
    rng = _rng(cfg.seed, index, "account")
    today, start = cfg.end, cfg.start
    parent_index = _parent_of(index, cfg.accounts)
    is_parent = _is_parent(index, cfg.accounts)

    if parent_index is not None:
        parent = plan_account(cfg, parent_index)
        region = REGIONS[(index + cfg.seed) % len(REGIONS)]
        name = f"{parent.name} {region}"
        domain = f"{region.lower().replace(' & ', '-').replace(' ', '-')}.{parent.domain}"
        segment = SEGMENTS[1] if rng.random() < 0.5 else SEGMENTS[0]
        industry, owner = parent.industry, parent.owner_email
    else:
        a, b, c = rng.choice(_NAME_A), rng.choice(_NAME_B), rng.choice(_NAME_C)
        name = f"{a}{b} {c}"
        domain = f"{a}{b}{index}.example".lower()
        segment = SEGMENTS[0] if is_parent else _weighted(rng, [(s, s.share) for s in SEGMENTS])
        industry = _weighted(rng, INDUSTRIES)
        # a few accounts (2%) are not assigned yet: realistic, and the admin's to fix
        owner = "" if rng.random() < 0.02 else CSM_EMAILS[rng.randrange(len(CSM_EMAILS))]

    fate = "steady" if is_parent else _weighted(rng, FATES)
    plan = AccountPlan(
        index=index,
        external_id=account_external_id(index),
        name=name,
        domain=domain,
        segment=segment,
        industry=industry,
        owner_email=owner,
        fate=fate,
        customer_since=start,
        parent_external_id=account_external_id(parent_index) if parent_index else None,
    )
    _plan_contracts(plan, rng, today, start)
    return plan


def _plan_contracts(plan: AccountPlan, rng: random.Random, today: date, start: date) -> None:
    seg, fate = plan.segment, plan.fate
    days = (today - start).days
    open_ended = rng.random() < seg.open_ended and fate != "growing"
    if fate == "churned":
        # the last day of service falls late enough in the window to see usage fall before it
        earliest = start + timedelta(days=min(120, days // 2))
        end = earliest + timedelta(days=rng.randrange(max(1, (today - earliest).days)))
        terms = rng.randint(1, 3)
        since = end + timedelta(days=1)
        since = (
            add_months(since, -12 * terms)
            if not open_ended
            else end - timedelta(days=rng.randint(150, 900))
        )
        plan.churn_date = end
    elif fate == "at_risk":
        renewal = today + timedelta(days=rng.randint(10, 120))
        since = add_months(renewal + timedelta(days=1), -12 * rng.randint(1, 3))
        open_ended = False
    elif fate == "new":
        since = start + timedelta(days=rng.randrange(max(1, days - 7)))
    else:
        # long-standing customers, some from before the window, some signed inside it
        since = today - timedelta(days=rng.randint(30, days + 3 * 365))
    plan.customer_since = since

    product, price = rng.choice(seg.plans)
    seats = rng.randint(*seg.seats)
    discount = round(rng.uniform(*seg.discount), 2) if rng.random() < 0.7 else 0.0
    billing = 12 if rng.random() < seg.annual_billing else 1
    auto_renew = seg.name == "SMB" or rng.random() < 0.5
    ext = plan.external_id.replace("ACC-", "")

    def mrr(n: int, p: int, disc: float) -> float:
        return round(n * p * (1 - disc), 2)

    if open_ended:
        plan.periods.append(
            Period(f"CON-{ext}-1", product, since, plan.churn_date, seats,
                   mrr(seats, price, discount), 1, True, discount)
        )  # fmt: skip
        plan.seats = seats
        _plan_lifecycle(plan, today)
        return

    n, period_start = 1, since
    while period_start <= today:
        period_end = add_months(period_start, 12) - timedelta(days=1)
        last_term = plan.churn_date is not None and period_end >= plan.churn_date - timedelta(3)
        if last_term:
            period_end = plan.churn_date  # month arithmetic near Feb 29 may be off by a day
        plan.periods.append(
            Period(f"CON-{ext}-{n}", product, period_start, period_end, seats,
                   mrr(seats, price, discount), billing, auto_renew, discount)
        )  # fmt: skip
        plan.seats = seats
        # a mid-term add-on line, ending with the period
        if rng.random() < (0.45 if fate == "growing" else 0.08):
            addon_start = period_start + timedelta(days=rng.randint(60, 300))
            if addon_start <= min(period_end, today):
                addon_seats = max(1, seats // rng.randint(3, 6))
                plan.periods.append(
                    Period(f"CON-{ext}-{n}-A", ADDON[0], addon_start, period_end, addon_seats,
                           mrr(addon_seats, int(price * ADDON[1]) or 1, discount), billing,
                           auto_renew, discount)
                )  # fmt: skip
        if last_term:
            break  # churned: no renewal
        # at renewal: expansion, flat, or contraction
        if fate == "growing":
            seats = max(seats + 1, round(seats * rng.uniform(1.1, 1.5)))
        elif fate in ("at_risk", "churned") and rng.random() < 0.5:
            seats = max(1, round(seats * rng.uniform(0.65, 0.95)))
        elif rng.random() < 0.25:
            seats = max(1, round(seats * rng.uniform(0.95, 1.15)))
        if rng.random() < 0.2:
            discount = round(max(0.0, discount - 0.05), 2)
        n, period_start = n + 1, period_end + timedelta(days=1)
    _plan_lifecycle(plan, today)


def _plan_lifecycle(plan: AccountPlan, today: date) -> None:
    age = (today - plan.customer_since).days
    current = [p for p in plan.periods if p.start <= today and (p.end is None or p.end >= today)]
    ends = [p.end for p in current if p.end is not None]
    if plan.churn_date is not None:
        stage = AccountLifecycle.CHURNED
    elif age < 90:
        stage = AccountLifecycle.ONBOARDING
    elif age < 180:
        stage = AccountLifecycle.ADOPTION
    elif ends and min(ends) <= today + timedelta(days=90):
        stage = AccountLifecycle.RENEWAL
    else:
        stage = AccountLifecycle.MATURE
    plan.lifecycle = stage


# --- rows in the import contract's shape ----------------------------------------------------


def _iso(d: date | None) -> str:
    return d.isoformat() if d else ""


def _ts(dt: datetime | None) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ") if dt else ""


def account_row(plan: AccountPlan) -> dict[str, Any]:
    return {
        "external_id": plan.external_id,
        "name": plan.name,
        "segment": plan.segment.name,
        "industry": plan.industry,
        "owner_email": plan.owner_email,
        "customer_since": _iso(plan.customer_since),
        "parent_external_id": plan.parent_external_id or "",
        "domain": plan.domain,
        "lifecycle_stage": plan.lifecycle,
    }


def contract_rows(plan: AccountPlan) -> list[dict[str, Any]]:
    return [
        {
            "external_id": p.external_id,
            "account_external_id": plan.external_id,
            "product": p.product,
            "start_date": _iso(p.start),
            "end_date": _iso(p.end),
            "mrr": f"{p.mrr:.2f}",
            "quantity": p.seats,
            "billing_period_months": p.billing,
            "auto_renew": p.auto_renew,
            "discount": f"{p.discount:.2f}" if p.discount else "",
        }
        for p in plan.periods
    ]


def stakeholder_rows(plan: AccountPlan, cfg: DemoConfig) -> list[dict[str, Any]]:
    rng = _rng(cfg.seed, plan.index, "people")
    roles = ["champion", "decision_maker", "billing"]
    if plan.segment.name == "Enterprise" or rng.random() < 0.3:
        roles.append("executive_sponsor")
    roles += ["user"] * rng.randint(0, 2 if plan.segment.name == "SMB" else 5)
    rows = []
    for n, role in enumerate(roles, start=1):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        email_local = f"{first}.{last}".lower().replace("ü", "ue")
        rows.append(
            {
                "external_id": f"STK-{plan.index:06d}-{n}",
                "account_external_id": plan.external_id,
                "name": f"{first} {last}",
                "email": f"{email_local}{n}@{plan.domain}",
                "title": rng.choice(TITLES[role]),
                "role": role,
                "is_primary": role == "champion",
            }
        )
    return rows


def _active_until(plan: AccountPlan, today: date) -> date:
    return plan.churn_date if plan.churn_date is not None else today


def ticket_rows(plan: AccountPlan, cfg: DemoConfig) -> list[dict[str, Any]]:
    rng = _rng(cfg.seed, plan.index, "tickets")
    today = cfg.end
    now = datetime(today.year, today.month, today.day, tzinfo=UTC)
    first = max(plan.customer_since, cfg.start)
    last = _active_until(plan, today)
    span = (last - first).days
    if span <= 0:
        return []
    risky = plan.fate in ("at_risk", "churned")
    expected = plan.segment.tickets_per_month * span / 30 * (1.6 if risky else 1.0)
    count = _poisson(rng, expected)
    # troubled accounts open more of their tickets near the end; numbered in time order
    fracs = sorted(rng.random() ** (0.5 if risky else 1.0) for _ in range(count))
    # the words of the ticket come from their own random stream: the rest of the book is
    # the same as before voice themes existed
    words = _rng(cfg.seed, plan.index, "ticket-words")
    topic = words.choice(sorted(CHURN_TOPICS))
    rows = []
    for n, frac in enumerate(fracs, start=1):
        opened = datetime.combine(first, datetime.min.time(), UTC) + timedelta(
            days=int(frac * span), hours=rng.randint(7, 18), minutes=rng.randrange(60)
        )
        priority = _weighted(
            rng,
            (("low", 20), ("normal", 55), ("high", 18 + 10 * risky), ("urgent", 7 + 6 * risky)),
        )
        hours = {"urgent": (0.1, 2), "high": (0.5, 8), "normal": (1, 24), "low": (2, 48)}[priority]
        first_response = opened + timedelta(hours=rng.uniform(*hours))
        resolve_days = {"urgent": 1.5, "high": 3, "normal": 5, "low": 8}[priority]
        resolved = first_response + timedelta(days=rng.expovariate(1 / resolve_days))
        escalated = rng.random() < {"urgent": 0.35, "high": 0.12}.get(priority, 0.03) * (
            1.8 if risky else 1.0
        )
        if first_response >= now:
            first_response, resolved, status = None, None, "open"
        elif resolved >= now:
            resolved, status = None, rng.choice(("open", "pending"))
        else:
            status = "closed" if (now - resolved).days > 4 else "solved"
        csat = None
        if resolved is not None and rng.random() < 0.45:
            pool = ((5, 30), (4, 30), (3, 20), (2, 12), (1, 8)) if risky else (
                (5, 55), (4, 28), (3, 10), (2, 4), (1, 3)
            )  # fmt: skip
            csat = _weighted(rng, pool)
        rows.append(
            {
                "external_id": f"TCK-{plan.index:06d}-{n}",
                "account_external_id": plan.external_id,
                "subject": _ticket_subject(rng.choice(TICKET_SUBJECTS), words, topic, risky),
                "priority": priority,
                "status": status,
                "opened_at": _ts(opened),
                "first_response_at": _ts(first_response),
                "resolved_at": _ts(resolved),
                "escalated": escalated,
                "agent_contacts": 1 + _poisson(rng, 1.5 + 2 * escalated),
                "csat": csat if csat is not None else "",
            }
        )
    return rows


def _ticket_subject(generic: str, words: random.Random, topic: str, risky: bool) -> str:
    """Half of a troubled account's tickets are about its one complaint; 3 % of the others'
    tickets are about one of the complaints, the rest generic."""
    if words.random() < (0.5 if risky else 0.03):
        return words.choice(CHURN_TOPICS[topic if risky else words.choice(sorted(CHURN_TOPICS))])
    return generic


def activity_plan(plan: AccountPlan, cfg: DemoConfig, people: int) -> list[dict[str, Any]]:
    """The CSM's notes, calls and meetings with the account (their own random stream).

    Healthy accounts: a touch every ~3 weeks, calls with the champion and the decision
    maker up to the last days, mostly good news. Troubled accounts (at risk, churned): the
    touches thin out and stop 60-120 days before today (or before the churn), and most of
    what is written is their one complaint. ``people`` is the number of stakeholders;
    ``with`` lists their numbers (1 = champion, 2 = decision maker, 3 = billing, 4 = sponsor
    or a user)."""
    rng = _rng(cfg.seed, plan.index, "activities")
    today = cfg.end
    first = max(plan.customer_since, cfg.start)
    risky = plan.fate in ("at_risk", "churned")
    last = _active_until(plan, today)
    if risky:
        last = last - timedelta(days=rng.randint(60, 120))
    span = (last - first).days
    if span <= 0:
        return []
    topic = rng.choice(sorted(CHURN_TOPICS))
    count = _poisson(rng, span / (40 if risky else 21))
    rows = []
    for _ in range(count):
        day = first + timedelta(days=rng.randrange(span))
        at = datetime(
            day.year, day.month, day.day, rng.randint(8, 17), rng.randrange(60), tzinfo=UTC
        )
        kind = _weighted(rng, (("call", 45), ("meeting", 20), ("note", 35)))
        x = rng.random()
        if x < (0.6 if risky else 0.02):
            subject = rng.choice(CHURN_TOPICS[topic])
        elif x < (0.7 if risky else 0.6):
            subject = rng.choice(HAPPY_TOPICS[rng.choice(sorted(HAPPY_TOPICS))])
        else:
            subject = rng.choice(NEUTRAL_NOTES)
        with_ = []
        if kind != "note":
            with_ = [1] if rng.random() < 0.7 else []
            if rng.random() < 0.4:
                with_.append(2)
            if people >= 4 and rng.random() < 0.3:
                with_.append(4)
            with_ = with_ or [rng.randint(1, people)]
        rows.append(
            {
                "kind": kind,
                "occurred_at": at,
                "subject": subject,
                "body": rng.choice(NOTE_CLOSERS),
                "with": with_,
            }
        )
    rows.sort(key=lambda r: r["occurred_at"])
    return rows


def activities_load(plans: list[AccountPlan], cfg: DemoConfig, ids: dict[str, int]) -> int:
    """Create the activities of ``plans`` (with their stakeholders and timeline facts) for
    the accounts that have none yet, so seeding twice does not double them."""
    account_ids = [ids[p.external_id] for p in plans]
    busy = set(
        Activity.objects.filter(account_id__in=account_ids).values_list("account_id", flat=True)
    )
    owners = dict(User.objects.filter(email__in=CSM_EMAILS).values_list("email", "id"))
    people: dict[str, int] = dict(
        Stakeholder.objects.filter(account_id__in=account_ids).values_list("external_id", "id")
    )
    made: list[tuple[Activity, list[int]]] = []
    for plan in plans:
        account_id = ids[plan.external_id]
        if account_id in busy:
            continue
        n_people = sum(1 for k in people if k.startswith(f"STK-{plan.index:06d}-"))
        for row in activity_plan(plan, cfg, max(n_people, 1)):
            activity = Activity(
                account_id=account_id,
                author_id=owners.get(plan.owner_email),
                kind=row["kind"],
                occurred_at=row["occurred_at"],
                subject=row["subject"],
                body=row["body"],
            )
            who = [people.get(f"STK-{plan.index:06d}-{n}") for n in row["with"]]
            made.append((activity, [w for w in who if w is not None]))
    if not made:
        return 0
    Activity.objects.bulk_create([a for a, _ in made], batch_size=1000)
    through = Activity.stakeholders.through
    through.objects.bulk_create(
        [
            through(activity_id=a.pk, stakeholder_id=s)
            for a, who in made
            for s in dict.fromkeys(who)
        ],
        batch_size=1000,
    )
    timeline_upsert(
        TimelineEntry(
            account_id=a.account_id,
            key=f"activity:{a.pk}",
            kind=TimelineEntry.Kind.ACTIVITY,
            occurred_at=a.occurred_at,
            title=f"{a.get_kind_display()}: {a.subject}",
            data={"activity": a.pk, "kind": a.kind},
        )
        for a, _ in made
    )
    return len(made)


def stakeholders_date(plans: list[AccountPlan]) -> int:
    """Date the stakeholders of ``plans`` (just imported, so stamped with the time of the
    import) and their "added as …" timeline facts to the morning the account became a
    customer, like the rest of the book: health reads stakeholders as known on day D by
    the time their row was created (``metrics.kpis.health_inputs``), so a book stamped
    today would score every day of its history "no champion known", then jump the day after.
    Returns the number of stakeholders dated."""
    known = {
        p.external_id: datetime.combine(p.customer_since, datetime.min.time(), UTC)
        + STAKEHOLDERS_KNOWN_AT
        for p in plans
    }
    people = list(
        Stakeholder.objects.filter(account__external_id__in=list(known)).only(
            "pk", "external_id", "account_id", "created_at"
        )
    )
    accounts = dict(
        Account.objects.filter(external_id__in=list(known)).values_list("id", "external_id")
    )
    for s in people:
        s.created_at = known[accounts[s.account_id]]
    Stakeholder.objects.bulk_update(people, ["created_at"], batch_size=1000)
    when = {f"stakeholder:{s.external_id}:added": s.created_at for s in people}
    facts = list(
        TimelineEntry.objects.filter(
            account_id__in=list(accounts), kind=TimelineEntry.Kind.STAKEHOLDER_ADDED
        ).only("pk", "key", "occurred_at")
    )
    for f in facts:
        f.occurred_at = when.get(f.key, f.occurred_at)
    TimelineEntry.objects.bulk_update(facts, ["occurred_at"], batch_size=1000)
    return len(people)


def champions_leave(plans: list[AccountPlan], cfg: DemoConfig) -> list[dict[str, Any]]:
    """Stakeholder rows that turn the champion of about half the churned accounts into a
    plain user: the champion left (the relationship score's rule), imported after the
    first import recorded them as champion."""
    rows = []
    for plan in plans:
        if plan.fate != "churned" or _rng(cfg.seed, plan.index, "champion-left").random() >= 0.5:
            continue
        row = stakeholder_rows(plan, cfg)[0]  # the champion
        rows.append({**row, "role": "user", "is_primary": False})
    return rows


def invoice_rows(plan: AccountPlan, cfg: DemoConfig) -> list[dict[str, Any]]:
    """One invoice per billing cycle of every contract line, issued inside the window."""
    rng = _rng(cfg.seed, plan.index, "invoices")
    today, start = cfg.end, cfg.start
    risky = plan.fate in ("at_risk", "churned")
    rows = []
    n = 0
    for p in plan.periods:
        cycle = p.start
        last = min(p.end or today, today)
        while cycle <= last:
            if cycle >= start:
                n += 1
                rows.append(_invoice(rng, plan, p, cycle, n, today, risky))
            cycle = add_months(cycle, p.billing)
    if plan.fate == "at_risk" and rng.random() < 0.6:
        # payment trouble is a classic risk signal: the latest invoice past due failed
        past_due = [r for r in rows if r["due_on"] < today.isoformat() and r["status"] != "void"]
        if past_due:
            past_due[-1].update(status="failed", paid_on="", failed_attempts=rng.randint(1, 4))
    return rows


def _invoice(rng, plan, p: Period, issued: date, n: int, today: date, risky: bool) -> dict:
    due = issued + timedelta(days=45 if plan.segment.name == "Enterprise" else 30)
    amount = round(p.mrr * p.billing, 2)
    paid_on, failed_attempts = None, 0
    late_days = rng.expovariate(1 / (25 if risky else 12))
    pay_day = issued + timedelta(days=int(late_days))
    if rng.random() < 0.01:
        status = "void"
    elif pay_day <= today and (rng.random() < (0.8 if risky else 0.96) or due >= today):
        status, paid_on = "paid", pay_day
        if p.billing == 1 and rng.random() < 0.05:
            failed_attempts = 1  # a retried card payment that went through
    elif due >= today:
        status = "open"
    elif rng.random() < (0.6 if p.billing == 1 else 0.35):  # card payments fail more
        status, failed_attempts = "failed", rng.randint(1, 4)
    else:
        status = "open"  # overdue
    return {
        "external_id": f"INV-{plan.index:06d}-{n}",
        "account_external_id": plan.external_id,
        "issued_on": _iso(issued),
        "due_on": _iso(due),
        "amount": f"{amount:.2f}",
        "paid_on": _iso(paid_on),
        "status": status,
        "failed_attempts": failed_attempts,
    }


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


# --- usage events ---------------------------------------------------------------------------

_HOUR_WEIGHT = tuple(1.0 if 7 <= h < 19 else 0.12 for h in range(24))
_HOUR_MEAN = sum(_HOUR_WEIGHT) / 24
_WEEKEND = 0.15
_SESSION_GO_ON = 0.6  # chance of one more event in a session: 2.5 events per session
_SESSION_MEAN = 1 / (1 - _SESSION_GO_ON)


def engagement(plan: AccountPlan, day: float, today_ord: int) -> float:
    """How engaged the account is on proleptic day ``day`` (a float ordinal), 0 = no usage.
    1.0 is the account's normal level."""
    since = plan.customer_since.toordinal()
    if day < since:
        return 0.0
    m = 1.0
    age = day - since
    if age < 60:  # onboarding ramp
        m *= 0.25 + 0.75 * age / 60
    fate = plan.fate
    if fate == "growing":
        m *= 0.8 + 0.5 * min(1.0, age / 540)
    elif fate == "churned":
        end = plan.churn_date.toordinal() + 1
        if day >= end:
            return 0.0
        left = end - day  # days until the contract ends
        if left < 90:  # the decline comes before the churn
            m *= 0.12 + 0.88 * (left / 90) ** 1.3
    elif fate == "at_risk":
        left = today_ord - day
        if left < 75:
            m *= 0.35 + 0.65 * (left / 75)
    return m


def daily_rate(plan: AccountPlan, cfg: DemoConfig) -> float:
    """Events per weekday at engagement 1.0: grows sub-linearly with seats."""
    rng = _rng(cfg.seed, plan.index, "rate")
    return cfg.events_scale * 0.5 * max(plan.seats, 1) ** 0.6 * rng.lognormvariate(0, 0.3)


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()

# One generated event: (user_id, event name, seconds since the epoch UTC, value or None)
DemoEvent = tuple[str, str, int, int | None]


def iter_events(plan: AccountPlan, cfg: DemoConfig) -> Iterator[DemoEvent]:
    """The account's events, session by session (sessions in time order).

    Sessions are an inhomogeneous Poisson process drawn by thinning: candidates arrive at the
    peak rate and are kept with probability engagement × weekday × hour-of-day, so the cost
    follows the number of events, not the number of days (sparse benchmark books stay
    cheap). A session is one user doing ~2.5 things a few minutes apart, most starting with
    a ``login``. Users come from a pool of the licensed seats that shrinks with engagement
    (fewer *active users*, not only fewer clicks), skewed towards power users."""
    rng = _rng(cfg.seed, plan.index, "events")
    rate = daily_rate(plan, cfg) / _SESSION_MEAN  # sessions per weekday at engagement 1
    if rate <= 0:
        return
    start_ord = max(cfg.start.toordinal(), plan.customer_since.toordinal())
    today_ord = cfg.end.toordinal()
    stop_ord = today_ord  # up to the end of yesterday (UTC): a seed is stable all day
    if plan.churn_date is not None:
        stop_ord = min(stop_ord, plan.churn_date.toordinal() + 1)
    if stop_ord <= start_ord:
        return
    stop_ts = (stop_ord - _EPOCH_ORDINAL) * 86400
    peak = 1.3  # engagement never exceeds this
    # candidates per day: keeping engagement/peak x hour weight leaves ``rate`` on a weekday
    lam = rate * peak / _HOUR_MEAN
    pool = max(1, plan.seats)
    user_prefix = f"u{plan.index}-"
    t = float(start_ord)
    random_, expo, randint = rng.random, rng.expovariate, rng.randint
    cum, names, last = _EVENT_CUM, _EVENT_NAMES, _EVENT_CUM[-1]
    while True:
        t += expo(lam)
        if t >= stop_ord:
            return
        day = int(t)
        secs = int((t - day) * 86400)
        eng = engagement(plan, t, today_ord)
        keep = eng / peak * _HOUR_WEIGHT[secs // 3600]
        if (day + 6) % 7 >= 5:  # Saturday, Sunday
            keep *= _WEEKEND
        if random_() >= keep:
            continue
        active_pool = max(1, round(pool * (0.15 + 0.85 * min(1.0, eng))))
        user_id = f"{user_prefix}{int(active_pool * random_() ** 1.8)}"
        ts = (day - _EPOCH_ORDINAL) * 86400 + secs
        event = "login" if random_() < 0.7 else None
        while ts < stop_ts:
            if event is None:
                x = random_() * last
                i = 0
                while cum[i] <= x:
                    i += 1
                event = names[i]
            value = int(10 + 2000 * random_() ** 3) if event == "export_run" else None
            yield user_id, event, ts, value
            if random_() >= _SESSION_GO_ON:
                break
            ts += randint(15, 900)
            event = None


def event_row(account_external_id: str, ev: DemoEvent) -> dict[str, Any]:
    """A generated event as an import row (CSV columns / JSON fields)."""
    user_id, event, ts, value = ev
    return {
        "account_external_id": account_external_id,
        "user_id": user_id,
        "event": event,
        "occurred_at": datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "value": value,
    }


# --- loading --------------------------------------------------------------------------------


@transaction.atomic
def demo_users_ensure() -> dict[str, User]:
    """Create (or update) the demo users with their roles and the demo password."""
    ensure_roles()
    groups = {g.name: g for g in Group.objects.filter(name__in=[r.value for r in Role])}
    password = make_password(DEMO_PASSWORD)  # hashed once: PBKDF2 is slow on purpose
    users: dict[str, User] = {}
    for spec in DEMO_USERS:
        user, _ = User.objects.update_or_create(
            email=spec.email,
            defaults={
                "first_name": spec.first_name,
                "last_name": spec.last_name,
                "is_staff": spec.role == Role.ADMIN,
                "is_superuser": spec.role == Role.ADMIN,
                "is_active": True,
                "password": password,
                "manager": users.get(spec.manager_email) if spec.manager_email else None,
            },
        )
        user.groups.set([groups[spec.role.value]])
        users[spec.email] = user
    return users


@dataclass
class SeedSummary:
    accounts: int = 0
    contracts: int = 0
    stakeholders: int = 0
    tickets: int = 0
    invoices: int = 0
    activities: int = 0
    events: int = 0
    seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)


class SeedError(Exception):
    """The intake rejected generated rows: a bug in the generator."""


def seed_demo(cfg: DemoConfig, *, progress: Callable[[str], None] | None = None) -> SeedSummary:
    """Create the demo users and load ``cfg.accounts`` accounts with everything they have.

    Entities go through the intake (``run_import`` on JSON rows, so validation, upserts and
    timeline facts are the import's own) in chunks of ``cfg.account_chunk`` accounts, one
    transaction each. Events go through the intake's event loader (``intake.events``: COPY on
    PostgreSQL, dedup key, rollups of the touched days) in chunks of ``cfg.event_chunk``,
    skipping only the per-cell parsing of values we generated ourselves. Memory stays flat:
    one chunk of accounts and one chunk of events at a time. Re-running with the same seed
    and day upserts the same rows and de-duplicates the same events."""
    began = time.monotonic()
    say = progress or (lambda _msg: None)
    demo_users_ensure()
    summary = SeedSummary()
    pending: list[tuple] = []
    for lo in range(1, cfg.accounts + 1, cfg.account_chunk):
        hi = min(cfg.accounts, lo + cfg.account_chunk - 1)
        plans = [plan_account(cfg, i) for i in range(lo, hi + 1)]
        rows: dict[str, list[dict[str, Any]]] = {k: [] for k in intake.KINDS if k != "events"}
        for plan in plans:
            rows["accounts"].append(account_row(plan))
            rows["contracts"].extend(contract_rows(plan))
            rows["stakeholders"].extend(stakeholder_rows(plan, cfg))
            rows["tickets"].extend(ticket_rows(plan, cfg))
            rows["invoices"].extend(invoice_rows(plan, cfg))
        result = intake.run_import(
            [intake.source_from_rows(k, r, name=f"demo {k}") for k, r in rows.items() if r]
        )
        if not result.ok:
            raise SeedError("; ".join(str(e) for e in result.errors[:5]))
        for kind, kind_rows in rows.items():
            setattr(summary, kind, getattr(summary, kind) + len(kind_rows))
        del rows
        ids = dict(
            Account.objects.filter(external_id__in=[p.external_id for p in plans]).values_list(
                "external_id", "id"
            )
        )
        stakeholders_date(plans)
        leaving = champions_leave(plans, cfg)
        if leaving:  # a second import: the first one recorded them as champions
            left = intake.run_import(
                [intake.source_from_rows("stakeholders", leaving, name="demo")]
            )
            if not left.ok:
                raise SeedError("; ".join(str(e) for e in left.errors[:5]))
        summary.activities += activities_load(plans, cfg, ids)
        for plan in plans:
            account_id = ids[plan.external_id]
            for ev in iter_events(plan, cfg):
                pending.append(_event_tuple(account_id, ev))
                if len(pending) >= cfg.event_chunk:
                    summary.events += events_load(pending)
                    pending = []
        say(f"accounts {hi:,}/{cfg.accounts:,}, events {summary.events + len(pending):,}")
    if pending:
        summary.events += events_load(pending)
    summary.seconds = time.monotonic() - began
    summary.counts = database_counts()
    return summary


def _event_tuple(account_id: int, ev: DemoEvent) -> tuple:
    user_id, event, ts, value = ev
    occurred_at = datetime.fromtimestamp(ts, UTC)
    key = intake_events.dedup_key(account_id, user_id, event, occurred_at, value)
    return account_id, user_id, event, occurred_at, value, key


@transaction.atomic
def events_load(rows: list[tuple]) -> int:
    """Load generated event rows through the intake's event loader (the same inserts,
    rollups and first-usage facts as an events import). Returns the number of rows given."""
    intake_events.events_load(rows)
    return len(rows)


def database_counts() -> dict[str, int]:
    models = {
        "accounts": Account,
        "contracts": Contract,
        "stakeholders": Stakeholder,
        "tickets": Ticket,
        "invoices": Invoice,
        "activities": Activity,
        "events": UsageEvent,
        "usage days": UsageDaily,
        "feature days": UsageFeatureDaily,
        "timeline entries": TimelineEntry,
    }
    return {name: model.objects.count() for name, model in models.items()}
