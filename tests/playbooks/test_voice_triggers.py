"""The voice app's scores as playbook triggers: "sentiment fell below X" and "relationship
score dropped N points in D days"."""

from __future__ import annotations

import datetime as dt

import pytest

from playbooks import services
from playbooks.models import Cta
from tests.factories import AccountFactory, TicketFactory
from voice import tasks as voice_tasks
from voice.models import AccountVoiceScore

from .helpers import at, make_playbook

pytestmark = pytest.mark.django_db


def test_sentiment_fell_below_opens_a_cta_from_the_customers_own_words(day):
    angry, calm = AccountFactory(), AccountFactory()
    for subject in (
        "Export is broken again, this is terrible and we are furious",
        "Awful outage, the worst support experience, very disappointed",
    ):
        TicketFactory(account=angry, subject=subject, opened_at=at(day, 9))
    TicketFactory(account=calm, subject="Thanks, the new report is great", opened_at=at(day, 9))
    playbook = make_playbook("sentiment_below", {"below": -20}, name="Unhappy words")

    voice_tasks.refresh_all_voice(as_of=day.isoformat())  # the 02:00 voice step
    now = AccountVoiceScore.objects.get(account=angry, day=day).sentiment
    assert now is not None and now < -20  # the texts really read as negative
    services.playbooks_evaluate_all(as_of=day)

    cta = Cta.objects.get(playbook=playbook)
    assert cta.account == angry
    assert f"customer sentiment no data → {now:+d} on {day:%-d %b %Y} (below -20)" in cta.evidence
    # the next night the account is still below: it *fell* once, nothing new opens
    services.playbooks_evaluate_all(as_of=day)
    assert Cta.objects.filter(playbook=playbook).count() == 1


def test_relationship_drop_opens_a_cta_with_both_scores(day):
    dropped, steady = AccountFactory(), AccountFactory()
    week_ago = day - dt.timedelta(days=7)
    for account, before, now in ((dropped, 80, 55), (steady, 80, 70)):
        AccountVoiceScore.objects.create(account=account, day=week_ago, relationship=before)
        AccountVoiceScore.objects.create(account=account, day=day, relationship=now)
    playbook = make_playbook("relationship_dropped", {"points": 20, "days": 7})

    services.playbooks_evaluate_all(as_of=day)

    cta = Cta.objects.get(playbook=playbook)
    assert cta.account == dropped  # 80 → 55 is −25 ≥ 20; 80 → 70 is only −10
    assert (
        f"stakeholder coverage 80 → 55 between {week_ago:%-d %b %Y} and {day:%-d %b %Y} "
        "(−25 points in 7 days)" in cta.evidence
    )


def test_voice_trigger_parameters_are_checked():
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as info:
        make_playbook("sentiment_below", {"below": -150})
    assert "trigger_params" in info.value.message_dict
    with pytest.raises(ValidationError):
        make_playbook("relationship_dropped", {"points": 20, "days": -1})
