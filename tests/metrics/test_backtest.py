"""Health backtest: AUC by the rank formula on hand-made lists, churn per band and the green
accounts that churned on a hand-built book, suggested weights, the command and the admin
page (docs/metrics.md, Health, "Predictive check (backtest)")."""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal
from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts import utc
from metrics import backtest, services
from metrics.models import HealthModelVersion, HealthSnapshot
from tests.explained import explanation
from tests.factories import (
    AccountFactory,
    ContractFactory,
    TicketFactory,
    health_model_with_rule,
)

D = dt.date(2024, 3, 31)  # as of; D + 90 days = 2024-06-29
KEYS = ["usage", "feature_adoption", "support", "payments", "sentiment", "relationship"]


# --- pure: AUC ---------------------------------------------------------------------------------


def test_auc_perfect_ranking_is_one():
    # every churner (risk 80, 90) is riskier than every retained account (10, 20): 4/4 pairs
    assert backtest.roc_auc([10, 20, 80, 90], [False, False, True, True]) == 1.0


def test_auc_reversed_ranking_is_zero():
    # every churner is the safer of its pairs: 0/4
    assert backtest.roc_auc([80, 90, 10, 20], [False, False, True, True]) == 0.0


def test_auc_all_ties_is_half():
    # all four risks equal: ranks 1..4 share 2.5; R+ = 5, U = 5 − 2·3/2 = 2, 2/(2·2) = 0.5
    assert backtest.roc_auc([50, 50, 50, 50], [True, False, True, False]) == 0.5


def test_auc_mixed_with_a_tie_by_pair_count():
    # churners at 30, 60, 60; retained at 10, 60, 90 → 9 pairs:
    # 30: beats 10 → 1;  60: beats 10 (1) + ties 60 (0.5) → 1.5, twice → 3;  total 4 / 9
    # rank formula: ranks 10→1, 30→2, 60,60,60→4 each, 90→6: R+ = 2+4+4 = 10, U = 10 − 6 = 4
    auc = backtest.roc_auc([30, 60, 60, 10, 60, 90], [True, True, True, False, False, False])
    assert auc == pytest.approx(4 / 9)


def test_auc_needs_both_outcomes():
    assert backtest.roc_auc([], []) is None
    assert backtest.roc_auc([1, 2], [True, True]) is None
    assert backtest.roc_auc([1, 2], [False, False]) is None
    with pytest.raises(ValueError, match="2 scores but 1 outcomes"):
        backtest.roc_auc([1, 2], [True])


def test_churn_by_band_counts_and_rates_in_percent():
    # a percentage like every KPI rate (docs/metrics.md): green 1 of 2 = 50 %, red 1 of 1
    rows = [("green", False), ("green", True), ("red", True), ("", False)]
    by_band = {b["band"]: b for b in backtest.churn_by_band(rows)}
    assert by_band["green"] == {"band": "green", "accounts": 2, "churned": 1, "churn_rate": 50.0}
    assert by_band["red"]["churn_rate"] == 100.0
    assert by_band["yellow"] == {"band": "yellow", "accounts": 0, "churned": 0, "churn_rate": None}
    assert by_band["no_data"]["accounts"] == 1


def test_whole_percentages_sum_to_100():
    assert backtest.whole_percentages({"a": 1, "b": 1, "c": 1}) == {"a": 34, "b": 33, "c": 33}
    assert backtest.whole_percentages({"a": 3, "b": 0}) == {"a": 100, "b": 0}


def _separable_samples():
    """usage separates churners (10) from retained (90) perfectly; every other component
    says the opposite (churners 100, retained 0..60), so the current weights rank badly."""
    samples, churned = [], []
    for i in range(6):
        samples.append({"usage": 10, **dict.fromkeys(KEYS[1:], 100)})
        churned.append(True)
        samples.append({"usage": 90, **dict.fromkeys(KEYS[1:], 10 * i), "sentiment": None})
        churned.append(False)
    return samples, churned


def test_fit_weights_nonnegative_sum_100_and_at_least_as_good():
    samples, churned = _separable_samples()
    weights = backtest.fit_weights(samples, churned, KEYS)
    assert set(weights) == set(KEYS)
    assert all(isinstance(w, int) and w >= 0 for w in weights.values())
    assert sum(weights.values()) == 100
    assert weights["usage"] == 100  # the others raise the score of churners: weight 0
    current = {"usage": 35, "feature_adoption": 20, "support": 15}
    current |= {"payments": 10, "sentiment": 10, "relationship": 10}

    def auc(w):
        scores = [backtest.weighted_score(s, w) for s in samples]
        return backtest.roc_auc([100 - s for s in scores], churned)

    assert auc(weights) == 1.0
    assert auc(weights) >= auc(current)
    assert auc(current) < 0.5
    # deterministic
    assert backtest.fit_weights(samples, churned, KEYS) == weights


def test_fit_weights_nothing_to_learn():
    assert backtest.fit_weights([{"usage": 1}], [True], ["usage"]) is None  # no retained
    assert (
        backtest.fit_weights([{"usage": None}, {"usage": None}], [True, False], ["usage"]) is None
    )
    # a higher usage score goes with churn: no component raises the risk → no suggestion
    assert backtest.fit_weights([{"usage": 90}, {"usage": 10}], [True, False], ["usage"]) is None


def test_weighted_score_renormalises_missing():
    assert backtest.weighted_score({"a": 80, "b": None}, {"a": 30, "b": 70}) == 80
    assert backtest.weighted_score({"a": 80, "b": 40}, {"a": 1, "b": 3}) == 50
    assert backtest.weighted_score({"a": None}, {"a": 1}) is None


# --- the service on a hand-built book ------------------------------------------------------------


def _customer(ends: dt.date | None = None, start: dt.date = dt.date(2024, 1, 1), **extra):
    account = AccountFactory(**extra)
    ContractFactory(account=account, start_date=start, end_date=ends, mrr=Decimal("100.00"))
    return account


def _snapshot(account, score, band, version, components=None, day=D):
    if components is None:
        components = [
            {"key": c["key"], "weight": c["weight"], "score": score} for c in version.components
        ]
    return HealthSnapshot.objects.create(
        account=account,
        day=day,
        model_version=version,
        score=score,
        band=band,
        computed_score=score,
        computed_band=band,
        components=components,
    )


@pytest.fixture
def book(db):
    """Customers on D with known bands; churned = no contract covering D + 90 (Jun 29).

    risk = 100 − score: churners B 15, D 45, E 70; retained A 10, C 40, I 30, F 80.
    Pairs 3 × 4 = 12; churners riskier than: B → A (1), D → A, C, I (3), E → A, C, I (3):
    AUC = 7 / 12."""
    version = services.health_model_ensure_default().versions.get(active=True)
    a = _customer(name="A")
    b = _customer(ends=dt.date(2024, 5, 15), name="B")  # green, churned
    c = _customer(name="C")
    d = _customer(ends=dt.date(2024, 4, 30), name="D")
    e = _customer(ends=dt.date(2024, 6, 1), name="E")
    f = _customer(name="F")
    i = _customer(ends=dt.date(2024, 7, 15), name="I")  # ends after the window: retained
    _customer(start=dt.date(2024, 4, 5), name="G")  # not yet a customer on D
    _customer(start=dt.date(2023, 1, 1), ends=dt.date(2024, 3, 1), name="H")  # gone before D
    for account, score, band in [
        (a, 90, "green"),
        (b, 85, "green"),
        (c, 60, "yellow"),
        (d, 55, "yellow"),
        (e, 30, "red"),
        (f, 20, "red"),
        (i, 70, "yellow"),
    ]:
        _snapshot(account, score, band, version)
    return {"version": version, "b": b}


def test_backtest_on_the_book(book):
    result = services.health_backtest(as_of=D, horizon=90)
    assert result["window_end"] == "2024-06-29"
    assert (result["customers"], result["scored"], result["churned"]) == (7, 7, 3)
    assert result["auc"] == pytest.approx(round(7 / 12, 4))
    bands = {b["band"]: b for b in result["bands"]}
    assert (bands["green"]["accounts"], bands["green"]["churned"]) == (2, 1)
    assert bands["green"]["churn_rate"] == 50.0  # 1 of 2, in percent
    assert (bands["yellow"]["accounts"], bands["yellow"]["churned"]) == (3, 1)
    assert bands["yellow"]["churn_rate"] == pytest.approx(100 / 3)  # full precision
    assert (bands["red"]["accounts"], bands["red"]["churned"]) == (2, 1)
    assert bands["no_data"]["accounts"] == 0
    assert [(g["name"], g["score"]) for g in result["green_churned"]] == [("B", 85)]
    assert result["green_churned"][0]["external_id"] == book["b"].external_id
    assert result["recorded_snapshots"] == 0
    # a finished window: observed to its end
    assert result["complete"] is True
    assert (result["observed_until"], result["observed_days"]) == ("2024-06-29", 90)
    json.dumps(result)  # JSON-ready


def test_query_count_does_not_grow_with_the_book(book):
    with CaptureQueriesContext(connection) as small:
        services.health_backtest(as_of=D)
    for n in range(10):
        account = _customer(ends=dt.date(2024, 5, 1) if n % 2 else None, name=f"more {n}")
        _snapshot(account, 40 + n, "yellow", book["version"])
    with CaptureQueriesContext(connection) as large:
        result = services.health_backtest(as_of=D)
    assert result["customers"] == 17
    # contracts, snapshots, then the data gaps: the versions, one EXISTS per source in one
    # statement, the first days of the sources without data (none here has any)
    assert len(large) == len(small) <= 7, [q["sql"] for q in large]


def test_shorter_horizon_counts_fewer_churners(book):
    # by Apr 30 + 1 = May 1 (31 days) only D (ended Apr 30) has gone
    result = services.health_backtest(as_of=D, horizon=31)
    assert result["churned"] == 1
    assert result["green_churned"] == []


HOOK_CALLS: list[list[int]] = []


def hook_spy(ids):  # a TIMELINE_FACT_HOOKS listener, as the playbooks' task is
    HOOK_CALLS.append(list(ids))


def test_missing_snapshots_are_scored_in_memory_and_nothing_is_written(
    db, settings, django_capture_on_commit_callbacks
):
    from accounts.models import TimelineEntry

    settings.TIMELINE_FACT_HOOKS = ["tests.metrics.test_backtest.hook_spy"]
    HOOK_CALLS.clear()
    version = services.health_model_ensure_default().versions.get(active=True)
    kept = _customer(name="kept")
    gone = _customer(ends=dt.date(2024, 5, 1), name="gone")
    # the day before, one was red and one green: both have the same (empty) inputs on D, so
    # the same band then, which differs from at least one of these. Recording D with band
    # facts on would write a health_band_changed fact and hand it to the playbooks.
    _snapshot(kept, 10, "red", version, day=D - dt.timedelta(days=1))
    _snapshot(gone, 95, "green", version, day=D - dt.timedelta(days=1))
    with django_capture_on_commit_callbacks(execute=True):
        result = services.health_backtest(as_of=D)
    assert result["recorded_snapshots"] == 0 and result["scored_in_memory"] == 2
    assert HealthSnapshot.objects.filter(day=D).count() == 0
    assert TimelineEntry.objects.count() == 0
    assert HOOK_CALLS == []
    assert result["customers"] == 2 and result["churned"] == 1
    assert any("scored in memory" in m and "nothing recorded" in m for m in result["messages"])
    # the same answer a second time: nothing was stored to read back
    again = services.health_backtest(as_of=D)
    assert again["scored_in_memory"] == 2 and again["bands"] == result["bands"]


def test_suggestion_beats_current_when_one_component_separates(db):
    version = services.health_model_ensure_default().versions.get(active=True)
    samples, churned = _separable_samples()
    for n, (components, gone) in enumerate(zip(samples, churned, strict=True)):
        account = _customer(ends=dt.date(2024, 5, 1) if gone else None, name=f"acc {n}")
        rows = [
            {"key": key, "weight": w, "score": components[key]}
            for key, w in [(c["key"], c["weight"]) for c in version.components]
        ]
        score = backtest.weighted_score(components, {r["key"]: r["weight"] for r in rows})
        _snapshot(account, score, "yellow", version, components=rows)
    result = services.health_backtest(as_of=D)
    s = result["suggestion"]
    assert s["model_version_id"] == version.pk
    assert sum(s["weights"].values()) == 100 and min(s["weights"].values()) >= 0
    assert s["auc"] >= s["current_auc"]
    assert s["auc"] == 1.0 and s["current_auc"] < 0.5
    assert s["current_weights"]["usage"] == 35
    # a backtest suggests, it never saves: the weights become a version only once an admin
    # has reviewed them in the editor (tests/workspace/test_health_versions.py)
    assert HealthModelVersion.objects.filter(model=version.model).count() == 1


def _usage_support_book(version, *, override_y: float | None = None):
    """Four customers scored by the default model (usage 35, support 15; the other four
    components without data, so the shares are 35/50 = 0.7 and 15/50 = 0.3). Usage is 0
    for all, so the score is 0.3 × support, as ``health.score`` computes it (share first):

    - X churned, support 38.5: 0.3 × 38.5 = 11.549999… in floating point → 11.5
      (35 × 0 + 15 × 38.5) / 50 = 11.55 exactly → 11.6: the old arithmetic, a tie with Y
    - Y retained, support 38.7: 0.3 × 38.7 = 11.61 → 11.6
    - Z retained, support 90: 27.0;   W churned, support 10: 3.0

    risk = 100 − score: churners X 88.5, W 97; retained Y 88.4, Z 73: every churner is
    riskier than every retained account, AUC = 4/4 = 1.0 (with X tied to Y it was
    (1 + 1 + 1 + 0.5) / 4 = 0.875)."""
    for name, support, score, gone in [
        ("X", 38.5, 11.5, True),
        ("Y", 38.7, 11.6, False),
        ("Z", 90.0, 27.0, False),
        ("W", 10.0, 3.0, True),
    ]:
        account = _customer(ends=dt.date(2024, 5, 1) if gone else None, name=name)
        points = {"usage": 0.0, "support": support}
        rows = [
            {"key": c["key"], "weight": c["weight"], "score": points.get(c["key"])}
            for c in version.components
        ]
        shown = override_y if name == "Y" and override_y is not None else score
        _snapshot(account, shown, "red", version, components=rows)


def test_current_auc_of_the_suggestion_is_the_headline_auc_for_the_same_weights(db):
    version = services.health_model_ensure_default().versions.get(active=True)
    _usage_support_book(version)
    # the scores as health.score makes them (the recorded ones), to the last bit
    assert backtest.weighted_score({"usage": 0.0, "support": 38.5},
                                   {"usage": 35, "support": 15}) == 11.5  # fmt: skip
    result = services.health_backtest(as_of=D)
    s = result["suggestion"]
    assert result["auc"] == 1.0
    assert s["current_auc"] == result["auc"] == 1.0
    assert s["current_differs"] == [] and s["accounts_compared"] == 4
    out = StringIO()
    call_command("backtest", "--as-of", "2024-03-31", stdout=out)
    text = out.getvalue()
    assert "AUC: 1.000" in text and "AUC current 1.000, suggested" in text
    assert "not the AUC above" not in text


def test_current_auc_says_why_it_is_not_the_headline_when_an_override_moved_a_score(db):
    """Y's shown score was set to 5 by an override (risk 95): the headline ranks churner X
    (88.5) below it, AUC = (X: Z → 1; W: Y, Z → 2) / 4 = 3/4 = 0.75. The suggestion
    re-weights the components (Y 11.6), as before 1.0, and says why the two differ."""
    version = services.health_model_ensure_default().versions.get(active=True)
    _usage_support_book(version, override_y=5.0)
    result = services.health_backtest(as_of=D)
    s = result["suggestion"]
    assert result["auc"] == 0.75 and s["current_auc"] == 1.0
    assert len(s["current_differs"]) == 1
    assert s["current_differs"][0].startswith("1 recorded score differs from the current")
    out = StringIO()
    call_command("backtest", "--as-of", "2024-03-31", stdout=out)
    assert "AUC current 1.000 (not the AUC above: 1 recorded score differs" in out.getvalue()


def _admin_backtest_page(client, admin_user, version) -> str:
    client.force_login(admin_user)
    url = reverse("admin:metrics_healthmodelversion_backtest", args=[version.pk])
    r = client.get(url, {"as_of": "2024-03-31", "horizon": "90"})
    assert r.status_code == 200
    return r.content.decode()


def test_admin_page_says_why_the_current_auc_is_not_the_headline(client, admin_user):
    """The same book as above (Y overridden to 5): the admin page names the reason beside
    the suggestion's table, as the command does."""
    version = services.health_model_ensure_default().versions.get(active=True)
    _usage_support_book(version, override_y=5.0)
    page = _admin_backtest_page(client, admin_user, version)
    assert 'id="backtest-current-differs"' in page
    assert "differs from the headline AUC above: 1 recorded score differs" in page
    assert 'id="backtest-current-same"' not in page
    # weights print as the editor prints them: the default usage weight 35.0 is "35"
    assert "<tr><td>Usage</td><td>35</td><td>" in page


def test_admin_page_says_the_current_auc_is_the_headline_when_nothing_differs(client, admin_user):
    version = services.health_model_ensure_default().versions.get(active=True)
    _usage_support_book(version)
    page = _admin_backtest_page(client, admin_user, version)
    assert 'id="backtest-current-same"' in page and "of the same 4 accounts" in page
    assert 'id="backtest-current-differs"' not in page


def test_admin_page_prints_days_in_words_and_each_figure_with_its_working(client, admin_user, book):
    """The book: as of 31 Mar 2024, 90 days to 29 Jun 2024; AUC 7 / 12 = 0.58333…, stored
    to 4 places (0.5833) and printed to 3 as the command prints it ("0.583"); green 1
    churned of 2 accounts = 50.0 %, the rate's working on it; no account without a score,
    so its rate is a dash that says why, not 0."""
    page = _admin_backtest_page(client, admin_user, book["version"])
    assert "<h2>As of 31 Mar 2024, churn by 29 Jun 2024 (90 days)</h2>" in page
    # the words under the form (the review link's query keeps its ISO day)
    shown = re.sub(r"<[^>]*>", "", page.split('id="backtest-form"')[1].split("</form>")[1])
    assert "2024-03-31" not in shown
    assert "recorded on or before 31 Mar 2024 for any account" in shown
    assert "AUC: <strong>0.583</strong>" in page
    bands = page[page.index('id="backtest-bands"') :].split("</table>")[0]
    assert explanation(bands, "50.0%") == "1 churned / 2 accounts × 100"
    no_score = bands.split("<td>No score</td><td>0</td><td>0</td>")[1].split("</tr>")[0]
    assert explanation(no_score, "—") == "no account in this band: no rate"


def test_admin_page_prints_the_suggestions_auc_as_the_headline(client, admin_user):
    """The usage/support book: headline AUC 1.0 and the current weights' AUC 1.0 in the
    suggestion's table, which the page says are the same figure: both print "1.000"."""
    version = services.health_model_ensure_default().versions.get(active=True)
    _usage_support_book(version)
    page = _admin_backtest_page(client, admin_user, version)
    assert "AUC: <strong>1.000</strong>" in page
    table = page[page.index('id="backtest-suggestion"') :].split("</table>")[0]
    assert '<tr><th scope="row">AUC</th><td>1.000</td><td>' in table


def test_bad_input(db):
    today = timezone.now().date()
    with pytest.raises(ValidationError) as exc:
        services.health_backtest(as_of=D, horizon=0)
    assert "horizon" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        services.health_backtest(as_of=D, horizon=731)
    assert exc.value.message_dict["horizon"] == [
        "must be a whole number of days from 1 to 730, got 731"
    ]
    with pytest.raises(ValidationError) as exc:
        services.health_backtest(as_of=dt.date(1899, 12, 31))
    assert exc.value.message_dict["as_of"] == ["1899-12-31 is before 1900-01-01"]
    with pytest.raises(ValidationError) as exc:
        services.health_backtest(as_of=today + dt.timedelta(days=2))
    assert "in the future" in exc.value.message_dict["as_of"][0]


def test_no_customers_gives_null_auc_with_a_message(db):
    _customer(start=dt.date(2025, 1, 1))  # not a customer on D
    result = services.health_backtest(as_of=D)
    assert result["auc"] is None and result["customers"] == 0
    assert result["messages"] == [
        "no customers on 2024-03-31: nothing to backtest (AUC not computed)"
    ]


def test_no_churner_gives_null_auc_with_a_message(book):
    result = services.health_backtest(as_of=D, horizon=1)
    assert result["churned"] == 0 and result["auc"] is None
    assert any("no scored customer churned" in m for m in result["messages"])


# --- command -----------------------------------------------------------------------------------


def test_command_prints_the_backtest(book):
    out = StringIO()
    call_command("backtest", "--as-of", "2024-03-31", "--horizon", "90", stdout=out)
    text = out.getvalue()
    assert "AUC: 0.583" in text
    assert "customers: 7, scored: 7, churned: 3" in text
    assert "green         2 accounts,     1 churned (50.0%)" in text
    assert f"{book['b'].external_id}  B  score 85" in text


def test_command_json(book):
    out = StringIO()
    call_command("backtest", "--as-of", "2024-03-31", "--json", stdout=out)
    data = json.loads(out.getvalue())
    assert data["auc"] == pytest.approx(0.5833) and data["horizon"] == 90
    assert [g["name"] for g in data["green_churned"]] == ["B"]


def test_command_bad_input(db):
    with pytest.raises(CommandError, match="--horizon: must be a whole number of days from 1"):
        call_command("backtest", "--as-of", "2024-03-31", "--horizon", "-5")
    future = (timezone.now().date() + dt.timedelta(days=3)).isoformat()
    with pytest.raises(CommandError, match="in the future"):
        call_command("backtest", "--as-of", future)
    with pytest.raises(CommandError, match="no such health model version"):
        call_command("backtest", "--as-of", "2024-03-31", "--model-version", "999999")
    # a day without any health snapshot is refused before anything is computed (it used to
    # print "no customers", or score every customer in memory with today's models); with an
    # account, recompute would fill it (with none, test_an_empty_book_is_told_to_import_first)
    AccountFactory()
    out = StringIO()
    with pytest.raises(CommandError) as exc:
        call_command("backtest", "--as-of", "2024-03-31", stdout=out)
    assert str(exc.value) == (
        "--as-of: 2024-03-31 has no health snapshots, so there is nothing to backtest; no "
        "day has any: run recompute for the days to backtest first"
    )
    assert out.getvalue() == ""


# --- admin -------------------------------------------------------------------------------------


def test_admin_backtest_page_links_the_suggestion_to_the_review(client, admin_user, book):
    """The page shows the suggested weights and opens them in the app's editor to review;
    it creates nothing itself (the one-click create is gone)."""
    from urllib.parse import parse_qs, urlsplit

    version = book["version"]
    client.force_login(admin_user)
    change = client.get(reverse("admin:metrics_healthmodelversion_change", args=[version.pk]))
    url = reverse("admin:metrics_healthmodelversion_backtest", args=[version.pk])
    assert url in change.content.decode()
    r = client.get(url, {"as_of": "2024-03-31", "horizon": "90"})
    assert r.status_code == 200
    page = r.content.decode()
    assert "0.583" in page and "backtest-green-churned" in page and ">B<" in page
    suggestion = r.context["result"]["suggestion"]
    assert suggestion is not None
    assert "Create a version with the suggested weights" not in page
    assert "Review these weights" in page
    link = urlsplit(r.context["review_url"])
    assert link.path == reverse("workspace:health-model-edit", args=[version.model_id])
    query = {k: v[0] for k, v in parse_qs(link.query).items()}
    assert {k[7:]: float(v) for k, v in query.items() if k.startswith("weight_")} == {
        k: float(w) for k, w in suggestion["weights"].items()
    }
    assert query["suggested_for"] == str(version.pk)
    assert "backtest as of 2024-03-31 (90 days)" in query["notes"]
    # a POST (the old one-click create) is refused and writes nothing
    r = client.post(url, {"as_of": "2024-03-31", "horizon": "90"})
    assert r.status_code == 405
    assert HealthModelVersion.objects.filter(model=version.model).count() == 1
    # the link opens the editor filled with the suggestion, beside the current weights,
    # with the preview loading at once; still nothing saved
    r = client.get(link.path + "?" + link.query)
    assert r.status_code == 200
    draft = r.context["draft"]
    assert {c.key: float(c.weight) for c in draft.components} == {
        k: float(w) for k, w in suggestion["weights"].items()
    }
    assert {c["key"]: c["weight"] for c in version.components} == suggestion["current_weights"]
    page = r.content.decode()
    # the preview asks for itself as the page loads (and again as the draft is edited)
    assert 'id="review-banner"' in page
    assert re.search(r'id="preview"[^>]*hx-trigger="load, [^"]*" hx-include="#draft-form"', page)
    assert HealthModelVersion.objects.filter(model=version.model).count() == 1
    # saving the reviewed draft is the confirmation: a new active version, its note kept
    form = {**draft.as_data(), "backfill_days": "0", "notes": query["notes"], "op": "save"}
    r = client.post(link.path, form)
    assert r.status_code == 302
    new = HealthModelVersion.objects.get(model=version.model, active=True)
    assert new.version == version.version + 1 and new.created_by == admin_user
    assert {c["key"]: c["weight"] for c in new.components} == suggestion["weights"]
    assert "backtest as of 2024-03-31" in new.notes


def test_admin_backtest_offers_no_review_to_staff_without_the_admin_role(client, admin_user, book):
    """Staff who may view versions in the Django admin but are not app admins see the
    suggestion, and are told that admins review it (the editor would refuse them)."""
    from django.contrib.auth.models import Permission

    from accounts.models import User

    staff = User.objects.create_user(email="ops@example.com", password="pw-1", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_healthmodelversion"))
    client.force_login(staff)
    url = reverse("admin:metrics_healthmodelversion_backtest", args=[book["version"].pk])
    r = client.get(url, {"as_of": "2024-03-31", "horizon": "90"})
    assert r.status_code == 200 and r.context["review_url"] is None
    assert "Only admins can review and save weights" in r.content.decode()


def test_admin_backtest_bad_input_is_a_message_not_a_500(client, admin_user, book):
    client.force_login(admin_user)
    url = reverse("admin:metrics_healthmodelversion_backtest", args=[book["version"].pk])
    for params, text in [
        ({"as_of": "31/03/2024"}, "as of: “31/03/2024” is not a date: use YYYY-MM-DD"),
        ({"as_of": "2024-03-31", "horizon": "x"}, "expected a whole number of days"),
        ({"as_of": "2024-03-31", "horizon": "0"}, "must be a whole number of days from 1 to 730"),
        ({"as_of": "2999-01-01"}, "is in the future"),
    ]:
        r = client.get(url, params)
        assert r.status_code == 200
        assert text in r.content.decode(), params
    assert HealthModelVersion.objects.filter(model=book["version"].model).count() == 1


def test_admin_backtest_needs_staff(client, csm, book):
    client.force_login(csm)
    url = reverse("admin:metrics_healthmodelversion_backtest", args=[book["version"].pk])
    r = client.get(url)
    assert r.status_code == 302 and "/login" in r["Location"]


def test_version_limits_the_backtest_to_its_model(book):

    result = services.health_backtest(as_of=D, version=book["version"])
    assert result["customers"] == 7 and result["model"] == "Default"
    other = services.health_model_version_create(
        model=health_model_with_rule("Enterprise", segment="ENT"),
        components=[dict(c) for c in book["version"].components],
    )
    result = services.health_backtest(as_of=D, version=other)
    assert result["customers"] == 0 and result["auc"] is None and result["suggestion"] is None
    assert any("were scored by Enterprise" in m for m in result["messages"])


# --- a window that is not over yet ---------------------------------------------------------------


@pytest.fixture
def recent_book(db):
    """As of 10 days ago (day T − 10, T today), window of 90 days to T + 80: only T − 10 .. T
    is known. Customers on the day, all started 100 days before it:

    | account | band, score | contract ends       | by T (today)         | risk |
    |---------|-------------|---------------------|----------------------|------|
    | P       | green 85    | T − 5               | churned              | 15   |
    | Q       | green 90    | T + 20 (scheduled)  | retained (not yet)   | 10   |
    | R       | red 30      | T − 3               | churned              | 70   |
    | S       | yellow 60   | open                | retained             | 40   |
    | U       | red 40      | T + 30 (scheduled)  | retained (not yet)   | 60   |
    | V       | yellow 55   | T (its last day)    | retained: a customer today | 45 |

    Churners P 15, R 70; retained Q 10, S 40, U 60, V 45: 2 × 4 = 8 pairs; P is riskier
    than Q only (1), R than all four (4): AUC = 5 / 8 = 0.625. Counting the scheduled ends as
    churn (the old behaviour) would make Q and U churners too, Q a green one."""
    today = timezone.now().date()
    day = today - dt.timedelta(days=10)
    version = services.health_model_ensure_default().versions.get(active=True)
    start = day - dt.timedelta(days=100)
    accounts = {}
    for name, score, band, ends in [
        ("P", 85, "green", today - dt.timedelta(days=5)),
        ("Q", 90, "green", today + dt.timedelta(days=20)),
        ("R", 30, "red", today - dt.timedelta(days=3)),
        ("S", 60, "yellow", None),
        ("U", 40, "red", today + dt.timedelta(days=30)),
        ("V", 55, "yellow", today),
    ]:
        accounts[name] = _customer(ends=ends, start=start, name=name)
        _snapshot(accounts[name], score, band, version, day=day)
    return {"day": day, "today": today, "version": version, **accounts}


def _json(*args) -> dict:
    out = StringIO()
    call_command("backtest", *args, "--json", stdout=out)
    return json.loads(out.getvalue())


def test_window_past_today_is_refused_unless_partial(recent_book):
    day, today = recent_book["day"], recent_book["today"]
    with pytest.raises(ValidationError) as exc:
        services.health_backtest(as_of=day, horizon=90)
    [error] = exc.value.error_dict["as_of"]
    assert error.code == "incomplete_window"
    assert f"ends on {day + dt.timedelta(days=90)}, after today" in error.message
    assert f"on or before {today - dt.timedelta(days=90)}" in error.message
    assert "the 10 of 90 days observed so far" in error.message
    # the command says which option asks for it, and prints nothing else
    out = StringIO()
    with pytest.raises(CommandError, match=r"^--as-of: the 90-day window .* \(--partial\)$"):
        call_command("backtest", "--as-of", day.isoformat(), "--json", stdout=out)
    assert out.getvalue() == ""
    # as of today, not even a partial window has a day: refused, and no --partial offered
    with pytest.raises(CommandError) as exc:
        call_command("backtest", "--as-of", today.isoformat(), "--partial")
    assert "no day of its 90-day window has passed yet" in str(exc.value)
    assert "--partial" not in str(exc.value)


def test_partial_window_counts_only_churn_known_today(recent_book):
    day, today = recent_book["day"], recent_book["today"]
    data = _json("--as-of", day.isoformat(), "--horizon", "90", "--partial")
    assert data["complete"] is False
    assert data["window_end"] == (day + dt.timedelta(days=90)).isoformat()
    assert (data["observed_until"], data["observed_days"]) == (today.isoformat(), 10)
    assert data["messages"][0].startswith("PARTIAL WINDOW: churn observed from")
    assert "The AUC covers 10 of 90 days" in data["messages"][0]
    # P and R only (see the fixture); Q and U are merely scheduled to end, V ends today
    assert (data["customers"], data["churned"]) == (6, 2)
    assert data["auc"] == 0.625  # 5 / 8
    assert [g["name"] for g in data["green_churned"]] == ["P"]
    bands = {b["band"]: (b["accounts"], b["churned"], b["churn_rate"]) for b in data["bands"]}
    # green P of P, Q; red R of R, U; yellow none of S, V: percentages
    assert bands["green"] == (2, 1, 50.0) and bands["red"] == (2, 1, 50.0)
    assert bands["yellow"] == (2, 0, 0.0)
    # weights are not fitted on outcomes not known yet (Q and U may still leave)
    assert data["suggestion"] is None
    # the same accounts once the window has ended for a 7-day horizon (T − 3): complete, and
    # P (T − 5) has churned by then but R (T − 3, its last day) not yet
    done = _json("--as-of", day.isoformat(), "--horizon", "7")
    assert done["complete"] is True and done["observed_until"] == done["window_end"]
    assert done["churned"] == 1 and [g["name"] for g in done["green_churned"]] == ["P"]
    assert not any(m.startswith("PARTIAL") for m in done["messages"])


def test_command_puts_the_partial_window_first(recent_book):
    day, today = recent_book["day"], recent_book["today"]
    out = StringIO()
    call_command("backtest", "--as-of", day.isoformat(), "--partial", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0].endswith(
        f"churn observed by {today} (10 of 90 days; the window ends on "
        f"{day + dt.timedelta(days=90)})"
    )
    assert lines[1].startswith("!! PARTIAL WINDOW")
    assert "Green accounts that churned:" not in lines
    assert f"Green accounts that churned by {today} (the window is not over):" in lines
    assert f"  {recent_book['P'].external_id}  P  score 85.0" in lines
    assert not any(" Q " in line for line in lines)
    assert not any(line.startswith("Suggested weights") for line in lines)


def test_admin_page_refuses_then_labels_a_partial_window(client, admin_user, recent_book):
    day, today = recent_book["day"], recent_book["today"]
    client.force_login(admin_user)
    url = reverse("admin:metrics_healthmodelversion_backtest", args=[recent_book["version"].pk])
    r = client.get(url, {"as_of": day.isoformat(), "horizon": "90"})
    page = r.content.decode()
    assert r.status_code == 200 and r.context["result"] is None
    assert 'id="backtest-errors"' in page and "who churns in it is not known yet" in page
    assert "only the days observed so far" in page
    r = client.get(url, {"as_of": day.isoformat(), "horizon": "90", "partial": "1"})
    page = r.content.decode()
    assert 'name="partial" value="1" checked' in page
    assert 'id="backtest-incomplete"' in page and "PARTIAL WINDOW" in page
    assert f"churn observed by {utc.day_text(today)}: 10 of 90 days" in page
    assert "AUC over 10 of 90 days: <strong>0.625</strong>" in page
    assert f"Green accounts that churned by {utc.day_text(today)} (the window is not over)" in page
    assert ">P<" in page and ">Q<" not in page
    assert "Review these weights" not in page and "No weights suggested" in page


# --- churn rate in percent, the horizon's bound --------------------------------------------------


def test_churn_rate_is_a_percentage_in_the_json_and_on_the_page(client, admin_user, book):
    # the book: green 1 of 2 churned, yellow 1 of 3, red 1 of 2
    data = _json("--as-of", "2024-03-31")
    rates = {b["band"]: b["churn_rate"] for b in data["bands"]}
    assert rates["green"] == 50.0 and rates["red"] == 50.0
    assert rates["yellow"] == pytest.approx(33.3333, abs=1e-4) and rates["no_data"] is None
    client.force_login(admin_user)
    url = reverse("admin:metrics_healthmodelversion_backtest", args=[book["version"].pk])
    page = client.get(url, {"as_of": "2024-03-31", "horizon": "90"}).content.decode()
    # each rate carries its working: churned / accounts × 100
    green = page.split("<td>Green</td><td>2</td><td>1</td>")[1].split("</tr>")[0]
    assert explanation(green, "50.0%") == "1 churned / 2 accounts × 100"
    yellow = page.split("<td>Yellow</td><td>3</td><td>1</td>")[1].split("</tr>")[0]
    assert explanation(yellow, "33.3%") == "1 churned / 3 accounts × 100"


def test_horizon_is_bounded_and_every_suggested_day_is_accepted(client, admin_user, db):
    today = timezone.now().date()
    for horizon in ("731", "100000"):
        with pytest.raises(CommandError) as exc:
            call_command("backtest", "--as-of", "2024-03-31", "--horizon", horizon)
        assert str(exc.value) == (
            f"--horizon: must be a whole number of days from 1 to 730, got {horizon}"
        )
    # the longest horizon, refused for a recent day: the day it suggests instead is one the
    # command accepts (today − 730, after 1900), and that backtest runs
    with pytest.raises(CommandError) as exc:
        call_command(
            "backtest", "--as-of", (today - dt.timedelta(days=10)).isoformat(), "--horizon", "730"
        )
    suggested = str(exc.value).split("on or before ")[1][:10]
    assert suggested == (today - dt.timedelta(days=730)).isoformat()
    # (the command backtests a day with snapshots only)
    version = services.health_model_ensure_default().versions.get(active=True)
    _snapshot(AccountFactory(), 50, "yellow", version, day=dt.date.fromisoformat(suggested))
    data = _json("--as-of", suggested, "--horizon", "730")
    assert data["complete"] is True and data["window_end"] == today.isoformat()
    # the page: the same message, no date overflow for a huge horizon, nothing computed
    client.force_login(admin_user)
    url = reverse("admin:metrics_healthmodelversion_backtest", args=[version.pk])
    for horizon in ("731", "1000000000"):
        r = client.get(url, {"horizon": horizon})
        assert r.status_code == 200 and r.context["result"] is None
        assert f"must be a whole number of days from 1 to 730, got {horizon}" in (
            r.content.decode()
        )
    assert 'max="730"' in r.content.decode()


# --- a component without any data on the as-of day ---------------------------------------------


def test_component_without_any_data_on_the_day_is_named_with_its_first_day(
    client, admin_user, book
):
    """The book's accounts have no data of their own; here usage starts on 1 May (after D,
    31 Mar) and the first ticket is opened on 10 Apr at 23:30 UTC (still 10 Apr)."""
    from accounts.models import UsageDaily

    a = book["b"]
    UsageDaily.objects.create(account=a, day=dt.date(2024, 5, 1), events=3, active_users=2)
    UsageDaily.objects.create(account=a, day=dt.date(2024, 5, 2), events=1, active_users=1)
    TicketFactory(account=a, opened_at=dt.datetime(2024, 4, 10, 23, 30, tzinfo=dt.UTC))
    data = _json("--as-of", "2024-03-31")
    gaps = {g["component"]: g for g in data["data_gaps"]}
    assert gaps["usage"] == {
        "component": "usage",
        "label": "Usage",
        "sources": ["product usage"],
        "first_day": "2024-05-01",
        "message": "Usage: no product usage recorded on or before 31 Mar 2024 for any account "
        "(the first is dated 1 May 2024): its score that day describes missing data, not "
        "the customers",
    }
    assert gaps["feature_adoption"]["first_day"] == "2024-05-01"
    assert gaps["support"]["first_day"] == "2024-04-10"
    # no invoice, answer, stakeholder or CSM activity at all
    assert gaps["payments"]["first_day"] is None
    assert "(there is none yet)" in gaps["payments"]["message"]
    assert gaps["relationship"]["sources"] == ["CSM activity", "stakeholder"]
    assert set(gaps) == {
        "usage",
        "feature_adoption",
        "support",
        "payments",
        "sentiment",
        "relationship",
    }
    # on 10 Apr the ticket is known (opened that day): support has data; usage not yet (the
    # service: the command refuses these days, which have no snapshots)
    later = services.health_backtest(as_of=dt.date(2024, 4, 10), horizon=30)
    assert {g["component"] for g in later["data_gaps"]} == {
        "usage",
        "feature_adoption",
        "payments",
        "sentiment",
        "relationship",
    }
    # once usage is tracked, no usage gap
    after = services.health_backtest(as_of=dt.date(2024, 5, 1), horizon=30)
    assert not {"usage", "feature_adoption"} & {g["component"] for g in after["data_gaps"]}
    # the text output warns before the figures
    out = StringIO()
    call_command("backtest", "--as-of", "2024-03-31", stdout=out)
    lines = out.getvalue().splitlines()
    at = lines.index(gaps["usage"]["message"].join(["!! ", ""]))
    assert at < next(i for i, line in enumerate(lines) if line.startswith("AUC:"))
    # the page shows them as warnings
    client.force_login(admin_user)
    url = reverse("admin:metrics_healthmodelversion_backtest", args=[book["version"].pk])
    page = client.get(url, {"as_of": "2024-03-31", "horizon": "90"}).content.decode()
    assert 'id="backtest-data-gaps"' in page
    assert "Usage: no product usage recorded on or before 31 Mar 2024 for any account" in page
    assert "(the first is dated 1 May 2024)" in page


# --- the asked version's headline ------------------------------------------------------------------


def test_model_version_headline_is_that_versions(book):
    first = book["version"]
    second = services.health_model_version_create(
        model=first.model, components=[dict(c) for c in first.components]
    )
    # the stored snapshots on D are the first version's: AUC 7/12 as in the book's docstring
    assert services.health_backtest(as_of=D, version=first)["auc"] == pytest.approx(0.5833)
    result = services.health_backtest(as_of=D, version=second)
    # the second version rescored all 7 customers in memory from their inputs on D: they
    # have none (no usage, tickets, invoices, answers), so all score alike: every one of
    # the 3 × 4 churner/retained pairs ties, AUC = 12 × 0.5 / 12 = 0.5
    assert result["scored_in_memory"] == 7
    assert any(f"rescored in memory with {second}" in m for m in result["messages"])
    assert result["auc"] == 0.5
    assert HealthSnapshot.objects.filter(day=D, model_version=second).count() == 0
    out = StringIO()
    call_command("backtest", "--as-of", "2024-03-31", "--model-version", str(first.pk), stdout=out)
    assert "AUC: 0.583" in out.getvalue()
    out = StringIO()
    call_command("backtest", "--as-of", "2024-03-31", "--model-version", str(second.pk), stdout=out)
    assert "AUC: 0.500" in out.getvalue()


# --- each customer in one note: no snapshot, or another version's (bug C) -------------------


def _notes(result) -> tuple[list[str], list[str]]:
    """The backtest's two in-memory notes: (no snapshot on the day, another version)."""
    messages = result["messages"]
    return (
        [m for m in messages if "had no health snapshot" in m],
        [m for m in messages if "stored with another version" in m],
    )


def _two_versions():
    first = services.health_model_ensure_default().versions.get(active=True)
    second = services.health_model_version_create(
        model=first.model, components=[dict(c) for c in first.components]
    )
    assert HealthModelVersion.objects.get(pk=second.pk).active  # the one in force now
    return first, second


def test_backtest_of_a_day_without_snapshots_has_only_the_no_snapshot_note(db):
    """The reviewer's page: no snapshot on D at all, the older version asked for. The 3
    customers are scored in memory (with the active second version, then the first, the
    one asked for): 3 in the first note, none counted again as stored with another."""
    first, second = _two_versions()
    for name in ("A", "B", "C"):
        _customer(name=name)
    result = services.health_backtest(as_of=D, version=first)
    no_snapshot, other = _notes(result)
    assert other == []
    assert no_snapshot == [
        f"3 customers had no health snapshot on {utc.day_text(D)}: scored in memory with the models "
        f"active now (nothing recorded); the 3 of them {first.model} scores, with {first}"
    ]
    assert result["scored_in_memory"] == 3  # 3 + 0
    assert not HealthSnapshot.objects.exists()


def test_backtest_of_stored_snapshots_of_another_version_has_only_that_note(db):
    first, second = _two_versions()
    for name, score in (("A", 90), ("B", 40)):
        _snapshot(_customer(name=name), score, "green" if score >= 80 else "red", first)
    result = services.health_backtest(as_of=D, version=second)
    no_snapshot, other = _notes(result)
    assert no_snapshot == []
    assert other == [
        f"2 customers were stored with another version of {second.model} on {utc.day_text(D)}: "
        f"rescored in memory with {second}"
    ]
    assert result["scored_in_memory"] == 2  # 0 + 2


def test_backtest_with_both_kinds_counts_each_customer_once(db):
    """2 customers stored with the first version, 1 without a snapshot (scored with the
    second, active and asked for): 1 + 2 = 3 customers, 3 scored in memory."""
    first, second = _two_versions()
    for name, score in (("A", 90), ("B", 40)):
        _snapshot(_customer(name=name), score, "green" if score >= 80 else "red", first)
    _customer(name="C")
    result = services.health_backtest(as_of=D, version=second)
    no_snapshot, other = _notes(result)
    assert no_snapshot == [
        f"1 customer had no health snapshot on {utc.day_text(D)}: scored in memory with the models "
        "active now (nothing recorded)"
    ]
    assert other == [
        f"2 customers were stored with another version of {second.model} on {utc.day_text(D)}: "
        f"rescored in memory with {second}"
    ]
    assert result["scored_in_memory"] == 3 == result["customers"]  # 1 + 2


def _weekly_snapshots(version, latest: dt.date, weeks: int) -> list[dt.date]:
    """One snapshot of one customer a week, ``weeks`` weeks back from ``latest``: the days."""
    account = _customer(start=latest - dt.timedelta(days=7 * weeks + 30))
    days = [latest - dt.timedelta(days=7 * w) for w in range(weeks)]
    for day in days:
        _snapshot(account, 70, "yellow", version, day=day)
    return days


def test_default_day_is_the_latest_snapshot_day_a_whole_horizon_back(db):
    """Weekly snapshots, the latest 3 days ago (T − 3), back to T − 3 − 7·19 = T − 136: the
    horizon must end by T − 3, so the day is the latest snapshot day on or before T − 93,
    i.e. T − 94 (3 + 7·13 = 94; T − 87 is too late); for 30 days T − 3 − 7·5 = T − 38."""
    version = services.health_model_ensure_default().versions.get(active=True)
    today = utc.today()
    latest = today - dt.timedelta(days=3)
    _weekly_snapshots(version, latest, 20)
    day, why = services.health_backtest_day(horizon=90)
    assert day == today - dt.timedelta(days=94)
    assert why == (
        f"as of {day}: the latest day with health snapshots at least 90 days before {latest}, "
        "the latest snapshot day (so the 90-day window is fully observed)"
    )
    assert services.health_backtest_day(horizon=30)[0] == today - dt.timedelta(days=38)
    # the command names the day on its first line, and in the JSON
    out = StringIO()
    call_command("backtest", "--horizon", "90", stdout=out)
    assert out.getvalue().splitlines()[0] == f"Default day: {why}"
    data = _json("--horizon", "90")
    assert data["as_of"] == day.isoformat() and data["day_chosen"] == why
    assert data["complete"] is True
    # a day asked for keeps its output: no default line, day_chosen None
    out = StringIO()
    call_command("backtest", "--as-of", day.isoformat(), stdout=out)
    assert not out.getvalue().startswith("Default day")
    assert _json("--as-of", day.isoformat())["day_chosen"] is None


def test_default_day_ignores_snapshots_dated_after_yesterday(db):
    """A snapshot of today (its day not over) does not move the window's end. Snapshots on
    T, T − 2, T − 31 and T − 40, 30 days: the latest day up to yesterday is T − 2, so the
    day is on or before T − 32: T − 40 (counting today's would give T − 31)."""
    version = services.health_model_ensure_default().versions.get(active=True)
    today = utc.today()
    account = _customer(start=today - dt.timedelta(days=100))
    for back in (0, 2, 31, 40):
        _snapshot(account, 70, "yellow", version, day=today - dt.timedelta(days=back))
    day, why = services.health_backtest_day(horizon=30)
    assert day == today - dt.timedelta(days=40)
    assert f"30 days before {today - dt.timedelta(days=2)}" in why


def test_default_day_without_old_enough_snapshots_names_what_is_missing(db):
    version = services.health_model_ensure_default().versions.get(active=True)
    today = utc.today()
    yesterday = today - dt.timedelta(days=1)
    # no snapshot at all (an account to score): the recompute to run starts a horizon
    # before yesterday
    AccountFactory()
    with pytest.raises(CommandError) as exc:
        call_command("backtest", "--horizon", "90", stdout=StringIO())
    start = yesterday - dt.timedelta(days=90)
    assert str(exc.value) == (
        f"--as-of: no health snapshots on or before {yesterday} (yesterday), so no day to "
        f"backtest; run recompute --from {start} --to {start} first"
    )
    # 5 weeks of snapshots up to yesterday: none 90 days before it
    _weekly_snapshots(version, yesterday, 5)
    with pytest.raises(CommandError) as exc:
        call_command("backtest", "--horizon", "90", stdout=StringIO())
    assert str(exc.value) == (
        f"--as-of: no health snapshots at least 90 days before {yesterday} (the latest "
        f"snapshot day), so no 90-day window is fully observed; run recompute --from {start} "
        f"--to {start} first"
    )
    # a bad horizon is the horizon's error, not a missing day
    with pytest.raises(CommandError, match="^--horizon: must be a whole number of days"):
        call_command("backtest", "--horizon", "0", stdout=StringIO())


def test_a_day_asked_without_snapshots_names_the_nearest_days_that_have_them(db):
    version = services.health_model_ensure_default().versions.get(active=True)
    latest = utc.today() - dt.timedelta(days=100)
    newer, older = _weekly_snapshots(version, latest, 2)  # latest and a week before it
    asked = older + dt.timedelta(days=3)
    out = StringIO()
    with pytest.raises(CommandError) as exc:
        call_command("backtest", "--as-of", asked.isoformat(), "--horizon", "30", stdout=out)
    assert str(exc.value) == (
        f"--as-of: {asked} has no health snapshots, so there is nothing to backtest; the "
        f"nearest days that have them: {older} (before) and {newer} (after)"
    )
    assert out.getvalue() == ""
    # only older days (or only newer ones): just the one side
    with pytest.raises(
        CommandError, match=rf"the nearest days that have them: {newer} \(before\)$"
    ):
        call_command("backtest", "--as-of", (newer + dt.timedelta(days=1)).isoformat())
    with pytest.raises(CommandError, match=rf"the nearest days that have them: {older} \(after\)$"):
        call_command("backtest", "--as-of", (older - dt.timedelta(days=1)).isoformat())
    # a day in the future is still refused as such, before the snapshots are looked at
    with pytest.raises(CommandError, match="in the future"):
        call_command("backtest", "--as-of", (utc.today() + dt.timedelta(days=1)).isoformat())


def test_admin_backtest_default_day_and_a_day_without_snapshots(client, admin_user, db):
    """The page picks the same day as the command and says why in one line; a day asked
    without snapshots is an error naming the nearest days that have them."""
    version = services.health_model_ensure_default().versions.get(active=True)
    today = utc.today()
    latest = today - dt.timedelta(days=3)
    _weekly_snapshots(version, latest, 20)
    client.force_login(admin_user)
    url = reverse("admin:metrics_healthmodelversion_backtest", args=[version.pk])
    r = client.get(url)
    assert r.status_code == 200 and r.context["errors"] == []
    day = today - dt.timedelta(days=94)  # as in the command's test above
    assert r.context["as_of"] == day.isoformat()
    assert r.context["result"]["as_of"] == day.isoformat()
    line = re.search(r'<p class="help" id="backtest-day-chosen">([^<]*)</p>', r.content.decode())
    assert line[1] == (
        f"Default day: as of {day}: the latest day with health snapshots at least 90 days "
        f"before {latest}, the latest snapshot day (so the 90-day window is fully observed)"
    )
    assert f'name="as_of" value="{day}"' in r.content.decode()
    r = client.get(url, {"horizon": "30"})
    assert r.context["as_of"] == (today - dt.timedelta(days=38)).isoformat()
    # a day asked for: no default line; without snapshots: the error, nothing computed
    asked = day + dt.timedelta(days=1)
    r = client.get(url, {"as_of": asked.isoformat()})
    assert r.context["result"] is None and "backtest-day-chosen" not in r.content.decode()
    assert r.context["errors"] == [
        f"as of: {asked} has no health snapshots, so there is nothing to backtest; the "
        f"nearest days that have them: {day} (before) and {day + dt.timedelta(days=7)} (after)"
    ]
    # no snapshot old enough for the horizon: the error names what is missing
    r = client.get(url, {"horizon": "400"})
    assert r.context["result"] is None
    assert r.context["errors"][0].startswith(
        f"as of: no health snapshots at least 400 days before {latest}"
    )


def test_admin_backtest_page_names_components_and_bands_and_warns_of_few_churners(
    client, admin_user, book, monkeypatch
):
    """Components by their labels and the band without a score in words, not keys; the
    suggestion fitted on the book's 3 churned accounts (fewer than SUGGESTION_MIN_CHURNED
    = 20) says it is too few to trust and that its AUC is in-sample (``auc(1)`` is measured
    on the very samples ``fit_weights`` fitted: 7 accounts, under MAX_SAMPLES)."""
    page = _admin_backtest_page(client, admin_user, book["version"])
    table = page[page.index('id="backtest-suggestion"') :].split("</table>")[0]
    assert "<td>Feature adoption</td>" in table and "feature_adoption" not in table
    bands = page[page.index('id="backtest-bands"') :].split("</table>")[0]
    assert "<td>No score</td>" in bands and "no_data" not in bands
    warning = page[page.index('id="backtest-too-few-churned"') :].split("</ul>")[0]
    assert (
        "Fitted on 3 churned accounts: too few to trust; the suggested AUC is measured on "
        "the same accounts it was fitted on." in warning
    )
    # with enough churners (here: the 3 are enough) there is nothing to warn of
    monkeypatch.setattr(services, "SUGGESTION_MIN_CHURNED", 3)
    page = _admin_backtest_page(client, admin_user, book["version"])
    assert 'id="backtest-too-few-churned"' not in page


def test_the_health_models_page_links_each_active_version_to_its_backtest(client, admin_user):
    version = services.health_model_ensure_default().versions.get(active=True)
    client.force_login(admin_user)
    page = client.get(reverse("workspace:health-models")).content.decode()
    assert reverse("admin:metrics_healthmodelversion_backtest", args=[version.pk]) in page


def test_an_empty_book_is_told_to_import_first_not_to_recompute(db, client, admin_user):
    """A new installation: no account, so recompute would score nobody; the words name what
    is missing (accounts) and where they come from, at both doors, with or without a day."""
    empty = "there is no account yet: import your accounts and contracts first"
    with pytest.raises(CommandError) as exc:
        call_command("backtest", "--as-of", "2024-03-31", "--horizon", "90")
    assert str(exc.value).startswith(
        f"--as-of: 2024-03-31 has no health snapshots, so there is nothing to backtest; {empty}"
    )
    assert "recompute" not in str(exc.value)
    with pytest.raises(CommandError) as exc:
        call_command("backtest", "--horizon", "90")
    assert f"so no day to backtest; {empty}" in str(exc.value)
    assert "recompute" not in str(exc.value)
    version = services.health_model_ensure_default().versions.get(active=True)
    client.force_login(admin_user)
    page = client.get(reverse("admin:metrics_healthmodelversion_backtest", args=[version.pk]))
    assert empty in page.content.decode()
