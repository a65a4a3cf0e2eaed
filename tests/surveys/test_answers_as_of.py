"""Answers as of the end of a period: a changed answer is a new row and the old one is kept
with ``is_current`` False; a period that ended before the change counts the answer in force
then (the as-of rule of ``surveys.selectors``), and one ending after it the new one."""

from __future__ import annotations

import datetime as dt

import pytest

from accounts.models import Account
from surveys import selectors, services

from .conftest import NOW, make_campaign, make_invitation

pytestmark = pytest.mark.django_db
DAY = NOW.date()  # 2026-03-02, answers from 09:00
NEXT_DAY = DAY + dt.timedelta(days=1)


def _answer(invitation, score, at):
    services.response_record(invitation_id=invitation.pk, score=score, now=at, announce=False)


def _nps(end):
    figures = selectors.voice_of_customer(Account.objects.all(), start=DAY, end=end)["kinds"]
    return figures["nps"].value, figures["nps"].responses


def test_an_answer_changed_after_the_period_counts_as_it_was_in_it(dana):
    invitation = make_invitation(make_campaign("nps"), dana, now=NOW)
    _answer(invitation, 10, NOW)
    _answer(invitation, 0, NOW + dt.timedelta(days=1))  # on the next day
    # up to the end of DAY: the one answer then, 10, a promoter: 100 % − 0 % = 100
    assert _nps(NEXT_DAY) == (100, 1)
    # a day later: the changed answer, 0, a detractor: 0 % − 100 % = −100; still one answer
    assert _nps(NEXT_DAY + dt.timedelta(days=1)) == (-100, 1)
    # no end (every answer to date): the current one
    assert selectors.counted_responses().get().score == 0


def test_a_later_round_changed_after_the_period_still_replaces_the_earlier_round(dana):
    """Round 1 answered 10, round 2 answered 0 on the same day, round 2 changed to 10 the
    next day. On DAY the person's latest answer to the campaign was round 2's 0 (NPS −100
    over one answer), not round 1's 10 as well."""
    campaign = make_campaign("nps")
    first = make_invitation(campaign, dana, now=NOW)
    second = make_invitation(campaign, dana, now=NOW, round="2")
    _answer(first, 10, NOW)
    _answer(second, 0, NOW + dt.timedelta(hours=2))
    _answer(second, 10, NOW + dt.timedelta(days=1))
    assert _nps(NEXT_DAY) == (-100, 1)
    assert _nps(NEXT_DAY + dt.timedelta(days=1)) == (100, 1)
