"""metrics.health: pure scoring, bands, overrides, assignment and "what changed". No DB."""

from __future__ import annotations

import pytest

from metrics import health
from metrics.health import Assignment, HealthConfigError, Override, band_for, parse_model


def _model(*components, green_min=80, yellow_min=50) -> health.ModelSpec:
    return parse_model(list(components), green_min=green_min, yellow_min=yellow_min)


def _comp(key, weight, *measures, locked=False, label=None):
    return {
        "key": key,
        "label": label or key.capitalize(),
        "weight": weight,
        "locked": locked,
        "measures": list(measures),
    }


SEATS = {"measure": "seat_utilisation", "linear": [0, 50]}
ESCALATIONS = {"measure": "open_escalations", "thresholds": [[0, 100], [1, 50], [2, 0]]}
NPS = {"measure": "nps", "linear": [-50, 50]}

THREE = _model(
    _comp("usage", 50, SEATS),
    _comp("support", 30, ESCALATIONS),
    _comp("sentiment", 20, NPS),
)


def test_weights_are_renormalised_over_components_with_data():
    values = {
        "seat_utilisation": 15.0,
        "active_users_30d": 3,
        "licensed_seats": 20,
        "open_escalations": 1,
        "nps": None,
    }
    h = health.score(THREE, values)
    # usage: 15 % on [0, 50] → 30 points; support: 1 escalation → 50 points;
    # sentiment has no data: left out, weights 50 and 30 renormalised to 50/80 and 30/80:
    # 0.625 × 30 + 0.375 × 50 = 18.75 + 18.75 = 37.5 → red (< 50)
    assert h.score == 37.5
    assert h.band == "red"
    assert h.computed_score == 37.5 and h.computed_band == "red"
    assert h.left_out == ("sentiment",)
    by_key = {c.key: c for c in h.components}
    assert by_key["usage"].score == 30 and by_key["usage"].share == 0.625
    assert by_key["support"].score == 50 and by_key["support"].share == 0.375
    assert by_key["sentiment"].score is None and by_key["sentiment"].share is None
    assert by_key["usage"].inputs == {
        "seat_utilisation": 15.0,
        "active_users_30d": 3,
        "licensed_seats": 20,
    }
    assert h.reasons[0] == "usage 30/100: 3 of 20 licensed seats active in 30 days"
    assert h.reasons[1] == "support 50/100: 1 open escalation"
    assert h.reasons[2] == (
        "sentiment: no data (NPS: no NPS answers in the 365 days up to the day), left out"
    )


def test_no_component_data_gives_no_score_not_zero():
    h = health.score(THREE, {})
    assert h.score is None and h.band == ""
    assert h.computed_score is None
    assert h.left_out == ("usage", "support", "sentiment")


def test_a_zero_weight_component_with_data_does_not_count():
    spec = _model(_comp("usage", 1, SEATS), _comp("support", 0, ESCALATIONS))
    # usage 40 % → 80 points; support (weight 0) 2 escalations → 0 points, not counted
    h = health.score(spec, {"seat_utilisation": 40, "open_escalations": 2})
    assert h.score == 80 and h.band == "green"
    assert "support 0/100 (weight 0): 2 open escalations" in h.reasons


def test_only_zero_weight_data_gives_no_score():
    spec = _model(_comp("usage", 1, SEATS), _comp("support", 0, ESCALATIONS))
    assert health.score(spec, {"open_escalations": 0}).score is None


@pytest.mark.parametrize(
    ("score", "band"),
    [(100, "green"), (80, "green"), (79.9, "yellow"), (50, "yellow"), (49.9, "red"), (0, "red")],
)
def test_bands_at_their_exact_boundaries(score, band):
    assert band_for(score, green_min=80, yellow_min=50) == band


def test_band_boundaries_come_from_the_model():
    spec = _model(
        _comp("usage", 1, {"measure": "seat_utilisation", "linear": [0, 100]}),
        green_min=70,
        yellow_min=40,
    )
    assert health.score(spec, {"seat_utilisation": 70}).band == "green"  # exactly 70
    assert health.score(spec, {"seat_utilisation": 69.9}).band == "yellow"
    assert health.score(spec, {"seat_utilisation": 40}).band == "yellow"
    assert health.score(spec, {"seat_utilisation": 39.9}).band == "red"
    # 79.96 rounds to 80.0 and the band is that of the score shown: green at 80 by default
    spec80 = _model(_comp("usage", 1, {"measure": "seat_utilisation", "linear": [0, 100]}))
    h = health.score(spec80, {"seat_utilisation": 79.96})
    assert (h.score, h.band) == (80.0, "green")


# two components of equal weight, each one measure on a 0..100 line: a value is its points
NPS_LINE = {"measure": "nps", "linear": [0, 100]}
HALVES = _model(
    _comp("usage", 50, {"measure": "seat_utilisation", "linear": [0, 100]}),
    _comp("sentiment", 50, NPS_LINE),
)


@pytest.mark.parametrize(
    ("usage", "nps", "expected", "band"),
    [
        # (0.1 + 99.8) / 2 = 49.95 → 50.0: yellow. In floats 0.5 × 0.1 + 0.5 × 99.8 is
        # 49.949999…, which round() made 49.9, red
        (0.1, 99.8, 50.0, "yellow"),
        # (49.8 + 50.1) / 2 = 49.95 too (a float sum of exactly 49.95): the same 50.0
        (49.8, 50.1, 50.0, "yellow"),
        # (0.1 + 99.7) / 2 = 49.9: below the half, red
        (0.1, 99.7, 49.9, "red"),
        # (60.3 + 99.6) / 2 = 79.95 → 80.0: green (float 79.949999… → 79.9 before)
        (60.3, 99.6, 80.0, "green"),
        # (60.3 + 99.5) / 2 = 79.9: yellow
        (60.3, 99.5, 79.9, "yellow"),
    ],
)
def test_a_score_on_a_half_rounds_up_whatever_the_float_sum(usage, nps, expected, band):
    h = health.score(HALVES, {"seat_utilisation": usage, "nps": nps})
    assert (h.score, h.band) == (expected, band)
    assert health.Scorer(HALVES).score({"seat_utilisation": usage, "nps": nps}) == h


def test_points_and_component_scores_on_a_half_round_up():
    # seat utilisation 24.975 % on [0, 50]: 24.975 / 50 × 100 = 49.95 points → 50.0
    spec = _model(_comp("usage", 1, SEATS))
    h = health.score(spec, {"seat_utilisation": 24.975})
    assert h.components[0].measure_points == {"seat_utilisation": 50.0}
    # a component of two measures: (0.1 + 99.8) / 2 = 49.95 → 50.0, yellow
    two = _model(
        _comp("usage", 1, {"measure": "seat_utilisation", "linear": [0, 100]}, NPS_LINE),
    )
    h = health.score(two, {"seat_utilisation": 0.1, "nps": 99.8})
    assert (h.components[0].score, h.score, h.band) == (50.0, 50.0, "yellow")


def test_linear_and_threshold_mappings():
    linear = health.MeasureMapping("seat_utilisation", linear=(0, 50))
    assert [linear.points(v) for v in (-5, 0, 15, 50, 80)] == [0, 0, 30, 100, 100]
    # lower is better: [90, 14] days; 52 days → (52 − 90) / (14 − 90) = 0.5 → 50
    inverted = health.MeasureMapping("days_since_last_touch", linear=(90, 14))
    assert [inverted.points(v) for v in (200, 90, 52, 14, 0)] == [0, 0, 50, 100, 100]
    steps = health.MeasureMapping("usage_trend", thresholds=((-50, 25), (0, 75), (10, 100)))
    # below the first threshold → 0; each value gets the last threshold it reaches
    assert [steps.points(v) for v in (-80, -50, -1, 0, 9.9, 10, 500)] == [
        0,
        25,
        25,
        75,
        75,
        100,
        100,
    ]


def test_a_component_is_the_mean_of_its_measures_with_data():
    spec = _model(
        _comp(
            "relationship",
            10,
            {"measure": "champion_present", "thresholds": [[0, 0], [1, 100]]},
            {"measure": "days_since_last_touch", "linear": [90, 14]},
        )
    )
    # champion → 100, 52 days → 50: (100 + 50) / 2 = 75
    both = health.score(
        spec, {"champion_present": 1, "stakeholders": 2, "days_since_last_touch": 52}
    )
    assert both.score == 75
    assert both.reasons == ("relationship 75/100: a champion is named; last CSM touch 52 days ago",)
    # no activity recorded: the champion alone → 100
    assert health.score(spec, {"champion_present": 1, "stakeholders": 1}).score == 100


@pytest.mark.parametrize(
    ("components", "message"),
    [
        ([_comp("a", 0, SEATS), _comp("b", 0, NPS)], "every weight is zero"),
        ([_comp("a", -1, SEATS), _comp("b", 0, NPS)], "components[0].weight: must not be negative"),
        ([], "non-empty list"),
        ([_comp("a", 1, {"measure": "nope", "linear": [0, 1]})], "unknown measure 'nope'"),
        ([_comp("a", 1, {"measure": "nps", "linear": [3, 3]})], "lo and hi must differ"),
        ([_comp("a", 1, {"measure": "nps"})], "exactly one of linear"),
        (
            [_comp("a", 1, {"measure": "nps", "thresholds": [[5, 10], [1, 20]]})],
            "at_least values must ascend",
        ),
        ([_comp("a", 1, SEATS), _comp("a", 1, NPS)], "'a' appears twice"),
        ([_comp("a", "ten", SEATS)], "components[0].weight: expected a number"),
    ],
)
def test_unusable_models_are_refused_with_a_message(components, message):
    with pytest.raises(HealthConfigError, match=message.replace("[", r"\[").replace("(", r"\(")):
        parse_model(components)


def test_bands_must_be_ordered():
    with pytest.raises(HealthConfigError, match="yellow_min <= green_min"):
        parse_model([_comp("a", 1, SEATS)], green_min=40, yellow_min=60)


def test_the_default_model_parses_and_matches_docs_weights():
    spec = parse_model(health.DEFAULT_COMPONENTS)
    assert {c.key: c.weight for c in spec.components} == {
        "usage": 35,
        "feature_adoption": 20,
        "support": 15,
        "payments": 10,
        "sentiment": 10,
        "relationship": 10,
    }
    # docs/metrics.md's example: seat utilisation 15 % → 30 points
    usage = spec.component("usage")
    assert usage.measures[0].points(15) == 30


@pytest.mark.parametrize(
    ("component", "measure", "value", "points"),
    [
        # docs/metrics.md's table of the default model, at each boundary it names
        ("usage", "seat_utilisation", 0, 0),
        ("usage", "seat_utilisation", 25, 50),  # 25 / 50 on the line
        ("usage", "seat_utilisation", 50, 100),
        ("usage", "seat_utilisation", 80, 100),  # 50 % or more
        ("usage", "usage_trend", -50.01, 0),  # down more than 50 %
        ("usage", "usage_trend", -50, 25),  # down exactly 50 %: at most 50 %
        ("usage", "usage_trend", -25.01, 25),
        ("usage", "usage_trend", -25, 50),  # down exactly 25 %: at most 25 %
        ("usage", "usage_trend", -0.01, 50),
        ("usage", "usage_trend", 0, 75),  # flat
        ("usage", "usage_trend", 9.99, 75),
        ("usage", "usage_trend", 10, 100),  # up 10 % or more
        ("feature_adoption", "key_feature_adoption", 40, 40),
        ("support", "open_escalations", 0, 100),
        ("support", "open_escalations", 1, 50),
        ("support", "open_escalations", 2, 0),
        ("support", "tickets_per_100_seats_30d", 5, 100),
        ("support", "tickets_per_100_seats_30d", 17.5, 50),  # (30 − 17.5) / 25 = 0.5
        ("support", "tickets_per_100_seats_30d", 30, 0),
        ("payments", "overdue_invoices", 0, 100),
        ("payments", "overdue_invoices", 1, 40),
        ("payments", "overdue_invoices", 2, 0),
        ("payments", "failed_payments_90d", 0, 100),
        ("payments", "failed_payments_90d", 2, 50),  # one or two
        ("payments", "failed_payments_90d", 3, 0),
        ("sentiment", "nps", -50, 0),
        ("sentiment", "nps", 0, 50),
        ("sentiment", "nps", 50, 100),
        ("sentiment", "csat", 75, 50),  # (75 − 50) / 50
        ("sentiment", "ces", 4, 50),  # (4 − 1) / 6
        ("relationship", "champion_present", 0, 0),
        ("relationship", "champion_present", 1, 100),
        ("relationship", "days_since_last_touch", 14, 100),
        ("relationship", "days_since_last_touch", 52, 50),  # (90 − 52) / 76 = 0.5
        ("relationship", "days_since_last_touch", 90, 0),
    ],
)
def test_the_default_model_maps_as_docs_table_says(component, measure, value, points):
    spec = parse_model(health.DEFAULT_COMPONENTS)
    mapping = next(m for m in spec.component(component).measures if m.measure == measure)
    assert mapping.points(value) == points


def _override(id, **kw):
    return Override(
        id=id,
        reason=kw.pop("reason", "renewal signed"),
        expires_at="2024-04-30T00:00:00+00:00",
        **kw,
    )


def test_an_account_override_shows_beside_the_computed_score():
    values = {"seat_utilisation": 15.0, "open_escalations": 1}
    h = health.score(THREE, values, overrides=[_override(7, score=90)])
    assert (h.score, h.band) == (90, "green")
    assert (h.computed_score, h.computed_band) == (37.5, "red")
    assert [c.score for c in h.components] == [30, 50, None]  # components untouched
    # expiring at midnight UTC on 30 Apr, it holds through 29 Apr: the day the page says
    assert h.reasons[-1] == (
        "overridden to 90 (green) from 37.5 until the end of 29 Apr 2024, UTC: renewal signed"
    )
    assert h.overrides[0].id == 7
    # a band-only override keeps the score and changes the band
    h = health.score(THREE, values, overrides=[_override(8, band="yellow")])
    assert (h.score, h.band, h.computed_band) == (37.5, "yellow", "red")
    # and says the band, not "overridden to 37.5 from 37.5"
    assert h.reasons[-1] == (
        "band set to yellow by an override, computed red (score 37.5) "
        "until the end of 29 Apr 2024, UTC: renewal signed"
    )
    # with no data there is no score to keep: the band is set all the same
    h = health.score(THREE, {}, overrides=[_override(9, band="green")])
    assert (h.score, h.band) == (None, "green")
    assert h.reasons[-1].startswith("band set to green by an override, computed none (no score) ")


def test_a_component_override_rescores_and_a_locked_component_is_not_overridden():
    spec = _model(_comp("usage", 50, SEATS), _comp("payments", 50, ESCALATIONS, locked=True))
    values = {"seat_utilisation": 15.0, "open_escalations": 2}
    # computed: (30 + 0) / 2 = 15; usage overridden to 70: (70 + 0) / 2 = 35
    h = health.score(
        spec,
        values,
        overrides=[
            _override(1, component="usage", score=70, reason="usage moved to a new tool"),
            _override(2, component="payments", score=100),
            _override(3, component="gone", score=100),
        ],
    )
    assert (h.computed_score, h.score) == (15, 35)
    usage, payments = h.components
    assert (usage.score, usage.computed_score, usage.overridden) == (70, 30, True)
    assert (payments.score, payments.overridden) == (0, False)
    # no raw seat counts in the values: the reason says what it can
    assert h.reasons[0].startswith("usage 70/100: ")
    assert h.reasons[0].endswith("(overridden from 30: usage moved to a new tool)")
    assert "override #2 of Payments ignored: component is locked" in h.reasons
    assert "override #3 of 'gone' ignored: no such component" in h.reasons
    assert [o.id for o in h.overrides] == [1]


def test_the_newest_override_of_a_target_wins():
    h = health.score(
        THREE, {"seat_utilisation": 50}, overrides=[_override(1, score=10), _override(5, score=60)]
    )
    assert h.score == 60


def test_assignment_picks_the_most_specific_model():
    models = [
        Assignment(1, is_default=True),
        Assignment(2, lifecycle="onboarding"),
        Assignment(3, segment="Enterprise"),
        Assignment(4, segment="Enterprise", lifecycle="onboarding"),
    ]
    assert health.assign(models, segment="Enterprise", lifecycle="onboarding") == 4
    assert health.assign(models, segment="Enterprise", lifecycle="mature") == 3
    assert health.assign(models, segment="SMB", lifecycle="onboarding") == 2
    assert health.assign(models, segment="SMB", lifecycle="mature") == 1
    assert health.assign(models[1:], segment="SMB", lifecycle="mature") is None


def test_a_model_with_several_rules_gets_the_accounts_of_each():
    """Model 3 serves the Enterprise and Strategic segments and SMB accounts in renewal;
    assign_rule says which of its rules took an account (what the assignments page counts)."""
    rules = [
        Assignment(1, is_default=True),
        Assignment(2, lifecycle="onboarding", rule_id=20),
        Assignment(3, segment="Enterprise", rule_id=30),
        Assignment(3, segment="Strategic", rule_id=31),
        Assignment(3, segment="SMB", lifecycle="renewal", rule_id=32),
        Assignment(4, segment="Strategic", lifecycle="onboarding", rule_id=40),
    ]
    cases = {
        ("Enterprise", "mature"): (3, 30),
        ("Strategic", "mature"): (3, 31),
        ("SMB", "renewal"): (3, 32),
        ("Enterprise", "onboarding"): (3, 30),  # segment beats stage
        ("Strategic", "onboarding"): (4, 40),  # segment and stage beat segment
        ("SMB", "onboarding"): (2, 20),
        ("SMB", "mature"): (1, None),
        ("", "renewal"): (1, None),
    }
    for (segment, stage), (model_id, rule_id) in cases.items():
        chosen = health.assign_rule(rules, segment=segment, lifecycle=stage)
        assert (chosen.model_id, chosen.rule_id) == (model_id, rule_id), (segment, stage)
        assert health.assign(rules, segment=segment, lifecycle=stage) == model_id
    # the order of the candidates does not matter
    for (segment, stage), (model_id, _rule_id) in cases.items():
        assert health.assign(rules[::-1], segment=segment, lifecycle=stage) == model_id
    assert health.assign_rule(rules[1:], segment="SMB", lifecycle="mature") is None


def _snapshot(spec, values, *, version="Default v1", overrides=()):
    h = health.score(spec, values, overrides=overrides)
    return {
        "score": h.score,
        "band": h.band,
        "model_version": version,
        "components": [c.as_json() for c in h.components],
        "overrides": [o.as_json() for o in h.overrides],
    }


USAGE_ONLY = _model(
    _comp("usage", 35, {"measure": "seat_utilisation", "linear": [0, 100]}),
    _comp("support", 15, ESCALATIONS),
)


def test_what_changed_in_words():
    before = _snapshot(
        USAGE_ONLY,
        {
            "seat_utilisation": 70.0,
            "active_users_30d": 14,
            "licensed_seats": 20,
            "open_escalations": 0,
        },
    )
    after = _snapshot(
        USAGE_ONLY,
        {
            "seat_utilisation": 30.0,
            "active_users_30d": 6,
            "licensed_seats": 20,
            "open_escalations": 0,
        },
    )
    # score: (35 × 70 + 15 × 100) / 50 = 79 → (35 × 30 + 15 × 100) / 50 = 51
    assert health.what_changed(before, after) == [
        "score fell from 79 to 51",  # both yellow: no band move
        "usage fell from 70 to 30: active users 14 → 6 of 20 seats",
    ]


def test_reasons_and_what_changed_write_counts_with_thousands_separators():
    """Counts of 1,000 and more as money is written ("12,500", not "12500"); the stored
    inputs keep the plain numbers. Utilisation 1,400 / 2,000 = 70 % → 600 / 2,000 = 30 %:
    score 79 → 51 as in ``test_what_changed_in_words``."""
    seats = {"licensed_seats": 2000, "open_escalations": 0}
    before = _snapshot(USAGE_ONLY, {"seat_utilisation": 70.0, "active_users_30d": 1400, **seats})
    after = _snapshot(USAGE_ONLY, {"seat_utilisation": 30.0, "active_users_30d": 600, **seats})
    reason = before["components"][0]["reason"]
    assert reason == "1,400 of 2,000 licensed seats active in 30 days"
    assert before["components"][0]["inputs"]["active_users_30d"] == 1400  # a number, stored
    assert health.what_changed(before, after)[1] == (
        "usage fell from 70 to 30: active users 1,400 → 600 of 2,000 seats"
    )
    # numbers that read alike at one decimal get the decimals that tell them apart, with
    # separators too: 1234.56 and 1234.64 are both "1,234.6"
    assert health.score_pair(1234.56, 1234.64, text=health._num) == ("1,234.56", "1,234.64")
    # a trend under 0.05 % still finds its decimals when the counts are large:
    # (12,501 − 12,500) / 12,500 × 100 = 0.008 %, "0.0" at one decimal, 0.01 at two
    steps = {"thresholds": [[-50, 25], [-25, 50], [0, 75], [10, 100]]}
    tiny = {"usage_trend": 0.008, "events_30d": 12501, "events_previous_30d": 12500}
    assert _reason_of("usage_trend", steps, tiny) == (
        "events up 0.01% on the previous 30 days (12,500 → 12,501)"
    )


def test_what_changed_names_band_moves_data_gaps_and_model_changes():
    before = _snapshot(
        USAGE_ONLY, {"seat_utilisation": 90.0, "active_users_30d": 18, "licensed_seats": 20}
    )
    after = _snapshot(
        USAGE_ONLY,
        {
            "seat_utilisation": 90.0,
            "active_users_30d": 18,
            "licensed_seats": 20,
            "open_escalations": 2,
        },
        version="Default v2",
    )
    # 90 (support left out) → (35 × 90 + 15 × 0) / 50 = 63
    assert health.what_changed(before, after) == [
        "score fell from 90 to 63 (green → yellow)",
        "scored by Default v2 (was Default v1)",
        "support now has data, 0 of 100: open escalations n/a → 2",
    ]
    assert health.what_changed(after, after) == ["nothing changed"]
    assert health.what_changed(_snapshot(USAGE_ONLY, {}), after)[0] == (
        "score now 63 (yellow); there was no data before"
    )


def test_what_changed_says_yes_or_no_for_a_yes_or_no_input():
    spec = _model(
        _comp("usage", 35, {"measure": "seat_utilisation", "linear": [0, 100]}),
        _comp(
            "relationship", 15, {"measure": "champion_present", "thresholds": [[0, 0], [1, 100]]}
        ),
    )
    usage = {"seat_utilisation": 50.0, "active_users_30d": 10, "licensed_seats": 20}
    nobody = _snapshot(spec, usage)
    named = _snapshot(spec, {**usage, "champion_present": 1, "stakeholders": 4})
    left = _snapshot(spec, {**usage, "champion_present": 0, "stakeholders": 3})
    # 50 (relationship left out) → (35 × 50 + 15 × 100) / 50 = 65 → (35 × 50 + 0) / 50 = 35
    assert health.what_changed(nobody, named)[-1] == (
        "relationship now has data, 100 of 100: champion named n/a → yes, stakeholders n/a → 4"
    )
    assert health.what_changed(named, left)[-1] == (
        "relationship fell from 100 to 0: champion named yes → no, stakeholders 4 → 3"
    )
    # a stored true/false reads the same
    flagged = _snapshot(spec, {**usage, "champion_present": True, "stakeholders": 3})
    assert "champion named no → yes" in health.what_changed(left, flagged)[-1]


# --- the Scorer: the nightly health step's way of calling score --------------------------------

_VALUES = [
    {},
    {"seat_utilisation": 30.0, "active_users_30d": 6, "licensed_seats": 20},
    {"seat_utilisation": 30.0, "active_users_30d": 6, "licensed_seats": 20, "nps": 10},
    # the same numbers as another type: equal in Python, printed differently in the record
    {"seat_utilisation": 30, "active_users_30d": 6.0, "licensed_seats": 20, "nps": 10.0},
    {"open_escalations": 1, "tickets_30d": 3, "licensed_seats": None, "champion_present": True},
    {"open_escalations": 1, "tickets_30d": 3, "champion_present": 1, "stakeholders": 2},
    {
        "overdue_invoices": 2,
        "overdue_amount": "120.50",
        "failed_payments_90d": 0,
        "days_since_last_touch": 40,
        "last_touch_on": "2024-02-20",
        "usage_trend": -12.5,
        "events_30d": 7,
        "events_previous_30d": 8,
        "key_features_used_30d": 1,
        "key_features_defined": 3,
        "key_feature_adoption": 33.33,
        "csat": 80.0,
        "ces": 5.5,
    },
]


def test_the_scorer_gives_what_score_gives_and_the_same_json():
    """A Scorer shares component results between accounts with the same values; every
    account still gets exactly score()'s result, whatever the order it is asked in, with and
    without overrides, and its components encode to the same JSON value as as_json()."""
    import json

    spec = parse_model(health.DEFAULT_COMPONENTS)
    scorer = health.Scorer(spec)
    overrides = [
        (),
        (_override(1, component="usage", score=90),),
        (_override(2, score=40, band="red"), _override(3, component="payments", score=100)),
    ]
    for _ in range(2):  # the second round hits the shared results
        for values in _VALUES:
            for ovs in overrides:
                expected = health.score(spec, values, overrides=ovs)
                got = scorer.score(values, overrides=ovs)
                assert got == expected
                encoded = json.loads(health.components_json(got.components))
                assert encoded == [c.as_json() for c in expected.components]
                # and the types the record prints: 30 stays 30, 30.0 stays 30.0
                assert json.dumps(encoded, sort_keys=True) == json.dumps(
                    [c.as_json() for c in expected.components], sort_keys=True
                )


def test_what_changed_says_when_an_override_set_the_score_and_when_it_ended():
    measures = {"seat_utilisation": 45.0, "active_users_30d": 9, "licensed_seats": 20}
    before = _snapshot(USAGE_ONLY, measures)  # usage 45 → score 45, red
    override = {"id": 1, "component": "", "score": 85.0, "band": "", "reason": "renewal signed"}
    after = {**before, "score": 85.0, "band": "green", "computed_score": 45.0,
             "overrides": [override]}  # fmt: skip
    assert health.what_changed(before, after) == [
        "score rose from 45 to 85 (red → green)",
        "overridden by hand: computed 45, set to 85 (“renewal signed”)",
    ]
    assert health.what_changed(after, before) == [
        "score fell from 85 to 45 (green → red)",
        "the override ended: the score is the model's again",
    ]


def test_what_changed_says_a_band_override_set_the_band_not_the_score():
    measures = {"seat_utilisation": 60.0, "active_users_30d": 12, "licensed_seats": 20}
    before = _snapshot(USAGE_ONLY, measures)  # usage 60 → score 60 (support left out), yellow
    ov = _override(4, band="green", reason="exec sponsor back")
    h = health.score(USAGE_ONLY, measures, overrides=[ov])
    after = {
        **_snapshot(USAGE_ONLY, measures, overrides=[ov]),
        "computed_score": h.computed_score,
        "computed_band": h.computed_band,
    }
    assert (after["score"], after["band"], after["computed_band"]) == (60.0, "green", "yellow")
    assert health.what_changed(before, after) == [
        "score stayed at 60 (yellow → green)",
        "band set to green by hand, computed yellow (“exec sponsor back”)",
    ]
    assert health.what_changed(after, before) == [
        "score stayed at 60 (green → yellow)",
        "the override ended: the band is the model's again",
    ]


def test_what_changed_names_a_component_new_in_the_model_with_its_score_or_no_data():
    usage = {"seat_utilisation": 60.0, "active_users_30d": 12, "licensed_seats": 20}
    before = _snapshot(_model(_comp("usage", 35, SEATS)), usage)
    wider = _model(_comp("usage", 35, SEATS), _comp("sentiment", 10, NPS))
    # usage 60 % on [0, 50] → 100; NPS 0 on [−50, 50] → 50; (35 × 100 + 10 × 50) / 45
    # = 4000 / 45 = 88.89 → 88.9
    after = _snapshot(wider, {**usage, "nps": 0}, version="Default v2")
    assert health.what_changed(before, after) == [
        "score fell from 100 to 88.9",
        "scored by Default v2 (was Default v1)",
        "sentiment is new in this model: 50 of 100",
    ]
    # without an answer the new component has no data: said so, not "n/a"
    after = _snapshot(wider, usage, version="Default v2")
    assert health.what_changed(before, after) == [
        "scored by Default v2 (was Default v1)",
        "sentiment is new in this model: no data, left out",
    ]


# --- scores side by side: never "80 → 80" for two different scores -----------------------------


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        (72, 41, ("72", "41")),  # whole numbers that differ: as they are
        (72.4, 41.6, ("72", "42")),  # rounded, still different
        (79.6, 80.4, ("79.6", "80.4")),  # both round to 80: one decimal
        (79.96, 80.0, ("79.96", "80.00")),  # one decimal is 80.0 both: two
        (80.0004, 80.0, ("80.0004", "80.0")),  # closer than 3 decimals: every digit
        (79.6, 79.6, ("79.6", "79.6")),  # the same score (the thresholds moved)
        (80, 80, ("80", "80")),
        (None, 80.4, ("no score", "80")),
        (79.6, None, ("80", "no score")),
    ],
)
def test_score_pair_prints_two_different_scores_differently(before, after, expected):
    assert health.score_pair(before, after, none="no score") == expected


def test_score_pair_keeps_a_callers_style_until_it_reads_equal():
    # _num style (one decimal when not whole): 79.6 → 80.4 reads apart already; 79.96 → 80
    # reads "80.0" → "80", the same number: two decimals
    assert health.score_pair(79.6, 80.4, text=health.score_as_recorded) == ("79.6", "80.4")
    assert health.score_pair(90, 37.5, text=health.score_as_recorded) == ("90", "37.5")
    assert health.score_pair(79.96, 80.0, text=health.score_as_recorded) == ("79.96", "80.00")


# --- one score beside its band: the printed number never reads as another band ----------------


@pytest.mark.parametrize(
    ("score", "expected"),
    [
        (49.4, "49"),  # rounds down, stays red
        (49.5, "49.5"),  # "50" would read yellow beside a red badge
        (49.96, "49.96"),  # "50.0" would too: two decimals
        (50, "50"),
        (50.4, "50"),
        (79.6, "79.6"),  # yellow, not "80"
        (79.96, "79.96"),
        (79.9996, "79.9996"),  # closer than SCORE_PLACES decimals: every digit
        (80, "80"),  # exactly 80 is green
        (80.4, "80"),
        (0, "0"),
        (100, "100"),
        (None, "no score"),
    ],
)
def test_score_beside_band_never_crosses_a_band_line(score, expected):
    text = health.score_beside_band(score, green_min=80, yellow_min=50, none="no score")
    assert text == expected
    if score is not None:  # the printed number reads as the score's own band
        assert band_for(float(text), green_min=80, yellow_min=50) == band_for(
            score, green_min=80, yellow_min=50
        )


def test_score_beside_band_uses_the_versions_own_lines():
    # a model with green from 75: 74.6 is yellow, so not "75"; 79.6 is green, so "80" is fine
    assert health.score_beside_band(74.6, green_min=75, yellow_min=40) == "74.6"
    assert health.score_beside_band(79.6, green_min=75, yellow_min=40) == "80"
    assert health.score_beside_band(39.7, green_min=75, yellow_min=40) == "39.7"


def test_score_beside_band_without_known_lines_prints_the_recorded_score():
    assert health.score_beside_band(79.6, green_min=None, yellow_min=None) == "79.6"
    assert health.score_beside_band(80.0, green_min=None, yellow_min=50) == "80"


def test_what_changed_at_a_band_boundary_prints_the_decimals():
    """A band change from yellow to green at 79.96 → 80.0 (green from 80) is not "80 → 80"."""
    before = {"score": 79.96, "band": "yellow", "model_version": "v1", "components": []}
    after = {"score": 80.0, "band": "green", "model_version": "v1", "components": []}
    assert health.what_changed(before, after) == ["score rose from 79.96 to 80.00 (yellow → green)"]
    # a component at its own boundary: 69.96 → 70 reads "69.96 → 70.00", not "70.0 → 70"
    comp = {"key": "usage", "label": "Usage", "inputs": {}}
    before["components"] = [{**comp, "score": 69.96}]
    after["components"] = [{**comp, "score": 70.0}]
    assert health.what_changed(before, after)[1] == "usage rose from 69.96 to 70.00"


def _as_recorded(h) -> list[dict]:
    """The components as a snapshot stores them (what the account page reads)."""
    return [{"label": c.label, "score": c.score, "weight": c.weight} for c in h.components]


def test_the_left_out_note_says_the_other_weights_count_alone():
    with_gap = health.score(
        THREE, {"seat_utilisation": 15.0, "active_users_30d": 3, "licensed_seats": 20,
                "open_escalations": 1, "nps": None},
    )  # fmt: skip
    kept = len(THREE.components) - len(with_gap.left_out)
    assert health.left_out_note(_as_recorded(with_gap)) == (
        f"Left out for lack of data: sentiment. The weights of the {kept} components with "
        "data were rescaled to count alone."
    )
    full = health.score(
        THREE, {"seat_utilisation": 15.0, "active_users_30d": 3, "licensed_seats": 20,
                "open_escalations": 1, "nps": 10},
    )  # fmt: skip
    assert health.left_out_note(_as_recorded(full)) == ""
    empty = health.left_out_note(_as_recorded(health.score(THREE, {})))
    assert empty.startswith("Left out for lack of data: usage, support, sentiment.")
    assert "no score" in empty


KEY_ADOPTION = _model(
    _comp("adoption", 20, {"measure": "key_feature_adoption", "linear": [0, 100]})
)


def test_key_features_not_chosen_is_said_in_words_not_the_settings_name():
    # the inputs say 0 key features are chosen
    h = health.score(KEY_ADOPTION, {"key_features_defined": 0, "invoices": 1})
    assert h.reasons[0] == (
        "adoption: no data (key feature adoption: no key features chosen yet "
        "(an admin sets them)), left out"
    )
    assert "KEY_FEATURES" not in h.reasons[0]


def test_key_features_chosen_but_no_usage_says_no_usage_not_none_chosen():
    """The reviewer's churned account: 3 key features chosen, no events and no seats in the
    window, so no adoption value; the words name that cause, not an unset setting."""
    h = health.score(KEY_ADOPTION, {"key_features_defined": 3, "overdue_invoices": 0})
    assert h.reasons[0] == (
        "adoption: no data (key feature adoption: no events and no licensed seats in the "
        "30 days), left out"
    )
    assert "no key features chosen" not in h.reasons[0]


def test_key_features_unknown_count_names_both_causes():
    # an account with no data at all carries no count: either cause may hold
    h = health.score(KEY_ADOPTION, {})
    assert (
        "no events and no licensed seats in the 30 days, or no key features chosen yet"
        in (h.reasons[0])
    )


def test_key_features_with_a_value_are_described_not_missing():
    # 2 of 3 used → 66.67 % on [0, 100] → 66.7 points
    h = health.score(
        KEY_ADOPTION,
        {"key_feature_adoption": 66.67, "key_features_used_30d": 2, "key_features_defined": 3},
    )
    assert h.reasons[0] == "adoption 66.7/100: 2 of 3 key features used in 30 days"


@pytest.mark.parametrize(
    ("values", "cause"),
    [
        ({"licensed_seats": 20}, "no tickets opened yet"),
        # a ticket was opened (tickets_30d is there) but no seats: no denominator
        ({"tickets_30d": 2, "open_escalations": 0}, "no licensed seats"),
    ],
)
def test_tickets_per_seat_names_the_missing_side(values, cause):
    model = _model(_comp("support", 15, {"measure": "tickets_per_100_seats_30d",
                                          "linear": [30, 5]}))  # fmt: skip
    h = health.score(model, values)
    assert h.reasons[0] == f"support: no data (tickets per 100 seats: {cause}), left out"


def test_the_same_scorer_tells_the_key_feature_causes_apart():
    """``Scorer`` shares one computation among accounts with the same values: the count of
    chosen key features is part of what it compares, so two causes never share words."""
    scorer = health.Scorer(KEY_ADOPTION)
    unset = scorer.score({"key_features_defined": 0}).reasons[0]
    idle = scorer.score({"key_features_defined": 3}).reasons[0]
    assert "no key features chosen yet" in unset and "no events" in idle


@pytest.mark.parametrize("scorer", [health.score, None])
def test_a_component_scored_without_one_measure_names_the_measure_left_out(scorer):
    """The relationship's score from the last touch alone also says that no champion was
    known that day (no stakeholder on record yet), rather than reading as a plain 100."""
    spec = parse_model(health.DEFAULT_COMPONENTS)
    values = {"days_since_last_touch": 3, "last_touch_on": "2026-11-20"}
    result = health.Scorer(spec).score(values) if scorer is None else scorer(spec, values)
    relationship = next(c for c in result.components if c.key == "relationship")
    assert relationship.score == 100.0
    assert relationship.reason == (
        "last CSM touch 3 days ago; "
        "champion: none known by the end of the day (no stakeholders on record)"
    )
    assert "champion: none known" in next(r for r in result.reasons if "relationship" in r)
    # with a stakeholder on record and none of them champion, the measure counts: 0 points
    values |= {"champion_present": 0, "stakeholders": 3}
    relationship = next(c for c in health.score(spec, values).components if c.key == "relationship")
    assert relationship.score == 50.0
    assert relationship.reason == "no champion named; last CSM touch 3 days ago"


@pytest.mark.parametrize(
    ("expires_at", "words"),
    [
        ("2026-12-25T00:00:00+00:00", "until the end of 24 Dec 2026, UTC"),
        ("2026-12-25T01:00:00+01:00", "until the end of 24 Dec 2026, UTC"),  # the same moment
        ("2026-12-25T15:30:00+00:00", "until 25 Dec 2026, 15:30 UTC"),
        ("not a time", "until not a time"),
    ],
)
def test_an_overrides_end_names_its_last_day_as_the_account_page_does(expires_at, words):
    assert health.until_words(expires_at) == words


# --- what changed: each input with its unit, never two equal numbers --------------------------

SENTIMENT_AND_PAYMENTS = _model(
    _comp(
        "sentiment",
        50,
        {"measure": "csat", "linear": [50, 100]},
        {"measure": "ces", "linear": [1, 7]},
    ),
    _comp(
        "payments",
        50,
        {"measure": "overdue_invoices", "thresholds": [[0, 100], [1, 40], [2, 0]]},
        {"measure": "failed_payments_90d", "thresholds": [[0, 100], [1, 50], [3, 0]]},
    ),
)


def test_what_changed_prints_units_money_and_numbers_that_read_apart(settings):
    settings.CURRENCY = "EUR"
    paid = {"overdue_invoices": 0, "overdue_amount": "0.00", "failed_payments_90d": 0}
    before = _snapshot(SENTIMENT_AND_PAYMENTS, {"csat": 80.0, "ces": 5.45, **paid})
    after = _snapshot(
        SENTIMENT_AND_PAYMENTS,
        {"csat": 90.0, "ces": 5.5, **paid, "overdue_invoices": 1, "overdue_amount": "1200.00"},
    )
    # before: CSAT 80 on [50, 100] → 60 points; CES 5.45 on [1, 7] → 4.45 / 6 = 74.17 → 74.2;
    # sentiment (60 + 74.2) / 2 = 67.1; payments 100; score (67.1 + 100) / 2 = 83.55 → 83.6.
    # after: CSAT 90 → 80; CES 5.5 → 4.5 / 6 = 75; sentiment 77.5; payments (40 + 100) / 2
    # = 70; score (77.5 + 70) / 2 = 73.75 → 73.8 (yellow)
    assert health.what_changed(before, after) == [
        "score fell from 83.6 to 73.8 (green → yellow)",
        # CES 5.45 and 5.5 both print "5.5" at one decimal: two decimals tell them apart
        "sentiment rose from 67.1 to 77.5: CSAT 80% → 90%, CES 5.45 → 5.50",
        "payments fell from 100 to 70: overdue invoices 0 → 1, overdue amount €0.00 → €1,200.00",
    ]
    # one amount written two ways is no change
    again = _snapshot(SENTIMENT_AND_PAYMENTS, {"csat": 80.0, "ces": 5.45, **paid})
    again["components"][1]["inputs"]["overdue_amount"] = "0"
    again["components"][1]["score"] = 99.0  # a score that moved, so its inputs are compared
    assert health.what_changed(before, again)[-1] == "payments fell from 100 to 99"


def test_what_changed_says_a_percentage_when_only_a_derived_value_moved():
    spec = _model(_comp("usage", 1, SEATS))
    # 1 of 3 seats: 33.33 % → 66.66 points → 66.7; the rounding of another day gave 33.34 %
    # → 66.68 → 66.7 too, so the score is the same; a moved score is what opens the inputs
    before = _snapshot(
        spec, {"seat_utilisation": 33.33, "active_users_30d": 1, "licensed_seats": 3}
    )
    after = _snapshot(spec, {"seat_utilisation": 33.34, "active_users_30d": 1, "licensed_seats": 3})
    after["components"][0]["score"] = 66.8
    assert health.what_changed(before, after)[-1] == (
        "usage rose from 66.7 to 66.8: seat utilisation 33.33% → 33.34%"
    )


# --- the reasons' words: plurals, tiny trends, a touch of today -------------------------------


def _reason_of(measure, mapping, values):
    spec = _model(_comp("c", 1, {"measure": measure, **mapping}))
    return health.score(spec, values).components[0].reason


def test_reasons_say_people_not_persons():
    line = {"linear": [0, 100]}
    one = {"relationship_score": 40, "relationship_engaged": 1}
    assert _reason_of("relationship_score", line, one) == (
        "relationship 40/100, 1 person engaged in 90 days"
    )
    three = {"relationship_score": 40, "relationship_engaged": 3}
    assert _reason_of("relationship_score", line, three) == (
        "relationship 40/100, 3 people engaged in 90 days"
    )


def test_a_trend_under_a_tenth_of_a_percent_is_not_up_zero():
    steps = {"thresholds": [[-50, 25], [-25, 50], [0, 75], [10, 100]]}
    # 2501 events on 2500: (2501 − 2500) / 2500 × 100 = 0.04 %, stored 0.04
    tiny = {"usage_trend": 0.04, "events_30d": 2501, "events_previous_30d": 2500}
    assert _reason_of("usage_trend", steps, tiny) == (
        "events up 0.04% on the previous 30 days (2,500 → 2,501)"
    )
    # 12.5 % keeps its one decimal; no change is "flat"
    some = {"usage_trend": -12.5, "events_30d": 70, "events_previous_30d": 80}
    assert _reason_of("usage_trend", steps, some) == (
        "events down 12.5% on the previous 30 days (80 → 70)"
    )
    flat = {"usage_trend": 0.0, "events_30d": 80, "events_previous_30d": 80}
    assert _reason_of("usage_trend", steps, flat) == "events flat on the previous 30 days (80 → 80)"


def test_a_touch_of_the_day_itself_is_today():
    line = {"linear": [90, 14]}
    assert _reason_of("days_since_last_touch", line, {"days_since_last_touch": 0}) == (
        "last CSM touch today"
    )
    assert _reason_of("days_since_last_touch", line, {"days_since_last_touch": 1}) == (
        "last CSM touch 1 day ago"
    )


def test_what_changed_names_a_weight_another_version_gave_a_component():
    values = {
        "seat_utilisation": 70.0,
        "active_users_30d": 14,
        "licensed_seats": 20,
        "open_escalations": 0,
    }
    heavier = _model(
        _comp("usage", 50, {"measure": "seat_utilisation", "linear": [0, 100]}),
        _comp("support", 15, ESCALATIONS),
        _comp("sentiment", 20, NPS),  # new in v2, without data: left out
    )
    before = _snapshot(USAGE_ONLY, values)
    after = _snapshot(heavier, values, version="Default v2")
    # v1: (35 × 70 + 15 × 100) / 50 = 3950 / 50 = 79; v2: (50 × 70 + 15 × 100) / 65
    # = 5000 / 65 = 76.92 → 76.9. The same data: only usage's weight moved the score
    assert health.what_changed(before, after) == [
        "score fell from 79 to 76.9",
        "scored by Default v2 (was Default v1)",
        "usage stayed at 70: weight 35 → 50",
        "sentiment is new in this model: no data, left out",
    ]


def test_what_changed_says_key_features_used_of_how_many_not_the_percentage_again():
    spec = _model(
        _comp(
            "feature_adoption",
            20,
            {"measure": "key_feature_adoption", "linear": [0, 100]},
            label="Feature adoption",
        )
    )
    three = {"key_features_defined": 3}
    before = _snapshot(spec, {**three, "key_features_used_30d": 3, "key_feature_adoption": 100.0})
    after = _snapshot(spec, {**three, "key_features_used_30d": 1, "key_feature_adoption": 33.33})
    # 3 of 3 → 100 points; 1 of 3 = 33.33 % → 33.3 points. The percentage follows from the
    # counts, so it is not said a second time
    assert health.what_changed(before, after)[-1] == (
        "feature adoption fell from 100 to 33.3: key features used 3 → 1 of 3"
    )
    # when the number chosen changed too, both counts are said
    four = _snapshot(
        spec, {"key_features_defined": 4, "key_features_used_30d": 1, "key_feature_adoption": 25.0}
    )
    assert health.what_changed(before, four)[-1] == (
        "feature adoption fell from 100 to 25: key features used 3 → 1, key features defined 3 → 4"
    )


def test_what_changed_says_a_component_override_and_the_data_moving_under_it():
    usage = {"seat_utilisation": 30.0, "active_users_30d": 6, "licensed_seats": 20}
    before = _snapshot(USAGE_ONLY, usage)  # usage 30 on [0, 100]; support left out: score 30
    held = _override(5, component="usage", score=90)
    after = _snapshot(USAGE_ONLY, usage, overrides=[held])  # usage shown 90: score 90
    assert health.what_changed(before, after) == [
        "score rose from 30 to 90 (red → green)",
        "usage rose from 30 to 90: set by an override (computed 30)",
    ]
    assert health.what_changed(after, before)[-1] == (
        "usage fell from 90 to 30: the override ended"
    )
    # the override holds 90 on both days while the data fell from 30 to 10 % (30 → 10
    # points): the shown score did not move, the computed one did, and the inputs say why
    lower = {"seat_utilisation": 10.0, "active_users_30d": 2, "licensed_seats": 20}
    later = _snapshot(USAGE_ONLY, lower, overrides=[held])
    assert health.what_changed(after, later) == [
        "usage stayed at 90: set by an override, computed 30 → 10, active users 6 → 2 of 20 seats"
    ]


def test_ratio_measures_are_scored_at_full_precision():
    """metrics.md's convention: ratios keep full precision. 10,000 events on 20,001 the 30
    days before: (10,000 − 20,001) / 20,001 × 100 = −50.0025 % (10,001 / 20,001 =
    0.5000249987…), down more than 50 %, so below the default steps' −50 → 25 and worth 0
    points; rounded to two places first (−50.0, as the inputs once were) it scored 25."""
    from metrics.kpis.health_inputs import _pct

    trend = _pct(10_000 - 20_001, 20_001)
    assert -50.0026 < trend < -50.0024
    spec = health.parse_model(health.DEFAULT_COMPONENTS)
    values = {"usage_trend": trend, "events_30d": 10_000, "events_previous_30d": 20_001}
    usage = health.score(spec, values).components[0]
    assert usage.measure_points["usage_trend"] == 0.0
    assert usage.inputs["usage_trend"] == trend  # stored as computed, not rounded
    assert "events down 50.0% on the previous 30 days (20,001 → 10,000)" in usage.reason
    # 1 of 3 seats: 100 / 3 = 33.333…, kept so; linear 0..50 → 33.333… / 50 × 100 = 66.7
    seats = _pct(1, 3)
    assert seats == 100 / 3
    values = {"seat_utilisation": seats, "active_users_30d": 1, "licensed_seats": 3}
    assert health.score(spec, values).components[0].measure_points["seat_utilisation"] == 66.7


def test_a_trend_of_thousandths_of_a_percent_says_its_first_digit():
    steps = {"thresholds": [[-50, 25], [-25, 50], [0, 75], [10, 100]]}
    # 30,001 events on 30,000: 1 / 30,000 × 100 = 0.00333… %: "0.003", not "0.00"
    tiny = {"usage_trend": 100 / 30_000, "events_30d": 30_001, "events_previous_30d": 30_000}
    assert _reason_of("usage_trend", steps, tiny) == (
        "events up 0.003% on the previous 30 days (30,000 → 30,001)"
    )
