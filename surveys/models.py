"""Surveys: the question (``Survey``), who is asked and when (``Campaign``), one person's link
(``Invitation``), their answers (``Response``) and the people who asked not to be surveyed
(``OptOut``). Scoring rules live in ``surveys.scoring`` (pure), writes in ``surveys.services``.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from accounts.models import Account, BaseModel, Stakeholder, User


class SurveyKind(models.TextChoices):
    NPS = "nps", "NPS (0–10)"
    CSAT = "csat", "CSAT (1–5)"
    CES = "ces", "CES (1–7)"


def _score_in_range() -> Q:
    """The scales of ``surveys.scoring.SCALES``, checked by the database too."""
    return (
        Q(kind="nps", score__gte=0, score__lte=10)
        | Q(kind="csat", score__gte=1, score__lte=5)
        | Q(kind="ces", score__gte=1, score__lte=7)
    )


class Survey(BaseModel):
    """One question asked of the customer's people: an NPS, CSAT or CES score, an optional
    follow-up question answered in a comment box, the page's language and, per language,
    overrides of the public page's strings (``surveys.strings.DEFAULTS`` names them)."""

    Kind = SurveyKind

    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=4, choices=Kind.choices)
    question = models.CharField(max_length=500)
    follow_up = models.CharField(
        max_length=500, blank=True, help_text="Optional: the comment box's question"
    )
    language = models.CharField(max_length=10, default="en", help_text="e.g. en, de, fr")
    strings = models.JSONField(
        default=dict,
        blank=True,
        help_text='Page strings per language, e.g. {"de": {"submit": "Absenden"}}',
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=[c.value for c in SurveyKind]), name="survey_kind_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Campaign(BaseModel):
    """A survey sent to an audience: stakeholders of the accounts that match the filters
    (empty filter = any), once, every N months, or on an event for one account at a time."""

    class Trigger(models.TextChoices):
        ONE_OFF = "one_off", "One-off"
        RECURRING = "recurring", "Recurring"
        EVENT = "event", "On an event"

    class Event(models.TextChoices):
        TICKET_SOLVED = "ticket_solved", "Ticket solved"
        RENEWAL = "renewal", "N days before renewal"
        PLAYBOOK = "playbook", "A playbook step"

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        ACTIVE = "active", "Active"
        CLOSED = "closed", "Closed"

    name = models.CharField(max_length=200)
    survey = models.ForeignKey(Survey, on_delete=models.PROTECT, related_name="campaigns")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    trigger = models.CharField(max_length=10, choices=Trigger.choices, default=Trigger.ONE_OFF)
    event = models.CharField(max_length=20, choices=Event.choices, blank=True)
    renewal_days_before = models.PositiveSmallIntegerField(null=True, blank=True)
    # audience filters (lists of values; empty = no filter)
    segments = models.JSONField(default=list, blank=True)
    bands = models.JSONField(default=list, blank=True)  # health bands: green, yellow, red
    lifecycle_stages = models.JSONField(default=list, blank=True)
    roles = models.JSONField(default=list, blank=True)  # stakeholder roles
    # schedule: one-off sends at next_run_at; recurring sends then every N months
    next_run_at = models.DateTimeField(null=True, blank=True)
    recurrence_months = models.PositiveSmallIntegerField(null=True, blank=True)
    runs = models.PositiveIntegerField(default=0, help_text="scheduled sends so far")
    # event campaigns: events up to this instant were looked at (the sweeper's watermark)
    events_checked_until = models.DateTimeField(null=True, blank=True)
    reminder_after_days = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Remind non-responders after N days (empty: never)"
    )
    expires_after_days = models.PositiveSmallIntegerField(
        default=30, help_text="An invitation's link works for N days"
    )
    closes_at = models.DateTimeField(
        null=True, blank=True, help_text="After this nobody can answer or change an answer"
    )
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # who saved it last in the editor (None after a send moved it on): named when a save
    # from a page opened before is refused (``services.campaign_save``)
    updated_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # the scheduler's sweep: active campaigns due to send
            models.Index(fields=["status", "next_run_at"], name="campaign_due_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(trigger="event") | Q(event=""), name="campaign_event_only_if_event"
            ),
            models.CheckConstraint(
                condition=~Q(trigger="recurring") | Q(recurrence_months__gte=1),
                name="campaign_recurring_has_interval",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Invitation(BaseModel):
    """One person's link to one round of a campaign. ``token`` is 256 random bits
    (``secrets.token_urlsafe(32)``); the link stops working at ``expires_at`` or when the
    campaign closes. ``round`` names the send: "1", "2" … for scheduled sends, the event
    ("ticket:T-17", "renewal:2025-03-31", "playbook:…") for event campaigns."""

    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="invitations", db_index=False
    )
    round = models.CharField(max_length=100, default="1")
    stakeholder = models.ForeignKey(
        Stakeholder, on_delete=models.CASCADE, related_name="survey_invitations"
    )
    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="survey_invitations", db_index=False
    )
    email = models.EmailField()  # lower-cased: fatigue counts a person by address
    token = models.CharField(max_length=64, unique=True)  # the public page's lookup
    expires_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    reminders_sent = models.PositiveSmallIntegerField(default=0)
    last_reminded_at = models.DateTimeField(null=True, blank=True)
    responded_at = models.DateTimeField(null=True, blank=True)  # first answer

    class Meta:
        constraints = [
            # one invitation per person per round of a campaign (also the campaign's index)
            models.UniqueConstraint(
                fields=["campaign", "round", "stakeholder"], name="invitation_once"
            ),
        ]
        indexes = [
            # fatigue: invitations to one address in the last N days / year
            models.Index(fields=["email", "sent_at"], name="invitation_email_sent_idx"),
            # response rate per account and period
            models.Index(fields=["account", "sent_at"], name="invitation_account_sent_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id}/{self.round} → {self.email}"


class Response(models.Model):
    """One NPS/CSAT/CES answer, via a survey link or imported from another tool. A changed
    answer is a new row: the older one stays (history) with ``is_current`` False, so one
    invitation has at most one current response (a partial unique constraint, the backstop
    behind the row lock in ``response_record``)."""

    class Source(models.TextChoices):
        LINK = "link", "Survey link"
        IMPORT = "import", "Imported"

    Kind = SurveyKind

    invitation = models.ForeignKey(
        Invitation, null=True, blank=True, on_delete=models.CASCADE, related_name="responses"
    )
    campaign = models.ForeignKey(
        Campaign,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="responses",
        db_index=False,  # response_campaign_time_idx starts with it
    )
    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="survey_responses", db_index=False
    )
    stakeholder = models.ForeignKey(
        Stakeholder,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="survey_responses",
    )
    kind = models.CharField(max_length=4, choices=Kind.choices)
    score = models.SmallIntegerField()
    comment = models.TextField(blank=True)
    answered_at = models.DateTimeField()
    is_current = models.BooleanField(default=True)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.LINK)
    # imported answers: account, person, kind and time name the answer, so a re-import of the
    # same file updates instead of adding (see surveys.intake). Unique where set (a partial
    # index: an answer from a link, the public page's hot path, adds no entry to it)
    import_key = models.CharField(max_length=300, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-answered_at", "-id"]
        indexes = [
            # KPIs per account (and scope) over a period; results pages
            models.Index(fields=["account", "answered_at"], name="response_account_time_idx"),
            # results per campaign
            models.Index(fields=["campaign", "answered_at"], name="response_campaign_time_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["invitation"],
                condition=Q(is_current=True),
                name="response_one_current_per_invitation",
            ),
            models.CheckConstraint(condition=_score_in_range(), name="response_score_in_scale"),
            models.UniqueConstraint(
                fields=["import_key"],
                condition=Q(import_key__isnull=False),
                name="response_import_key_once",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind.upper()} {self.score} ({self.account_id})"


class OptOut(models.Model):
    """A person (by email address, lower-cased) who asked never to be surveyed again."""

    email = models.EmailField(unique=True)
    invitation = models.ForeignKey(
        Invitation, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.email


class AnswerToAnnounce(models.Model):
    """An answer written but not yet announced to its listeners (the playbooks' event
    triggers, the health recompute): written by the POST in the same statement as the answer
    and its timeline fact, read and deleted in batches by ``services.answers_announce`` (a
    beat task every few seconds). A durable queue: a worker that dies mid-batch leaves its
    rows claimed until ``claimed_until`` passes, and the next run announces them.

    Plain ids rather than foreign keys: no foreign-key checks on the public page's hot
    path, and a row whose fact or account was deleted meanwhile announces nothing (the
    listeners read what still exists)."""

    entry_id = models.BigIntegerField(primary_key=True)  # accounts.TimelineEntry
    account_id = models.BigIntegerField()
    claimed_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "answer to announce"

    def __str__(self) -> str:
        return f"fact {self.entry_id} of account {self.account_id}"
