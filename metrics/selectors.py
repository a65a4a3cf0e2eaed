"""Reads of the metrics app: for the admin screens, which health model scores which
accounts (the assignment rules, resolved as ``metrics.health.assign`` resolves them); for
the API, an account's health snapshots (the latest, a range of days, what changed)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Count, OuterRef, QuerySet, Subquery

from accounts.models import Account, AccountLifecycle

from . import health
from .models import HealthModel, HealthModelVersion, HealthSnapshot

# health.assign's ranks, most specific first, in words
PRIORITIES = {
    3: "segment and stage",
    2: "segment",
    1: "stage",
    0: "default",
}


@dataclass
class HealthRule:
    """One assignment rule: the model that scores the accounts of a segment and/or
    lifecycle stage (or, the default rule, every account no other rule matches)."""

    model: HealthModel
    segment: str
    lifecycle: str
    is_default: bool
    rank: int  # health.assign's: 3 segment and stage, 2 segment, 1 stage, 0 default
    active_version: int | None  # None: the model cannot score (no active version)
    covers: int = 0  # accounts it scores now (the most specific rule that matches them)
    matches: int = 0  # accounts it matches, including those a more specific rule takes

    @property
    def priority(self) -> str:
        return PRIORITIES[self.rank]

    @property
    def lifecycle_label(self) -> str:
        return dict(AccountLifecycle.choices).get(self.lifecycle, self.lifecycle)

    @property
    def taken_elsewhere(self) -> int:
        return self.matches - self.covers

    def applies(self, segment: str, lifecycle: str) -> bool:
        if self.is_default:
            return True
        if self.segment and segment != self.segment:
            return False
        return not (self.lifecycle and lifecycle != self.lifecycle)


def health_rules() -> dict[str, Any]:
    """The rules, most specific first (the order ``health.assign`` tries them for an
    account), each with the number of accounts it scores now and matches; the models that
    apply to no account; the segments accounts have; how many accounts no rule scores.
    Two queries: the models with their active version, and the accounts counted by
    (segment, lifecycle stage)."""
    active = HealthModelVersion.objects.filter(model=OuterRef("pk"), active=True)
    models = list(
        HealthModel.objects.annotate(active_version=Subquery(active.values("version")[:1]))
    )
    groups = list(
        Account.objects.order_by()
        .values("segment", "lifecycle_stage")
        .annotate(n=Count("id"))
        .values_list("segment", "lifecycle_stage", "n")
    )
    rules: list[HealthRule] = []
    unassigned: list[HealthModel] = []
    for m in models:
        rank = health.specificity(
            is_default=m.is_default, segment=m.applies_to_segment, lifecycle=m.applies_to_lifecycle
        )
        if rank is None:
            unassigned.append(m)
            continue
        rules.append(
            HealthRule(
                model=m,
                segment=m.applies_to_segment,
                lifecycle=m.applies_to_lifecycle,
                is_default=m.is_default,
                rank=rank,
                active_version=m.active_version,
            )
        )
    # as the scoring reads them (services._active_versions): models with an active version
    assignments = [
        health.Assignment(
            model_id=r.model.pk, segment=r.segment, lifecycle=r.lifecycle, is_default=r.is_default
        )
        for r in rules
        if r.active_version is not None
    ]
    covers: Counter = Counter()
    no_model = 0
    for segment, lifecycle, n in groups:
        model_id = health.assign(assignments, segment=segment, lifecycle=lifecycle)
        if model_id is None:
            no_model += n
        else:
            covers[model_id] += n
        for r in rules:
            if r.applies(segment, lifecycle):
                r.matches += n
    for r in rules:
        r.covers = covers[r.model.pk]
    rules.sort(key=lambda r: (-r.rank, r.segment.lower(), r.lifecycle, r.model.name))
    return {
        "rules": rules,
        "unassigned": unassigned,
        "segments": sorted({s for s, _, _ in groups if s}),
        "accounts": sum(n for _, _, n in groups),
        "no_model": no_model,
        "models": models,
    }


# --- an account's health, for the API (metrics.api) ---------------------------------------

CHANGES_BACK_DAYS = 7  # "what changed" compares with a week before, as the account page does


def health_snapshot_latest(account: Account) -> HealthSnapshot | None:
    """The account's newest snapshot with its model version and model (one query); None
    when the account has none yet."""
    return (
        HealthSnapshot.objects.filter(account=account)
        .select_related("model_version__model")
        .order_by("-day")
        .first()
    )


def health_snapshot_history(
    account: Account, *, start: dt.date, end: dt.date, components: bool = False
) -> QuerySet[HealthSnapshot]:
    """The account's snapshots of the days in ``[start, end)``, oldest first, with their
    model version (a join, not a query per row). Without ``components`` the large JSON
    columns (components, reasons, left out) stay in the database: a year of compact rows
    is a few tens of kB, with components about a megabyte. Reads the (account, day) unique
    index ``health_snapshot_unique``."""
    rows = (
        HealthSnapshot.objects.filter(account=account, day__gte=start, day__lt=end)
        .select_related("model_version__model")
        .order_by("day")
    )
    if not components:
        rows = rows.defer("components", "left_out", "reasons")
    return rows


def health_changes(
    account: Account, *, before_on: dt.date | None = None, after_on: dt.date | None = None
) -> dict[str, Any] | None:
    """What changed in the account's health between two snapshots, in words
    (``health.what_changed``, as on the account page). ``after_on``: the snapshot of that
    day or the latest before it (default: the newest); ``before_on``: likewise (default:
    ``CHANGES_BACK_DAYS`` before the later snapshot's day). Two queries. None when the
    account has no snapshot at all; a ValidationError naming ``from`` or ``to`` when a day
    has no snapshot on or before it, or ``from`` is not before ``to``."""
    snaps = HealthSnapshot.objects.filter(account=account).select_related("model_version__model")
    if after_on is not None and before_on is not None and before_on >= after_on:
        raise ValidationError({"from": [f"must be before to ({after_on}), got {before_on}"]})
    after = snaps.filter(**({"day__lte": after_on} if after_on else {})).order_by("-day").first()
    if after is None:
        if after_on is None or not snaps.exists():
            return None
        raise ValidationError({"to": [f"no health snapshot on or before {after_on}"]})
    if before_on is None:
        before_on = after.day - dt.timedelta(days=CHANGES_BACK_DAYS)
    elif before_on >= after.day:
        raise ValidationError(
            {"from": [f"must be before {after.day} (the later snapshot's day), got {before_on}"]}
        )
    before = snaps.filter(day__lte=before_on).order_by("-day").first()
    if before is None:
        raise ValidationError({"from": [f"no health snapshot on or before {before_on}"]})
    return {
        "from": before,
        "to": after,
        "changes": health.what_changed(before.as_dict(), after.as_dict()),
    }
