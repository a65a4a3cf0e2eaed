"""The event path's "matched again while open": each open CTA whose playbook matches again
with new evidence gets one comment and one timeline fact, in a fixed number of queries."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import TimelineEntry
from playbooks import services
from playbooks.models import Cta, CtaComment
from tests.factories import AccountFactory, ContractFactory, UserFactory

from .helpers import make_playbook

pytestmark = pytest.mark.django_db
DAYS = dt.timedelta


def _renewing(n: int, day: dt.date) -> list:
    owner = UserFactory()
    accounts = [AccountFactory(owner=owner) for _ in range(n)]
    for account in accounts:
        ContractFactory(account=account, start_date=day - DAYS(300), end_date=day + DAYS(60))
    return accounts


def _tell_again(accounts, day: dt.date) -> tuple[dict, int]:
    """Evaluate a day later (the evidence now says 59 days) on the event path."""
    with CaptureQueriesContext(connection) as queries:
        counts = services.playbooks_evaluate(
            as_of=day + DAYS(1), account_ids=[a.pk for a in accounts], tell_open=True
        )
    return counts, len(queries)


def test_each_open_cta_is_told_once_in_a_fixed_number_of_queries(day):
    make_playbook("renewal_within", {"days": 90})
    one, three = _renewing(1, day), _renewing(3, day)
    assert services.playbooks_evaluate(as_of=day)["opened"] == 4

    counts_one, queries_one = _tell_again(one, day)
    counts_three, queries_three = _tell_again(three, day)

    assert counts_one["told"] == 1 and counts_three["told"] == 3
    assert queries_three == queries_one  # not one insert per comment
    for account in one + three:
        cta = Cta.objects.get(account=account)
        (comment,) = CtaComment.objects.filter(cta=cta)
        assert comment.author is None
        assert comment.body == (
            "Matched again while open: contract ends on "
            f"{day + DAYS(60):%-d %b %Y} (in 59 days), no renewal yet"
        )
        fact = TimelineEntry.objects.get(account=account, kind="cta_comment")
        assert fact.key == f"cta:{cta.pk}:comment:{comment.pk}"
        assert fact.title == f"Comment on CTA {cta.title}: {comment.body}"
        assert fact.occurred_at == comment.created_at

    # the same evidence again: nothing more
    assert _tell_again(one + three, day)[0].get("told", 0) == 0
    assert CtaComment.objects.count() == 4
