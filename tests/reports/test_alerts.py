"""Target set through the API -> the nightly pipeline -> an alert in Django's outbox, once.

The book (hand-built): four SMB accounts of the CSM, each one contract of MRR 100 since
2024-01-01; D's contract ends on 2026-10-15 (churn in October).

- September 2026 (snapshot of 2026-09-30, period [09-01, 10-01)): start MRR 400, no
  movement -> NRR = (400 + 0 - 0 - 0) / 400 = 100 %.
- October 2026 (snapshot of 2026-10-31, period [10-01, 11-01)): start MRR 400, churn 100
  (D no longer covers 1 November) -> NRR = (400 - 100) / 400 = 75 %.

Target NRR >= 90 %, monthly, max change 10 points: September is on track (no email);
October is off track, crossed (September was on) and moved by -25 > 10 -> one email to the
owner naming 75.0 %, 100.0 % and D (-100 churn). A re-run of October sends nothing more."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.core import mail

from metrics import pipeline
from outbox.models import Message
from outbox.signing import signature
from reports.models import Alert, KpiTarget
from tests.factories import AccountFactory, ContractFactory

pytestmark = pytest.mark.django_db

SEPT, OCT = dt.date(2026, 9, 30), dt.date(2026, 10, 31)


@pytest.fixture
def book(csm):
    accounts = {}
    for name in "ABCD":
        a = AccountFactory(name=f"Acct {name}", external_id=f"EXT-{name}", owner=csm)
        end = dt.date(2026, 10, 15) if name == "D" else None
        ContractFactory(account=a, start_date=dt.date(2024, 1, 1), end_date=end, mrr=100)
        accounts[name] = a
    return accounts


def _run(as_of, capture):
    with capture(execute=True):
        summary = pipeline.run_nightly(as_of)
    assert summary["status"] == "succeeded", summary
    return summary


def test_target_via_api_then_pipeline_alerts_once(
    client,
    manager,
    book,
    no_default_targets,
    targets_step,
    celery_eager,
    django_capture_on_commit_callbacks,
):
    client.force_login(manager)
    response = client.post(
        "/api/v1/targets/",
        {
            "kpi": "nrr",
            "scope_kind": "team",  # the manager's team (the CSM's book): theirs to see
            "scope_key": manager.email,
            "direction": "at_least",
            "value": "90",
            "cadence": "monthly",
            "max_change": "10",
            "owner": manager.pk,
        },
        content_type="application/json",
    )
    assert response.status_code == 201, response.json()
    target = KpiTarget.objects.get(pk=response.json()["id"])
    assert (target.scope_kind, target.scope_key) == ("team", str(manager.pk))

    _run(SEPT, django_capture_on_commit_callbacks)
    september = Alert.objects.get(target=target, period="2026-09")
    assert september.status == "on_track"
    assert september.value == Decimal("100")
    assert not september.notified
    assert mail.outbox == []

    _run(OCT, django_capture_on_commit_callbacks)
    october = Alert.objects.get(target=target, period="2026-10")
    assert october.status == "off_track"
    assert october.value == Decimal("75")
    assert october.previous == Decimal("100")
    assert october.reasons == ["crossed", "moved"]
    assert [m["external_id"] for m in october.movers] == ["EXT-D"]
    assert len(mail.outbox) == 1
    email = mail.outbox[0]
    assert email.to == [manager.email]
    assert "NRR 75.0%" in email.subject and "target ≥ 90.0%" in email.subject
    assert "previous: 100.0%" in email.body
    # a rate's change is in points: 75 − 100 = −25 points, beyond the 10 points allowed
    assert "It moved by −25.0 pp, more than the 10.0 pp set for one period." in email.body
    # D's contract of MRR 100 churned, to the cent as the dashboard prints money
    assert "Acct D (EXT-D): churn −$100.00" in email.body
    assert "https://cs.example.com/targets/off-track/" in email.body
    assert Message.objects.get(key=f"alert:{target.pk}:2026-10").status == "sent"

    # the same day again (a re-run): the alert row exists, nothing is sent twice
    _run(OCT, django_capture_on_commit_callbacks)
    assert Alert.objects.filter(target=target).count() == 2
    assert len(mail.outbox) == 1


def test_still_off_track_next_period_does_not_cross_again(
    manager,
    book,
    no_default_targets,
    targets_step,
    celery_eager,
    django_capture_on_commit_callbacks,
):
    # November: start MRR 300, nothing moves -> NRR 100 %; logo churn 0 %. October's logo
    # churn: 1 of 4 customers lost = 25 %. Target logo churn <= 2 %, no max change:
    # October crosses (September 0 % was on track), November is back on track (no email).
    target = KpiTarget.objects.create(
        kpi="logo_churn_rate",
        scope_kind="team",
        scope_key=str(manager.pk),
        direction="at_most",
        value=2,
        cadence="monthly",
        owner=manager,
    )
    _run(SEPT, django_capture_on_commit_callbacks)
    _run(OCT, django_capture_on_commit_callbacks)
    _run(dt.date(2026, 11, 30), django_capture_on_commit_callbacks)
    statuses = dict(Alert.objects.filter(target=target).values_list("period", "status"))
    assert statuses == {"2026-09": "on_track", "2026-10": "off_track", "2026-11": "on_track"}
    assert Alert.objects.get(target=target, period="2026-10").value == Decimal("25")
    assert len(mail.outbox) == 1 and "Logo churn 25.0%" in mail.outbox[0].subject


def test_a_kpi_without_data_says_no_data_and_sends_nothing(
    manager,
    book,
    no_default_targets,
    targets_step,
    celery_eager,
    django_capture_on_commit_callbacks,
):
    # no survey answers in the book: CSAT has nothing to divide by (null)
    target = KpiTarget.objects.create(
        kpi="csat", direction="at_least", value=80, cadence="monthly", owner=manager
    )
    summary = _run(OCT, django_capture_on_commit_callbacks)
    assert summary["steps"][-1]["name"] == "reports"
    alert = Alert.objects.get(target=target)
    assert alert.status == "no_data" and alert.value is None
    assert mail.outbox == []
    assert not Message.objects.exists()


def test_weekly_target_is_evaluated_on_sundays_only_and_webhooks_are_signed(
    settings,
    manager,
    book,
    no_default_targets,
    targets_step,
    celery_eager,
    django_capture_on_commit_callbacks,
):
    from tests.outbox.test_outbox import Receiver

    settings.OUTBOX_ALLOW_PRIVATE = True  # the receivers listen on 127.0.0.1
    # customer text in the Slack message (the movers' names) is escaped, not markup
    book["D"].name = "<!here> Acct D"
    book["D"].save(update_fields=["name"])
    hook, slack = Receiver(), Receiver()
    try:
        settings.REPORTS_ALERT_WEBHOOK_URL = hook.url
        settings.REPORTS_ALERT_WEBHOOK_SECRET = "s3cret"
        settings.REPORTS_ALERT_SLACK_URL = slack.url
        # no owner and no admin in this test: only the webhooks go out
        target = KpiTarget.objects.create(
            kpi="nrr",
            scope_kind="segment",
            scope_key="SMB",
            direction="at_least",
            value=90,
            cadence="weekly",
        )
        # Sunday 2026-10-11 (week 41): trailing month [09-12, 10-12), D still covers 10-12
        # -> no movement, NRR 100 %. Sunday 2026-10-18 (week 42): [09-19, 10-19), D gone on
        # 10-19 -> start 400, churn 100 -> 75 %: crossed. (Days in order: a run for a day
        # older than the latest one processed evaluates no target, test_past_day.py)
        _run(dt.date(2026, 10, 11), django_capture_on_commit_callbacks)
        _run(dt.date(2026, 10, 18), django_capture_on_commit_callbacks)
        statuses = dict(Alert.objects.values_list("period", "status"))
        assert statuses == {"2026-W41": "on_track", "2026-W42": "off_track"}
        assert Alert.objects.get(period="2026-W42").reasons == ["crossed"]
        # Saturday 2026-10-31: no ISO week ends that day -> nothing evaluated
        summary = _run(OCT, django_capture_on_commit_callbacks)
        assert summary["steps"][-1] == {**summary["steps"][-1], "name": "reports", "evaluated": 0}
        assert Alert.objects.count() == 2
    finally:
        hook.close()
        slack.close()
    assert mail.outbox == []
    assert len(hook.calls) == 1 and len(slack.calls) == 1
    body = json.loads(hook.calls[0]["body"])
    assert body["kpi"] == "nrr" and body["period"] == "2026-W42"
    assert Decimal(body["value"]) == Decimal("75") and Decimal(body["previous"]) == Decimal("100")
    assert [m["external_id"] for m in body["movers"]] == ["EXT-D"]
    headers = {k.lower(): v for k, v in hook.calls[0]["headers"].items()}
    expected = signature("s3cret", headers["x-opencs-timestamp"], hook.calls[0]["body"])
    assert headers["x-opencs-signature"] == expected
    slack_text = json.loads(slack.calls[0]["body"])["text"]
    assert "NRR 75.0%" in slack_text
    assert "&lt;!here&gt; Acct D (EXT-D)" in slack_text and "<!here>" not in slack_text
    assert target.alerts.count() == 2


def test_a_target_without_owner_alerts_the_admins(
    admin_user,
    book,
    no_default_targets,
    targets_step,
    celery_eager,
    django_capture_on_commit_callbacks,
):
    # October's logo churn: 1 of the 4 customers of 1 October lost = 25 % > 2 %; no
    # earlier evaluation and no September snapshot: first seen off track = crossed
    target = KpiTarget.objects.create(
        kpi="logo_churn_rate", direction="at_most", value=2, cadence="monthly"
    )
    _run(OCT, django_capture_on_commit_callbacks)
    alert = Alert.objects.get(target=target)
    assert (alert.status, alert.previous, alert.reasons) == ("off_track", None, ["crossed"])
    assert [m.to for m in mail.outbox] == [[admin_user.email]]
    assert "previous: no data" in mail.outbox[0].body


def test_an_owner_who_cannot_see_the_scope_is_not_sent_its_figures(
    admin_user,
    manager,
    csm,
    book,
    no_default_targets,
    targets_step,
    celery_eager,
    django_capture_on_commit_callbacks,
    caplog,
):
    """A whole-book target owned by a manager (made before managers were held to their
    team), and a team target whose CSM owner sees only their own book: the alerts go to the
    admins, and the skip is logged."""
    book_wide = KpiTarget.objects.create(
        kpi="logo_churn_rate", direction="at_most", value=2, cadence="monthly", owner=manager
    )
    team = KpiTarget.objects.create(
        kpi="nrr",
        scope_kind="team",
        scope_key=str(manager.pk),
        direction="at_least",
        value=90,
        cadence="monthly",
        owner=csm,
    )
    with caplog.at_level("WARNING", logger="reports.services"):
        _run(OCT, django_capture_on_commit_callbacks)
    sent = {m.subject.split()[0]: m.to for m in mail.outbox}
    assert sent == {"Logo": [admin_user.email], "NRR": [admin_user.email]}
    logged = caplog.text
    assert f"alert of target {book_wide.pk}: owner {manager.email} cannot see all:" in logged
    assert f"alert of target {team.pk}: owner {csm.email} cannot see team:{manager.pk}" in logged


def test_revenue_targets_of_one_period_and_scope_share_one_movements_report(
    manager, book, no_default_targets, targets_step, monkeypatch, django_capture_on_commit_callbacks
):
    """NRR and GRR of the whole book, monthly: both go off track in October (each 75%: the
    churn of D, see the module docstring) and name the same mover, from one movements
    report (the movers of a target are a pass over every contract of its scope)."""
    from metrics import kpis

    for kpi in ("nrr", "grr"):
        KpiTarget.objects.create(
            kpi=kpi, direction="at_least", value=90, cadence="monthly", owner=manager
        )
    calls = []
    real = kpis.movements_report

    def counted(**kwargs):
        calls.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(kpis, "movements_report", counted)
    _run(SEPT, django_capture_on_commit_callbacks)
    assert calls == []  # on track: no movers
    _run(OCT, django_capture_on_commit_callbacks)
    october = Alert.objects.filter(period="2026-10").order_by("target__kpi")
    assert [(a.target.kpi, a.value, a.status) for a in october] == [
        ("grr", Decimal("75"), "off_track"),
        ("nrr", Decimal("75"), "off_track"),
    ]
    assert [[m["external_id"] for m in a.movers] for a in october] == [["EXT-D"], ["EXT-D"]]
    assert calls == [
        {
            "start": dt.date(2026, 10, 1),
            "end": dt.date(2026, 11, 1),
            "segment": None,
            "owner": None,
            "accounts": None,
        }
    ]
