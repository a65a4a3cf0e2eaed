"""The pure rules: each trigger and success condition over plain facts, and the checks of a
playbook configuration. No database."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from playbooks import rules
from playbooks.starters import STARTERS

D = dt.date(2024, 3, 2)


def fire(trigger: str, facts: dict, **params):
    clean, errors = rules.clean_params(rules.TRIGGERS[trigger].params, params, what=trigger)
    assert errors == []
    return rules.TRIGGERS[trigger].evaluate(facts, clean, D)


def test_health_entered_reads_the_band_change_and_says_it():
    change = {
        "from": "yellow",
        "to": "red",
        "score_from": 72,
        "score_to": 41,
        "as_of": "2024-03-02",
    }
    m = fire("health_entered", {"band": "red", "band_changes": [change]}, band="red")
    assert m.evidence == "health 72 → 41 on 2 Mar 2024 (yellow → red)"
    # back out of red since: no CTA; a change older than the window: none either
    assert fire("health_entered", {"band": "yellow", "band_changes": [change]}, band="red") is None
    old = {**change, "as_of": "2024-02-28"}
    assert fire("health_entered", {"band": "red", "band_changes": [old]}, band="red") is None
    assert fire("health_entered", {"band": "red", "band_changes": [old]}, band="red", within_days=5)


def test_health_entered_by_a_band_override_says_the_override_set_the_band():
    """A CSM set the band to red and left the score alone: the score rose (76.2 → 80.5,
    computed yellow), so "health 76.2 → 80.5 (yellow → red)" would read as a drop."""
    change = {
        "from": "yellow",
        "to": "red",
        "score_from": 76.2,
        "score_to": 80.5,
        "as_of": "2024-03-02",
        "overridden": True,
        "band_override": True,
        "computed_band": "yellow",
    }
    m = fire("health_entered", {"band": "red", "band_changes": [change]}, band="red")
    assert m.evidence == (
        "band set to red by an override on 2 Mar 2024 "
        "(health 76.2 → 80.5, computed yellow; yellow before)"
    )
    # a score override (no band of its own) still reads as the scores' move
    by_score = {k: v for k, v in change.items() if k not in ("band_override", "computed_band")}
    m = fire("health_entered", {"band": "red", "band_changes": [by_score]}, band="red")
    assert m.evidence == "health 76.2 → 80.5 on 2 Mar 2024 (yellow → red)"


def test_health_entered_when_an_override_ended_says_the_override_ended():
    """A CSM's band override held the account at red; it ended and the band is the model's
    yellow again. The trigger fires (the account is in yellow by the model's verdict), but
    "health 80.5 → 76.2 (red → yellow)" would read as the customer's data moving."""
    change = {
        "from": "red",
        "to": "yellow",
        "score_from": 80.5,
        "score_to": 76.2,
        "as_of": "2024-03-02",
        "overridden": False,
        "override_ended": True,
    }
    m = fire("health_entered", {"band": "yellow", "band_changes": [change]}, band="yellow")
    assert m.evidence == (
        "band back to yellow when an override ended on 2 Mar 2024 "
        "(health 80.5 → 76.2; red by the override before)"
    )
    assert m.data == {"band_change": change}
    # the same change moved by the score reads as before
    plain = {k: v for k, v in change.items() if k != "override_ended"}
    m = fire("health_entered", {"band": "yellow", "band_changes": [plain]}, band="yellow")
    assert m.evidence == "health 80.5 → 76.2 on 2 Mar 2024 (red → yellow)"


def _health(now: tuple, before: tuple, days: int = 7) -> dict:
    """Facts of a snapshot of D and one ``days`` before, each (shown, computed, version id)."""
    back = D - dt.timedelta(days=days)
    return {
        "score": now[0],
        "health_day": D,
        "snapshots": {D: (now[0], "", now[1], now[2]), back: (before[0], "", before[1], before[2])},
    }


def test_score_dropped_compares_with_the_score_d_days_before():
    facts = _health((41.0, 41.0, 1), (72.0, 72.0, 1))
    m = fire("score_dropped", facts, points=30, days=7)
    # 72 - 41 = 31 >= 30
    assert "health 72 → 41 between 24 Feb 2024 and 2 Mar 2024 (−31 points" in m.evidence
    assert m.data["score_before"] == 72.0 and m.data["score_now"] == 41.0
    assert fire("score_dropped", facts, points=32, days=7) is None
    assert fire("score_dropped", facts, points=10, days=6) is None  # no score that day


def test_score_dropped_never_compares_two_model_versions():
    """v1 computed 72 a week ago, v2 (new weights, or another model) 41 now: the data may
    not have moved at all, so no drop is known."""
    assert (
        fire("score_dropped", _health((41.0, 41.0, 2), (72.0, 72.0, 1)), points=10, days=7) is None
    )


def test_score_dropped_reads_the_computed_score_not_an_override():
    """An override to 40 now on a computed 70 (70 a week ago too) is no drop of the data;
    an override to 90 now on a computed 41 (72 a week ago) hides a real drop of 31, which
    fires, saying it is the computed score."""
    set_off = _health((40.0, 70.0, 1), (70.0, 70.0, 1))
    assert fire("score_dropped", set_off, points=10, days=7) is None
    hidden = _health((90.0, 41.0, 1), (72.0, 72.0, 1))
    m = fire("score_dropped", hidden, points=30, days=7)
    assert m.evidence.startswith("computed health 72 → 41 between 24 Feb 2024 and 2 Mar 2024")
    # an override that ended in the week: shown 95 then (computed 72), 60 now: −12 computed
    ended = _health((60.0, 60.0, 1), (95.0, 72.0, 1))
    assert fire("score_dropped", ended, points=13, days=7) is None  # not −35
    assert "(−12 points in 7 days)" in fire("score_dropped", ended, points=12, days=7).evidence
    # a drop of exactly one point in one day: both in the singular (72 → 71)
    one = _health((71.0, 71.0, 1), (72.0, 72.0, 1), days=1)
    assert "(−1 point in 1 day)" in fire("score_dropped", one, points=1, days=1).evidence


def test_usage_dropped_month_over_month_for_events_or_active_users():
    facts = {"events_30d": 45, "events_prev_30d": 100, "active_30d": 9, "active_prev_30d": 10}
    m = fire("usage_dropped", facts, percent=50)
    # (45 - 100) / 100 × 100 = −55 %, printed as every rate: one decimal, no space
    assert m.evidence == "usage −55.0% (events in 30 days: 100 → 45)"
    # 2 of 3 active users gone: (1 - 3) / 3 × 100 = −66.666… %, one decimal −66.7
    two_gone = {"active_30d": 1, "active_prev_30d": 3}
    assert fire("usage_dropped", two_gone, percent=60, measure="active_users").evidence == (
        "usage −66.7% (active users in 30 days: 3 → 1)"
    )
    assert fire("usage_dropped", facts, percent=56) is None
    # users: (9 - 10) / 10 = -10 %
    assert fire("usage_dropped", facts, percent=10, measure="active_users")
    assert fire("usage_dropped", facts, percent=11, measure="active_users") is None
    assert fire("usage_dropped", {**facts, "events_prev_30d": 0}, percent=1) is None


def test_renewal_new_customer_first_value_and_activity():
    renewal = {"renewal_on": D + dt.timedelta(days=90), "renewed": False}
    assert fire("renewal_within", renewal, days=90).evidence == (
        "contract ends on 31 May 2024 (in 90 days), no renewal yet"
    )
    assert fire("renewal_within", renewal, days=89) is None
    assert fire("renewal_within", {**renewal, "renewed": True}, days=90) is None
    new = {"customer_since": D - dt.timedelta(days=29)}
    assert (
        fire("new_customer", new, days=30).evidence
        == "new customer since 2 Feb 2024 (day 30 of 30)"
    )
    assert fire("new_customer", {"customer_since": D - dt.timedelta(days=30)}, days=30) is None
    waiting = {"customer_since": D - dt.timedelta(days=14), "first_value_on": None}
    assert fire("first_value_missing", waiting, days=14)
    assert fire("first_value_missing", waiting, days=15) is None
    assert fire("first_value_missing", {**waiting, "first_value_on": D}, days=14) is None
    assert (
        fire("first_value_missing", {"customer_since": waiting["customer_since"]}, days=1) is None
    )
    quiet = {"last_touch_on": D - dt.timedelta(days=30)}
    assert (
        fire("no_activity", quiet, days=30).evidence
        == "no CSM activity in 30 days (last on 1 Feb 2024)"
    )
    assert fire("no_activity", quiet, days=31) is None


def test_evidence_writes_counts_with_thousands_separators():
    """Counts of 1,000 and more in a CTA's evidence as the health reasons write them."""
    assert fire("open_tickets", {"open_tickets": 1200}, count=1000).evidence == (
        "1,200 open tickets (threshold 1,000)"
    )
    # D (2 Mar 2024) − 1,230 days = 19 Oct 2020
    quiet = {"last_touch_on": D - dt.timedelta(days=1230)}
    assert fire("no_activity", quiet, days=30).evidence == (
        "no CSM activity in 1,230 days (last on 19 Oct 2020)"
    )
    unpaid = {"unpaid_failed_payments_90d": 1500, "unpaid_failed_invoices_90d": 1001}
    assert fire("payment_trouble", {**unpaid, "overdue_invoices": 0}).evidence == (
        "1,500 failed payments in 90 days on 1,001 invoices not paid since"
    )


def test_payments_tickets_surveys_champion_and_seats():
    unpaid = {"unpaid_failed_payments_90d": 2, "unpaid_failed_invoices_90d": 1}
    assert fire("payment_trouble", {**unpaid, "overdue_invoices": 0}).evidence == (
        "2 failed payments in 90 days on 1 invoice not paid since"
    )
    assert fire("payment_trouble", {**unpaid, "overdue_invoices": 0}, failed_payments=3) is None
    # failed payments of invoices paid since are not in the facts: nothing left to sort out
    assert fire("payment_trouble", {"unpaid_failed_payments_90d": 0, "overdue_invoices": 0}) is None
    overdue = {
        "unpaid_failed_payments_90d": 0,
        "overdue_invoices": 1,
        "overdue_amount": Decimal("300.00"),
    }
    # the amount as money, like the health breakdown: 300 → "$300.00 due"
    assert fire("payment_trouble", overdue).evidence == "1 overdue invoice ($300.00 due)"
    assert fire("payment_trouble", overdue, overdue=False) is None
    assert fire("ticket_escalated", {"open_escalations": 1}).evidence == "1 open escalated ticket"
    assert fire("open_tickets", {"open_tickets": 4}, count=5) is None
    assert fire("open_tickets", {"open_tickets": 5}, count=5)
    answer = {
        "survey_kind": "nps",
        "score": 3,
        "title": "NPS 3 from Dana",
        "comment": "slow",
        "on": "2024-03-02",
    }
    assert fire("survey_unhappy", {"unhappy_answers": [answer]}).evidence == (
        "NPS 3 from Dana on 2 Mar 2024: “slow”"
    )
    assert fire("survey_unhappy", {"unhappy_answers": [answer]}, kinds=["csat"]) is None
    assert fire("champion_removed", {"champions_now": 0, "champion_before": "Dana"})
    assert fire("champion_removed", {"champions_now": 1, "champion_before": "Dana"}) is None
    assert fire("champion_removed", {"champions_now": 0, "champion_before": None}) is None
    seats = {"seats": 10, "active_30d": 9, "band": "yellow"}
    # 9 of 10 seats active: 9 × 100 / 10 = 90 %
    assert fire("seat_utilisation", seats, at_least=90).evidence.startswith(
        "seat utilisation 90.0% ("
    )
    # 2 of 3 seats: 2 × 100 / 3 = 66.666… %, one decimal 66.7
    thirds = {"seats": 3, "active_30d": 2, "band": "yellow"}
    assert fire("seat_utilisation", thirds, at_least=60).evidence == (
        "seat utilisation 66.7% (2 of 3 seats active in 30 days)"
    )
    assert fire("seat_utilisation", seats, at_least=90, healthy_only=True) is None
    # a one-seat contract with its seat in use: 1 × 100 / 1 = 100 %
    single = {"seats": 1, "active_30d": 1, "band": "yellow"}
    assert fire("seat_utilisation", single, at_least=90).evidence == (
        "seat utilisation 100.0% (1 of 1 seat active in 30 days)"
    )


def test_conditions_segment_lifecycle_owner_and_arr():
    rule = rules.Rule(
        id=1,
        trigger="ticket_escalated",
        trigger_params={},
        segments=("ENT",),
        lifecycle_stages=("mature",),
        owners=(7,),
        arr_min=Decimal(1000),
        arr_max=Decimal(5000),
    )
    facts = {
        "segment": "ENT",
        "lifecycle": "mature",
        "owner_id": 7,
        "arr": Decimal(1200),
        "open_escalations": 1,
    }
    assert rules.evaluate(rule, facts, D)
    for change in ({"segment": "SMB"}, {"lifecycle": "renewal"}, {"owner_id": 8},
                   {"arr": Decimal(999)}, {"arr": Decimal(5001)}):  # fmt: skip
        assert rules.evaluate(rule, {**facts, **change}, D) is None, change


def test_a_churned_account_matches_only_a_playbook_that_names_the_churned_stage():
    """A former customer with an overdue invoice is no CSM's task, unless the playbook is
    about former customers (a win-back)."""
    facts = {"lifecycle": "churned", "open_escalations": 1}
    any_stage = rules.Rule(id=1, trigger="ticket_escalated", trigger_params={})
    assert rules.evaluate(any_stage, facts, D) is None
    assert rules.evaluate(any_stage, {**facts, "lifecycle": "mature"}, D)
    win_back = rules.Rule(
        id=2, trigger="ticket_escalated", trigger_params={}, lifecycle_stages=("churned",)
    )
    assert rules.evaluate(win_back, facts, D)


def test_success_conditions():
    cta = {"opened_on": D, "arr_at_open": "1200.00", "steps_left": 0}
    assert rules.success_met(
        "health_band_at_least", {"band": "yellow"}, {"band": "green", "score": 85}, cta
    )
    assert (
        rules.success_met("health_band_at_least", {"band": "yellow"}, {"band": "red"}, cta) is None
    )
    assert (
        rules.success_met("renewed", {}, {"latest_contract_start": D + dt.timedelta(1)}, cta)
        == "a contract starting 3 Mar 2024 was signed"
    )
    assert rules.success_met("renewed", {}, {"latest_contract_start": D}, cta) is None
    assert rules.success_met("arr_expanded", {}, {"arr": Decimal("14400.00")}, cta) == (
        "ARR $1,200.00 → $14,400.00"
    )
    assert rules.success_met("arr_expanded", {}, {"arr": Decimal("1200.00")}, cta) is None
    assert rules.success_met("touched", {}, {"last_touch_on": D}, cta) == (
        "CSM activity logged on 2 Mar 2024"
    )
    assert rules.success_met("first_value", {}, {"first_value_on": D}, cta) == (
        "first value reached on 2 Mar 2024"
    )
    assert rules.success_met("first_value", {}, {"first_value_on": None}, cta) is None
    assert rules.success_met("steps_done", {}, {}, {**cta, "steps_left": 1}) is None
    assert rules.success_met(
        "payments_clear", {}, {"overdue_invoices": 0, "unpaid_failed_invoices": 0}, cta
    )
    assert (
        rules.success_met(
            "payments_clear", {}, {"overdue_invoices": 0, "unpaid_failed_invoices": 1}, cta
        )
        is None
    )


def test_usage_recovered_prints_the_trend_as_a_rate_with_its_sign():
    cta = {"opened_on": D, "arr_at_open": "1200.00", "steps_left": 0}
    # 130 events on 120: (130 − 120) / 120 × 100 = 8.333… %, one decimal "+8.3%"
    up = {"events_30d": 130, "events_prev_30d": 120}
    assert rules.success_met("usage_recovered", {"percent": 5}, up, cta) == (
        "usage +8.3% month over month"
    )
    assert rules.success_met("usage_recovered", {"percent": 9}, up, cta) is None
    # 9,999 on 10,000: −1 / 10,000 × 100 = −0.01 %: one decimal would read "-0.0", so two
    down = {"events_30d": 9999, "events_prev_30d": 10000}
    assert rules.success_met("usage_recovered", {"percent": -1}, down, cta) == (
        "usage -0.01% month over month"
    )


def _config(**changes):
    return {**STARTERS["red-turnaround"], **changes}


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"trigger_params": {"band": "red", "colour": "x"}}, "trigger_params", "unknown parameter 'colour' for the trigger 'Health entered a band'; it takes: band, within_days"),
        ({"trigger": "score_dropped", "trigger_params": {"points": 10, "days": -3}}, "trigger_params", "days: must not be negative, got -3"),
        ({"trigger": "score_dropped", "trigger_params": {"points": 10}}, "trigger_params", "days: required for the trigger 'Health score dropped ≥ N points in D days'"),
        ({"steps": [{"title": "Call", "due_days": 1}, {"title": " ", "due_days": 2}]}, "steps", "step 2: a title is required"),
        ({"steps": [{"title": "Call", "due_days": -1}]}, "steps", "step 1: the due days -1 must not be negative"),
        ({"steps": [{"title": "Call", "due_days": 1}, {"title": "Review", "due_days": "abc"}]}, "steps", "step 2: the due days 'abc' is not a whole number"),
        ({"steps": [{"title": "Call", "due_days": 1.5}]}, "steps", "step 1: the due days 1.5 is not a whole number"),
        ({"success_days": "abc"}, "success_days", "must be a whole number, got 'abc'"),
        ({"steps": []}, "steps", "at least one step is required"),
        ({"cooldown_days": -1}, "cooldown_days", "must not be negative, got -1"),
        ({"success_days": 0}, "success_days", "must be at least 1, got 0"),
        ({"trigger": "nope"}, "trigger", "unknown trigger 'nope'"),
        ({"success_params": {"band": "purple"}}, "success_params", "band: must be one of green"),
        ({"arr_min": "500", "arr_max": "100"}, "arr_max", "ARR at most (100) is below ARR at least (500)"),
        ({"arr_min": "50000", "arr_max": "1000"}, "arr_max", "ARR at most (1,000) is below ARR at least (50,000)"),
        ({"owner_rule": "named_user"}, "owner_user", "choose the user who owns these CTAs"),
        ({"lifecycle_stages": ["retired"]}, "lifecycle_stages", "unknown retired"),
    ],
)  # fmt: skip
def test_bad_configurations_are_refused_with_field_errors(changes, field, message):
    _, errors = rules.validate_playbook(_config(**changes))
    assert field in errors, errors
    assert any(message in e for e in errors[field]), errors[field]
    assert not any("None" in e for es in errors.values() for e in es), errors  # as given


def test_triggers_and_success_conditions_read_in_words():
    """The playbook list and the CTA page show labels and settings, never keys and dicts."""
    assert rules.describe(
        rules.TRIGGERS, "survey_unhappy", {"kinds": ["nps", "csat", "ces"], "within_days": 1}
    ) == ("A detractor / low CSAT / high-effort CES answer", ["NPS, CSAT, CES", "within 1 day"])
    assert rules.describe(
        rules.TRIGGERS, "payment_trouble", {"failed_payments": 2, "overdue": True}
    ) == (
        "Failed payments ≥ N (invoice not paid since) or an invoice overdue",
        ["failed payments: 2", "an overdue invoice also fires"],
    )
    assert rules.describe(rules.TRIGGERS, "no_activity", {"days": 30}) == (
        "No CSM activity in N days",
        ["30 days"],
    )
    assert rules.describe(rules.TRIGGERS, "usage_dropped", {"percent": 50}) == (
        "Usage fell ≥ N% month over month",
        ["by 50%"],
    )
    assert rules.describe(rules.TRIGGERS, "seat_utilisation", {"at_least": 90}) == (
        "Seat utilisation ≥ N%",
        ["at least 90%"],
    )
    assert rules.describe(rules.SUCCESSES, "usage_recovered", {"percent": 10}) == (
        "Usage trend at least N% month over month",
        ["10%"],
    )
    assert rules.describe(rules.SUCCESSES, "health_band_at_least", {"band": "green"}) == (
        "Health back to a band",
        ["green"],
    )
    for table in (rules.TRIGGERS, rules.SUCCESSES):
        for key, t in table.items():
            params = {
                p.name: p.default
                if p.default is not None
                else {"band": "red", "kinds": ["nps"]}.get(p.kind, 5)
                for p in t.params
            }
            label, words = rules.describe(table, key, params)
            assert label == t.label and len(words) == len(t.params)
            assert not any("_" in w or "[" in w or "True" in w for w in words), (key, words)


@pytest.mark.parametrize("key", list(STARTERS))
def test_every_starter_playbook_is_valid(key):
    clean, errors = rules.validate_playbook(STARTERS[key])
    assert errors == {}
    assert clean["steps"] and all(s["title"] for s in clean["steps"])


def test_health_entered_at_a_rounded_boundary_does_not_read_80_to_80():
    """Band changes record the scores as scored (one decimal): 79.6 → 80.4 (yellow → green)
    prints one decimal where whole numbers would both be 80."""
    change = {"from": "yellow", "to": "green", "score_from": 79.6, "score_to": 80.4}
    m = fire(
        "health_entered",
        {"band": "green", "band_changes": [{**change, "as_of": "2024-03-02"}]},
        band="green",
    )
    assert m.evidence == "health 79.6 → 80.4 on 2 Mar 2024 (yellow → green)"
    # older facts stored whole numbers: printed as they are
    old = {**change, "score_from": 72, "score_to": 81, "as_of": "2024-03-02"}
    m = fire("health_entered", {"band": "green", "band_changes": [old]}, band="green")
    assert m.evidence.startswith("health 72 → 81 on")
