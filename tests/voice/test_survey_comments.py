"""Survey comments are customer texts too; themes compare NPS. Runs once the surveys app's
answers (issue 5) are in the tree; skipped before."""

from __future__ import annotations

import datetime as dt
from functools import partial

import pytest

from accounts.models import Account
from tests.factories import AccountFactory, StakeholderFactory, TicketFactory
from voice import selectors, services
from voice.models import TextSentiment, Theme

Response = services.survey_responses()
pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(Response is None, reason="the surveys app has no answers yet"),
]
TODAY = dt.datetime.now(dt.UTC).date()


def _at(days_ago: int) -> dt.datetime:
    return dt.datetime.combine(TODAY - dt.timedelta(days=days_ago), dt.time(9), tzinfo=dt.UTC)


def _answer(account, score, comment, *, days_ago=3, current=True):
    return Response.objects.create(
        account=account, kind="nps", score=score, comment=comment, is_current=current,
        answered_at=dt.datetime.combine(TODAY - dt.timedelta(days=days_ago), dt.time(9), tzinfo=dt.UTC),
    )  # fmt: skip


def test_survey_comments_are_scored_and_replaced_ones_kept_as_history():
    """A changed answer is a new row; the old comment is scored and kept (it spoke for the
    person until the change), and left out from then on: of the texts now and of the
    sentiment of a day after the change, not of a day before it."""
    from surveys import services as survey_services
    from tests.surveys.conftest import make_campaign, make_invitation

    account = AccountFactory()
    person = StakeholderFactory(account=account)
    invitation = make_invitation(make_campaign("nps"), person, now=_at(4))
    answer = partial(survey_services.response_record, invitation_id=invitation.pk, announce=False)
    old = answer(score=3, comment="Terrible, exports always fail", now=_at(3))
    new = answer(score=9, comment="Much better now, exports are fast and reliable", now=_at(1))
    _answer(account, 8, "")  # no comment: no text
    services.text_sentiments_refresh()
    rows = {r.source_id: r for r in TextSentiment.objects.filter(source="survey")}
    assert set(rows) == {old.pk, new.pk}
    assert rows[old.pk].score < 0 < rows[new.pk].score
    one = Account.objects.filter(pk=account.pk)
    texts = selectors.account_voice(account=account, as_of=TODAY)["texts"]
    assert [t.source_id for t in texts] == [new.pk]
    # the day the old answer was given, its comment alone; today, the new one alone
    assert selectors.account_sentiments(one, as_of=_at(3).date())[account.pk] == {
        "sentiment": rows[old.pk].score,
        "texts": 1,
    }
    assert selectors.account_sentiments(one, as_of=TODAY)[account.pk] == {
        "sentiment": rows[new.pk].score,
        "texts": 1,
    }


def test_themes_compare_nps_of_mentioning_accounts_with_the_rest():
    # the tickets are dated from TODAY (read once, as the module loads), not from the clock:
    # a run that crossed midnight UTC dated them after the themes' day and found no theme
    complainers, fans = AccountFactory.create_batch(2), AccountFactory.create_batch(2)
    for a in complainers:
        for text in ("Export is so slow", "The CSV export is slow again", "Slow export"):
            TicketFactory(account=a, subject=text, opened_at=_at(1))
        _answer(a, 2, "")  # detractor
    for a in fans:
        for text in ("We love the dashboards", "Dashboards are great", "great new dashboards"):
            TicketFactory(account=a, subject=text, opened_at=_at(1))
        _answer(a, 10, "")  # promoter
    _answer(fans[0], 7, "")  # passive
    services.text_sentiments_refresh()
    services.themes_compute(run=services.theme_run_start(as_of=TODAY))
    export = Theme.objects.get(label__contains="export")
    # complainers: 2 answers, 0 promoters, 2 detractors → −100; the rest (fans): 3 answers,
    # 2 promoters, 0 detractors → 66.7
    assert export.outcomes["nps"] == -100.0 and export.outcomes["rest_nps"] == 66.7


def test_a_themes_run_of_a_past_day_takes_the_nps_answers_in_force_that_day():
    """Run as of three days ago. The complainers answered 2 four days ago and changed it to
    10 yesterday; as of the run's day they were detractors."""
    from surveys import services as survey_services
    from tests.surveys.conftest import make_campaign, make_invitation

    campaign = make_campaign("nps")
    complainers, fans = AccountFactory.create_batch(2), AccountFactory.create_batch(2)
    for a in complainers:
        for text in ("Export is so slow", "The CSV export is slow again", "Slow export"):
            TicketFactory(account=a, subject=text, opened_at=_at(4))
        invitation = make_invitation(campaign, StakeholderFactory(account=a), now=_at(5))
        for score, days_ago in ((2, 4), (10, 1)):
            survey_services.response_record(
                invitation_id=invitation.pk, score=score, now=_at(days_ago), announce=False
            )
    for a in fans:
        for text in ("We love the dashboards", "Dashboards are great", "great new dashboards"):
            TicketFactory(account=a, subject=text, opened_at=_at(4))
        _answer(a, 10, "", days_ago=4)  # promoter
    services.text_sentiments_refresh()
    services.themes_compute(run=services.theme_run_start(as_of=TODAY - dt.timedelta(days=3)))
    export = Theme.objects.get(label__contains="export")
    # complainers on the day: 2 answers, both 2 (detractors): 0 % − 100 % = −100; the rest
    # (fans): 2 answers of 10: 100 % − 0 % = 100
    assert export.outcomes["nps"] == -100.0 and export.outcomes["rest_nps"] == 100.0
