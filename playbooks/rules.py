"""Playbook rules, pure: the triggers and success conditions, their parameters, and their
evaluation over one account's plain facts (``playbooks.facts`` gathers them, set-based).

No database here: values in, values out. A trigger returns ``Match(evidence, data)`` (the
evidence in words, stored on the CTA: "health 72 → 41 on 2024-03-02") or None; a success
condition returns the reason it is met, or None.

Facts of one account (a dict; a key is absent when its source was not gathered, and a
value of None means "no data", never 0): see ``playbooks.facts.gather``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from accounts import utc
from accounts.money import count_text
from accounts.money import number_text as _num  # every figure of the words: 12,500
from accounts.timeline import money_text
from metrics.health import score_pair
from metrics.kpis.common import percent_text
from metrics.services import BAND_CHANGED_KIND

BANDS = ("green", "yellow", "red")
BAND_RANK = {"red": 0, "yellow": 1, "green": 2}
SURVEY_KINDS = ("nps", "csat", "ces")
LIFECYCLES = ("onboarding", "adoption", "mature", "renewal", "churned")
CTA_TYPES = ("risk", "opportunity", "lifecycle")
CHURNED = "churned"  # the lifecycle stage of former customers
PRIORITIES = ("high", "medium", "low")
OWNER_RULES = ("account_csm", "csm_manager", "named_user")
MAX_DAYS = 3650


@dataclass(frozen=True)
class Param:
    """One parameter: ``kind`` is int, number, bool, band, choice or kinds (a list of survey
    kinds). Without a default it is required."""

    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    default: Any = None
    choices: tuple[str, ...] = ()
    help: str = ""
    # how the value reads on a page, "{}" for it ("within {}"); a bool's "yes|no" words
    words: str = ""

    @property
    def required(self) -> bool:
        return self.default is None

    def describe(self, value: Any) -> str:
        """The value in words: "within 7 days", "NPS, CSAT", "an overdue invoice also fires"."""
        if self.kind == "bool":
            yes, _, no = (self.words or f"{self.name}|not {self.name}").partition("|")
            return yes if value else no
        if self.kind == "kinds" and isinstance(value, list | tuple):
            text = ", ".join(str(v).upper() for v in value)
        elif self.kind in ("int", "number") and self.name.endswith("days"):
            text = _days(value) if isinstance(value, int) else str(value)
        elif self.kind in ("int", "number"):
            text = _num(value) if isinstance(value, int | float | Decimal) else str(value)
        else:
            text = str(value).replace("_", " ")
        return (self.words or self.name.replace("_", " ") + ": {}").format(text)


@dataclass(frozen=True)
class Match:
    evidence: str
    data: dict[str, Any] = field(default_factory=dict)
    # what fired, in a few words, where a trigger fires on one of several facts (a failed
    # payment or an overdue invoice): added to the CTA's title so it names the actual one
    headline: str = ""


Facts = Mapping[str, Any]


@dataclass(frozen=True)
class Trigger:
    key: str
    label: str
    params: tuple[Param, ...]
    sources: tuple[str, ...]  # fact sources the evaluation reads (``facts.SOURCES``)
    evaluate: Callable[[Facts, dict[str, Any], dt.date], Match | None]
    # timeline fact kinds that make this trigger evaluate within a minute (event path)
    event_kinds: tuple[str, ...] = ()


@dataclass(frozen=True)
class Success:
    key: str
    label: str
    params: tuple[Param, ...]
    sources: tuple[str, ...]
    # (facts, params, the CTA as {"opened_on", "arr_at_open", "steps_left"}) -> reason or None
    met: Callable[[Facts, dict[str, Any], Mapping[str, Any]], str | None]
    # timeline fact kinds after which the CTAs of the account are checked at once (event
    # path) rather than the next night
    event_kinds: tuple[str, ...] = ()
    # met only by something done after the CTA opened (a CSM's touch, its steps, ARR grown
    # since): never already met when it opens, so the opening's guard does not ask (a call
    # logged this morning must not stop the CTA of a detractor who answered this afternoon)
    after_opening: bool = False


def _pct_change(now: float, before: float) -> float | None:
    if not before:
        return None
    return (now - before) * 100 / before


def _days(n: int) -> str:
    return count_text(n, "day")


# --- triggers ------------------------------------------------------------------------------


def _health_entered(f: Facts, p: dict, as_of: dt.date) -> Match | None:
    """A band change to ``band`` recorded in the last ``within_days`` days (as_of included),
    and the account is still in that band. An override that ended counts: the band is the
    model's verdict again, which is what the playbook watches; the evidence says the
    override ended rather than that the score moved."""
    if f.get("band") != p["band"]:
        return None
    first = as_of - dt.timedelta(days=p["within_days"] - 1)
    changes = [
        c
        for c in f.get("band_changes", ())
        if c.get("to") == p["band"] and first.isoformat() <= c.get("as_of", "") <= as_of.isoformat()
    ]
    if not changes:
        return None
    c = max(changes, key=lambda c: c["as_of"])
    was, now = score_pair(c.get("score_from"), c.get("score_to"), text=_num)
    if c.get("band_override"):
        # an override set the band, not the score: "health 76.2 → 80.5 (yellow → red)"
        # would read as a drop while the score rose
        return Match(
            f"band set to {c['to']} by an override on {utc.day_text(c['as_of'])} "
            f"(health {was} → {now}, computed {c.get('computed_band') or 'no band'}; "
            f"{c.get('from') or 'no band'} before)",
            {"band_change": c},
        )
    if c.get("override_ended"):
        # the override, not the score, held the band before: "health 80.5 → 76.2 (red →
        # yellow)" would read as a change of the customer's data
        return Match(
            f"band back to {c['to']} when an override ended on {utc.day_text(c['as_of'])} "
            f"(health {was} → {now}; {c.get('from') or 'no band'} by the override before)",
            {"band_change": c},
        )
    return Match(
        f"health {was} → {now} "
        f"on {utc.day_text(c['as_of'])} ({c.get('from') or 'no band'} → {c['to']})",
        {"band_change": c},
    )


def _score_dropped(f: Facts, p: dict, as_of: dt.date) -> Match | None:
    """The computed score (the model's, before any override) of the latest snapshot is at
    least ``points`` below the one ``days`` days before, both scored by the same model
    version, as the queue's trends compare (``metrics.standings``): an override set or
    ended in between changes the score shown, not the customer's data, so it neither sets
    the trigger off nor hides a real drop, and a new version of the model (or another
    model) scores the same data differently: no drop is known then."""
    before_day = as_of - dt.timedelta(days=p["days"])
    snapshots = f.get("snapshots", {})  # day → (shown, band, computed, model version)
    now_day = f.get("health_day")
    at_now, at_before = snapshots.get(now_day), snapshots.get(before_day)
    if at_now is None or at_before is None or None in (at_now[2], at_before[2]):
        return None
    if at_now[3] != at_before[3]:
        return None
    now, before = at_now[2], at_before[2]
    if before - now < p["points"]:
        return None
    shown = (at_before[0], f.get("score"))
    what = "health" if shown == (before, now) else "computed health"  # an override shows another
    was, is_now = score_pair(before, now, text=_num)
    return Match(
        f"{what} {was} → {is_now} "
        f"between {utc.day_text(before_day)} and {utc.day_text(now_day)} "
        f"(−{count_text(round(before - now, 1), 'point')} in {_days(p['days'])})",
        {"score_before": before, "score_now": now, "day_before": before_day.isoformat()},
    )


def _sentiment_below(f: Facts, p: dict, as_of: dt.date) -> Match | None:
    """The day the account's customer sentiment (voice app, -100..100) fell below the
    threshold: below it on ``as_of``, at or above it (or no data) the day before."""
    scores = f.get("voice") or {}
    now = scores.get(as_of, (None, None))[0]
    before = scores.get(as_of - dt.timedelta(days=1), (None, None))[0]
    if now is None or now >= p["below"] or (before is not None and before < p["below"]):
        return None
    was = "no data" if before is None else f"{before:+d}"
    return Match(
        f"customer sentiment {was} → {now:+d} on {utc.day_text(as_of)} (below {p['below']:+d})",
        {"sentiment": now, "sentiment_before": before},
    )


def _relationship_dropped(f: Facts, p: dict, as_of: dt.date) -> Match | None:
    """The relationship score (voice app, 0..100) is at least N points lower than D days ago."""
    scores = f.get("voice") or {}
    then = as_of - dt.timedelta(days=p["days"])
    now = scores.get(as_of, (None, None))[1]
    before = scores.get(then, (None, None))[1]
    if now is None or before is None or before - now < p["points"]:
        return None
    return Match(
        f"stakeholder coverage {before} → {now} between {utc.day_text(then)} and "
        f"{utc.day_text(as_of)} (−{count_text(before - now, 'point')} in {_days(p['days'])})",
        {"relationship": now, "relationship_before": before, "day_before": then.isoformat()},
    )


def _usage_dropped(f: Facts, p: dict, as_of: dt.date) -> Match | None:
    if p["measure"] == "active_users":
        now, before, what = f.get("active_30d"), f.get("active_prev_30d"), "active users"
    else:
        now, before, what = f.get("events_30d"), f.get("events_prev_30d"), "events"
    if now is None or not before:
        return None
    change = _pct_change(now, before)
    if change is None or -change < p["percent"]:
        return None
    return Match(
        f"usage −{percent_text(-change)} ({what} in 30 days: {_num(before)} → {_num(now)})",
        {"measure": p["measure"], "before": before, "now": now, "change_pct": round(change, 2)},
    )


def _renewal_within(f: Facts, p: dict, as_of: dt.date) -> Match | None:
    end = f.get("renewal_on")
    if end is None or f.get("renewed"):
        return None
    days = (end - as_of).days
    if not 0 <= days <= p["days"]:
        return None
    return Match(
        f"contract ends on {utc.day_text(end)} (in {_days(days)}), no renewal yet",
        {"renewal_on": end.isoformat(), "days": days},
    )


def _new_customer(f: Facts, p: dict, as_of: dt.date) -> Match | None:
    since = f.get("customer_since")
    if since is None:
        return None
    age = (as_of - since).days
    if not 0 <= age < p["days"]:
        return None
    return Match(
        f"new customer since {utc.day_text(since)} (day {_num(age + 1)} of {_num(p['days'])})",
        {"customer_since": since.isoformat()},
    )


def _first_value_missing(f: Facts, p: dict, as_of: dt.date) -> Match | None:
    since = f.get("customer_since")
    # no key: not looked at (customer for longer than the facts' horizon)
    if since is None or "first_value_on" not in f or f["first_value_on"] is not None:
        return None
    age = (as_of - since).days
    if age < p["days"]:
        return None
    return Match(
        f"no first value {_days(age)} after becoming a customer on {utc.day_text(since)} "
        f"(target: {_days(p['days'])})",
        {"customer_since": since.isoformat(), "days": age},
    )


def _payment_trouble(f: Facts, p: dict, as_of: dt.date) -> Match | None:
    """At least ``failed_payments`` failed payment attempts in 90 days on invoices not paid
    since (the billing data has no dates of attempts: an invoice paid after its failed
    attempts resolved them, and a failed payment so followed by a payment is no trouble
    left), or, with ``overdue``, an invoice overdue: what ``_payments_clear`` says is gone,
    so a CTA never opens with its success met."""
    failed = f.get("unpaid_failed_payments_90d") or 0
    overdue = f.get("overdue_invoices") or 0
    parts = []
    if failed >= p["failed_payments"]:
        invoices = f.get("unpaid_failed_invoices_90d") or 0
        parts.append(
            f"{_num(failed)} failed payment{'s' if failed != 1 else ''} in 90 days "
            f"on {_num(invoices)} invoice{'s' if invoices != 1 else ''} not paid since"
        )
    if p["overdue"] and overdue:
        amount = f.get("overdue_amount")
        money = f" ({money_text(Decimal(str(amount)))} due)" if amount is not None else ""
        parts.append(f"{_num(overdue)} overdue invoice{'s' if overdue != 1 else ''}{money}")
    if not parts:
        return None
    what = []
    if failed >= p["failed_payments"]:
        what.append("failed payment" if failed == 1 else "failed payments")
    if p["overdue"] and overdue:
        what.append("overdue invoice" if overdue == 1 else "overdue invoices")
    return Match(
        "; ".join(parts),
        {"unpaid_failed_payments_90d": failed, "overdue_invoices": overdue},
        headline=" and ".join(what),
    )


def _ticket_escalated(f: Facts, p: dict, as_of: dt.date) -> Match | None:
    n = f.get("open_escalations") or 0
    if not n:
        return None
    subjects = f.get("escalated_subjects") or []
    detail = f": {', '.join(subjects[:3])}" if subjects else ""
    return Match(
        f"{_num(n)} open escalated ticket{'s' if n != 1 else ''}{detail}", {"open_escalations": n}
    )


def _open_tickets(f: Facts, p: dict, as_of: dt.date) -> Match | None:
    n = f.get("open_tickets") or 0
    if n < p["count"]:
        return None
    return Match(f"{_num(n)} open tickets (threshold {_num(p['count'])})", {"open_tickets": n})


def _survey_unhappy(f: Facts, p: dict, as_of: dt.date) -> Match | None:
    first = (as_of - dt.timedelta(days=p["within_days"] - 1)).isoformat()
    answers = [
        a
        for a in f.get("unhappy_answers", ())
        if a.get("survey_kind") in p["kinds"] and first <= a.get("on", "") <= as_of.isoformat()
    ]
    if not answers:
        return None
    latest = max(answers, key=lambda a: (a["on"], a.get("entry_id", 0)))
    return Match(
        f"{latest['title']} on {utc.day_text(latest['on'])}"
        + (f": “{latest['comment'][:120]}”" if latest.get("comment") else ""),
        {"answer": latest},
    )


def _champion_removed(f: Facts, p: dict, as_of: dt.date) -> Match | None:
    if f.get("champions_now", 0) or not f.get("champion_before"):
        return None
    return Match(
        f"champion {f['champion_before']} is no longer listed; no champion named",
        {"champion_before": f["champion_before"]},
    )


def _no_activity(f: Facts, p: dict, as_of: dt.date) -> Match | None:
    last = f.get("last_touch_on")
    if last is None:
        since = f.get("customer_since")
        if since is None or (as_of - since).days < p["days"]:
            return None
        return Match(
            f"no CSM activity recorded since becoming a customer on {utc.day_text(since)}",
            {"last_touch_on": None},
        )
    days = (as_of - last).days
    if days < p["days"]:
        return None
    return Match(
        f"no CSM activity in {_days(days)} (last on {utc.day_text(last)})",
        {"last_touch_on": last.isoformat()},
    )


def _seat_utilisation(f: Facts, p: dict, as_of: dt.date) -> Match | None:
    seats, active = f.get("seats") or 0, f.get("active_30d") or 0
    if not seats or (p["healthy_only"] and f.get("band") != "green"):
        return None
    util = active * 100 / seats
    if util < p["at_least"]:
        return None
    return Match(
        f"seat utilisation {percent_text(util)} ({_num(active)} of {count_text(seats, 'seat')} "
        "active in 30 days)" + (", health green" if p["healthy_only"] else ""),
        {"seat_utilisation": round(util, 2), "active": active, "seats": seats},
    )


def _within(default: int = 1) -> Param:
    return Param(
        "within_days",
        "int",
        1,
        365,
        default,
        help="look back this many days (as-of included)",
        words="within {}",
    )


TRIGGERS: dict[str, Trigger] = {
    t.key: t
    for t in (
        Trigger(
            "health_entered",
            "Health entered a band",
            (Param("band", "band", help="green, yellow or red", words="band {}"), _within()),
            ("health", "band_changes"),
            _health_entered,
            event_kinds=(BAND_CHANGED_KIND,),
        ),
        Trigger(
            "score_dropped",
            "Health score dropped ≥ N points in D days",
            (
                Param("points", "number", 1, 100, words="points: {}"),
                Param("days", "int", 1, 365, words="in {}"),
            ),
            ("health",),
            _score_dropped,
        ),
        Trigger(
            "sentiment_below",
            "Customer sentiment fell below X",
            (Param("below", "int", -100, 100, words="below {}"),),
            ("voice",),
            _sentiment_below,
        ),
        Trigger(
            "relationship_dropped",
            # "relationship" is also a health component: the voice app's score is named
            # for what it measures on every page
            "Stakeholder coverage dropped ≥ N points in D days",
            (
                Param("points", "int", 1, 100, words="points: {}"),
                Param("days", "int", 1, 365, words="in {}"),
            ),
            ("voice",),
            _relationship_dropped,
        ),
        Trigger(
            "usage_dropped",
            "Usage fell ≥ N% month over month",
            (
                Param("percent", "number", 1, 100, words="by {}%"),
                Param(
                    "measure",
                    "choice",
                    default="events",
                    choices=("events", "active_users"),
                    words="measured in {}",
                ),
            ),
            ("usage",),  # + active_users for that measure (services._fact_needs)
            _usage_dropped,
        ),
        Trigger(
            "renewal_within",
            "Renewal (contract end) within N days",
            (Param("days", "int", 1, MAX_DAYS, words="{}"),),
            ("contracts",),
            _renewal_within,
        ),
        Trigger(
            "new_customer",
            "New customer (first N days)",
            (Param("days", "int", 1, MAX_DAYS, words="{}"),),
            (),
            _new_customer,
        ),
        Trigger(
            "first_value_missing",
            "First value not reached within N days",
            (Param("days", "int", 1, MAX_DAYS, words="{}"),),
            ("first_value",),
            _first_value_missing,
        ),
        Trigger(
            "payment_trouble",
            "Failed payments ≥ N (invoice not paid since) or an invoice overdue",
            (
                Param("failed_payments", "int", 1, 1000, default=1, words="failed payments: {}"),
                Param(
                    "overdue",
                    "bool",
                    default=True,
                    help="an overdue invoice also fires",
                    words="an overdue invoice also fires|an overdue invoice does not fire",
                ),
            ),
            ("invoices",),
            _payment_trouble,
            event_kinds=("payment_failed",),
        ),
        Trigger(
            "ticket_escalated",
            "A ticket escalated",
            (),
            ("tickets",),
            _ticket_escalated,
            event_kinds=("ticket_escalated",),
        ),
        Trigger(
            "open_tickets",
            "≥ N open tickets",
            (Param("count", "int", 1, 10000, words="open tickets: {}"),),
            ("tickets",),
            _open_tickets,
        ),
        Trigger(
            "survey_unhappy",
            "A detractor / low CSAT / high-effort CES answer",
            (
                Param("kinds", "kinds", default=SURVEY_KINDS, help="nps, csat, ces", words="{}"),
                _within(),
            ),
            ("surveys",),
            _survey_unhappy,
            event_kinds=("survey_answer",),
        ),
        Trigger(
            "champion_removed",
            "The champion stakeholder removed",
            (),
            ("champions",),
            _champion_removed,
        ),
        Trigger(
            "no_activity",
            "No CSM activity in N days",
            (Param("days", "int", 1, MAX_DAYS, words="{}"),),
            ("activity",),
            _no_activity,
        ),
        Trigger(
            "seat_utilisation",
            "Seat utilisation ≥ N%",
            (
                Param("at_least", "number", 1, 1000, words="at least {}%"),
                Param(
                    "healthy_only",
                    "bool",
                    default=False,
                    help="only green accounts",
                    words="green accounts only|any health",
                ),
            ),
            ("active_users", "contracts", "health"),
            _seat_utilisation,
        ),
    )
}

EVENT_KINDS = {kind: key for key, t in TRIGGERS.items() for kind in t.event_kinds}


# --- success conditions --------------------------------------------------------------------


def _band_at_least(f: Facts, p: dict, cta: Mapping) -> str | None:
    band = f.get("band")
    if band and BAND_RANK[band] >= BAND_RANK[p["band"]]:
        return f"health is {band} ({_num(f.get('score'))})"
    return None


def _score_at_least(f: Facts, p: dict, cta: Mapping) -> str | None:
    score = f.get("score")
    if score is not None and score >= p["score"]:
        return "health score {} ≥ {}".format(*score_pair(score, p["score"], text=_num))
    return None


def _usage_recovered(f: Facts, p: dict, cta: Mapping) -> str | None:
    now, before = f.get("events_30d"), f.get("events_prev_30d")
    if now is None or not before:
        return None
    change = _pct_change(now, before)
    if change is not None and change >= p["percent"]:
        return f"usage {'+' if change >= 0 else ''}{percent_text(change)} month over month"
    return None


def _renewed(f: Facts, p: dict, cta: Mapping) -> str | None:
    start = f.get("latest_contract_start")
    if start is not None and start > cta["opened_on"]:
        return f"a contract starting {utc.day_text(start)} was signed"
    return None


def _first_value(f: Facts, p: dict, cta: Mapping) -> str | None:
    on = f.get("first_value_on")
    return f"first value reached on {utc.day_text(on)}" if on is not None else None


def _payments_clear(f: Facts, p: dict, cta: Mapping) -> str | None:
    """No invoice overdue and none unpaid with a failed payment (the facts' as-of day)."""
    if (f.get("overdue_invoices") or 0) == 0 and (f.get("unpaid_failed_invoices") or 0) == 0:
        return "no overdue invoice and no failed payment left unpaid"
    return None


def _touched(f: Facts, p: dict, cta: Mapping) -> str | None:
    last = f.get("last_touch_on")
    if last is not None and last >= cta["opened_on"]:
        return f"CSM activity logged on {utc.day_text(last)}"
    return None


def _steps_done(f: Facts, p: dict, cta: Mapping) -> str | None:
    return "every step done" if cta.get("steps_left") == 0 else None


def _arr_expanded(f: Facts, p: dict, cta: Mapping) -> str | None:
    before, now = cta.get("arr_at_open"), f.get("arr")
    if before is None or now is None or Decimal(str(now)) <= Decimal(str(before)):
        return None
    # money as the evidence writes it ("$633,600.00 due"), not a bare figure
    return f"ARR {money_text(Decimal(str(before)))} → {money_text(Decimal(str(now)))}"


SUCCESSES: dict[str, Success] = {
    s.key: s
    for s in (
        Success("health_band_at_least", "Health back to a band",
                (Param("band", "band", words="{}"),), ("health",), _band_at_least),
        Success("score_at_least", "Health score at least",
                (Param("score", "number", 0, 100, words="{}"),), ("health",), _score_at_least),
        Success("usage_recovered", "Usage trend at least N% month over month",
                (Param("percent", "number", -100, 1000, default=0, words="{}%"),), ("usage",),
                _usage_recovered),
        Success("renewed", "Renewed (a new contract starts)", (), ("contracts",), _renewed),
        Success("first_value", "First value reached", (), ("first_value",), _first_value,
                event_kinds=("milestone_recorded",)),
        Success("payments_clear", "No invoice overdue or unpaid after a failed payment", (),
                ("invoices",), _payments_clear),
        Success("touched", "CSM activity logged after opening", (), ("activity",), _touched,
                after_opening=True),
        Success("steps_done", "Every step done", (), (), _steps_done, after_opening=True),
        Success("arr_expanded", "ARR grew", (), ("contracts",), _arr_expanded,
                after_opening=True),
    )
}  # fmt: skip

# fact kind -> the success conditions checked when such a fact is recorded
SUCCESS_EVENT_KINDS: dict[str, frozenset[str]] = {
    kind: frozenset(k for k, s in SUCCESSES.items() if kind in s.event_kinds)
    for kind in {kind for s in SUCCESSES.values() for kind in s.event_kinds}
}


# --- validation ----------------------------------------------------------------------------


def describe(
    table: Mapping[str, Trigger | Success], key: str | None, params: Mapping[str, Any] | None
) -> tuple[str, list[str]]:
    """A trigger or success condition as a page shows it: its label and each parameter in
    words ("No CSM activity in N days", ["30 days"]). An unknown key is shown as it is."""
    found = table.get(key or "")
    if found is None:
        return (key or "—"), [f"{k}: {v}" for k, v in (params or {}).items()]
    given = params or {}
    return found.label, [p.describe(given[p.name]) for p in found.params if p.name in given]


def _what(table: Mapping[str, Trigger | Success], key: str, kind: str) -> str:
    """ "the trigger 'No CSM activity in N days'": how messages name a trigger or condition."""
    found = table.get(key)
    return f"the {kind} '{found.label if found else key}'"


def _number(value: Any) -> Any:
    """A whole or decimal number from an int, float, Decimal or text; None when it is not."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = Decimal(value.strip())
        except InvalidOperation:
            return None
    if isinstance(value, Decimal):
        if not value.is_finite():
            return None
        value = int(value) if value == value.to_integral_value() else float(value)
    return value if isinstance(value, int | float) else None


def _clean_param(param: Param, value: Any) -> tuple[Any, str | None]:
    """``value`` checked against ``param``: (the value, None) or (None, "<name>: <problem>"),
    the problem quoting the value as given."""
    kind = param.kind
    if kind == "bool":
        if isinstance(value, bool):
            return value, None
        return None, f"{param.name}: must be true or false, got {value!r}"
    if kind in ("band", "choice"):
        choices = BANDS if kind == "band" else param.choices
        if value in choices:
            return value, None
        return None, f"{param.name}: must be one of {', '.join(choices)}, got {value!r}"
    if kind == "kinds":
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if (
            not isinstance(value, list | tuple)
            or not value
            or any(v not in SURVEY_KINDS for v in value)
        ):
            return None, f"{param.name}: must be a non-empty list of {', '.join(SURVEY_KINDS)}"
        return [v for v in SURVEY_KINDS if v in value], None
    # int / number
    number = _number(value)
    if kind == "int" and not (
        isinstance(number, int) or (isinstance(number, float) and number.is_integer())
    ):
        return None, f"{param.name}: must be a whole number, got {value!r}"
    if number is None:
        return None, f"{param.name}: must be a number, got {value!r}"
    number = int(number) if kind == "int" else number
    if param.low is not None and number < param.low:
        if param.low >= 0 and number < 0:
            return None, f"{param.name}: must not be negative, got {number}"
        return None, f"{param.name}: must be at least {_num(param.low)}, got {number}"
    if param.high is not None and number > param.high:
        return None, f"{param.name}: must be at most {_num(param.high)}, got {number}"
    return number, None


def clean_params(params: tuple[Param, ...], given: Any, *, what: str) -> tuple[dict, list[str]]:
    """``given`` checked against ``params``: (the cleaned dict with defaults, errors).
    ``what`` names the owner in messages: "the trigger 'No CSM activity in N days'"."""
    if given in (None, ""):
        given = {}
    takes = ", ".join(p.name for p in params) or "no parameters"
    if not isinstance(given, dict):
        example = ", ".join(f'"{p.name}": …' for p in params)
        return {}, [
            f"must be a JSON object of parameters for {what}"
            + (f" ({{{example}}})" if params else " ({})")
            + f", got {type(given).__name__}"
        ]
    errors = []
    known = {p.name for p in params}
    unknown = sorted(set(given) - known)
    if unknown:
        names = ", ".join(f"'{u}'" for u in unknown)
        errors.append(
            f"unknown parameter{'s' if len(unknown) > 1 else ''} {names} for {what}; "
            f"it takes: {takes}"
        )
    clean = {}
    for p in params:
        if p.name not in given:
            if p.required:
                errors.append(f"{p.name}: required for {what}")
            else:
                clean[p.name] = list(p.default) if isinstance(p.default, tuple) else p.default
            continue
        value, error = _clean_param(p, given[p.name])
        if error:
            errors.append(error)
        else:
            clean[p.name] = value
    return clean, errors


def clean_steps(steps: Any) -> tuple[list[dict], list[str]]:
    """Ordered steps ``[{"title", "due_days"}]``: every step needs a title; due_days is a
    whole number of days after opening, 0 or more (default 0). A step may name a survey
    campaign to start for the account when the CTA opens (``"survey_campaign": <id>``;
    empty or null: none); whether that campaign may be chosen is the services' check."""
    if not isinstance(steps, list) or not steps:
        return [], ["at least one step is required"]
    errors, clean = [], []
    for n, step in enumerate(steps, start=1):
        if not isinstance(step, dict):
            errors.append(f"step {n}: must be an object with a title and due_days")
            continue
        unknown = sorted(set(step) - {"title", "due_days", "survey_campaign"})
        if unknown:
            errors.append(f"step {n}: unknown field {', '.join(unknown)}")
        title = str(step.get("title") or "").strip()
        if not title:
            errors.append(f"step {n}: a title is required")
        given = step.get("due_days", 0)
        due, error = _clean_param(Param("due_days", "int", 0, MAX_DAYS), given)
        if error:
            number = _number(given)
            if number is None or (isinstance(number, float) and not number.is_integer()):
                problem = "is not a whole number"
            elif number < 0:
                problem = "must not be negative"
            else:
                problem = f"must be at most {_num(MAX_DAYS)}"
            shown = repr(given) if isinstance(given, str) else given
            errors.append(f"step {n}: the due days {shown} {problem}")
        row = {"title": title[:300], "due_days": due}
        given = step.get("survey_campaign")
        if given not in (None, ""):
            number = _number(given)
            if isinstance(number, float) and number.is_integer():
                number = int(number)
            if not isinstance(number, int) or number < 1:
                shown = repr(given) if isinstance(given, str) else given
                errors.append(f"step {n}: the survey campaign {shown} is not a campaign id")
            else:
                row["survey_campaign"] = number
        clean.append(row)
    return clean, errors


def step_campaigns(steps: Any) -> list[int]:
    """The survey campaigns ``steps`` name, in step order (a campaign named twice, once)."""
    found: list[int] = []
    for step in steps or []:
        campaign = step.get("survey_campaign") if isinstance(step, dict) else None
        if campaign and campaign not in found:
            found.append(campaign)
    return found


def step_survey_words(steps: Any, campaigns: Mapping[int, str]) -> list[str]:
    """The steps that send a survey, in words, in order: ["step 1 sends survey 'Onboarding
    CSAT'"]. ``campaigns``: names by id (an unknown one reads "campaign <id>")."""
    return [
        f"step {n} {survey_words(campaign, campaigns)}"
        for n, step in enumerate(steps or [], start=1)
        if isinstance(step, dict) and (campaign := step.get("survey_campaign"))
    ]


def survey_words(campaign: int, campaigns: Mapping[int, str]) -> str:
    """ "sends survey 'Onboarding CSAT'": how a step that starts a campaign says so."""
    name = campaigns.get(campaign)
    return f"sends survey '{name}'" if name is not None else f"sends survey campaign {campaign}"


def _whole(value: Any, name: str, low: int) -> tuple[int | None, str | None]:
    return _clean_param(Param(name, "int", low, MAX_DAYS), value)


def validate_playbook(config: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """A playbook configuration (the fields of ``Playbook``, ids for users) checked as a
    whole: (the cleaned values, errors by field). Errors name the field and the value."""
    errors: dict[str, list[str]] = {}
    clean: dict[str, Any] = {}

    def err(name: str, message: str) -> None:
        errors.setdefault(name, []).append(message)

    name = str(config.get("name") or "").strip()
    if not name:
        err("name", "a name is required")
    clean["name"] = name

    trigger = config.get("trigger")
    if not trigger:
        err("trigger", "choose a trigger")
    elif trigger not in TRIGGERS:
        err("trigger", f"unknown trigger {trigger!r} (known: {', '.join(TRIGGERS)})")
    else:
        params, problems = clean_params(
            TRIGGERS[trigger].params,
            config.get("trigger_params"),
            what=_what(TRIGGERS, trigger, "trigger"),
        )
        for p in problems:
            err("trigger_params", p)
        clean["trigger_params"] = params
    clean["trigger"] = trigger

    success = config.get("success")
    if not success:
        err("success", "choose a success condition")
    elif success not in SUCCESSES:
        err("success", f"unknown success condition {success!r} (known: {', '.join(SUCCESSES)})")
    else:
        params, problems = clean_params(
            SUCCESSES[success].params,
            config.get("success_params"),
            what=_what(SUCCESSES, success, "success condition"),
        )
        for p in problems:
            err("success_params", p)
        clean["success_params"] = params
    clean["success"] = success

    steps, problems = clean_steps(config.get("steps"))
    for p in problems:
        err("steps", p)
    clean["steps"] = steps

    title = str(config.get("cta_title") or "").strip()
    if not title:
        err("cta_title", "a CTA title is required")
    clean["cta_title"] = title
    for field_name, choices in (
        ("cta_type", CTA_TYPES),
        ("priority", PRIORITIES),
        ("owner_rule", OWNER_RULES),
    ):
        value = config.get(field_name)
        if value not in choices:
            err(field_name, f"must be one of {', '.join(choices)}, got {value!r}")
        clean[field_name] = value
    if config.get("owner_rule") == "named_user" and not config.get("owner_user"):
        err("owner_user", "choose the user who owns these CTAs")

    for field_name, low in (("success_days", 1), ("cooldown_days", 0)):
        value, error = _whole(config.get(field_name), field_name, low)
        if error:
            err(field_name, error.split(": ", 1)[1])
        clean[field_name] = value

    for field_name, allowed in (("lifecycle_stages", LIFECYCLES), ("segments", None)):
        value = config.get(field_name) or []
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            err(field_name, "must be a list of names")
            value = []
        elif allowed:
            bad = [v for v in value if v not in allowed]
            if bad:
                err(field_name, f"unknown {', '.join(bad)} (known: {', '.join(allowed)})")
        clean[field_name] = value

    owners = config.get("owners") or []
    if not isinstance(owners, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in owners
    ):
        err("owners", "must be a list of user ids")
        owners = []
    clean["owners"] = owners

    bounds = {}
    for field_name in ("arr_min", "arr_max"):
        value = config.get(field_name)
        if value in (None, ""):
            bounds[field_name] = None
            continue
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            err(field_name, f"must be an amount, got {value!r}")
            continue
        if number < 0:
            err(field_name, f"must not be negative, got {value}")
        bounds[field_name] = number
    if (
        bounds.get("arr_min") is not None
        and bounds.get("arr_max") is not None
        and bounds["arr_min"] > bounds["arr_max"]
    ):
        err(
            "arr_max",
            f"ARR at most ({_num(bounds['arr_max'])}) is below ARR at least "
            f"({_num(bounds['arr_min'])})",
        )
    clean.update(bounds)
    return clean, errors


# --- conditions and the whole rule -----------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """What the engine needs of a playbook, as plain values."""

    id: int
    trigger: str
    trigger_params: dict[str, Any]
    segments: tuple[str, ...] = ()
    lifecycle_stages: tuple[str, ...] = ()
    owners: tuple[int, ...] = ()
    arr_min: Decimal | None = None
    arr_max: Decimal | None = None


def conditions_met(rule: Rule, f: Facts) -> bool:
    """Segment, lifecycle stage, owner and ARR range (each empty = any, except that a
    churned account is no one's to act on unless the playbook names the churned stage: a
    win-back playbook)."""
    if rule.segments and f.get("segment") not in rule.segments:
        return False
    if rule.lifecycle_stages and f.get("lifecycle") not in rule.lifecycle_stages:
        return False
    if f.get("lifecycle") == CHURNED and CHURNED not in rule.lifecycle_stages:
        return False
    if rule.owners and f.get("owner_id") not in rule.owners:
        return False
    if rule.arr_min is not None or rule.arr_max is not None:
        arr = f.get("arr")
        if arr is None:
            arr = Decimal(0)
        if rule.arr_min is not None and arr < rule.arr_min:
            return False
        if rule.arr_max is not None and arr > rule.arr_max:
            return False
    return True


def evaluate(rule: Rule, f: Facts, as_of: dt.date) -> Match | None:
    """The rule for one account: None unless the conditions hold and the trigger fires."""
    if not conditions_met(rule, f):
        return None
    return TRIGGERS[rule.trigger].evaluate(f, rule.trigger_params, as_of)


def success_met(key: str, params: dict, f: Facts, cta: Mapping[str, Any]) -> str | None:
    return SUCCESSES[key].met(f, params, cta)
