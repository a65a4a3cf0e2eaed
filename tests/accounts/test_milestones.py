"""Recording, changing and clearing a first-value milestone (``accounts.services``): who may,
what is refused (naming the field, writing nothing), and the timeline facts it leaves."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from accounts import services, utc
from accounts.models import Milestone, TimelineEntry
from tests.factories import AccountFactory, UserFactory

pytestmark = pytest.mark.django_db
DAY = dt.timedelta(days=1)


@pytest.fixture
def account(csm):
    return AccountFactory(owner=csm, customer_since=utc.today() - 40 * DAY)


def test_recording_then_changing_then_clearing_leaves_three_facts(account, csm):
    first = utc.today() - 10 * DAY
    m = services.milestone_record(account=account, reached_on=first, by=csm, note=" Go-live ")
    assert (m.kind, m.reached_on, m.note, m.recorded_by) == ("first_value", first, "Go-live", csm)
    second = utc.today() - 12 * DAY
    services.milestone_record(account=account, reached_on=second, by=csm)
    m = Milestone.objects.get()
    assert (m.reached_on, m.note) == (second, "")
    assert services.milestone_clear(account=account, by=csm) is True
    assert not Milestone.objects.exists()
    facts = list(TimelineEntry.objects.filter(account=account).order_by("occurred_at", "id"))
    assert [f.kind for f in facts] == [
        "milestone_recorded",
        "milestone_recorded",
        "milestone_cleared",
    ]
    assert [f.title for f in facts] == [
        f"First value reached on {utc.day_text(first)}, recorded by Cleo",
        f"First value reached: the day changed to {utc.day_text(second)} (was {utc.day_text(first)}) by Cleo",
        f"First value reached: the day cleared by Cleo (was {utc.day_text(second)})",
    ]
    assert facts[0].detail == "Go-live"
    assert facts[1].data == {
        "milestone": "first_value",
        "reached_on": second.isoformat(),
        "previous": first.isoformat(),
        "by": csm.pk,
    }


def test_clearing_nothing_writes_nothing(account, csm):
    assert services.milestone_clear(account=account, by=csm) is False
    assert not TimelineEntry.objects.exists()


def test_today_and_a_day_before_signing_are_accepted(account, csm):
    services.milestone_record(account=account, reached_on=utc.today(), by=csm)
    trial = account.customer_since - 5 * DAY
    assert services.milestone_record(account=account, reached_on=trial, by=csm).reached_on == trial


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"reached_on": "2026-01-01"}, "reached_on"),  # a string, not a day
        ({"reached_on": None}, "reached_on"),
        ({"kind": "renewed"}, "kind"),
        ({"note": "x" * 501}, "note"),
    ],
)
def test_bad_input_names_the_field_and_writes_nothing(account, csm, changes, field):
    kwargs = {"account": account, "reached_on": utc.today() - DAY, "by": csm, **changes}
    with pytest.raises(ValidationError) as refused:
        services.milestone_record(**kwargs)
    assert list(refused.value.message_dict) == [field]
    assert not Milestone.objects.exists() and not TimelineEntry.objects.exists()


def test_a_future_day_is_refused_with_today_in_the_message(account, csm):
    tomorrow = utc.today() + DAY
    with pytest.raises(ValidationError) as refused:
        services.milestone_record(account=account, reached_on=tomorrow, by=csm)
    (message,) = refused.value.message_dict["reached_on"]
    assert utc.day_text(tomorrow) in message and "future" in message
    assert not Milestone.objects.exists() and not TimelineEntry.objects.exists()


def test_a_changed_day_in_the_future_keeps_the_recorded_one(account, csm):
    kept = utc.today() - 3 * DAY
    services.milestone_record(account=account, reached_on=kept, by=csm)
    with pytest.raises(ValidationError):
        services.milestone_record(account=account, reached_on=utc.today() + DAY, by=csm)
    assert Milestone.objects.get().reached_on == kept
    assert TimelineEntry.objects.count() == 1


def test_whoever_may_log_activities_may_record(account, csm, manager, admin_user, outsider):
    assert services.milestone_editable_by(csm, account)
    assert services.milestone_editable_by(manager, account)  # the CSM's manager
    assert services.milestone_editable_by(admin_user, account)
    assert not services.milestone_editable_by(outsider, account)  # no role
    other_csm = UserFactory(email="other@example.com")
    other_csm.groups.add(*csm.groups.all())
    assert not services.milestone_editable_by(other_csm, account)  # not their account
    for user in (outsider, other_csm):
        with pytest.raises(PermissionDenied):
            services.milestone_record(account=account, reached_on=utc.today(), by=user)
        with pytest.raises(PermissionDenied):
            services.milestone_clear(account=account, by=user)
    assert not Milestone.objects.exists() and not TimelineEntry.objects.exists()


def test_the_fact_is_handed_to_the_fact_hooks_after_commit(
    account, csm, settings, django_capture_on_commit_callbacks
):
    heard = []
    settings.TIMELINE_FACT_HOOKS = ["tests.accounts.test_milestones.hook"]
    heard_by_hook.clear()
    with django_capture_on_commit_callbacks(execute=True):
        services.milestone_record(account=account, reached_on=utc.today(), by=csm)
        heard.extend(heard_by_hook)  # nothing yet: on commit
    assert heard == []
    assert heard_by_hook == [list(TimelineEntry.objects.values_list("pk", flat=True))]


heard_by_hook: list = []


def hook(ids):
    heard_by_hook.append(list(ids))
