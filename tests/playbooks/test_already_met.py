"""A CTA is not opened when its playbook's success condition already holds on the facts it
would open with: the outcome check (the same function, on the same facts) would close it as
a success at once, inflating the playbook's successes and starting its cooldown. The
operator review's case: a night opened CTAs that the same night run again, 5 s later on
unchanged data, closed as met (failed payments paid since; a first value reached before the
onboarding CTA opened)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from accounts import intake
from metrics import pipeline
from playbooks import facts, services
from playbooks.models import Cta, CtaStatus, Outcome, Playbook
from tests.factories import AccountFactory, ContractFactory, InvoiceFactory, UserFactory

from .helpers import events, make_playbook

pytestmark = pytest.mark.django_db
DAYS = dt.timedelta


def _paid_since(account, day):
    """Two failed attempts on an invoice the customer paid since."""
    InvoiceFactory(account=account, issued_on=day - DAYS(30), due_on=day - DAYS(10),
                   status="paid", paid_on=day - DAYS(5), failed_attempts=2)  # fmt: skip


def _unpaid(account, day):
    """A failed attempt on an invoice not paid since, not yet due."""
    InvoiceFactory(account=account, issued_on=day - DAYS(10), due_on=day + DAYS(20),
                   status="failed", failed_attempts=1)  # fmt: skip


def test_a_night_run_twice_opens_no_cta_it_closes_as_met(day, playbook_step, settings):
    """The review's sequence with the starter playbooks: the night, then the same night
    again on unchanged data. Only the CTAs with something left to do open, and the second
    run records no success."""
    settings.FIRST_VALUE_EVENT = ""  # any product usage is the first value
    services.starter_playbooks_load()
    payments = Playbook.objects.get(starter="failed-payment")
    onboarding = Playbook.objects.get(starter="onboarding")
    csm = UserFactory()
    paid = AccountFactory(owner=csm, customer_since=day - DAYS(400))
    _paid_since(paid, day)
    unpaid = AccountFactory(owner=csm, customer_since=day - DAYS(400))
    _unpaid(unpaid, day)
    # new customers: one used the product (first value) before the night, one did not
    valued = AccountFactory(owner=csm, customer_since=day - DAYS(10))
    events(valued, day - DAYS(6), n=1)
    waiting = AccountFactory(owner=csm, customer_since=day - DAYS(10))

    first = pipeline.run_nightly(day)
    assert first["status"] == "succeeded"
    step = first["steps"][-1]
    assert step["name"] == "playbooks"
    opened = {(c.playbook_id, c.account_id): c for c in Cta.objects.all()}
    assert set(opened) == {(payments.pk, unpaid.pk), (onboarding.pk, waiting.pk)}
    assert opened[(payments.pk, unpaid.pk)].title == "Sort out a payment problem (failed payment)"
    assert opened[(payments.pk, unpaid.pk)].evidence == (
        "1 failed payment in 90 days on 1 invoice not paid since"
    )
    # the onboarding playbook matched the valued account, whose success held already
    assert step["skipped_already_met"] == 1, step
    assert "1 not opened, success already met" in pipeline_words(step)

    again = pipeline.run_nightly(day)
    step = again["steps"][-1]
    assert (step["successes"], step["opened"], step["skipped_open"]) == (0, 0, 2), step
    assert step["skipped_already_met"] == 1
    assert not Cta.objects.filter(outcome=Outcome.SUCCESS).exists()
    assert set(Cta.objects.values_list("status", flat=True)) == {CtaStatus.OPEN}


def pipeline_words(step):
    from metrics.pipeline_words import step_words

    return step_words(step)


def test_a_failed_payment_paid_since_is_no_payment_trouble(day):
    paid = AccountFactory()
    _paid_since(paid, day)
    unpaid = AccountFactory()
    _unpaid(unpaid, day)
    later = AccountFactory()  # paid after the as-of day: still unpaid that day
    InvoiceFactory(account=later, issued_on=day - DAYS(30), due_on=day + DAYS(10),
                   status="paid", paid_on=day + DAYS(1), failed_attempts=3)  # fmt: skip
    got = facts.gather(as_of=day, sources={"invoices"})
    keys = ("unpaid_failed_payments_90d", "unpaid_failed_invoices_90d", "unpaid_failed_invoices")
    assert [got[paid.pk][k] for k in keys] == [0, 0, 0]
    assert [got[unpaid.pk][k] for k in keys] == [1, 1, 1]
    assert [got[later.pk][k] for k in keys] == [3, 1, 1]

    make_playbook("payment_trouble", {"failed_payments": 1, "overdue": True},
                  success="payments_clear")  # fmt: skip
    result = services.playbooks_evaluate(as_of=day)
    assert (result["matched"], result["opened"], result["skipped_already_met"]) == (2, 2, 0)
    assert set(Cta.objects.values_list("account_id", flat=True)) == {unpaid.pk, later.pk}


def test_no_onboarding_cta_for_a_customer_who_reached_first_value_before(day, settings):
    """The onboarding starter's trigger (new customer, first 30 days) is left as it is: the
    guard, with the playbook's own success condition (first value), keeps it quiet."""
    settings.FIRST_VALUE_EVENT = ""
    services.starter_playbooks_load()
    Playbook.objects.exclude(starter="onboarding").update(enabled=False)
    valued = AccountFactory(owner=UserFactory(), customer_since=day - DAYS(10))
    events(valued, day - DAYS(6), n=1)
    new = AccountFactory(owner=UserFactory(), customer_since=day - DAYS(10))
    result = services.playbooks_evaluate(as_of=day)
    assert (result["matched"], result["opened"], result["skipped_already_met"]) == (2, 1, 1)
    assert Cta.objects.get().account == new
    # the cooldown (365 days) did not start: no CTA was closed for the valued account
    assert not Cta.objects.filter(account=valued).exists()


def test_the_event_path_applies_the_guard_with_the_success_conditions_facts(
    settings, celery_eager, django_capture_on_commit_callbacks
):
    """An escalated ticket imported (the event path, within a minute): a playbook whose
    success is "renewed" opens no CTA for an account whose renewal is signed already,
    though its trigger reads only tickets (the success's contracts are gathered too)."""
    settings.TIMELINE_FACT_HOOKS = ["playbooks.tasks.timeline_facts_recorded"]
    today = timezone.now().date()
    csm = UserFactory()
    renewed = AccountFactory(external_id="A1", owner=csm)
    ContractFactory(account=renewed, start_date=today - DAYS(300), end_date=today + DAYS(60))
    ContractFactory(account=renewed, start_date=today + DAYS(61))  # the renewal, signed
    other = AccountFactory(external_id="A2", owner=csm)
    ContractFactory(account=other, start_date=today - DAYS(300), end_date=today + DAYS(60))
    make_playbook("ticket_escalated", success="renewed")
    rows = [
        {"external_id": f"T{n}", "account_external_id": a, "status": "open", "escalated": True,
         "opened_at": (timezone.now() - DAYS(hours=2)).isoformat()}
        for n, a in enumerate(("A1", "A2"))
    ]  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        result = intake.run_import([intake.Source(kind="tickets", name="request", rows=rows)])
    assert result.ok
    assert list(Cta.objects.values_list("account_id", flat=True)) == [other.pk]


def test_a_success_done_after_opening_never_stops_the_cta(day):
    """The detractor starter's success is a CSM's touch after opening, compared by day: a
    call logged on the run's day, before the answer came in, would read as met. Such a
    condition (``after_opening``: a touch, the steps, ARR grown) is about what happens to
    the CTA, so the guard does not ask it and the CTA opens."""
    from .helpers import activity, survey_answer

    services.starter_playbooks_load()
    Playbook.objects.exclude(starter="detractor-follow-up").update(enabled=False)
    account = AccountFactory(owner=UserFactory(), customer_since=day - DAYS(400))
    activity(account, timezone.make_aware(dt.datetime.combine(day, dt.time(8))))
    survey_answer(account, day, score=2)  # NPS 2: a detractor
    result = services.playbooks_evaluate(as_of=day)
    assert (result["matched"], result["opened"]) == (1, 1)
    assert result.get("skipped_already_met", 0) == 0
    assert Cta.objects.get().account == account
