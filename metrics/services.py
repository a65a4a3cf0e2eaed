"""Writes of the metrics app: health models and their versions, manual overrides, the
daily health snapshots (recorded for chunks of accounts, set-based) and the daily KPI
snapshots (one per scope: the whole book, each segment, each owner)."""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from accounts.models import Account, User
from accounts.services import account_data_changed

from . import health, kpis
from .kpis.common import add_months, midnight
from .kpis.health_inputs import account_measures
from .models import (
    HealthModel,
    HealthModelVersion,
    HealthOverride,
    HealthSnapshot,
    KpiScope,
    KpiSnapshot,
)

logger = logging.getLogger(__name__)

CHUNK_SIZE = 2000  # accounts per set of queries; bounded memory, few round trips
DEFAULT_MODEL_NAME = "Default"

SNAPSHOT_FIELDS = [
    "model_version",
    "score",
    "band",
    "computed_score",
    "computed_band",
    "components",
    "left_out",
    "reasons",
    "overrides",
]


# --- models and versions ---------------------------------------------------------------------


def _spec_or_error(components: Any, *, green_min: float, yellow_min: float) -> health.ModelSpec:
    try:
        return health.parse_model(components, green_min=green_min, yellow_min=yellow_min)
    except health.HealthConfigError as exc:
        raise ValidationError({"components": [str(exc)]}) from exc


@transaction.atomic
def health_model_version_create(
    *,
    model: HealthModel,
    components: Any,
    green_min: float = 80,
    yellow_min: float = 50,
    created_by: User | None = None,
    notes: str = "",
) -> HealthModelVersion:
    """A new version of ``model`` (the next number), which becomes the active one; earlier
    versions stay as they were, with the snapshots they made. Raises ValidationError for a
    configuration ``metrics.health.parse_model`` refuses (e.g. all weights zero)."""
    spec = _spec_or_error(components, green_min=green_min, yellow_min=yellow_min)
    HealthModel.objects.select_for_update().filter(pk=model.pk).first()  # one writer per model
    last = model.versions.aggregate(n=Max("version"))["n"] or 0
    model.versions.filter(active=True).update(active=False)
    return HealthModelVersion.objects.create(
        model=model,
        version=last + 1,
        components=[c.as_json() for c in spec.components],
        green_min=spec.green_min,
        yellow_min=spec.yellow_min,
        created_by=created_by,
        notes=notes,
        active=True,
    )


def health_model_ensure_default() -> HealthModel:
    """The default model of docs/metrics.md, created with its first version when the
    installation has no default model yet; otherwise the existing one, untouched (admins may
    have edited it). Safe to call from concurrent runs."""
    existing = HealthModel.objects.filter(is_default=True).first()
    if existing is not None and existing.versions.filter(active=True).exists():
        return existing
    try:
        with transaction.atomic():
            model = existing or HealthModel.objects.create(name=DEFAULT_MODEL_NAME, is_default=True)
            health_model_version_create(
                model=model,
                components=health.DEFAULT_COMPONENTS,
                notes="the default model of docs/metrics.md",
            )
    except IntegrityError:  # another run created it meanwhile
        model = HealthModel.objects.get(is_default=True)
    return model


def _active_versions() -> tuple[list[health.Assignment], dict[int, HealthModelVersion]]:
    """One query: the active version of every model, with its assignment."""
    versions = {}
    assignments = []
    for version in HealthModelVersion.objects.filter(active=True).select_related("model"):
        m = version.model
        versions[m.pk] = version
        assignments.append(
            health.Assignment(
                model_id=m.pk,
                segment=m.applies_to_segment,
                lifecycle=m.applies_to_lifecycle,
                is_default=m.is_default,
            )
        )
    return assignments, versions


def health_model_for(account: Account) -> HealthModelVersion | None:
    """The active model version that scores ``account`` (most specific model first)."""
    assignments, versions = _active_versions()
    model_id = health.assign(
        assignments, segment=account.segment, lifecycle=account.lifecycle_stage
    )
    return versions.get(model_id)


# --- overrides -------------------------------------------------------------------------------


@transaction.atomic
def health_override_create(
    *,
    account: Account,
    reason: str,
    expires_at: dt.datetime,
    created_by: User | None = None,
    score: float | None = None,
    band: str = "",
    component: str = "",
) -> HealthOverride:
    """Override an account's health until ``expires_at``, with a reason (both required):
    the whole score (``score`` and/or ``band``) or one component's score (``component`` and
    ``score``). A component the account's model locks cannot be overridden. The row is the
    audit record; it takes effect in snapshots of days ending before it expires."""
    errors: dict[str, list[str]] = {}
    if not (reason or "").strip():
        errors["reason"] = ["a reason is required"]
    if expires_at is None:
        errors["expires_at"] = ["an expiry is required"]
    elif expires_at <= timezone.now():
        errors["expires_at"] = [f"must be in the future, got {expires_at.isoformat()}"]
    if score is None and not band:
        errors["score"] = ["give a score (0..100) or a band"]
    if score is not None and not 0 <= score <= 100:
        errors["score"] = [f"must be between 0 and 100, got {score}"]
    if component:
        if band:
            errors["band"] = ["a component override sets a score, not a band"]
        if score is None:
            errors["score"] = ["a component override needs a score (0..100)"]
        version = health_model_for(account)
        spec = version.spec() if version else None
        target = spec.component(component) if spec else None
        if target is None:
            known = ", ".join(c.key for c in spec.components) if spec else "none"
            errors["component"] = [f"no component {component!r} in this account's model ({known})"]
        elif target.locked:
            errors["component"] = [f"{target.label} is locked against overrides in {version}"]
    if errors:
        raise ValidationError(errors)
    override = HealthOverride(
        account=account,
        component=component,
        score=score,
        band=band,
        reason=reason.strip(),
        expires_at=expires_at,
        created_by=created_by,
    )
    override.full_clean()
    override.save()
    # today's score shows the override now, not after the next nightly run
    account_data_changed([account.pk])
    return override


# --- snapshots -------------------------------------------------------------------------------


def _overrides_in_force(accounts, *, end: dt.datetime) -> dict[int, list[health.Override]]:
    """One query: overrides made before ``end`` that have not expired by then."""
    found: dict[int, list[health.Override]] = {}
    for ov in (
        HealthOverride.objects.filter(
            account__in=accounts.values("pk"), created_at__lt=end, expires_at__gt=end
        )
        .select_related("created_by")
        .order_by("account_id", "id")
    ):
        found.setdefault(ov.account_id, []).append(
            health.Override(
                id=ov.pk,
                reason=ov.reason,
                expires_at=ov.expires_at.isoformat(),
                score=ov.score,
                band=ov.band,
                component=ov.component,
                created_by=ov.created_by.email if ov.created_by else "",
            )
        )
    return found


def _record_chunk(
    accounts, *, as_of: dt.date, assignments, versions: dict[int, HealthModelVersion]
) -> Counter:
    """Score every account of ``accounts`` as of ``as_of`` and upsert its snapshot: a fixed
    number of queries whatever the chunk's size."""
    end = midnight(as_of + dt.timedelta(days=1))
    rows = list(accounts.values_list("id", "segment", "lifecycle_stage").order_by("id"))
    measures = account_measures(accounts, as_of=as_of)
    overrides = _overrides_in_force(accounts, end=end)
    specs = {model_id: v.spec() for model_id, v in versions.items()}
    counts: Counter = Counter()
    snapshots = []
    for account_id, segment, lifecycle in rows:
        model_id = health.assign(assignments, segment=segment, lifecycle=lifecycle)
        if model_id is None:
            counts["no_model"] += 1
            continue
        result = health.score(
            specs[model_id], measures.get(account_id, {}), overrides=overrides.get(account_id, ())
        )
        counts[result.band or "no_data"] += 1
        snapshots.append(
            HealthSnapshot(
                account_id=account_id,
                day=as_of,
                model_version=versions[model_id],
                score=result.score,
                band=result.band,
                computed_score=result.computed_score,
                computed_band=result.computed_band,
                components=[c.as_json() for c in result.components],
                left_out=list(result.left_out),
                reasons=list(result.reasons),
                overrides=[o.as_json() for o in result.overrides],
            )
        )
    if snapshots:
        # natural key (account, day): re-recording a day rewrites its rows in place
        HealthSnapshot.objects.bulk_create(
            snapshots,
            update_conflicts=True,
            unique_fields=["account", "day"],
            update_fields=SNAPSHOT_FIELDS,
        )
    counts["accounts"] = len(snapshots)
    return counts


def health_snapshots_record(
    *,
    as_of: dt.date,
    account_ids: Sequence[int] | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> dict[str, Any]:
    """Record the health snapshot of ``as_of`` for ``account_ids`` (default: every account),
    in chunks of ``chunk_size``, each a fixed handful of queries and one transaction.
    Idempotent: re-running a day gives the same rows. Returns counts: accounts, green,
    yellow, red, no_data (no score), no_model."""
    health_model_ensure_default()
    assignments, versions = _active_versions()
    if account_ids is None:
        ids = list(Account.objects.order_by("id").values_list("id", flat=True))
        ranged = True
    else:
        ids = sorted(set(account_ids))
        ranged = False
    totals: Counter = Counter()
    for start in range(0, len(ids), chunk_size):
        chunk = ids[start : start + chunk_size]
        if ranged:  # every account: a contiguous id range, no list of parameters
            scope = Account.objects.filter(pk__gte=chunk[0], pk__lte=chunk[-1])
        else:
            scope = Account.objects.filter(pk__in=chunk)
        with transaction.atomic():
            totals.update(
                _record_chunk(scope, as_of=as_of, assignments=assignments, versions=versions)
            )
    result = {"day": as_of.isoformat(), "accounts": totals["accounts"]}
    for key in ("green", "yellow", "red", "no_data", "no_model"):
        result[key] = totals[key]
    return result


def health_recompute(
    *,
    start: dt.date,
    end: dt.date,
    chunk_size: int = CHUNK_SIZE,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Rebuild the snapshots of every day from ``start`` to ``end`` (both included), each as
    of that day with the models active now (a backfill after a model change rescores
    history with the new version). Returns one ``health_snapshots_record`` result per day."""
    if end < start:
        raise ValidationError({"to": [f"must be on or after --from ({start}), got {end}"]})
    results = []
    for offset in range((end - start).days + 1):
        day = start + dt.timedelta(days=offset)
        result = health_snapshots_record(as_of=day, chunk_size=chunk_size)
        results.append(result)
        if progress is not None:
            progress(result)
    return results


def health_changes(*, account: Account, before: dt.date, after: dt.date) -> list[str]:
    """What changed in ``account``'s health between two recorded days, in words."""
    snaps = {
        s.day: s
        for s in HealthSnapshot.objects.filter(
            account=account, day__in=[before, after]
        ).select_related("model_version__model")
    }
    missing = [d.isoformat() for d in (before, after) if d not in snaps]
    if missing:
        raise ValidationError({"day": [f"no health snapshot for {', '.join(missing)}"]})
    return health.what_changed(snaps[before].as_dict(), snaps[after].as_dict())


# --- KPI snapshots ---------------------------------------------------------------------------


def kpi_snapshot_period(day: dt.date) -> tuple[dt.date, dt.date]:
    """The trailing month ending with ``day``: ``[day + 1 − 1 month, day + 1)``."""
    end = day + dt.timedelta(days=1)
    return add_months(end, -1), end


def kpi_snapshots_record(*, as_of: dt.date) -> dict[str, Any]:
    """Record the KPI snapshot of ``as_of`` for the whole book, every segment and every
    owner (``KpiSnapshot`` docstring: the trailing month), replacing that day's rows and
    removing those of scopes that no longer exist. Each scope is one ``kpi_report`` (a fixed
    number of set-based queries); all rows are written in one upsert. Returns counts."""
    start, end = kpi_snapshot_period(as_of)
    segments = list(
        Account.objects.exclude(segment="")
        .order_by("segment")
        .values_list("segment", flat=True)
        .distinct()
    )
    owners = list(
        User.objects.filter(pk__in=Account.objects.filter(owner__isnull=False).values("owner_id"))
        .order_by("pk")
        .values_list("pk", "email")
    )
    computed_at = timezone.now()
    rows = [
        KpiSnapshot(
            day=as_of,
            scope_kind=KpiScope.ALL,
            scope_key="",
            report=kpis.kpi_report(start=start, end=end),
        )
    ]
    for segment in segments:
        report = kpis.kpi_report(
            start=start, end=end, accounts=Account.objects.filter(segment=segment)
        )
        report["scope"]["segment"] = segment
        rows.append(
            KpiSnapshot(day=as_of, scope_kind=KpiScope.SEGMENT, scope_key=segment, report=report)
        )
    for owner_id, email in owners:
        report = kpis.kpi_report(
            start=start, end=end, accounts=Account.objects.filter(owner_id=owner_id)
        )
        report["scope"]["owner"] = email
        rows.append(
            KpiSnapshot(
                day=as_of, scope_kind=KpiScope.OWNER, scope_key=str(owner_id), report=report
            )
        )
    for row in rows:
        row.period_start, row.period_end, row.computed_at = start, end, computed_at
    keep = {(r.scope_kind, r.scope_key) for r in rows}
    with transaction.atomic():
        stale = [
            pk
            for pk, kind, key in KpiSnapshot.objects.filter(day=as_of).values_list(
                "pk", "scope_kind", "scope_key"
            )
            if (kind, key) not in keep
        ]
        removed = KpiSnapshot.objects.filter(pk__in=stale).delete()[0] if stale else 0
        # natural key (day, scope): re-recording a day rewrites its rows in place
        KpiSnapshot.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["day", "scope_kind", "scope_key"],
            update_fields=["period_start", "period_end", "report", "computed_at"],
        )
    return {
        "day": as_of.isoformat(),
        "period_start": start.isoformat(),
        "period_end": end.isoformat(),
        "scopes": len(rows),
        "segments": len(segments),
        "owners": len(owners),
        "removed": removed,
    }
