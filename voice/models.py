"""Voice of the customer: what customers say (sentiment of each text), how well the team
knows them (relationship score), what they keep talking about (themes), and the one number
the company steers by (north-star metric). See docs/metrics.md, "Voice of the customer".
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from accounts.models import Account, BaseModel


class TextSource(models.TextChoices):
    TICKET = "ticket", "Ticket"
    ACTIVITY = "activity", "CSM note or call"
    SURVEY = "survey", "Survey comment"


class TextSentiment(models.Model):
    """The sentiment of one customer text, stored beside it.

    The texts live in other apps' tables (``Ticket.subject``, ``Activity.subject``/``body``,
    survey comments); rather than add a column to each, one row here per text, keyed by
    ``(source, source_id)`` (the source row's primary key), so rescoring is one bulk upsert.
    ``text`` is the *cleaned* text (markup stripped, whitespace collapsed, at most
    ``sentiment.MAX_CHARS`` characters): what the themes and the quotes use, never raw
    markup. ``score`` is −100..100; None means "not scored" (``note`` says why: no words,
    not English), never a neutral 0."""

    Source = TextSource

    source = models.CharField(max_length=10, choices=Source.choices)
    source_id = models.BigIntegerField()
    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="text_sentiments", db_index=False
    )
    occurred_at = models.DateTimeField()
    text = models.TextField(blank=True)
    truncated = models.BooleanField(default=False)
    score = models.SmallIntegerField(null=True, blank=True)
    note = models.CharField(max_length=200, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            # the upsert key of every rescoring
            models.UniqueConstraint(fields=["source", "source_id"], name="text_sentiment_once"),
            models.CheckConstraint(
                condition=Q(score__isnull=True) | Q(score__gte=-100, score__lte=100),
                name="text_sentiment_score_range",
            ),
        ]
        indexes = [
            # an account's texts of the last 90 days (account sentiment, account page)
            models.Index(fields=["account", "occurred_at"], name="text_account_time_idx"),
            # the most recent texts of the book (themes)
            models.Index(fields=["occurred_at"], name="text_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.source}:{self.source_id} ({self.score})"


class AccountVoiceScore(models.Model):
    """One account's voice scores on one day: the recency-weighted sentiment of its texts
    (−100..100, None = no texts in 90 days) and its relationship score (0..100, None = no
    stakeholders known) with the reasons. The history that "sentiment fell below X" and
    "relationship score dropped" compare against."""

    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="voice_scores", db_index=False
    )
    day = models.DateField()
    sentiment = models.SmallIntegerField(null=True, blank=True)
    sentiment_texts = models.PositiveIntegerField(default=0)
    relationship = models.SmallIntegerField(null=True, blank=True)
    relationship_reasons = models.JSONField(default=list, blank=True)
    relationship_inputs = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["account_id", "-day"]
        constraints = [
            # one row per account and day (re-recording a day is an upsert); also the index
            # of an account's history
            models.UniqueConstraint(fields=["account", "day"], name="voice_score_once"),
            models.CheckConstraint(
                condition=Q(sentiment__isnull=True) | Q(sentiment__gte=-100, sentiment__lte=100),
                name="voice_sentiment_range",
            ),
            models.CheckConstraint(
                condition=Q(relationship__isnull=True)
                | Q(relationship__gte=0, relationship__lte=100),
                name="voice_relationship_range",
            ),
        ]
        indexes = [
            # the book on one day (triggers, dashboard)
            models.Index(fields=["day"], name="voice_score_day_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.account_id} on {self.day}"


class ThemeRun(BaseModel):
    """One computation of the feedback themes over the book's recent texts."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    as_of = models.DateField()
    texts = models.PositiveIntegerField(default=0)
    themes = models.PositiveIntegerField(default=0)
    seconds = models.FloatField(null=True, blank=True)
    error = models.TextField(blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"themes run #{self.pk} ({self.status})"


class Theme(models.Model):
    """A recurring subject in the customers' words, found by one run: named by its top
    terms, with three representative quotes and the outcomes of the accounts that mention
    it compared with the rest of the book (stored: the leaders' page reads one row each)."""

    run = models.ForeignKey(ThemeRun, on_delete=models.CASCADE, related_name="theme_set")
    rank = models.PositiveSmallIntegerField()  # 1 = the most texts
    label = models.CharField(max_length=200)
    terms = models.JSONField(default=list)
    texts = models.PositiveIntegerField()
    negative_share = models.FloatField(null=True, blank=True)  # % of scored texts below 0
    mean_sentiment = models.FloatField(null=True, blank=True)
    quotes = models.JSONField(default=list)  # [text_sentiment id, …] nearest the centre first
    outcomes = models.JSONField(default=dict)  # accounts, arr, churn_rate, rest_…, nps …
    trend = models.JSONField(default=list)  # [{"month": "2026-06", "texts": n}, …]

    class Meta:
        ordering = ["run_id", "rank"]
        constraints = [
            models.UniqueConstraint(fields=["run", "rank"], name="theme_rank_once"),
        ]

    def __str__(self) -> str:
        return self.label


class ThemeText(models.Model):
    """A text that belongs to a theme (the drill-down from a theme to its quotes and
    accounts). ``account`` is copied from the text so "the accounts visible to me" is one
    join."""

    theme = models.ForeignKey(Theme, on_delete=models.CASCADE, related_name="members")
    text = models.ForeignKey(TextSentiment, on_delete=models.CASCADE, related_name="themes")
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    similarity = models.FloatField()  # cosine to the theme's centre: the best quotes first

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["theme", "text"], name="theme_text_once"),
        ]
        indexes = [
            # a theme's accounts and quotes, best first
            models.Index(fields=["theme", "-similarity"], name="theme_text_best_idx"),
        ]

    def __str__(self) -> str:
        return f"text {self.text_id} in theme {self.theme_id}"


class NorthStar(BaseModel):
    """The north-star metric an admin picked: the weekly count of one usage event, or the
    weekly sum of its ``value``. One row at most (pk 1)."""

    class Aggregation(models.TextChoices):
        COUNT = "count", "Count of events"
        SUM = "sum", "Sum of the event's value"

    label = models.CharField(max_length=100)
    event = models.CharField(max_length=200)
    aggregation = models.CharField(
        max_length=5, choices=Aggregation.choices, default=Aggregation.COUNT
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(pk=1), name="north_star_single_row"),
            models.CheckConstraint(
                condition=Q(aggregation__in=["count", "sum"]), name="north_star_aggregation"
            ),
        ]

    def __str__(self) -> str:
        return self.label


class NorthStarWeek(models.Model):
    """The north-star value of one account in one ISO week (``week`` is its Monday, UTC).
    Weeks without a single event have no row (the value is 0, and the week is shown as
    0 once the account has any row in the window)."""

    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="north_star_weeks", db_index=False
    )
    week = models.DateField()
    value = models.FloatField()

    class Meta:
        constraints = [
            # rebuild upsert key; also an account's weeks
            models.UniqueConstraint(fields=["account", "week"], name="north_star_week_once"),
        ]
        indexes = [
            # the book's total per week (dashboard)
            models.Index(fields=["week"], name="north_star_week_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.account_id} week of {self.week}: {self.value:g}"
