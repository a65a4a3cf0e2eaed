"""The health model editor's preview backtest judges churn only over days that have passed:
a contract that is merely scheduled to end is not a churner (workspace.services
``_preview_backtest``)."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.urls import reverse

from accounts import utc
from metrics import health
from metrics.services import health_model_ensure_default
from tests.factories import AccountFactory, ContractFactory
from workspace import services
from workspace.health_forms import ModelDraft

from .conftest import components, snapshot, utc_today

pytestmark = pytest.mark.django_db

DRAFT = {"usage": 0.0, "support": 50.0}  # the current version weighs them 35 and 15


def _draft(version):
    """The editor's draft of ``version`` with the ``DRAFT`` weights, as its preview scores."""
    components = [{**c, "weight": DRAFT.get(c["key"], c["weight"])} for c in version.components]
    return services.DraftScorer(version, health.parse_model(components))


def _paying(ends: dt.date | None):
    account = AccountFactory()
    ContractFactory(
        account=account, start_date=dt.date(2020, 1, 1), end_date=ends, mrr=Decimal(100)
    )
    return account


@pytest.fixture
def short_history():
    """Scored 41 days ago and yesterday: no recorded day is 90 days old. On the earlier day,
    a churner (contract ended 31 days ago), one that stays, and one still paying whose
    contract is scheduled to end in 20 days."""
    today = utc_today()
    latest = today - dt.timedelta(days=1)
    earlier = latest - dt.timedelta(days=40)  # 41 days ago
    churner = _paying(earlier + dt.timedelta(days=10))
    stayer = _paying(None)
    leaving = _paying(today + dt.timedelta(days=20))
    snapshot(churner, earlier, 37, "red", components=components(10, 100))
    snapshot(stayer, earlier, 66, "yellow", components=components(90, 10))
    snapshot(leaving, earlier, 80, "green", components=components(80, 80))
    snapshot(stayer, latest, 66, "yellow", components=components(90, 10))
    return {"today": today, "latest": latest, "earlier": earlier}


def test_short_history_shrinks_the_window_to_what_has_passed(short_history):
    today, earlier = short_history["today"], short_history["earlier"]
    version = health_model_ensure_default().versions.get(active=True)
    bt = services._preview_backtest(version, _draft(version), short_history["latest"])
    assert bt["day"] == earlier
    # 90 days from 41 days ago would end 49 days from now: shortened to the 41 days passed
    assert bt["horizon"] == 41 and bt["horizon_shortened"] is True
    assert bt["end"] == today
    assert "41 days" in bt["horizon_note"] and "not 90" in bt["horizon_note"]
    # churned by today: only the churner. The leaving account still pays (its last day is
    # today + 20); with the old 90-day window (end today + 49) it counted as a churner: 2.
    assert (bt["customers"], bt["churned"]) == (3, 1)
    # current weights (usage 35, support 15): churner (35·10 + 15·100)/50 = 37, stayer
    # (35·90 + 15·10)/50 = 66, leaving 80 → risks 63, 34, 20: the churner is riskiest of
    # the 2 pairs, AUC 2/2 = 1.0. Draft (support only): churner 100, stayer 10, leaving 80
    # → risks 0, 90, 20: the churner is the safest of both pairs, AUC 0/2 = 0.0.
    assert bt["current_auc"] == 1.0 and bt["draft_auc"] == 0.0


def test_a_day_whose_window_has_passed_is_preferred(short_history):
    today = short_history["today"]
    day = today - dt.timedelta(days=100)  # day + 90 = 10 days ago: the window is over
    gone = _paying(day + dt.timedelta(days=30))
    kept = _paying(None)
    snapshot(gone, day, 37, "red", components=components(10, 100))
    snapshot(kept, day, 66, "yellow", components=components(90, 10))
    version = health_model_ensure_default().versions.get(active=True)
    bt = services._preview_backtest(version, _draft(version), short_history["latest"])
    assert bt["day"] == day and bt["horizon"] == 90 and bt["horizon_shortened"] is False
    assert bt["end"] == day + dt.timedelta(days=90) <= today
    assert "horizon_note" not in bt
    # on that day only gone and kept were customers with snapshots: 1 churner of 2
    assert (bt["customers"], bt["churned"]) == (2, 1)


def test_the_window_ends_by_yesterday_as_on_the_backtest_page(short_history):
    """A day whose 90 days end today is passed over for one whose window ended by
    yesterday, the last complete day: the admin backtest page's default day (yesterday −
    90), so the editor's AUC and the backtest's are of the same day when every day is
    recorded."""
    today = short_history["today"]
    ends_today = today - dt.timedelta(days=90)  # + 90 = today: today's churn not all known
    ended = today - dt.timedelta(days=91)  # + 90 = yesterday
    for day in (ends_today, ended):
        snapshot(
            _paying(day + dt.timedelta(days=30)), day, 37, "red", components=components(10, 100)
        )
        snapshot(_paying(None), day, 66, "yellow", components=components(90, 10))
    version = health_model_ensure_default().versions.get(active=True)
    bt = services._preview_backtest(version, _draft(version), short_history["latest"])
    assert bt["day"] == ended and bt["end"] == today - dt.timedelta(days=1)
    assert bt["horizon"] == 90 and bt["horizon_shortened"] is False


def test_preview_page_says_which_window(client, admin_user, short_history):
    model = health_model_ensure_default()
    version = model.versions.get(active=True)
    data = ModelDraft.from_version(version).as_data()
    keys = [c["key"] for c in version.components]
    data.update({f"c-{keys.index(k)}-weight": w for k, w in DRAFT.items()})
    client.force_login(admin_user)
    r = client.post(
        reverse("workspace:health-model-preview", args=[model.pk]),
        data,
        headers={"HX-Request": "true"},
    )
    assert r.status_code == 200
    text = r.content.decode()
    assert re.search(r"1 churned within 41 days", text)
    assert 'id="backtest-horizon-note"' in text and "not 90" in text


def test_preview_warns_of_the_same_data_gaps_as_the_backtest_command(
    short_history, client, admin_user, django_assert_num_queries
):
    """The short history has snapshots but no usage, ticket, invoice, answer, stakeholder
    or CSM activity row at all: every component of the default model scores missing data
    on the backtest day, as ``metrics.services.health_backtest`` warns (``data_gaps``).
    A ticket opened before that day takes support off the list."""
    from metrics import services as metric_services
    from tests.factories import TicketFactory

    earlier = short_history["earlier"]
    version = health_model_ensure_default().versions.get(active=True)
    # as before: a day with its window passed (none), a day 30 days back, the contracts,
    # that day's snapshots (4); then the gaps: one EXISTS per source in one statement, and
    # the first days of the sources without a row (2; 1 when every source has a row)
    with django_assert_num_queries(6):
        bt = services._preview_backtest(version, _draft(version), short_history["latest"])
    keys = [g["component"] for g in bt["data_gaps"]]
    assert keys == [c["key"] for c in version.components]  # all six, in the model's order
    command = metric_services.health_backtest(as_of=earlier, horizon=41)["data_gaps"]
    assert bt["data_gaps"] == command  # the same words as the command prints
    usage = bt["data_gaps"][0]
    assert usage["message"] == (
        f"Usage: no product usage recorded on or before {utc.day_text(earlier)} for any account "
        "(there is none yet): its score that day describes missing data, not the customers"
    )

    TicketFactory(
        account=AccountFactory(),
        opened_at=dt.datetime.combine(earlier, dt.time(9), tzinfo=dt.UTC),
    )
    bt = services._preview_backtest(version, _draft(version), short_history["latest"])
    assert "support" not in [g["component"] for g in bt["data_gaps"]]
    assert len(bt["data_gaps"]) == 5

    model = version.model
    data = ModelDraft.from_version(version).as_data()
    client.force_login(admin_user)
    r = client.post(
        reverse("workspace:health-model-preview", args=[model.pk]),
        data,
        headers={"HX-Request": "true"},
    )
    text = r.content.decode()
    assert 'id="backtest-data-gaps"' in text
    assert f"Usage: no product usage recorded on or before {utc.day_text(earlier)}" in text
    assert "Support: no ticket" not in text
