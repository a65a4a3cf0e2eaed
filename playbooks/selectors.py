"""Reads of the playbooks app. Set-based: a fixed handful of queries per call."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from accounts.models import Account, User
from metrics.kpis.common import median
from metrics.models import HealthSnapshot
from surveys.models import Campaign

from .models import OPEN_STATUSES, Cta, CtaStatus, Outcome, Playbook


def step_survey_campaigns() -> QuerySet[Campaign]:
    """The survey campaigns a playbook step may start: active ones whose trigger is the
    event "A playbook step" (any other would survey people on a schedule or another event
    of its own, besides the CTA's) and whose closing time has not come (their links would
    expire at once), by name."""
    return (
        Campaign.objects.filter(
            status=Campaign.Status.ACTIVE,
            trigger=Campaign.Trigger.EVENT,
            event=Campaign.Event.PLAYBOOK,
        )
        .exclude(closes_at__lte=timezone.now())
        .order_by("name", "pk")
    )


def campaign_names(ids: Iterable[int]) -> dict[int, str]:
    """Names of survey campaigns by id (none asked, no query)."""
    ids = sorted(set(ids))
    if not ids:
        return {}
    return dict(Campaign.objects.filter(pk__in=ids).values_list("pk", "name"))


def playbook_effectiveness(playbook_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """Per playbook: CTAs opened (every CTA it created, pending ones included), open now,
    pending now, closed (done or cancelled), outcomes (success, failure), the success rate
    (successes / CTAs with an outcome × 100; None without outcomes), the median hours from
    opening to closing (None when none closed), and the mean health score at opening vs 30
    days later over the CTAs opened at least 30 days ago that have both scores (None
    without such CTAs). Three queries."""
    ids = list(playbook_ids)
    out: dict[int, dict[str, Any]] = {
        pk: {
            "opened": 0,
            "open": 0,
            "pending": 0,
            "closed": 0,
            "successes": 0,
            "failures": 0,
            "success_rate": None,
            "median_hours_to_close": None,
            "health_at_open": None,
            "health_after_30d": None,
            "health_compared": 0,
        }
        for pk in ids
    }
    for row in (
        Cta.objects.filter(playbook_id__in=ids)
        .values("playbook_id")
        .order_by()
        .annotate(
            opened=Count("pk"),
            open=Count("pk", filter=Q(status__in=OPEN_STATUSES) & ~Q(status=CtaStatus.PENDING)),
            pending=Count("pk", filter=Q(status=CtaStatus.PENDING)),
            closed=Count("pk", filter=Q(closed_at__isnull=False)),
            successes=Count("pk", filter=Q(outcome=Outcome.SUCCESS)),
            failures=Count("pk", filter=Q(outcome=Outcome.FAILURE)),
        )
    ):
        stats = out[row.pop("playbook_id")]
        stats.update(row)
        decided = stats["successes"] + stats["failures"]
        if decided:
            stats["success_rate"] = round(stats["successes"] * 100 / decided, 1)
    durations: dict[int, list[float]] = defaultdict(list)
    for pk, opened_at, closed_at in Cta.objects.filter(
        playbook_id__in=ids, closed_at__isnull=False
    ).values_list("playbook_id", "opened_at", "closed_at"):
        durations[pk].append((closed_at - opened_at).total_seconds() / 3600)
    for pk, hours in durations.items():
        value = median(hours)
        out[pk]["median_hours_to_close"] = None if value is None else round(value, 1)
    later = HealthSnapshot.objects.filter(
        account=OuterRef("account_id"), day=OuterRef("followup_on")
    ).values("score")[:1]
    pairs: dict[int, list[tuple[float, float]]] = defaultdict(list)
    for pk, at_open, after in (
        Cta.objects.filter(playbook_id__in=ids, health_at_open__isnull=False)
        .annotate(after=Subquery(later))
        .filter(after__isnull=False)
        .values_list("playbook_id", "health_at_open", "after")
    ):
        pairs[pk].append((at_open, after))
    for pk, values in pairs.items():
        out[pk]["health_compared"] = len(values)
        out[pk]["health_at_open"] = round(sum(v[0] for v in values) / len(values), 1)
        out[pk]["health_after_30d"] = round(sum(v[1] for v in values) / len(values), 1)
    return out


def playbook_list() -> list[Playbook]:
    """Every playbook with ``stats`` (``playbook_effectiveness``), ``failed_messages`` (its
    outbox messages that gave up) and ``last_failure``. Five queries."""
    from outbox.models import Message

    playbooks = list(Playbook.objects.select_related("owner_user").order_by("name"))
    stats = playbook_effectiveness(p.pk for p in playbooks)
    failures: dict[str, list] = defaultdict(list)
    for message in Message.objects.filter(
        source__in=[p.source_label for p in playbooks], status="failed"
    ).order_by("-pk")[:500]:
        failures[message.source].append(message)
    for p in playbooks:
        p.stats = stats[p.pk]
        p.failed_messages = failures.get(p.source_label, [])
    return playbooks


def cta_list(*, user: User, filters: dict[str, Any] | None = None) -> QuerySet[Cta]:
    """CTAs ``user`` may see (``Cta.visible_to``), with account, owner and playbook loaded
    and ``steps_total`` / ``steps_done`` / ``account_visible`` (the user may open the
    account's page: a CTA given to them may be of an account they do not own) annotated;
    ``filters``: status, owner, account, playbook, cta_type, priority (exact values)."""
    qs = (
        Cta.objects.visible_to(user)
        .select_related("account", "owner", "playbook")
        .annotate(
            steps_total=Count("steps"),
            steps_done=Count("steps", filter=Q(steps__done_at__isnull=False)),
            account_visible=account_visible(user),
        )
        # soonest due first, then as pending CTAs are promoted (services.WAITING_ORDER)
        .order_by(
            "due_at",
            F("account__standing__priority").desc(nulls_last=True),
            F("account__standing__arr").desc(nulls_last=True),
            "pk",
        )
    )
    for name, value in (filters or {}).items():
        if value not in (None, ""):
            qs = qs.filter(**{name: value})
    return qs


def account_visible(user: User) -> Exists:
    """Annotation: the user may see the CTA's account (``Account.visible_to``)."""
    return Exists(Account.objects.visible_to(user).filter(pk=OuterRef("account_id")))


def pending_backlog() -> QuerySet:
    """Pending CTAs per owner (the noise budget's backlog), most first."""
    return (
        Cta.objects.filter(status=CtaStatus.PENDING)
        .values("owner_id", "owner__email")
        .order_by()
        .annotate(n=Count("pk"))
        .order_by("-n", "owner__email")
    )
