"""voice services and selectors on the database: texts written in the test."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from accounts import intake
from accounts.models import Activity, Stakeholder, TimelineEntry, UsageFeatureDaily
from metrics.kpis.health_inputs import account_measures
from tests.factories import AccountFactory, ContractFactory, StakeholderFactory, TicketFactory
from voice import selectors, services
from voice.models import AccountVoiceScore, NorthStar, NorthStarWeek, TextSentiment, Theme, ThemeRun

pytestmark = pytest.mark.django_db
D = dt.date(2024, 3, 31)


def at(day: dt.date, hour: int = 9) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC)


def ago(days: int) -> dt.datetime:
    return at(D - dt.timedelta(days=days))


def test_texts_are_scored_cleaned_and_keyed_by_source():
    account = AccountFactory()
    t = TicketFactory(account=account, subject="<b>Export</b> is terribly slow &amp; failing")
    note = Activity.objects.create(
        account=account, kind="note", subject="Call recap", body="They love the dashboards!"
    )
    Activity.objects.create(account=account, kind="email", subject="Sent the invoice")  # not a text
    counts = services.text_sentiments_refresh()
    assert counts == {"texts": 2, "scored": 2, "not_scored": 0, "truncated": 0}
    ticket_row = TextSentiment.objects.get(source="ticket", source_id=t.pk)
    assert ticket_row.text == "Export is terribly slow & failing"  # no markup stored
    assert ticket_row.score < 0 and ticket_row.account_id == account.pk
    note_row = TextSentiment.objects.get(source="activity", source_id=note.pk)
    assert note_row.text == "Call recap. They love the dashboards!" and note_row.score > 0
    # again: the same rows, updated in place
    services.text_sentiments_refresh()
    assert TextSentiment.objects.count() == 2


def test_empty_long_and_foreign_texts_are_stored_without_a_score_or_truncated():
    account = AccountFactory()
    empty = TicketFactory(account=account, subject="")
    german = TicketFactory(account=account, subject="Der Export ist sehr langsam und nicht gut")
    long = Activity.objects.create(account=account, kind="note", body="slow export " * 2000)
    counts = services.text_sentiments_refresh()
    assert counts == {"texts": 3, "scored": 1, "not_scored": 2, "truncated": 1}
    assert TextSentiment.objects.get(source_id=empty.pk, source="ticket").score is None
    row = TextSentiment.objects.get(source_id=german.pk, source="ticket")
    assert row.score is None and row.note == "not scored: not English"
    row = TextSentiment.objects.get(source_id=long.pk, source="activity")
    assert row.truncated and row.note == "truncated from 23,999 characters" and row.score < 0


def test_an_account_without_texts_has_no_sentiment_not_zero():
    quiet, talkative = AccountFactory(), AccountFactory()
    TicketFactory(account=talkative, subject="Everything is great, thanks!", opened_at=ago(1))
    services.text_sentiments_refresh()
    services.voice_scores_record(as_of=D)
    assert AccountVoiceScore.objects.get(account=quiet, day=D).sentiment is None
    assert AccountVoiceScore.objects.get(account=talkative, day=D).sentiment > 0
    m = account_measures(type(quiet).objects.all(), as_of=D)
    assert "text_sentiment" not in m.get(quiet.pk, {})
    assert m[talkative.pk]["text_sentiment_texts"] == 1


def test_account_sentiment_weights_recent_texts_by_hand():
    account = AccountFactory()
    TextSentiment.objects.bulk_create(
        [
            TextSentiment(
                source="ticket", source_id=1, account=account, occurred_at=ago(0), score=60
            ),
            TextSentiment(
                source="ticket", source_id=2, account=account, occurred_at=ago(30), score=-60
            ),
            TextSentiment(
                source="ticket", source_id=3, account=account, occurred_at=ago(95), score=-100
            ),
            TextSentiment(
                source="ticket", source_id=4, account=account, occurred_at=ago(5), score=None
            ),
        ]
    )
    # (1 × 60 + 0.5 × −60) / 1.5 = 20; the 95-day-old and the unscored text do not count
    got = selectors.account_sentiments(type(account).objects.all(), as_of=D)
    assert got == {account.pk: {"sentiment": 20.0, "texts": 2}}


def _call(account, people, days_ago: int, kind: str = "call") -> Activity:
    a = Activity.objects.create(account=account, kind=kind, occurred_at=ago(days_ago))
    a.stakeholders.set(people)
    return a


def test_relationship_from_stakeholders_and_two_way_contacts():
    account = AccountFactory()
    champion = StakeholderFactory(account=account, role="champion", name="Cam")
    dm = StakeholderFactory(account=account, role="decision_maker", name="Dee")
    user = StakeholderFactory(account=account, role="user")
    Stakeholder.objects.update(created_at=at(dt.date(2024, 1, 1)))
    _call(account, [champion], 10)
    _call(account, [dm, user], 60, kind="meeting")
    _call(account, [dm], 2, kind="note")  # a note is not a two-way contact
    _call(account, [champion], -3)  # after the day: not known yet
    r = selectors.account_relationships(type(account).objects.all(), as_of=D)[account.pk]
    # champion 10 days → 30; decision maker 60 days → 10; no sponsor → 0; 3 engaged → 18
    assert r.score == 58
    assert r.reasons[1] == "decision maker Dee: last contact 60 days ago (10/20)"


def test_a_champion_who_left_is_found_from_the_first_import():
    """Imported as champion, later re-imported as a user: the champion left."""
    account = AccountFactory(external_id="A-1")
    row = {"external_id": "S-1", "account_external_id": "A-1", "name": "Cam", "role": "champion"}
    assert intake.run_import([intake.source_from_rows("stakeholders", [row], name="t")]).ok
    assert intake.run_import(
        [intake.source_from_rows("stakeholders", [{**row, "role": "user"}], name="t")]
    ).ok
    assert TimelineEntry.objects.filter(kind="stakeholder_added", account=account).count() == 1
    today = dt.datetime.now(dt.UTC).date()
    r = selectors.account_relationships(type(account).objects.all(), as_of=today)[account.pk]
    # no champion (0), no decision maker (0), no sponsor (0), nobody engaged (0), left −20 → 0
    assert r.score == 0
    assert "champion left (Cam) (−20)" in r.reasons


def test_relationship_is_no_data_without_stakeholders():
    account = AccountFactory()
    assert selectors.account_relationships(type(account).objects.all(), as_of=D) == {}
    services.voice_scores_record(as_of=D)
    assert AccountVoiceScore.objects.get(account=account).relationship is None


def test_voice_scores_query_count_does_not_grow_with_accounts(django_assert_num_queries):
    def book(n):
        for _ in range(n):
            a = AccountFactory()
            s = StakeholderFactory(account=a, role="champion")
            _call(a, [s], 5)
            TicketFactory(account=a, subject="slow export", opened_at=ago(3))

    book(3)
    services.text_sentiments_refresh()
    # account ids, texts, people with their last contact, champions recorded, savepoint,
    # upsert, release: 7 for one chunk, however many accounts
    with django_assert_num_queries(7):
        services.voice_scores_record(as_of=D)
    book(12)
    services.text_sentiments_refresh()
    with django_assert_num_queries(7):
        services.voice_scores_record(as_of=D)
    assert AccountVoiceScore.objects.filter(day=D).count() == 15


def test_themes_tie_complaints_to_churn():
    """Four customers complain about exports, three of them churned; four others praise
    the dashboards and none churned."""
    today = dt.datetime.now(dt.UTC).date()
    complainers, fans = AccountFactory.create_batch(4), AccountFactory.create_batch(4)
    for i, a in enumerate(complainers):
        churned = i < 3
        ContractFactory(
            account=a,
            start_date=dt.date(2023, 1, 1),
            end_date=today - dt.timedelta(days=10) if churned else None,
            mrr=Decimal("100.00"),
        )
        for text in ("Export is so slow", "The CSV export is slow again"):
            TicketFactory(account=a, subject=text, opened_at=at(today - dt.timedelta(days=20)))
    for a in fans:
        ContractFactory(account=a, start_date=dt.date(2023, 1, 1), mrr=Decimal("50.00"))
        for text in ("We love the new dashboards", "The dashboards are great"):
            TicketFactory(account=a, subject=text, opened_at=at(today - dt.timedelta(days=5)))
    services.text_sentiments_refresh()
    run = services.theme_run_start(as_of=today)
    services.themes_compute(run=run)
    run.refresh_from_db()
    assert run.status == "succeeded" and run.texts == 16
    themes = {t.label: t for t in Theme.objects.filter(run=run)}
    export = next(t for label, t in themes.items() if "export" in label)
    dashboards = next(t for label, t in themes.items() if "dashboards" in label)
    assert export.texts == 8 and export.outcomes["accounts"] == 4
    # 3 of the 4 complaining customers churned: 75 %; the rest (4 fans): 0 %
    assert export.outcomes["churn_rate"] == 75.0 and export.outcomes["rest_churn_rate"] == 0.0
    # ARR of the complainers: only the one still paying, 12 × 100
    assert export.outcomes["arr"] == 1200.0
    assert (
        dashboards.outcomes["churn_rate"] == 0.0 and dashboards.outcomes["rest_churn_rate"] == 75.0
    )
    assert export.mean_sentiment < 0 < dashboards.mean_sentiment
    assert len(export.quotes) == 2  # two distinct texts
    assert sum(m["texts"] for m in export.trend) == 8
    # a second run replaces the first run's themes
    run2 = services.theme_run_start(as_of=today)
    services.themes_compute(run=run2)
    assert set(Theme.objects.values_list("run_id", flat=True)) == {run2.pk}


def test_only_one_themes_run_at_a_time():
    first = services.theme_run_start(as_of=D)
    assert first is not None and services.theme_run_start(as_of=D) is None
    ThemeRun.objects.filter(pk=first.pk).update(status="succeeded")
    assert services.theme_run_start(as_of=D) is not None


def test_north_star_weeks_by_hand(admin_user):
    a, b = AccountFactory(), AccountFactory()
    monday = dt.date(2024, 3, 18)
    for account, day, n in [
        (a, monday, 3),
        (a, monday + dt.timedelta(days=6), 2),  # Sunday: same week
        (a, monday + dt.timedelta(days=7), 4),  # next Monday
        (b, monday + dt.timedelta(days=1), 10),
    ]:
        UsageFeatureDaily.objects.create(
            account=account, day=day, event="report_created", events=n, users=1
        )
    UsageFeatureDaily.objects.create(account=a, day=monday, event="login", events=99, users=1)
    services.north_star_set(
        label="Reports", event="report_created", aggregation="count", user=admin_user
    )
    services.north_star_weeks_record(as_of=monday + dt.timedelta(days=8))
    weeks = set(NorthStarWeek.objects.values_list("account_id", "week", "value"))
    # a: 3 + 2 = 5 in the week of the 18th, 4 in the week of the 25th; b: 10
    assert weeks == {(a.pk, monday, 5.0), (a.pk, dt.date(2024, 3, 25), 4.0), (b.pk, monday, 10.0)}
    total = selectors.north_star_total(user=admin_user, as_of=dt.date(2024, 4, 2))
    # the last complete week (of the 25th) 4 against the week before (of the 18th) 15
    assert total["last_week"] == 4.0 and total["week_before"] == 15.0
    assert total["change"] == round(100 * (4 - 15) / 15, 1)


def test_north_star_refuses_an_unknown_event(admin_user):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as exc:
        services.north_star_set(label="X", event="nope", aggregation="count", user=admin_user)
    assert "no usage event named 'nope'" in str(exc.value)
    assert not NorthStar.objects.exists()


def _record(account, day, sentiment=None, relationship=None):
    AccountVoiceScore.objects.create(
        account=account, day=day, sentiment=sentiment, relationship=relationship,
        relationship_reasons=["r"] if relationship is not None else [],
    )  # fmt: skip


def test_sentiment_fell_below_fires_on_the_day_it_crossed():
    crossed, stays_low, was_unknown, fine = AccountFactory.create_batch(4)
    before = D - dt.timedelta(days=1)
    _record(crossed, before, sentiment=-5)
    _record(crossed, D, sentiment=-25)
    _record(stays_low, before, sentiment=-40)  # already below: no new event
    _record(stays_low, D, sentiment=-45)
    _record(was_unknown, D, sentiment=-30)  # no data the day before: it fell now
    _record(fine, before, sentiment=10)
    _record(fine, D, sentiment=-19)  # −19 is not below −20
    got = selectors.sentiment_fell_below(threshold=-20, as_of=D)
    assert set(got) == {crossed.pk, was_unknown.pk}
    assert got[crossed.pk]["evidence"] == "sentiment -25 on 2024-03-31 (below -20; was -5)"


def test_relationship_dropped_compares_with_days_before():
    dropped, small, new = AccountFactory.create_batch(3)
    week_ago = D - dt.timedelta(days=7)
    _record(dropped, week_ago, relationship=70)
    _record(dropped, D, relationship=45)  # −25
    _record(small, week_ago, relationship=70)
    _record(small, D, relationship=55)  # −15 < 20
    _record(new, D, relationship=10)  # nothing to compare with
    got = selectors.relationship_dropped(points=20, days=7, as_of=D)
    assert list(got) == [dropped.pk]
    assert got[dropped.pk]["evidence"] == "stakeholder coverage 70 → 45 in 7 days"


def test_timeline_entries_get_the_sentiment_of_their_text(django_assert_max_num_queries):
    account = AccountFactory(external_id="A-9")
    row = {
        "external_id": "T-1", "account_external_id": "A-9", "subject": "Export is broken and slow",
        "opened_at": "2024-03-01T09:00:00Z",
    }  # fmt: skip
    assert intake.run_import([intake.source_from_rows("tickets", [row], name="t")]).ok
    note = Activity.objects.create(account=account, kind="call", subject="They love it!")
    TimelineEntry.objects.create(
        account=account, key=f"activity:{note.pk}", kind="activity", title="Call",
        occurred_at=at(D), data={"activity": note.pk},
    )  # fmt: skip
    services.text_sentiments_refresh()
    entries = list(TimelineEntry.objects.filter(account=account))
    with django_assert_max_num_queries(3):
        got = selectors.timeline_sentiments(entries)
    by_key = {e.key: got.get(e.pk) for e in entries}
    assert by_key["ticket:T-1:opened"] < 0 and by_key[f"activity:{note.pk}"] > 0


def test_voice_refresh_command_scores_records_and_finds_themes():
    from io import StringIO

    from django.core.management import call_command

    account = AccountFactory()
    for text in ["Export is so slow", "The CSV export is slow again", "Slow export"] * 2 + [
        "We love the dashboards", "Dashboards are great", "great new dashboards",
    ] * 2:  # fmt: skip
        TicketFactory(account=account, subject=text, opened_at=ago(2))
    out = StringIO()
    call_command("voice_refresh", "--as-of", D.isoformat(), "--themes", stdout=out)
    assert '"scored": 12' in out.getvalue()
    assert AccountVoiceScore.objects.get(account=account, day=D).sentiment is not None
    assert ThemeRun.objects.get().status == "succeeded" and Theme.objects.count() == 2
