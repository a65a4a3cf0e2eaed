"""The event path in one process (eager tasks, as in embedded mode): a survey answer, an
imported escalated ticket and a health band change recorded by the metrics app each open
their CTA right away through settings.TIMELINE_FACT_HOOKS; webhooks go to a local server."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts import intake
from accounts.models import TimelineEntry
from accounts.services import timeline_facts_recorded
from metrics import pipeline
from metrics import services as metrics_services
from outbox import signing
from outbox.models import Message
from playbooks import services
from playbooks.models import Cta
from tests.factories import AccountFactory, UserFactory
from tests.outbox.test_outbox import Receiver

from .helpers import make_playbook, red_data, snapshot, survey_answer

pytestmark = pytest.mark.django_db
DAYS = dt.timedelta


@pytest.fixture
def fact_hooks(settings, celery_eager):
    settings.TIMELINE_FACT_HOOKS = ["playbooks.tasks.timeline_facts_recorded"]


@pytest.fixture
def receiver(settings):
    settings.OUTBOX_ALLOW_PRIVATE = True  # the receiver listens on 127.0.0.1
    r = Receiver()
    yield r
    r.close()


def test_a_detractor_answer_opens_a_cta_at_once(fact_hooks, django_capture_on_commit_callbacks):
    account = AccountFactory(owner=UserFactory())
    make_playbook("survey_unhappy", {"kinds": ["nps"]})
    today = timezone.now().date()
    with django_capture_on_commit_callbacks(execute=True):
        entry = survey_answer(account, today)
        timeline_facts_recorded([entry.pk])  # what the surveys app does after writing it
    cta = Cta.objects.get()
    assert cta.account == account and "NPS 3 from Dana Smith" in cta.evidence
    with django_capture_on_commit_callbacks(execute=True):
        timeline_facts_recorded([entry.pk])  # the same fact again: nothing new
    assert Cta.objects.count() == 1


def test_an_imported_escalated_ticket_opens_a_cta_at_once(
    fact_hooks, django_capture_on_commit_callbacks
):
    account = AccountFactory(external_id="A1", owner=UserFactory())
    make_playbook("ticket_escalated")
    row = {
        "external_id": "T1", "account_external_id": "A1", "status": "open", "escalated": True,
        "opened_at": (timezone.now() - DAYS(hours=2)).isoformat(),
    }  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        result = intake.run_import([intake.Source(kind="tickets", name="request", rows=[row])])
    assert result.ok
    assert Cta.objects.get().account == account
    assert Cta.objects.get().evidence == "1 open escalated ticket"


def test_a_health_band_change_writes_the_fact_and_opens_a_cta(
    fact_hooks, django_capture_on_commit_callbacks
):
    today = timezone.now().date()
    account = AccountFactory(owner=UserFactory())
    snapshot(account, today - DAYS(1), score=85, band="green")
    red_data(account, today)
    make_playbook("health_entered", {"band": "red"})
    with django_capture_on_commit_callbacks(execute=True):
        # the incremental recompute of today's health (what an import sets off)
        metrics_services.health_snapshots_record(as_of=today, account_ids=[account.pk])
    fact = TimelineEntry.objects.get(kind="health_band_changed")
    assert fact.key == f"health-band:{today}"
    assert fact.data["from"] == "green" and fact.data["to"] == "red"
    assert fact.data["score_from"] == 85 and fact.data["as_of"] == today.isoformat()
    cta = Cta.objects.get()
    assert f"health 85 → {fact.data['score_to']} on {today:%-d %b %Y} (green → red)" in cta.evidence
    # re-recording the day: same fact (same key), no second CTA
    with django_capture_on_commit_callbacks(execute=True):
        metrics_services.health_snapshots_record(as_of=today, account_ids=[account.pk])
    assert TimelineEntry.objects.filter(kind="health_band_changed").count() == 1
    assert Cta.objects.count() == 1


def test_the_nightly_run_leaves_its_band_changes_to_its_final_step(
    fact_hooks, playbook_step, django_capture_on_commit_callbacks, settings
):
    """The nightly pipeline writes the band-change facts without handing them to the event
    path: its last step evaluates every playbook over every account, the day's band changes
    included, and the event path would do that work a second time. The CTA still opens,
    once, with the same evidence."""
    calls = []
    settings.TIMELINE_FACT_HOOKS = ["tests.playbooks.test_events.hook_spy"]
    hook_spy.calls = calls
    today = timezone.now().date()
    account = AccountFactory(owner=UserFactory())
    snapshot(account, today - DAYS(1), score=85, band="green")
    red_data(account, today)
    make_playbook("health_entered", {"band": "red"})
    with django_capture_on_commit_callbacks(execute=True):
        pipeline.run_nightly(today)
    fact = TimelineEntry.objects.get(kind="health_band_changed")
    assert calls == []  # not announced
    cta = Cta.objects.get()  # opened by the run's playbooks step
    assert cta.account == account
    assert f"health 85 → {fact.data['score_to']} on {today:%-d %b %Y} (green → red)" in cta.evidence
    # the incremental recompute of the same day does announce it
    with django_capture_on_commit_callbacks(execute=True):
        metrics_services.health_snapshots_record(as_of=today, account_ids=[account.pk])
    assert calls == [[fact.pk]]


def hook_spy(entry_ids):
    hook_spy.calls.append(list(entry_ids))


def test_no_band_change_no_fact(day):
    account = AccountFactory()
    red_data(account, day)
    metrics_services.health_snapshots_record(as_of=day - DAYS(1), account_ids=[account.pk])
    metrics_services.health_snapshots_record(as_of=day, account_ids=[account.pk])
    # the first snapshot is no change; red both days: none either
    assert not TimelineEntry.objects.filter(kind="health_band_changed").exists()


def test_webhook_and_slack_calls_are_signed_sent_once_and_failures_show_on_the_playbook_page(
    day, playbook_step, receiver, celery_eager, django_capture_on_commit_callbacks, client,
    admin_user, settings,
):  # fmt: skip
    account = AccountFactory(owner=UserFactory(), name="Acme")
    red_data(account, day)
    playbook = make_playbook(
        "ticket_escalated", webhook_url=receiver.url, webhook_secret="s3cret",
        slack_url=receiver.url + "/slack",
    )  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        pipeline.run_nightly(day)
    with django_capture_on_commit_callbacks(execute=True):
        pipeline.run_nightly(day)  # evaluated twice: no second call
    assert len(receiver.calls) == 2
    cta = Cta.objects.get()
    hook, slack = sorted(receiver.calls, key=lambda c: len(c["body"]), reverse=True)
    headers = {k.lower(): v for k, v in hook["headers"].items()}
    assert signing.verify("s3cret", headers["x-opencs-timestamp"], hook["body"],
                          headers["x-opencs-signature"])  # fmt: skip
    body = json.loads(hook["body"])
    assert body["event"] == "cta.opened" and body["cta"]["id"] == cta.pk
    assert body["account"]["name"] == "Acme" and body["cta"]["evidence"] == cta.evidence
    assert body["cta"]["url"] == f"{settings.SITE_URL.rstrip('/')}/ctas/{cta.pk}/"  # absolute
    assert json.loads(slack["body"])["text"].startswith("New CTA for ")

    # a target answering 500: retried a bounded number of times, then failed, on the page
    settings.OUTBOX_MAX_ATTEMPTS = 2
    receiver.status = 500
    services.cta_close(cta=cta, status="done")
    Cta.objects.update(closed_at=timezone.now() - DAYS(days=60))  # past the cooldown
    with django_capture_on_commit_callbacks(execute=True):
        run = pipeline.run_nightly(day)
    assert run["status"] == "succeeded"  # the pipeline is not blocked by the target
    from outbox import services as outbox_services

    outbox_services.messages_deliver_due(now=timezone.now() + DAYS(hours=2))
    failed = Message.objects.filter(source=f"playbook:{playbook.pk}", status="failed")
    assert failed.count() == 2 and all(m.attempts == 2 for m in failed)
    assert len(receiver.calls) == 2 + 4
    client.force_login(admin_user)
    page = client.get(reverse("playbooks:list")).content.decode()
    assert "2 messages could not be delivered" in page and "HTTP 500" in page
