"""Survey comments are customer texts too; themes compare NPS. Runs once the surveys app's
answers (issue 5) are in the tree; skipped before."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.factories import AccountFactory, TicketFactory
from voice import services
from voice.models import TextSentiment, Theme

Response = services.survey_responses()
pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(Response is None, reason="the surveys app has no answers yet"),
]
TODAY = dt.datetime.now(dt.UTC).date()


def _answer(account, score, comment, *, days_ago=3, current=True):
    return Response.objects.create(
        account=account, kind="nps", score=score, comment=comment, is_current=current,
        answered_at=dt.datetime.combine(TODAY - dt.timedelta(days=days_ago), dt.time(9), tzinfo=dt.UTC),
    )  # fmt: skip


def test_current_survey_comments_are_scored_and_replaced_ones_dropped():
    account = AccountFactory()
    old = _answer(account, 3, "Terrible, exports always fail", current=False)
    new = _answer(account, 9, "Much better now, exports are fast and reliable")
    _answer(account, 8, "")  # no comment: no text
    services.text_sentiments_refresh()
    rows = {r.source_id: r for r in TextSentiment.objects.filter(source="survey")}
    assert set(rows) == {new.pk} and rows[new.pk].score > 0
    assert old.pk not in rows


def test_themes_compare_nps_of_mentioning_accounts_with_the_rest():
    complainers, fans = AccountFactory.create_batch(2), AccountFactory.create_batch(2)
    for a in complainers:
        for text in ("Export is so slow", "The CSV export is slow again", "Slow export"):
            TicketFactory(account=a, subject=text, opened_at=dt.datetime.now(dt.UTC))
        _answer(a, 2, "")  # detractor
    for a in fans:
        for text in ("We love the dashboards", "Dashboards are great", "great new dashboards"):
            TicketFactory(account=a, subject=text, opened_at=dt.datetime.now(dt.UTC))
        _answer(a, 10, "")  # promoter
    _answer(fans[0], 7, "")  # passive
    services.text_sentiments_refresh()
    services.themes_compute(run=services.theme_run_start(as_of=TODAY))
    export = Theme.objects.get(label__contains="export")
    # complainers: 2 answers, 0 promoters, 2 detractors → −100; the rest (fans): 3 answers,
    # 2 promoters, 0 detractors → 66.7
    assert export.outcomes["nps"] == -100.0 and export.outcomes["rest_nps"] == 66.7
