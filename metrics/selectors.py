"""Reads of the metrics app: for the admin screens, which health model scores which
accounts (the assignment rules, resolved as ``metrics.health.assign`` resolves them) and
the audit trail of their changes; for the API, an account's health snapshots (the latest,
a range of days, what changed)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Count, F, OuterRef, QuerySet, Subquery

from accounts import utc
from accounts.models import Account, AccountLifecycle

from . import health
from .models import (
    HealthAssignmentChange,
    HealthAssignmentRule,
    HealthModel,
    HealthModelVersion,
    HealthSnapshot,
)

# health.assign's ranks, most specific first, in words
PRIORITIES = {
    3: "segment and stage",
    2: "segment",
    1: "stage",
    0: "default",
}


@dataclass
class HealthRule:
    """One row of the assignments page: an assignment rule (``rule``) and the model that
    scores the accounts of its segment and/or lifecycle stage, or the default row
    (``rule`` None, ``is_default``: every account no rule matches)."""

    model: HealthModel
    rule: HealthAssignmentRule | None
    segment: str
    lifecycle: str
    is_default: bool
    rank: int  # health.assign's: 3 segment and stage, 2 segment, 1 stage, 0 default
    active_version: int | None  # None: the model cannot score (no active version)
    covers: int = 0  # accounts it scores now (the most specific rule that matches them)
    matches: int = 0  # accounts it matches, including those a more specific rule takes
    segment_known: bool = True  # False: no account has the rule's segment yet

    @property
    def key(self) -> str:
        """The row's id on the page: ``rule-<pk>``, or ``rule-default``."""
        return "rule-default" if self.rule is None else f"rule-{self.rule.pk}"

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
    account) and the default last, each with the number of accounts it scores now and
    matches; the models (each with ``active_version`` and its ``rule_count``); those that
    score no account; the segments accounts have; how many accounts no rule scores.

    Two queries: the models with their active version LEFT JOINed to their rules (a row per
    rule), and the accounts counted by (segment, lifecycle stage)."""
    active = HealthModelVersion.objects.filter(model=OuterRef("pk"), active=True)
    rows = list(
        HealthModel.objects.annotate(
            active_version=Subquery(active.values("version")[:1]),
            rule_pk=F("rules__id"),
            rule_segment=F("rules__segment"),
            rule_lifecycle=F("rules__lifecycle"),
        ).order_by("-is_default", "name", "rule_pk")
    )
    groups = list(
        Account.objects.order_by()
        .values("segment", "lifecycle_stage")
        .annotate(n=Count("id"))
        .values_list("segment", "lifecycle_stage", "n")
    )
    segments = sorted({s for s, _, _ in groups if s})
    models: dict[int, HealthModel] = {}
    rules: list[HealthRule] = []
    for row in rows:
        m = models.setdefault(row.pk, row)  # the model's first row stands for it
        m.rule_count = getattr(m, "rule_count", 0)
        if m is row and m.is_default:
            rules.append(
                HealthRule(
                    model=m,
                    rule=None,
                    segment="",
                    lifecycle="",
                    is_default=True,
                    rank=0,
                    active_version=m.active_version,
                )
            )
        if row.rule_pk is None:
            continue
        m.rule_count += 1
        rule = HealthAssignmentRule(
            pk=row.rule_pk, model=m, segment=row.rule_segment, lifecycle=row.rule_lifecycle
        )
        rules.append(
            HealthRule(
                model=m,
                rule=rule,
                segment=rule.segment,
                lifecycle=rule.lifecycle,
                is_default=False,
                rank=health.specificity(
                    is_default=False, segment=rule.segment, lifecycle=rule.lifecycle
                ),
                active_version=m.active_version,
                segment_known=not rule.segment or rule.segment in segments,
            )
        )
    # as the scoring reads them (services._active_versions): models with an active version
    assignments = [
        health.Assignment(
            model_id=r.model.pk,
            segment=r.segment,
            lifecycle=r.lifecycle,
            is_default=r.is_default,
            rule_id=None if r.rule is None else r.rule.pk,
        )
        for r in rules
        if r.active_version is not None
    ]
    covers: Counter = Counter()
    no_model = 0
    for segment, lifecycle, n in groups:
        chosen = health.assign_rule(assignments, segment=segment, lifecycle=lifecycle)
        if chosen is None:
            no_model += n
        else:
            covers[chosen.rule_id] += n  # None: the default's
        for r in rules:
            if r.applies(segment, lifecycle):
                r.matches += n
    for r in rules:
        r.covers = covers[None if r.rule is None else r.rule.pk]
    rules.sort(key=lambda r: (-r.rank, r.segment.lower(), r.lifecycle, r.model.name))
    return {
        "rules": rules,
        "unassigned": [m for m in models.values() if not m.is_default and not m.rule_count],
        "segments": segments,
        "accounts": sum(n for _, _, n in groups),
        "no_model": no_model,
        "models": list(models.values()),
    }


def health_assignment_changes(*, limit: int = 10) -> list[HealthAssignmentChange]:
    """The newest changes of the assignment rules, newest first, with who made them (one
    query)."""
    return list(HealthAssignmentChange.objects.select_related("by")[:limit])


# --- an account's health, for the API (metrics.api) ---------------------------------------

CHANGES_BACK_DAYS = 7  # "what changed" compares with a week before, as the account page does
HISTORY_DEFAULT_DAYS = 90  # the history without a period: about a quarter, a few kB compact


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


def health_history_default(account: Account) -> tuple[dt.date, dt.date]:
    """The period of an account's health history when the caller names none: the
    ``HISTORY_DEFAULT_DAYS`` days ending with its newest snapshot, as ``[start, end)``
    (ending yesterday, UTC, when it has none: an empty list). One query."""
    last = (
        HealthSnapshot.objects.filter(account=account)
        .order_by("-day")
        .values_list("day", flat=True)
        .first()
    )
    end = (last or utc.yesterday()) + dt.timedelta(days=1)
    return end - dt.timedelta(days=HISTORY_DEFAULT_DAYS), end


def health_changes(
    account: Account, *, before_on: dt.date | None = None, after_on: dt.date | None = None
) -> dict[str, Any] | None:
    """What changed in the account's health between two snapshots, in words
    (``health.what_changed``, as on the account page). ``after_on``: the snapshot of that
    day or the latest before it (default: the newest); ``before_on``: likewise (default:
    ``CHANGES_BACK_DAYS`` before the later snapshot's day). Two queries (a third for the
    message when a day has no snapshot on or before it). None when the account has no
    snapshot at all.

    A ValidationError naming ``from`` or ``to`` (the API's parameters) in the caller's
    terms: which snapshot each day they gave came to and why the two cannot be compared
    (``from`` not before ``to``; both days coming to the same snapshot; no snapshot on or
    before a day, with the earliest there is)."""
    snaps = HealthSnapshot.objects.filter(account=account).select_related("model_version__model")
    if after_on is not None and before_on is not None and before_on >= after_on:
        raise ValidationError({"from": [f"must be a day before to ({after_on}), got {before_on}"]})
    after = snaps.filter(**({"day__lte": after_on} if after_on else {})).order_by("-day").first()
    if after is None:
        if after_on is None or not snaps.exists():
            return None
        raise ValidationError({"to": [_none_on_or_before(snaps, after_on)]})
    given = before_on is not None
    if not given:
        before_on = after.day - dt.timedelta(days=CHANGES_BACK_DAYS)
    elif before_on >= after.day:
        # e.g. from 11-12 and to 11-13 with no snapshot after 11-11: both days come to the
        # snapshot of 11-11
        if after_on is not None:
            same = (
                f"{before_on} and to ({after_on}) both come to the snapshot of {after.day}, "
                f"the latest on or before each (there is none after it up to {after_on})"
            )
        else:
            same = (
                f"{before_on} comes to the newest snapshot, of {after.day} (the latest on or "
                "before it), which is also the later one"
            )
        raise ValidationError(
            {"from": [f"{same}: nothing to compare; give a from before {after.day}"]}
        )
    before = snaps.filter(day__lte=before_on).order_by("-day").first()
    if before is None:
        problem = _none_on_or_before(snaps, before_on)
        if not given:
            problem = (
                f"not given, so a week before the later snapshot (of {after.day}): "
                f"{before_on}; {problem}"
            )
        raise ValidationError({"from": [problem]})
    return {
        "from": before,
        "to": after,
        "changes": health.what_changed(before.as_dict(), after.as_dict()),
    }


def _none_on_or_before(snaps: QuerySet[HealthSnapshot], day: dt.date) -> str:
    """ "No snapshot on or before ``day``", with the account's earliest snapshot."""
    earliest = snaps.order_by("day").values_list("day", flat=True).first()
    return f"no health snapshot on or before {day}; the earliest is of {earliest}"
