"""Models of the metrics app: the record of each nightly pipeline run (and of its health
chunks when run through Celery), health models and their versions, manual health overrides,
the daily health snapshots and the daily KPI snapshots."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from accounts.models import AccountLifecycle

from . import health


class PipelineRun(models.Model):
    """One run of the nightly pipeline for one ``as_of`` day: when it ran, how it ended, and
    what each step did (``steps`` is a list of ``{"name", "seconds", ...counts}`` dicts).

    A run still ``running`` when the next run for the same day starts (a killed command) is
    marked ``superseded`` by it ("stopped; superseded by run #N"): every step rebuilds its
    day, so the new run redoes the work and the old one's leftover tasks skip theirs. A run
    through Celery keeps other runs and rescores out while its chunks show progress, and is
    superseded by the next of them once it has shown none for PIPELINE_RUN_STALE_MINUTES
    (``metrics.pipeline.exclusive``). ``chunks_total`` is the number of health chunk tasks
    of a run through Celery (0 when run in one process)."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        SUPERSEDED = "superseded", "Superseded"

    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    as_of = models.DateField(help_text="last complete UTC day the run is about")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    steps = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)
    chunks_total = models.PositiveIntegerField(default=0)
    health_finished_at = models.DateTimeField(
        null=True, blank=True, help_text="set once, by whoever finished the last health chunk"
    )

    class Meta:
        ordering = ["-started_at"]
        indexes = [
            # "when did the pipeline last run for this day" (admin, status page)
            models.Index(fields=["as_of", "-started_at"], name="pipeline_run_as_of_idx"),
        ]

    def __str__(self) -> str:
        return f"pipeline {self.as_of} ({self.status})"

    @property
    def duration(self) -> float | None:
        """Seconds from start to end, None while running. A superseded run's end was not
        seen (it died, or was killed; ``finished_at`` is when a new run superseded it): its
        time is up to its last recorded step, the sum of its steps' seconds, None when none
        was recorded."""
        if self.status == self.Status.SUPERSEDED:
            seconds = [
                s["seconds"]
                for s in self.steps or []
                if isinstance(s, dict) and isinstance(s.get("seconds"), int | float)
            ]
            return sum(seconds) if seconds else None
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


class PipelineChunk(models.Model):
    """One health chunk task of a pipeline run through Celery: done once ``done_at`` is set
    (claimed by a conditional UPDATE, so a task delivered twice counts once), with the
    chunk's counts (accounts, green, yellow, red, no_data, no_model)."""

    run = models.ForeignKey(PipelineRun, on_delete=models.CASCADE, related_name="chunks")
    index = models.PositiveIntegerField()
    accounts = models.PositiveIntegerField()
    done_at = models.DateTimeField(null=True, blank=True)
    counts = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["run_id", "index"]
        constraints = [
            models.UniqueConstraint(fields=["run", "index"], name="pipeline_chunk_unique"),
        ]

    def __str__(self) -> str:
        return f"run #{self.run_id} chunk {self.index}"


# --- health ----------------------------------------------------------------------------------


class Band(models.TextChoices):
    GREEN = "green", "Green"
    YELLOW = "yellow", "Yellow"
    RED = "red", "Red"


class HealthModel(models.Model):
    """A named health model. Its scoring rules live in its versions; the active version
    scores. Which accounts it scores: its assignment rules (``HealthAssignmentRule``, any
    number) and, for the one default model, every account no rule matches. A model with
    neither scores no account (kept for its versions and snapshots, or waiting for a rule).

    The default stays a flag on the model rather than a rule: it has no segment or stage to
    store, there is exactly one, and the partial unique index below says so."""

    name = models.CharField(max_length=100, unique=True)
    is_default = models.BooleanField(
        default=False, help_text="applies to every account no assignment rule matches"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-is_default", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"],
                condition=Q(is_default=True),
                name="health_model_one_default",
                violation_error_message="Another model is the default already.",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class HealthAssignmentRule(models.Model):
    """One assignment rule: the accounts of a segment and/or a lifecycle stage are scored by
    ``model``. A model may serve many rules (one "Enterprise" model for the Enterprise and
    the Strategic segments); the accounts no rule matches go to the default model
    (``HealthModel.is_default``). The most specific rule wins (``metrics.health.assign``),
    and there is one rule per (segment, stage), so an account never meets a tie.

    ``segment`` is free text: a rule may name a segment no account has yet. Changed only
    through ``metrics.services`` (``health_rule_add`` and friends), which write the audit
    row (``HealthAssignmentChange``) in the same transaction."""

    model = models.ForeignKey(
        HealthModel,
        # a model that scores accounts is not deleted from under its rules: remove the
        # rules first (on the assignments page, which logs it)
        on_delete=models.PROTECT,
        related_name="rules",
    )
    segment = models.CharField(max_length=100, blank=True, help_text="blank: any segment")
    lifecycle = models.CharField(
        max_length=20,
        blank=True,
        choices=AccountLifecycle.choices,
        help_text="blank: any lifecycle stage",
    )
    created_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["segment", "lifecycle"]
        constraints = [
            # one rule per (segment, stage): health.assign never meets a tie
            models.UniqueConstraint(
                fields=["segment", "lifecycle"],
                name="health_rule_one_per_scope",
                violation_error_message="Another rule sends these accounts to a model already.",
            ),
            # "every other account" is the default model's (HealthModel.is_default)
            models.CheckConstraint(
                condition=~Q(segment="", lifecycle=""),
                name="health_rule_has_scope",
                violation_error_message="A rule names a segment, a lifecycle stage or both.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.segment or 'any segment'} · {self.lifecycle or 'any stage'}"


class HealthAssignmentChange(models.Model):
    """One change of which model scores which accounts, for the audit trail: who, when,
    what (a rule added, changed or removed; the default moved to another model) and the
    rule before and after, in words as the page showed them ("segment “Enterprise” →
    Enterprise"). Written in the same transaction as the change; never edited. Words, not
    foreign keys, so the trail outlives the rules and models it names."""

    class Action(models.TextChoices):
        ADDED = "added", "Rule added"
        CHANGED = "changed", "Rule changed"
        REMOVED = "removed", "Rule removed"
        DEFAULT_MOVED = "default_moved", "Default moved"

    action = models.CharField(max_length=20, choices=Action.choices)
    before = models.CharField(max_length=300, blank=True, help_text="blank for a new rule")
    after = models.CharField(max_length=300, blank=True, help_text="blank for a removed rule")
    by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            # the assignments page's "Recent changes" (newest first, a few rows)
            models.Index(fields=["-at", "-id"], name="health_assign_change_at_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.at:%Y-%m-%d %H:%M}"


class HealthModelVersion(models.Model):
    """One version of a health model's rules: components (JSON, checked by
    ``metrics.health.parse_model``) and band thresholds. Versions are never edited: a change
    makes a new version (``services.health_model_version_create``), and snapshots keep the
    version that made them."""

    model = models.ForeignKey(HealthModel, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    components = models.JSONField(
        help_text='list of {"key", "label", "weight", "locked", "measures": '
        '[{"measure", "linear": [lo, hi]} or {"measure", "thresholds": [[at_least, points]]}]}'
    )
    green_min = models.FloatField(default=80, help_text="a score >= this is green")
    yellow_min = models.FloatField(default=50, help_text="a score >= this (below green) is yellow")
    active = models.BooleanField(default=True)
    notes = models.TextField(blank=True)
    created_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # A restore copies an earlier version into a new one rather than re-activating the old
    # row: version numbers then follow the order in which versions started scoring, and
    # each version's snapshots come from one stretch of time
    # (services.health_model_version_restore).
    restored_from = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="the earlier version this one is a copy of (a restore); blank otherwise",
    )

    class Meta:
        ordering = ["model_id", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["model", "version"], name="health_version_unique"),
            models.UniqueConstraint(
                fields=["model"], condition=Q(active=True), name="health_version_one_active"
            ),
            models.CheckConstraint(
                condition=Q(yellow_min__gte=0, green_min__lte=100, yellow_min__lte=F("green_min")),
                name="health_version_bands_ordered",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model.name} v{self.version}"

    def clean(self) -> None:
        try:
            self.spec()
        except health.HealthConfigError as exc:
            raise ValidationError({"components": [exc.words_and_path]}) from exc

    def spec(self) -> health.ModelSpec:
        return health.parse_model(
            self.components, green_min=self.green_min, yellow_min=self.yellow_min
        )

    def same_rules(self, other: HealthModelVersion) -> bool:
        """Whether ``other`` scores exactly as this version does (components, weights and
        bands alike), e.g. a restored copy and its original."""
        return (self.components, self.green_min, self.yellow_min) == (
            other.components,
            other.green_min,
            other.yellow_min,
        )


class HealthOverride(models.Model):
    """A CSM's manual override of an account's health, with a reason, until ``expires_at``:
    of the whole score (score and/or band) or, with ``component``, of one component's score.
    Rows are never deleted by the app: they are the audit trail. Semantics:
    ``metrics.health`` module docstring."""

    account = models.ForeignKey(
        "accounts.Account", on_delete=models.CASCADE, related_name="health_overrides"
    )
    component = models.CharField(max_length=50, blank=True, help_text="blank: the whole score")
    score = models.FloatField(null=True, blank=True)
    band = models.CharField(max_length=10, blank=True, choices=Band.choices)
    reason = models.TextField()
    expires_at = models.DateTimeField()
    created_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # overrides in force for a chunk of accounts on a day
            models.Index(fields=["account", "expires_at"], name="health_override_acct_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=~Q(reason=""), name="health_override_reason"),
            models.CheckConstraint(
                condition=Q(score__isnull=False) | (~Q(band="") & Q(component="")),
                name="health_override_has_value",
            ),
            models.CheckConstraint(
                condition=Q(score__isnull=True) | Q(score__gte=0, score__lte=100),
                name="health_override_score_0_100",
            ),
            models.CheckConstraint(
                condition=Q(component="") | Q(band=""), name="health_override_component_score"
            ),
        ]

    def __str__(self) -> str:
        target = self.component or "score"
        value = self.score if self.score is not None else self.band
        return f"{self.account_id}: {target} → {value} until {self.expires_at:%Y-%m-%d}"


class HealthSnapshot(models.Model):
    """An account's health as of the end of one UTC day: the score and band shown (after any
    override) and as computed, each component's score, weight and the raw inputs behind it,
    the components left out for lack of data, the reasons in words, and the model version that
    made it. Re-recording a day replaces its row."""

    account = models.ForeignKey(
        "accounts.Account",
        on_delete=models.CASCADE,
        related_name="health_snapshots",
        db_index=False,
    )
    day = models.DateField()
    model_version = models.ForeignKey(
        HealthModelVersion, on_delete=models.PROTECT, related_name="snapshots"
    )
    score = models.FloatField(null=True, blank=True, help_text="0..100; null = no data")
    band = models.CharField(max_length=10, blank=True, choices=Band.choices)
    computed_score = models.FloatField(null=True, blank=True)
    computed_band = models.CharField(max_length=10, blank=True, choices=Band.choices)
    components = models.JSONField(default=list)
    left_out = models.JSONField(default=list)
    reasons = models.JSONField(default=list)
    overrides = models.JSONField(default=list, help_text="the overrides in force, as applied")

    class Meta:
        constraints = [
            # also the index for an account's history (account, day range)
            models.UniqueConstraint(fields=["account", "day"], name="health_snapshot_unique"),
        ]
        indexes = [
            # the book on one day, by band (red accounts today)
            models.Index(fields=["day", "band"], name="health_snapshot_day_band_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.account_id} on {self.day}: {self.score} ({self.band})"

    def as_dict(self) -> dict:
        """What ``metrics.health.what_changed`` compares."""
        return {
            "day": self.day.isoformat(),
            "score": self.score,
            "band": self.band,
            "model_version": str(self.model_version),
            "components": self.components,
            "computed_score": self.computed_score,
            "computed_band": self.computed_band,
            "overrides": self.overrides,
        }


# --- KPI snapshots ---------------------------------------------------------------------------


class KpiScope(models.TextChoices):
    ALL = "all", "Whole book"
    SEGMENT = "segment", "Segment"
    OWNER = "owner", "Owner"
    TEAM = "team", "Manager's team"


class KpiSnapshot(models.Model):
    """The KPI report (``metrics.kpis.kpi_report``, JSON) of one scope as of the end of one
    UTC day, written nightly by the pipeline's ``kpi_snapshots`` step so dashboards read one
    row instead of running the engine.

    Period: the **trailing month** ending with ``day``, ``[day + 1 − 1 month, day + 1)``
    (e.g. day 2024-03-05 → [2024-02-06, 2024-03-06)), not the calendar month to date: every
    day's figures cover a month, so a daily series is comparable day to day (no 1-day
    "month" on the 1st), and the snapshot of a month's last day *is* that calendar month's
    report ([2024-03-01, 2024-04-01) for day 2024-03-31).

    Scope: ``all`` (key ``""``), ``segment`` (key: the segment's name; accounts without a
    segment are only in ``all``), ``owner`` (key: the owner's user id as a string, the
    email is in ``report["scope"]["owner"]``; unowned accounts are only in ``all``) or
    ``team`` (key: a manager's user id; the accounts of the manager and of the users whose
    ``manager`` they are, i.e. ``Account.objects.visible_to(manager)``; the manager's email
    is in ``report["scope"]["team"]``; recorded for users with at least one report).
    Re-recording a day replaces its rows, and removes the rows of scopes gone since."""

    day = models.DateField()
    scope_kind = models.CharField(max_length=10, choices=KpiScope.choices)
    scope_key = models.CharField(max_length=254, blank=True)
    period_start = models.DateField()
    period_end = models.DateField(help_text="exclusive: the day after ``day``")
    report = models.JSONField()
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-day", "scope_kind", "scope_key"]
        constraints = [
            # also the index for a scope's series over days of one kind
            models.UniqueConstraint(
                fields=["day", "scope_kind", "scope_key"], name="kpi_snapshot_unique"
            ),
            models.CheckConstraint(
                condition=Q(scope_kind="all", scope_key="") | ~Q(scope_kind="all"),
                name="kpi_snapshot_all_has_no_key",
            ),
        ]
        indexes = [
            # a scope's series: MRR of segment S over the last 90 days
            models.Index(fields=["scope_kind", "scope_key", "day"], name="kpi_snapshot_series_idx"),
        ]

    def __str__(self) -> str:
        scope = self.scope_kind if not self.scope_key else f"{self.scope_kind} {self.scope_key}"
        return f"KPIs {self.day} ({scope})"


# --- the CSM queue ---------------------------------------------------------------------------


class AccountStanding(models.Model):
    """Where an account stands today, one row per account, for the CSM queue and renewals:
    the latest health (score, band, change over 7 and about 30 days, with the day that
    change compares with), ARR and seats of the
    contracts in force, the next renewal, open and overdue CTAs, and the queue priority with
    its reason (``metrics.priority``). Rebuilt by the nightly pipeline after health
    (``services.account_standings_refresh``) and for one account when its health or its
    CTAs change. A cache of values kept elsewhere: safe to delete and rebuild."""

    account = models.OneToOneField(
        "accounts.Account", on_delete=models.CASCADE, primary_key=True, related_name="standing"
    )
    day = models.DateField(help_text="the day of the data (the health snapshot's day)")
    score = models.FloatField(null=True, blank=True)
    band = models.CharField(max_length=10, blank=True, choices=Band.choices)
    overridden = models.BooleanField(
        default=False, help_text="an override (of the score or a component) set that score"
    )
    trend_7 = models.FloatField(null=True, blank=True, help_text="score change over 7 days")
    trend_7_day = models.DateField(
        null=True,
        blank=True,
        help_text="the snapshot day trend_7 compares with: the latest on or before 7 days "
        "back, at most 2 days earlier (metrics.standings.TREND_7_TOLERANCE)",
    )
    trend_30 = models.FloatField(null=True, blank=True, help_text="score change over 30 days")
    trend_30_day = models.DateField(
        null=True,
        blank=True,
        help_text="the snapshot day trend_30 compares with: the latest on or before 30 days "
        "back, at most 7 days earlier (metrics.standings.TREND_30_TOLERANCE)",
    )
    arr = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    seats = models.PositiveIntegerField(null=True, blank=True)
    renewal_on = models.DateField(null=True, blank=True, help_text="end of the current contract")
    open_ctas = models.PositiveIntegerField(
        default=0, help_text="CTAs not closed, the waiting ones (waiting_ctas) included"
    )
    overdue_ctas = models.PositiveIntegerField(default=0)
    waiting_ctas = models.PositiveIntegerField(
        default=0,
        help_text="of open_ctas, those pending: over the owner's cap of open CTAs, not yet "
        "in their queue",
    )
    priority = models.FloatField(default=0)
    reason = models.CharField(max_length=300, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            # the queue: highest priority first, 20 rows a page
            models.Index(F("priority").desc(), "account", name="standing_priority_idx"),
            # renewals due in the next N days
            models.Index(fields=["renewal_on"], name="standing_renewal_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.account_id}: {self.priority} ({self.reason})"

    @property
    def active_ctas(self) -> int:
        """CTAs in the owner's queue (open or in progress): the open ones less those
        waiting for room under the owner's cap."""
        return max(self.open_ctas - self.waiting_ctas, 0)


# --- known users -----------------------------------------------------------------------------


class UsageUser(models.Model):
    """A product user of an account (a distinct non-empty ``user_id`` of its events) and the
    first UTC day they sent an event: the "known users" of docs/metrics.md as of any day
    (``first_day < end``) in one indexed read, instead of a pass over every event the book
    ever sent.

    Derived from ``accounts.UsagePresence`` (which the intake keeps equal to the events) by
    database triggers on that table (migration ``0005_usage_user``): inserting presences
    lowers or sets their users' ``first_day``; deleting presences (a rollup rebuild, a
    deleted account) recomputes ``first_day`` of their users from the presences left, and
    drops a user who has none. So every writer of presences keeps it right, whatever door the
    events came through, without a call of its own. Safe to rebuild from the presences."""

    pk = models.CompositePrimaryKey("account", "user_id")
    # no database-level FK, like UsagePresence (the triggers insert in bulk)
    account = models.ForeignKey(
        "accounts.Account",
        on_delete=models.CASCADE,
        related_name="usage_users",
        db_constraint=False,
        db_index=False,
    )
    user_id = models.CharField(max_length=200)
    first_day = models.DateField()

    def __str__(self) -> str:
        return f"{self.user_id} of {self.account_id} since {self.first_day}"


# --- stored usage windows (the KPI report's usage inputs, kept by the night) ------------------


class UsageWindowDay(models.Model):
    """The stored usage windows of one window end (``end_day``, exclusive: the window of
    the day before it): which ``KEY_FEATURES`` their ``key_used`` counted. Rows of an end
    whose key features differ from the settings' are ignored (and replaced by the next
    refresh). Written by ``metrics.kpis.adoption.usage_windows_refresh``."""

    end_day = models.DateField(primary_key=True)
    key_features = models.TextField(blank=True)  # the names, one per line, sorted
    computed_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"usage windows ending {self.end_day}"


class UsageWindow(models.Model):
    """One account's usage inputs (``adoption.UsageInputs.per_account``) for the window
    ending with ``end_day`` (exclusive), as the direct read over the rollups and presences
    gave them when the night stored them: the KPI report and the health step sum these rows
    instead of counting distinct users over 60 days of presences.

    Exact by construction: a row is written from the direct read, under every rollup lock,
    and database triggers on ``accounts_usagedaily`` (insert, update, delete) and on
    ``accounts_usagepresence`` (delete) delete the rows of an account whose window ends
    after a day that changed (migration ``0006_kpi_usage_windows``); every write of usage
    goes through those tables, so a row that is there is right. An account without a row
    (new, changed since, or before the first night) is read directly. ``listed``: whether
    the direct read had the account at all (a row of zeros otherwise: "known to have no
    usage")."""

    pk = models.CompositePrimaryKey("account", "end_day")
    # no database-level FK, like the rollups (bulk writes); Django cascades deletes
    account = models.ForeignKey(
        "accounts.Account",
        on_delete=models.CASCADE,
        related_name="usage_windows",
        db_constraint=False,
        db_index=False,
    )
    end_day = models.DateField()
    listed = models.BooleanField(default=True)
    known = models.PositiveIntegerField(default=0)
    active = models.PositiveIntegerField(default=0)
    previous_active = models.PositiveIntegerField(default=0)
    events = models.BigIntegerField(default=0)
    previous_events = models.BigIntegerField(default=0)
    week0 = models.PositiveIntegerField(default=0)
    week1 = models.PositiveIntegerField(default=0)
    week2 = models.PositiveIntegerField(default=0)
    week3 = models.PositiveIntegerField(default=0)
    daily_users = models.PositiveIntegerField(default=0)
    key_used = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["end_day"], name="usage_window_end_idx")]

    def __str__(self) -> str:
        return f"usage of {self.account_id} in the window ending {self.end_day}"


class UsageWindowFeature(models.Model):
    """Per account, window end and event name: the distinct users who sent it in the window
    (the feature adoption of ``UsageInputs.features``, summed per cell when read). Kept and
    invalidated with ``UsageWindow``."""

    pk = models.CompositePrimaryKey("account", "end_day", "event")
    account = models.ForeignKey(
        "accounts.Account",
        on_delete=models.CASCADE,
        related_name="usage_window_features",
        db_constraint=False,
        db_index=False,
    )
    end_day = models.DateField()
    event = models.CharField(max_length=200)
    users = models.PositiveIntegerField()

    class Meta:
        indexes = [models.Index(fields=["end_day"], name="usage_window_feature_end_idx")]

    def __str__(self) -> str:
        return f"{self.users} users of {self.event} at {self.account_id} before {self.end_day}"


# --- data waiting for the health recompute -----------------------------------------------------


class AccountDataArrival(models.Model):
    """An account whose data arrived after its last health recompute started: one row per
    account, ``arrived_at`` the latest arrival. Written when a writer of account data calls
    the ``ACCOUNT_DATA_CHANGED_HOOKS`` (imports, tracked events, tickets, logged activities,
    survey answers: every door), removed by the recompute that reads that data. A row older
    than a debounced recompute takes is one whose recompute was lost (a worker killed
    mid-task): ``metrics.tasks.sweep_stale_health`` schedules it again (``metrics.arrivals``)."""

    # no database-level foreign key: the upsert runs after the data's commit, when the account
    # may be gone; such a row is removed by its recompute (or Django's cascade)
    account = models.OneToOneField(
        "accounts.Account",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="+",
        db_constraint=False,
    )
    arrived_at = models.DateTimeField()

    class Meta:
        indexes = [
            # the sweep: the oldest arrivals first, at most a few hundred rows
            models.Index(fields=["arrived_at"], name="data_arrival_at_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.account_id}: data of {self.arrived_at:%Y-%m-%d %H:%M:%S} not in its health"
