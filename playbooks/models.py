"""Playbooks and CTAs: an admin-configured rule (one trigger, conditions, one owner, ordered
steps, one success condition) and the to-dos it opens for an account (``Cta`` with its
``CtaStep`` rows), their comments, and the notifications of escalations.

The parameters of triggers and success conditions are checked by ``playbooks.rules``
(``rules.validate_playbook``), which is the one place that knows them."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts import utc
from accounts.models import Account, BaseModel, User


class CtaType(models.TextChoices):
    RISK = "risk", "Risk"
    OPPORTUNITY = "opportunity", "Opportunity"
    LIFECYCLE = "lifecycle", "Lifecycle"


class Priority(models.TextChoices):
    """Urgency: high is due the same day (red), medium in 48 h (yellow), low in a week
    (green); the hours are ``settings.PLAYBOOK_DUE_HOURS``."""

    HIGH = "high", "High"
    MEDIUM = "medium", "Medium"
    LOW = "low", "Low"


PRIORITY_RANK = {Priority.HIGH: 0, Priority.MEDIUM: 1, Priority.LOW: 2}


class OwnerRule(models.TextChoices):
    ACCOUNT_CSM = "account_csm", "The account's CSM"
    CSM_MANAGER = "csm_manager", "The CSM's manager"
    NAMED_USER = "named_user", "A named user"


class Playbook(BaseModel):
    """One configured rule: when ``trigger`` fires for an account that meets the conditions,
    open a CTA for the owner the rule names, with the template's steps; measure whether the
    success condition is met by its deadline. Every change is a new ``version`` (the old
    configuration is kept in ``PlaybookVersion``; each CTA records the version that opened it).
    """

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    enabled = models.BooleanField(default=True)
    version = models.PositiveIntegerField(default=1)
    starter = models.CharField(
        max_length=50, blank=True, help_text="key of the starter playbook this was loaded from"
    )

    trigger = models.CharField(max_length=40)
    trigger_params = models.JSONField(default=dict, blank=True)

    # conditions (blank / empty: any)
    segments = models.JSONField(default=list, blank=True)
    lifecycle_stages = models.JSONField(default=list, blank=True)
    owners = models.JSONField(default=list, blank=True, help_text="account owner user ids")
    arr_min = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    arr_max = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)

    # CTA template
    cta_title = models.CharField(max_length=200)
    cta_type = models.CharField(max_length=12, choices=CtaType.choices, default=CtaType.RISK)
    priority = models.CharField(max_length=6, choices=Priority.choices, default=Priority.MEDIUM)
    steps = models.JSONField(default=list, help_text='[{"title": str, "due_days": int}, …]')

    owner_rule = models.CharField(
        max_length=12, choices=OwnerRule.choices, default=OwnerRule.ACCOUNT_CSM
    )
    owner_user = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    success = models.CharField(max_length=40)
    success_params = models.JSONField(default=dict, blank=True)
    success_days = models.PositiveIntegerField(default=30, help_text="deadline after opening")
    cooldown_days = models.PositiveIntegerField(default=30, help_text="quiet time after close")

    # actions when a CTA opens
    email_owner = models.BooleanField(default=False)
    webhook_url = models.URLField(blank=True)
    webhook_secret = models.CharField(max_length=200, blank=True)
    slack_url = models.URLField(blank=True, help_text="Slack-compatible incoming webhook")

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(arr_min__isnull=True)
                | Q(arr_max__isnull=True)
                | Q(arr_min__lte=models.F("arr_max")),
                name="playbook_arr_range_ordered",
            ),
            models.CheckConstraint(
                condition=~Q(owner_rule="named_user") | Q(owner_user__isnull=False),
                name="playbook_named_user_given",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def source_label(self) -> str:
        """The outbox ``source`` of this playbook's messages (failures on its page)."""
        return f"playbook:{self.pk}"


class PlaybookVersion(models.Model):
    """The configuration of a playbook as it was at one version (JSON of its fields)."""

    playbook = models.ForeignKey(Playbook, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    config = models.JSONField()
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["playbook_id", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["playbook", "version"], name="playbook_version_once"),
        ]

    def __str__(self) -> str:
        return f"{self.playbook_id} v{self.version}"


class CtaStatus(models.TextChoices):
    PENDING = "pending", "Pending (over the CSM's cap)"
    OPEN = "open", "Open"
    IN_PROGRESS = "in_progress", "In progress"
    DONE = "done", "Done"
    CANCELLED = "cancelled", "Cancelled"


# a CTA in one of these is "open" for deduplication: one per account and playbook
OPEN_STATUSES = (CtaStatus.PENDING, CtaStatus.OPEN, CtaStatus.IN_PROGRESS)
# ... and in these it counts against its owner's cap (a pending one waits for room)
ACTIVE_STATUSES = (CtaStatus.OPEN, CtaStatus.IN_PROGRESS)


class Outcome(models.TextChoices):
    SUCCESS = "success", "Success"
    FAILURE = "failure", "Deadline passed"


class CtaQuerySet(models.QuerySet):
    def open(self) -> CtaQuerySet:
        return self.filter(status__in=OPEN_STATUSES)

    def active(self) -> CtaQuerySet:
        return self.filter(status__in=ACTIVE_STATUSES)

    def visible_to(self, user: User) -> CtaQuerySet:
        """The CTAs of accounts the user may see (``Account.objects.visible_to``), and the
        CTAs given to them (a manager may give a CTA to anyone in their team, who need not
        own the account: ``services.owners_for_reassign``)."""
        seen = Q(account__in=Account.objects.visible_to(user).values("pk"))
        if user.is_authenticated and user.is_active and user.role is not None:
            seen |= Q(owner=user)
        return self.filter(seen)


class Cta(BaseModel):
    """One call to action a playbook opened for one account: who owns it, by when, why
    (``evidence``, in words, with the numbers behind it in ``evidence_data``), its steps, and
    how it ended (status, and the outcome of the playbook's success condition)."""

    Status = CtaStatus

    playbook = models.ForeignKey(Playbook, on_delete=models.PROTECT, related_name="ctas")
    playbook_version = models.PositiveIntegerField()
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="ctas")
    owner = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="ctas"
    )
    title = models.CharField(max_length=300)
    cta_type = models.CharField(max_length=12, choices=CtaType.choices)
    priority = models.CharField(max_length=6, choices=Priority.choices)
    status = models.CharField(max_length=12, choices=CtaStatus.choices, default=CtaStatus.OPEN)
    evidence = models.TextField()
    evidence_data = models.JSONField(default=dict, blank=True)
    opened_at = models.DateTimeField(default=timezone.now)
    opened_on = models.DateField(help_text="the as-of day of the evaluation that opened it")
    due_at = models.DateTimeField()
    snoozed_until = models.DateField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    close_note = models.TextField(blank=True)
    health_at_open = models.FloatField(null=True, blank=True)
    followup_on = models.DateField(help_text="opened_on + 30 days: the health compared with")
    success_deadline = models.DateField()
    outcome = models.CharField(max_length=8, choices=Outcome.choices, blank=True)
    outcome_at = models.DateTimeField(null=True, blank=True)
    outcome_detail = models.TextField(blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    escalated_to = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = CtaQuerySet.as_manager()

    class Meta:
        ordering = ["due_at", "id"]
        constraints = [
            # the deduplication rule: one open CTA per account and playbook; a second
            # evaluation (or a retried task) cannot open another
            models.UniqueConstraint(
                fields=["playbook", "account"],
                condition=Q(status__in=["pending", "open", "in_progress"]),
                name="cta_one_open_per_playbook_account",
            ),
            models.CheckConstraint(
                condition=Q(status__in=[c.value for c in CtaStatus]), name="cta_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(closed_at__isnull=True) | Q(status__in=["done", "cancelled"]),
                name="cta_closed_only_when_done",
            ),
        ]
        indexes = [
            # a CSM's queue: their open CTAs by due date
            models.Index(fields=["owner", "status", "due_at"], name="cta_owner_queue_idx"),
            # cooldown and effectiveness: a playbook's CTAs by close time
            models.Index(fields=["playbook", "closed_at"], name="cta_playbook_closed_idx"),
            # outcome sweep: CTAs still waiting for an outcome
            models.Index(
                fields=["success_deadline"],
                condition=Q(outcome=""),
                name="cta_awaiting_outcome_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.account_id})"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def is_overdue(self, now=None) -> bool:
        now = now or timezone.now()
        return self.status in ACTIVE_STATUSES and self.due_at < now


class CtaStep(models.Model):
    """One to-do of a CTA, in order, with its due date; done once ``done_at`` is set."""

    cta = models.ForeignKey(Cta, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField()
    title = models.CharField(max_length=300)
    due_on = models.DateField()
    done_at = models.DateTimeField(null=True, blank=True)
    done_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["cta_id", "position"]
        constraints = [
            models.UniqueConstraint(fields=["cta", "position"], name="cta_step_position_once"),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def overdue(self) -> bool:
        """Not done and its day (due by the end of ``due_on``, UTC) is past. The CTA itself
        is overdue only after its last step's day (``Cta.due_at``); a late earlier step is
        shown on the step, so a missed first call does not wait for the last one."""
        return self.done_at is None and self.due_on < utc.today()


class CtaComment(models.Model):
    """A comment on a CTA by a team member."""

    cta = models.ForeignKey(Cta, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.body[:50]


class Notification(models.Model):
    """Something a user should know (an overdue CTA escalated to them), shown until read.
    ``key`` names the fact so a retried sweep never notifies twice."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="notifications")
    key = models.CharField(max_length=200, unique=True)
    text = models.CharField(max_length=500)
    link = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # a user's unread notifications
            models.Index(fields=["user", "read_at"], name="notification_user_unread_idx"),
        ]

    def __str__(self) -> str:
        return self.text


class CtaEmailKind(models.TextChoices):
    """The CTA emails a person may turn off, each with the words of the settings page."""

    OPENED = "opened", "A playbook opened a CTA for me"
    ESCALATED = "escalated", "An overdue CTA of my team was escalated to me"


class CtaEmailOff(models.Model):
    """One kind of CTA email a user turned off (the settings page, or the email's own
    unsubscribe link). No row: the email is sent. The in-app notification of an escalation
    is shown either way."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="cta_emails_off")
    kind = models.CharField(max_length=20, choices=CtaEmailKind.choices)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            # turning a kind off twice (two clicks, a settings save) keeps one row; also
            # the index of "who among these owners turned this kind off"
            models.UniqueConstraint(fields=["user", "kind"], name="cta_email_off_once"),
        ]

    def __str__(self) -> str:
        return f"{self.user} off: {self.kind}"
