"""KPI targets (what a team wants of a number, who owns it, how often it is reviewed), the
alerts of their evaluations (one row per target and period: the dedup), the digest
subscriptions and the scheduled reports."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from . import catalog


class Direction(models.TextChoices):
    AT_LEAST = catalog.AT_LEAST, "at least"
    AT_MOST = catalog.AT_MOST, "at most"


class Cadence(models.TextChoices):
    WEEKLY = catalog.WEEKLY, "weekly"
    MONTHLY = catalog.MONTHLY, "monthly"
    QUARTERLY = catalog.QUARTERLY, "quarterly"


class ScopeKind(models.TextChoices):  # the same keys as metrics.KpiSnapshot
    ALL = "all", "all accounts"
    SEGMENT = "segment", "segment"
    OWNER = "owner", "owner's book"
    TEAM = "team", "manager's team"


class KpiTarget(models.Model):
    kpi = models.CharField(max_length=40, choices=[(k, v.label) for k, v in catalog.KPIS.items()])
    scope_kind = models.CharField(max_length=10, choices=ScopeKind.choices, default="all")
    scope_key = models.CharField(
        max_length=254,
        blank=True,
        help_text="segment name, owner user id or the team's manager's user id; empty for all",
    )
    direction = models.CharField(max_length=10, choices=Direction.choices)
    value = models.DecimalField(max_digits=16, decimal_places=2)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="kpi_targets",
        help_text="notified of alerts; admins when empty",
    )
    cadence = models.CharField(max_length=10, choices=Cadence.choices)
    max_change = models.DecimalField(
        max_digits=16,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="alert when the KPI moves more than this, period over period (its unit)",
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    # who saved it last (the editor): named when a save based on an older state is refused
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["kpi", "scope_kind", "scope_key"]
        constraints = [
            models.UniqueConstraint(
                fields=["kpi", "scope_kind", "scope_key"],
                name="kpi_target_one_per_scope",
                violation_error_message="This KPI has a target for this scope already: edit it.",
            ),
            models.CheckConstraint(
                condition=Q(scope_kind="all", scope_key="") | ~Q(scope_kind="all"),
                name="kpi_target_all_has_no_key",
            ),
            models.CheckConstraint(
                condition=Q(max_change__isnull=True) | Q(max_change__gt=0),
                name="kpi_target_max_change_positive",
            ),
        ]

    def __str__(self) -> str:
        sign = "≥" if self.direction == catalog.AT_LEAST else "≤"
        return f"{self.kpi_label} {sign} {self.value:g} ({self.scope_label})"

    @property
    def kpi_label(self) -> str:
        return catalog.KPIS[self.kpi].label

    @property
    def kpi_doc_anchor(self) -> str:
        """Its section of docs/metrics.md (the "?" hint links to /docs/metrics/#…)."""
        return catalog.KPIS[self.kpi].doc_anchor

    @property
    def scope_label(self) -> str:
        if self.scope_kind == ScopeKind.ALL:
            return "all accounts"
        if self.scope_kind == ScopeKind.TEAM:
            return f"team of manager {self.scope_key}"
        return f"{self.get_scope_kind_display()} {self.scope_key}"


class Alert(models.Model):
    """One evaluation of a target at the end of one of its periods. The unique (target,
    period) is the dedup: a re-run of the pipeline finds the row and sends nothing."""

    class Status(models.TextChoices):
        ON_TRACK = "on_track", "on track"
        OFF_TRACK = "off_track", "off track"
        NO_DATA = "no_data", "no data"

    target = models.ForeignKey(KpiTarget, on_delete=models.CASCADE, related_name="alerts")
    period = models.CharField(max_length=10, help_text="2026-W47, 2026-11 or 2026-Q4")
    as_of = models.DateField()
    status = models.CharField(max_length=10, choices=Status.choices)
    value = models.DecimalField(max_digits=20, decimal_places=4, null=True, blank=True)
    previous = models.DecimalField(max_digits=20, decimal_places=4, null=True, blank=True)
    target_value = models.DecimalField(max_digits=16, decimal_places=2)
    reasons = models.JSONField(default=list, blank=True, help_text='"crossed", "moved"')
    movers = models.JSONField(default=list, blank=True)
    notified = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-as_of", "target_id"]
        constraints = [
            models.UniqueConstraint(fields=["target", "period"], name="alert_one_per_period"),
        ]

    def __str__(self) -> str:
        return f"{self.target} {self.period}: {self.get_status_display()}"


class DigestSubscription(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="digest_subscription"
    )
    weekly = models.BooleanField(default=True)
    changed_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.user} weekly={self.weekly}"


class ScheduledReport(models.Model):
    """A dashboard view (a scope's KPI snapshot of the day each period ends) sent as a CSV
    attachment."""

    name = models.CharField(max_length=200)
    scope_kind = models.CharField(max_length=10, choices=ScopeKind.choices, default="all")
    scope_key = models.CharField(max_length=254, blank=True)
    cadence = models.CharField(max_length=10, choices=Cadence.choices)
    recipients = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    # the last send's recipients left out because they could not see the scope (role
    # changed, moved team, deactivated): [{"email", "reason"}], shown on the reports page
    skipped = models.JSONField(default=list, blank=True)
    skipped_period = models.CharField(max_length=10, blank=True)
    # the last day of the last period sent (its figures are that day's KPI snapshot), and
    # the end of a period whose figures were not recorded yet when it was due: sent by a
    # later run once they are (``reports.services.scheduled_reports_send``)
    last_sent_day = models.DateField(null=True, blank=True)
    waiting_for = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(scope_kind="all", scope_key="") | ~Q(scope_kind="all"),
                name="scheduled_report_all_has_no_key",
            ),
        ]

    def __str__(self) -> str:
        return self.name
