"""Voice pages: who sees what, and what they show."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from accounts import utc
from accounts.models import UsageFeatureDaily
from tests.factories import AccountFactory, ContractFactory, StakeholderFactory, TicketFactory
from voice import services
from voice.models import NorthStar, Theme, ThemeRun

pytestmark = pytest.mark.django_db
TODAY = dt.datetime.now(dt.UTC).date()


def _themes(csm, manager):
    """Export complaints from a CSM's account and from another team's account."""
    mine = AccountFactory(owner=csm, name="Mine Inc")
    other = AccountFactory(name="Other Corp")
    when = dt.datetime.combine(TODAY - dt.timedelta(days=3), dt.time(9), tzinfo=dt.UTC)
    for account in (mine, other):
        for text in ("Export is so slow", "The CSV export is slow again", "Slow export"):
            TicketFactory(account=account, subject=text, opened_at=when)
        for text in ("We love the dashboards", "Dashboards are great", "great new dashboards"):
            TicketFactory(account=account, subject=text, opened_at=when)
    services.text_sentiments_refresh()
    services.themes_compute(run=services.theme_run_start(as_of=TODAY))
    export = Theme.objects.get(label__contains="export")
    return mine, other, export


def test_leaders_see_outcomes_csms_see_their_accounts(client, csm, manager):
    _themes(csm, manager)
    client.force_login(manager)
    r = client.get(reverse("voice:themes"))
    assert r.status_code == 200 and b"Churn, rest" in r.content
    client.force_login(csm)
    r = client.get(reverse("voice:themes"))
    assert (
        r.status_code == 200 and b"Your accounts" in r.content and b"Churn, rest" not in r.content
    )


def test_theme_detail_shows_only_visible_accounts_and_quotes(
    client, csm, manager, django_assert_max_num_queries
):
    mine, other, export = _themes(csm, manager)
    client.force_login(csm)
    with django_assert_max_num_queries(11):
        r = client.get(reverse("voice:theme-detail", args=[export.pk]))
    body = r.content.decode()
    assert "Mine Inc" in body and "Other Corp" not in body
    assert body.count('<li id="text-') == 3  # the three complaints of the CSM's account
    assert 1 <= body.count('<li id="quote-') <= 3  # the typical ones the CSM may see
    assert reverse("voice:account", args=[mine.pk]) in body
    # ARR as money, as the queue prints it: Mine Inc has no contract, $0
    assert '<td class="num">$0</td>' in body
    # the trend's months in words ("Nov 2026: 3"), not their keys ("2026-11")
    months = [m["month"] for m in export.trend]
    assert months and all(f"{utc.month_text(m)}: " in body for m in months)
    assert not any(f"{m} " in body for m in months)
    client.force_login(manager)  # sees the team's accounts: the CSM's, not the other one
    # $7,000 MRR from a week ago, open-ended: 12 × 7,000 = $84k ARR
    ContractFactory(account=mine, start_date=TODAY - dt.timedelta(days=7), mrr=7000)
    assert (
        '<td class="num">$84k</td>'
        in client.get(reverse("voice:theme-detail", args=[export.pk])).content.decode()
    )
    assert (
        "Other Corp"
        not in client.get(reverse("voice:theme-detail", args=[export.pk])).content.decode()
    )


def test_account_voice_page_404_outside_the_book(client, csm, outsider):
    account = AccountFactory(owner=csm)
    client.force_login(outsider)
    assert client.get(reverse("voice:account", args=[account.pk])).status_code == 404
    client.force_login(csm)
    other = AccountFactory()
    assert client.get(reverse("voice:account", args=[other.pk])).status_code == 404


def test_account_voice_page_says_no_data(client, csm, django_assert_max_num_queries):
    account = AccountFactory(owner=csm)
    client.force_login(csm)
    with django_assert_max_num_queries(14):
        r = client.get(reverse("voice:account", args=[account.pk]))
    body = r.content.decode()
    assert r.status_code == 200
    assert "no data" in body and "not a neutral 0" in body
    assert "No stakeholders known" in body


def test_account_voice_page_shows_relationship_reasons_and_clean_texts(client, csm):
    account = AccountFactory(owner=csm)
    StakeholderFactory(account=account, role="champion", name="Cam Champion")
    TicketFactory(account=account, subject="<script>alert(1)</script>Export <b>fails</b>")
    services.text_sentiments_refresh()
    client.force_login(csm)
    body = client.get(reverse("voice:account", args=[account.pk])).content.decode()
    assert "champion Cam Champion: never contacted (6/30)" in body
    assert "Export fails" in body and "<script>alert" not in body


def test_only_leaders_recompute_themes(
    client, csm, manager, django_capture_on_commit_callbacks, celery_eager
):
    client.force_login(csm)
    assert client.post(reverse("voice:themes-recompute")).status_code == 403
    client.force_login(manager)
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post(reverse("voice:themes-recompute"))
    assert r.status_code == 302
    run = ThemeRun.objects.get()
    assert run.requested_by == manager and run.status == "succeeded"  # eager: ran at once


def test_north_star_page_is_for_admins_only(client, csm, manager, admin_user):
    for user in (csm, manager):
        client.force_login(user)
        assert client.get(reverse("voice:north-star")).status_code == 403
    client.force_login(admin_user)
    assert client.get(reverse("voice:north-star")).status_code == 200


def test_admin_sets_the_north_star(
    client, admin_user, django_capture_on_commit_callbacks, celery_eager
):
    account = AccountFactory()
    UsageFeatureDaily.objects.create(
        account=account, day=TODAY, event="report_created", events=7, users=1
    )
    client.force_login(admin_user)
    r = client.post(
        reverse("voice:north-star"), {"label": "Reports", "event": "nope", "aggregation": "count"}
    )
    assert r.status_code == 200 and "no usage event named" in r.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post(
            reverse("voice:north-star"),
            {"label": "Reports", "event": "report_created", "aggregation": "count"},
        )
    assert r.status_code == 302
    assert NorthStar.objects.get().event == "report_created"
    assert account.north_star_weeks.get().value == 7.0
    body = client.get(reverse("voice:themes")).content.decode()
    assert "North star: Reports" in body
