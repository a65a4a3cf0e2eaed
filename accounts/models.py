"""The customer data model: who the customers are, what they pay, who works there, how they
use the product, what they ask support, what they are billed, and what the CS team did.

The contract for this data is ``shared/docs/data-import.md``. Every row that comes from a
source system carries that system's ``external_id`` (unique per kind) so imports upsert.
"""

from __future__ import annotations

import secrets
import uuid
from hashlib import sha256

from django.contrib.auth.base_user import BaseUserManager
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.functional import cached_property


class BaseModel(models.Model):
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


# --- users and roles ----------------------------------------------------------------------


class Role(models.TextChoices):
    """The three roles are Django groups of the same names (see migration 0002)."""

    ADMIN = "Admin", "Admin"
    MANAGER = "Manager", "Manager"
    CSM = "CSM", "CSM"


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create(self, email: str, password: str | None, **extra) -> User:
        if not email:
            raise ValueError("An email address is required")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra) -> User:
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra) -> User:
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self._create(email, password, **extra)


class User(AbstractUser):
    """A person who signs in: a CSM, a CS manager or an admin. Signs in with their email."""

    username = None
    email = models.EmailField("email address", unique=True)
    manager = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="reports",
        help_text="Their CS manager: sees this user's accounts and gets their escalations.",
    )

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []
    objects = UserManager()

    class Meta:
        constraints = [
            # owner_email in imports is matched case-insensitively
            models.UniqueConstraint(Lower("email"), name="user_email_ci_unique"),
        ]

    def __str__(self) -> str:
        return self.get_full_name() or self.email

    @cached_property
    def role(self) -> str | None:
        """The highest role the user holds: Admin > Manager > CSM (None for none). Read once
        per user object, i.e. once per request."""
        if self.is_superuser:
            return Role.ADMIN
        names = {g.name for g in self.groups.all()}
        for role in (Role.ADMIN, Role.MANAGER, Role.CSM):
            if role in names:
                return role
        return None

    @property
    def access_state(self) -> str:
        """Role, manager and active flag in one string, as the users page shows them: a save
        from a page showing another state is refused (``services.user_access_update``)."""
        return f"{self.role or ''}|{self.manager_id or ''}|{int(self.is_active)}"


class ApiToken(BaseModel):
    """A secret that lets a program call the API as a user. Only a hash is stored.

    ``created_by``/``revoked_by`` are the people who made and revoked it, ``created_via``/
    ``revoked_via`` where (the Manage page, the Django admin, a command). A null person
    with a door recorded is a command (nobody signed in) or a user deleted since; both
    blank is a token from before migration 0009, when nobody recorded who."""

    class Scope(models.TextChoices):
        READ = "read", "Read"
        WRITE = "write", "Read and write"

    class Via(models.TextChoices):
        PAGE = "page", "Manage page"
        ADMIN = "admin", "Django admin"
        COMMAND = "command", "Command"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, help_text="First characters, to recognise a token")
    key_hash = models.CharField(max_length=64, unique=True)  # token lookup on every API call
    scope = models.CharField(max_length=5, choices=Scope.choices, default=Scope.WRITE)
    last_used_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_via = models.CharField(max_length=10, choices=Via.choices, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_via = models.CharField(max_length=10, choices=Via.choices, blank=True)

    class Meta:
        constraints = [
            # who revoked it only on a revoked token (services.api_token_revoke writes the
            # three together)
            models.CheckConstraint(
                condition=Q(revoked_at__isnull=False) | Q(revoked_by__isnull=True, revoked_via=""),
                name="api_token_revoker_only_if_revoked",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @staticmethod
    def hash_key(key: str) -> str:
        return sha256(key.encode()).hexdigest()

    @classmethod
    def issue(
        cls,
        *,
        user: User,
        name: str,
        scope: str = Scope.WRITE,
        created_by: User | None = None,
        created_via: str = "",
    ) -> tuple[ApiToken, str]:
        """Create a token; returns it with the clear key, which is shown once."""
        key = "cs_" + secrets.token_urlsafe(32)
        token = cls.objects.create(
            user=user,
            name=name,
            prefix=key[:10],
            key_hash=cls.hash_key(key),
            scope=scope,
            created_by=created_by,
            created_via=created_via,
        )
        return token, key

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    # the two below read created_by/revoked_by: load them with the token (select_related,
    # as selectors.api_token_list does) or each costs a query

    @property
    def created_by_words(self) -> str | None:
        """Who made the token, for the tokens page: an email, "a command", "a removed
        user"; None when not recorded (made before migration 0009)."""
        return self._who(self.created_by, self.created_via)

    @property
    def revoked_by_words(self) -> str | None:
        """Who revoked the token, in the same words as ``created_by_words``; None when it is active
        or was revoked before migration 0009."""
        return self._who(self.revoked_by, self.revoked_via)

    def _who(self, person: User | None, via: str) -> str | None:
        if person is not None:
            return person.email
        if via == self.Via.COMMAND:
            return "a command"
        if via:  # a person did it on a page, and their user has been deleted since
            return "a removed user"
        return None


class ChangeRecord(models.Model):
    """One change an admin or a leader made on a page (or in the Django admin, for a user's
    access), for the audit trail: who, when, to what (a user's access, a KPI target, a
    scheduled report) and what changed, in words as the page showed them ("role CSM →
    Manager; can sign in yes → no"). Written in the same
    transaction as the change; never edited. Words, not foreign keys, so the trail outlives
    what it names (a removed target is still "NRR at least 100%, monthly")."""

    class Subject(models.TextChoices):
        USER = "user", "User"
        KPI_TARGET = "kpi_target", "KPI target"
        SCHEDULED_REPORT = "scheduled_report", "Scheduled report"

    class Action(models.TextChoices):
        CHANGED = "changed", "Changed"
        REMOVED = "removed", "Removed"

    subject = models.CharField(max_length=20, choices=Subject.choices)
    subject_id = models.PositiveIntegerField(help_text="the row changed (it may be gone)")
    name = models.CharField(max_length=300, help_text="what was changed, named as then")
    action = models.CharField(max_length=20, choices=Action.choices)
    words = models.CharField(max_length=1000, blank=True, help_text="what changed, in words")
    by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            # a page's "Recent changes" (one subject, newest first, a few rows) and the
            # last change of one row (who to name when a stale save is refused)
            models.Index(fields=["subject", "subject_id", "-at"], name="change_record_row_idx"),
            models.Index(fields=["subject", "-at"], name="change_record_recent_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_subject_display()} {self.name}: {self.get_action_display().lower()}"


class FormOnce(models.Model):
    """The key of a form sent (``accounts.once``): a random value each form carries from
    when it was shown; claimed in the same transaction as what the form makes, so the same
    form sent twice (a double click, a resent request) makes one note, comment, override,
    playbook, scheduled report or survey campaign. ``made``: what the first send made
    ("playbook:12"), for the second to go to. Cleared after ``once.KEEP`` (two days)."""

    key = models.CharField(max_length=64, unique=True)
    made = models.CharField(max_length=100, blank=True)
    at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.key[:8]}… {self.made or '-'}"


# --- accounts -------------------------------------------------------------------------------


class AccountQuerySet(models.QuerySet):
    def visible_to(self, user: User) -> AccountQuerySet:
        """Admins see every account; a manager their own and their reports' accounts; a CSM
        the accounts they own. Anyone else sees none (and gets 404, never 403)."""
        if not user.is_authenticated or not user.is_active:
            return self.none()
        role = user.role
        if role == Role.ADMIN:
            return self
        if role == Role.MANAGER:
            return self.filter(Q(owner=user) | Q(owner__manager=user))
        if role == Role.CSM:
            return self.filter(owner=user)
        return self.none()

    def segments(self) -> list[str]:
        """The segments these accounts have (none empty), as stored, sorted: one DISTINCT
        over the segment index."""
        return list(
            self.exclude(segment="")
            .order_by("segment")
            .values_list("segment", flat=True)
            .distinct()
        )


class AccountLifecycle(models.TextChoices):
    ONBOARDING = "onboarding", "Onboarding"
    ADOPTION = "adoption", "Adoption"
    MATURE = "mature", "Mature"
    RENEWAL = "renewal", "Renewal"
    CHURNED = "churned", "Churned"


class Account(BaseModel):
    """A customer company (or a division of one: accounts form a hierarchy)."""

    Lifecycle = AccountLifecycle

    external_id = models.CharField(max_length=200, unique=True)  # import upsert key
    name = models.CharField(max_length=300)
    segment = models.CharField(max_length=100, blank=True, db_index=True)  # reports by segment
    industry = models.CharField(max_length=100, blank=True)
    domain = models.CharField(max_length=253, blank=True)
    owner = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="accounts"
    )  # FK index serves "my accounts"
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    lifecycle_stage = models.CharField(
        max_length=20, choices=Lifecycle.choices, default=Lifecycle.ONBOARDING
    )
    customer_since = models.DateField(
        null=True, blank=True, help_text="Date the customer signed; default: first contract start"
    )
    # True while customer_since is the default (first contract start), so the intake keeps it
    # current as earlier contracts arrive; a date given in a file is never overwritten
    customer_since_derived = models.BooleanField(default=False, editable=False)

    objects = AccountQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(parent=models.F("id")), name="account_not_own_parent"
            ),
            models.CheckConstraint(
                condition=Q(lifecycle_stage__in=[c.value for c in AccountLifecycle]),
                name="account_lifecycle_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Contract(BaseModel):
    """One subscription line or contract period: what the customer pays each month, for how
    many seats, between two dates (``end_date`` inclusive; empty = open-ended)."""

    external_id = models.CharField(max_length=200, unique=True)
    # db_index=False: contract_cover_idx starts with account (same below for each FK that
    # leads a composite index or unique constraint)
    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="contracts", db_index=False
    )
    product = models.CharField(max_length=200, blank=True)
    start_date = models.DateField()
    end_date = models.DateField(null=True, blank=True)
    mrr = models.DecimalField(max_digits=14, decimal_places=2)
    quantity = models.PositiveIntegerField(null=True, blank=True)
    billing_period_months = models.PositiveSmallIntegerField(null=True, blank=True)
    auto_renew = models.BooleanField(null=True, blank=True)
    discount = models.DecimalField(max_digits=5, decimal_places=4, null=True, blank=True)

    class Meta:
        ordering = ["account_id", "start_date"]
        indexes = [
            # MRR on day d: contracts covering d, per account (every revenue KPI)
            models.Index(fields=["account", "start_date", "end_date"], name="contract_cover_idx"),
            # renewals due: contracts whose end_date falls in a window
            models.Index(fields=["end_date"], name="contract_end_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(mrr__gte=0), name="contract_mrr_nonneg"),
            models.CheckConstraint(
                condition=Q(end_date__isnull=True) | Q(end_date__gte=models.F("start_date")),
                name="contract_end_after_start",
            ),
            models.CheckConstraint(
                condition=Q(discount__isnull=True) | Q(discount__gte=0, discount__lte=1),
                name="contract_discount_fraction",
            ),
            models.CheckConstraint(
                condition=Q(billing_period_months__isnull=True) | Q(billing_period_months__gte=1),
                name="contract_billing_period_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.external_id} ({self.account_id})"


class StakeholderRole(models.TextChoices):
    CHAMPION = "champion", "Champion"
    DECISION_MAKER = "decision_maker", "Decision maker"
    EXECUTIVE_SPONSOR = "executive_sponsor", "Executive sponsor"
    USER = "user", "User"
    BILLING = "billing", "Billing"


class Stakeholder(BaseModel):
    """A person at the customer: champion, decision maker, sponsor, user or billing contact."""

    Role = StakeholderRole

    external_id = models.CharField(max_length=200, unique=True)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="stakeholders")
    name = models.CharField(max_length=200, blank=True)
    email = models.EmailField(blank=True, db_index=True)  # survey answers matched by email
    title = models.CharField(max_length=200, blank=True)
    role = models.CharField(max_length=20, choices=Role.choices, blank=True)
    is_primary = models.BooleanField(default=False)

    class Meta:
        ordering = ["account_id", "name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(role__in=["", *[c.value for c in StakeholderRole]]),
                name="stakeholder_role_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.name or self.email or self.external_id


# --- product usage --------------------------------------------------------------------------


class UsageEvent(models.Model):
    """One thing a user did in the customer's product (``report_created`` …).

    Events have no external id; ``dedup_key`` is a 128-bit hash of
    ``(account, user_id, event, occurred_at, value)`` so that re-sending or re-importing the
    same event never counts it twice (see ``accounts.intake.events.dedup_key``)."""

    # No database-level foreign key on purpose: PostgreSQL checks one per inserted row, which
    # made bulk loads five times slower (docs/benchmarks.md). Every door goes through the
    # intake, which resolves the account inside the same transaction, and deleting an
    # account still deletes its events (Django cascades).
    account = models.ForeignKey(
        Account,
        on_delete=models.CASCADE,
        related_name="events",
        db_constraint=False,
        db_index=False,
    )
    user_id = models.CharField(max_length=200, blank=True)
    event = models.CharField(max_length=200)
    occurred_at = models.DateTimeField()
    value = models.FloatField(null=True, blank=True)
    # The key is also the primary key: one index less to maintain on the busiest table, and
    # the ON CONFLICT target of every event insert.
    dedup_key = models.UUIDField(primary_key=True)

    class Meta:
        indexes = [
            # windowed reads per account: active users in 30 days, rollup rebuilds
            models.Index(fields=["account", "occurred_at"], name="event_account_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event} by {self.user_id or '?'} at {self.occurred_at:%Y-%m-%d %H:%M}"


class UsageDaily(models.Model):
    """Per account and UTC day: events and distinct active users. Kept current on ingest."""

    # no database-level foreign key, like UsageEvent and UsagePresence: only the intake
    # writes rollups, for accounts it resolved in the same transaction, and PostgreSQL's
    # deferred check of each new or updated row cost ~10 µs a row at every import's commit
    # (docs/benchmarks.md); deleting an account still deletes its rollups (Django cascades)
    account = models.ForeignKey(
        Account,
        on_delete=models.CASCADE,
        related_name="usage_days",
        db_constraint=False,
        db_index=False,
    )
    day = models.DateField()
    events = models.PositiveIntegerField()
    active_users = models.PositiveIntegerField()
    value_sum = models.FloatField(default=0)

    class Meta:
        constraints = [
            # also the index for per-account usage charts and windows
            models.UniqueConstraint(fields=["account", "day"], name="usage_daily_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.account_id} on {self.day}: {self.events} events, {self.active_users} users"


class UsageFeatureDaily(models.Model):
    """Per account, UTC day and event name (a *feature*): events and distinct users."""

    # no database-level foreign key, like UsageEvent and UsagePresence: only the intake
    # writes rollups, for accounts it resolved in the same transaction, and PostgreSQL's
    # deferred check of each new or updated row cost ~10 µs a row at every import's commit
    # (docs/benchmarks.md); deleting an account still deletes its rollups (Django cascades)
    account = models.ForeignKey(
        Account,
        on_delete=models.CASCADE,
        related_name="feature_days",
        db_constraint=False,
        db_index=False,
    )
    day = models.DateField()
    event = models.CharField(max_length=200)
    events = models.PositiveIntegerField()
    users = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account", "day", "event"], name="usage_feature_daily_unique"
            ),
        ]
        indexes = [
            # feature adoption across the book: one event name over a window
            models.Index(fields=["event", "day"], name="usage_feature_event_day_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.account_id} on {self.day}: {self.event} ×{self.events}"


class UsagePresence(models.Model):
    """A product user used one feature (event name) of an account on a UTC day.

    This is what keeps the distinct-user counts of the rollups incremental: a load inserts
    the presences of its new events, and only the rows that were not there yet add a user
    to ``UsageFeatureDaily.users`` (and, when the user had no other presence that day, to
    ``UsageDaily.active_users``). Events without a user_id have no presence. Kept by
    ``accounts.intake.events``; rebuilt from the raw events with the rollups."""

    # The primary key is the only index: its (account, day, user_id) prefix also answers
    # "was this user active on that day at all" (the active-user increment).
    pk = models.CompositePrimaryKey("account", "day", "user_id", "event")
    # no database-level FK for the same reason as UsageEvent (one check per inserted row)
    account = models.ForeignKey(
        Account,
        on_delete=models.CASCADE,
        related_name="presences",
        db_constraint=False,
        db_index=False,
    )
    day = models.DateField()
    user_id = models.CharField(max_length=200)
    event = models.CharField(max_length=200)

    def __str__(self) -> str:
        return f"{self.user_id} used {self.event} of {self.account_id} on {self.day}"


class TrackedUser(BaseModel):
    """A product user seen through the tracking API (``identify``/``group``): which account
    they belong to, so a ``track`` call without a ``groupId`` still lands on an account."""

    user_id = models.CharField(max_length=200, unique=True)  # lookup on every track call
    account = models.ForeignKey(
        Account, null=True, blank=True, on_delete=models.SET_NULL, related_name="tracked_users"
    )
    traits = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return self.user_id


# --- support, billing, CSM work -------------------------------------------------------------


class TicketPriority(models.TextChoices):
    LOW = "low", "Low"
    NORMAL = "normal", "Normal"
    HIGH = "high", "High"
    URGENT = "urgent", "Urgent"


class TicketStatus(models.TextChoices):
    OPEN = "open", "Open"
    PENDING = "pending", "Pending"
    SOLVED = "solved", "Solved"
    CLOSED = "closed", "Closed"


class Ticket(BaseModel):
    """A support ticket from the help desk."""

    Priority = TicketPriority

    Status = TicketStatus

    external_id = models.CharField(max_length=200, unique=True)
    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="tickets", db_index=False
    )
    subject = models.CharField(max_length=500, blank=True)
    priority = models.CharField(max_length=10, choices=Priority.choices, default=Priority.NORMAL)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    opened_at = models.DateTimeField()
    first_response_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    escalated = models.BooleanField(default=False)
    agent_contacts = models.PositiveIntegerField(null=True, blank=True)
    csat = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta:
        indexes = [
            # ticket volume and response times per account over a window
            models.Index(fields=["account", "opened_at"], name="ticket_account_opened_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(priority__in=[c.value for c in TicketPriority]),
                name="ticket_priority_valid",
            ),
            models.CheckConstraint(
                condition=Q(status__in=[c.value for c in TicketStatus]), name="ticket_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(csat__isnull=True) | Q(csat__gte=1, csat__lte=5),
                name="ticket_csat_1_5",
            ),
            models.CheckConstraint(
                condition=Q(first_response_at__isnull=True)
                | Q(first_response_at__gte=models.F("opened_at")),
                name="ticket_response_after_open",
            ),
            models.CheckConstraint(
                condition=Q(resolved_at__isnull=True) | Q(resolved_at__gte=models.F("opened_at")),
                name="ticket_resolved_after_open",
            ),
        ]

    def __str__(self) -> str:
        return self.subject or self.external_id


class InvoiceStatus(models.TextChoices):
    OPEN = "open", "Open"
    PAID = "paid", "Paid"
    FAILED = "failed", "Failed"
    VOID = "void", "Void"


class Invoice(BaseModel):
    """An invoice from the billing system, with its payment state."""

    Status = InvoiceStatus

    external_id = models.CharField(max_length=200, unique=True)
    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="invoices", db_index=False
    )
    issued_on = models.DateField()
    due_on = models.DateField(null=True, blank=True)
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    paid_on = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    failed_attempts = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [
            # invoiced amount and receivables in a period (DSO), overdue per account
            models.Index(fields=["account", "issued_on"], name="invoice_account_issued_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gte=0), name="invoice_amount_nonneg"),
            models.CheckConstraint(
                condition=Q(status__in=[c.value for c in InvoiceStatus]),
                name="invoice_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(due_on__isnull=True) | Q(due_on__gte=models.F("issued_on")),
                name="invoice_due_after_issue",
            ),
            models.CheckConstraint(
                condition=Q(paid_on__isnull=True) | Q(paid_on__gte=models.F("issued_on")),
                name="invoice_paid_after_issue",
            ),
        ]

    def __str__(self) -> str:
        return self.external_id


class ActivityKind(models.TextChoices):
    NOTE = "note", "Note"
    CALL = "call", "Call"
    MEETING = "meeting", "Meeting"
    EMAIL = "email", "Email"


class Activity(BaseModel):
    """Something a CSM did with the customer: a note, call, meeting or email."""

    Kind = ActivityKind

    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="activities", db_index=False
    )
    author = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="activities"
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    occurred_at = models.DateTimeField(default=timezone.now)
    subject = models.CharField(max_length=300, blank=True)
    body = models.TextField(blank=True)
    stakeholders = models.ManyToManyField(Stakeholder, blank=True, related_name="activities")

    class Meta:
        verbose_name_plural = "activities"
        indexes = [
            # last CSM touch per account
            models.Index(fields=["account", "occurred_at"], name="activity_account_time_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=[c.value for c in ActivityKind]), name="activity_kind_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.subject}"


class MilestoneKind(models.TextChoices):
    FIRST_VALUE = "first_value", "First value reached"


class Milestone(BaseModel):
    """A day in the customer's journey that a CSM vouches for ("they got first value on
    12 Oct"), for what the usage data cannot see. One per account and kind: recording it
    again changes the day; clearing it deletes the row (the timeline keeps the history).

    ``reached_on`` is a UTC day, never in the future (``services.milestone_record``
    checks); it may be before ``customer_since`` (value reached during a trial)."""

    Kind = MilestoneKind

    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="milestones", db_index=False
    )  # the unique (account, kind) index serves "this account's milestones"
    kind = models.CharField(max_length=20, choices=Kind.choices)
    reached_on = models.DateField()
    note = models.CharField(max_length=500, blank=True)
    recorded_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    recorded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "kind"], name="milestone_once_per_kind"),
            models.CheckConstraint(
                condition=Q(kind__in=[c.value for c in MilestoneKind]), name="milestone_kind_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on {self.reached_on:%Y-%m-%d}"


class TimelineEntry(models.Model):
    """One thing that happened to an account, from any source, in one place.

    ``key`` names the fact ("ticket:T-17:opened") so that re-importing the same data or
    re-running a task never writes the same fact twice."""

    class Kind(models.TextChoices):
        CONTRACT_STARTED = "contract_started", "Contract started"
        CONTRACT_ENDED = "contract_ended", "Contract ended"
        STAKEHOLDER_ADDED = "stakeholder_added", "Stakeholder added"
        TICKET_OPENED = "ticket_opened", "Ticket opened"
        TICKET_ESCALATED = "ticket_escalated", "Ticket escalated"
        TICKET_RESOLVED = "ticket_resolved", "Ticket resolved"
        INVOICE_ISSUED = "invoice_issued", "Invoice issued"
        INVOICE_PAID = "invoice_paid", "Invoice paid"
        PAYMENT_FAILED = "payment_failed", "Payment failed"
        USAGE_FIRST = "usage_first", "First product usage"
        ACTIVITY = "activity", "CSM activity"
        MILESTONE_RECORDED = "milestone_recorded", "Milestone recorded"
        MILESTONE_CLEARED = "milestone_cleared", "Milestone cleared"
        OTHER = "other", "Other"

    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="timeline", db_index=False
    )
    occurred_at = models.DateTimeField()
    kind = models.CharField(max_length=40)  # open set: later apps add kinds (survey answers…)
    key = models.CharField(max_length=300)
    title = models.CharField(max_length=300)
    detail = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        verbose_name_plural = "timeline entries"
        constraints = [
            models.UniqueConstraint(fields=["account", "key"], name="timeline_fact_once"),
        ]
        indexes = [
            # the account page's timeline, newest first
            models.Index(fields=["account", "-occurred_at"], name="timeline_account_time_idx"),
        ]

    def __str__(self) -> str:
        return self.title


# --- imports --------------------------------------------------------------------------------


class ImportRecord(BaseModel):
    """One import of customer data through any door (command, upload, API): who, when, what,
    and what came of it. Written outside the import's own transaction so a rejected import
    still leaves its record."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        REJECTED = "rejected", "Rejected"
        VALIDATED = "validated", "Validated (dry run)"
        FAILED = "failed", "Failed"

    class Origin(models.TextChoices):
        CLI = "cli", "Command line"
        UPLOAD = "upload", "Web upload"
        API = "api", "API"

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="imports"
    )
    origin = models.CharField(max_length=10, choices=Origin.choices)
    kind = models.CharField(max_length=20, help_text="kind of data, or 'dir' for a directory")
    filename = models.CharField(max_length=500, blank=True)
    stored_file = models.CharField(max_length=500, blank=True, help_text="uploaded file on disk")
    dry_run = models.BooleanField(default=False)
    ignore_unknown = models.BooleanField(default=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    rows = models.PositiveBigIntegerField(default=0)
    created = models.PositiveBigIntegerField(default=0)
    updated = models.PositiveBigIntegerField(default=0)
    unchanged = models.PositiveBigIntegerField(default=0)
    rejected = models.PositiveBigIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True, help_text="first 100 row errors")
    per_kind = models.JSONField(default=dict, blank=True, help_text="counts per kind")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.get_origin_display()} import of {self.kind} ({self.status})"

    @property
    def counts_are_hypothetical(self) -> bool:
        """A rejected import and a dry run wrote nothing: their created, updated and
        unchanged counts are what the valid rows would have done, and are said so."""
        return self.status in (self.Status.REJECTED, self.Status.VALIDATED)


class BookVersion(models.Model):
    """The version of the book's accounts and contracts (``accounts.book``): one row at most,
    a new ``token`` each time an import creates or changes accounts or contracts. In the
    database, not the cache, so every process sees an import made by any other (the embedded
    mode's cache is per process). No row yet means version "0"."""

    token = models.CharField(max_length=32)
    changed_at = models.DateTimeField()

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(id=1), name="book_version_one_row")]

    def __str__(self) -> str:
        return self.token
