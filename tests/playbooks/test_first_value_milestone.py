"""The playbooks' ``first_value_on`` fact is the day TTFV counts: the earlier of the
first-value event's UTC day and a milestone a CSM recorded; recording it closes an open
"first value not reached" CTA at once (the event path), as the night would."""

from __future__ import annotations

import datetime as dt

import pytest

from accounts import services as account_services
from accounts import utc
from accounts.models import Milestone
from playbooks import facts, services
from playbooks.models import Cta
from tests.factories import AccountFactory

from .helpers import events, make_playbook

pytestmark = pytest.mark.django_db
DAYS = dt.timedelta


@pytest.mark.parametrize("first_value_event", ["", "report"])
def test_first_value_on_is_the_earlier_of_event_and_milestone(settings, first_value_event):
    settings.FIRST_VALUE_EVENT = first_value_event
    as_of = dt.date(2026, 5, 31)
    since = as_of - DAYS(60)
    milestone_first = AccountFactory(customer_since=since)
    events(milestone_first, as_of - DAYS(10), n=1, name="report")
    Milestone.objects.create(
        account=milestone_first, kind="first_value", reached_on=as_of - DAYS(30)
    )
    event_first = AccountFactory(customer_since=since)
    events(event_first, as_of - DAYS(40), n=1, name="report")
    Milestone.objects.create(account=event_first, kind="first_value", reached_on=as_of - DAYS(20))
    only_milestone = AccountFactory(customer_since=since)
    Milestone.objects.create(account=only_milestone, kind="first_value", reached_on=as_of)
    later_milestone = AccountFactory(customer_since=since)  # after the as-of day: not yet
    Milestone.objects.create(
        account=later_milestone, kind="first_value", reached_on=as_of + DAYS(1)
    )
    got = facts.gather(as_of=as_of, sources={"first_value"})
    assert {pk: f["first_value_on"] for pk, f in got.items()} == {
        milestone_first.pk: as_of - DAYS(30),
        event_first.pk: as_of - DAYS(40),
        only_milestone.pk: as_of,
        later_milestone.pk: None,
    }
    # the same for given accounts (the event path) as for the whole book
    some = [milestone_first.pk, later_milestone.pk]
    assert facts.gather(as_of=as_of, sources={"first_value"}, account_ids=some) == {
        pk: got[pk] for pk in some
    }


def test_recording_first_value_closes_the_open_cta_at_once(
    settings, celery_eager, csm, django_capture_on_commit_callbacks
):
    settings.FIRST_VALUE_EVENT = "report_created"
    settings.TIMELINE_FACT_HOOKS = ["playbooks.tasks.timeline_facts_recorded"]
    today = utc.today()
    account = AccountFactory(owner=csm, customer_since=today - DAYS(20))
    untouched = AccountFactory(owner=csm, customer_since=today - DAYS(20))
    make_playbook("first_value_missing", {"days": 14}, success="first_value")
    services.playbooks_evaluate(as_of=today)
    assert Cta.objects.filter(status="open").count() == 2
    with django_capture_on_commit_callbacks(execute=True):
        account_services.milestone_record(
            account=account, reached_on=today - DAYS(3), by=csm, note="Kick-off report sent"
        )
    closed = Cta.objects.get(account=account)
    assert closed.status == "done" and closed.outcome == "success"
    assert closed.outcome_detail == f"first value reached on {utc.day_text(today - DAYS(3))}"
    still = Cta.objects.get(account=untouched)
    assert still.status == "open" and still.outcome == ""
