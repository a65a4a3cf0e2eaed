"""Writes of the metrics app: health models and their versions, manual overrides, the
daily health snapshots (recorded for chunks of accounts, set-based) and the daily KPI
snapshots (one per scope: the whole book, each segment, each owner)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Max, Min, OuterRef, Subquery
from django.utils import timezone

from accounts import utc
from accounts.models import Account, AccountLifecycle, User
from accounts.services import account_data_changed
from accounts.stale import stale_words
from accounts.timeline import rows_reword
from config.db import copy_stage, in_processes, in_threads

from . import health, kpis
from .kpis import adoption
from .kpis.common import add_months, midnight
from .kpis.health_inputs import account_measures
from .models import (
    HealthAssignmentChange,
    HealthAssignmentRule,
    HealthModel,
    HealthModelVersion,
    HealthOverride,
    HealthSnapshot,
    KpiScope,
    KpiSnapshot,
)

logger = logging.getLogger(__name__)

CHUNK_SIZE = 5000  # accounts per set of queries; bounded memory (~30 MB), few round trips
DEFAULT_MODEL_NAME = "Default"
BAND_CHANGED_KIND = "health_band_changed"  # the timeline fact of a band change

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
    """The checks of a version about to score (saved or restored): ``health.parse_model``'s,
    then one name per component (``health.duplicate_names``, which scoring itself does not
    ask of versions stored before the rule)."""
    try:
        spec = health.parse_model(components, green_min=green_min, yellow_min=yellow_min)
    except health.HealthConfigError as exc:
        raise ValidationError({"components": [exc.words_and_path]}) from exc
    twins = health.duplicate_names(components)
    if twins:
        raise ValidationError(
            {
                "components": [
                    f"component {other + 1} is named “{name}” like component {first + 1}: "
                    "give each its own name"
                    for first, other, name in twins
                ]
            }
        )
    return spec


@transaction.atomic
def health_model_version_create(
    *,
    model: HealthModel,
    components: Any,
    green_min: float = 80,
    yellow_min: float = 50,
    created_by: User | None = None,
    notes: str = "",
    restored_from: HealthModelVersion | None = None,
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
        restored_from=restored_from,
    )


def health_model_version_restorable(
    *, model: HealthModel, version_id: int | None
) -> HealthModelVersion:
    """The version of ``model`` with id ``version_id`` if restoring it would change
    something; otherwise a ValidationError (``{"version": [...]}``) saying why: none
    given, no such version, a version of another model, the version active now, one that
    breaks the rules of saving a version today (stored before them, e.g. two components with
    one name: the message names them), or one with the same rules as the active version
    (e.g. restored already: a second click makes no second copy). Two queries."""
    old = None
    if version_id is not None:
        old = HealthModelVersion.objects.select_related("model").filter(pk=version_id).first()
    if old is None:
        what = "No version chosen" if version_id is None else f"No version has id {version_id}"
        raise ValidationError({"version": [f"{what}: nothing restored."]})
    if old.model_id != model.pk:
        raise ValidationError(
            {"version": [f"{old} is a version of {old.model}, not of {model}: nothing restored."]}
        )
    if old.active:
        raise ValidationError(
            {"version": [f"{old} is already the active version: nothing to restore."]}
        )
    try:  # the checks of saving a version: one stored before a rule may break it
        _spec_or_error(old.components, green_min=old.green_min, yellow_min=old.yellow_min)
    except ValidationError as exc:
        raise ValidationError(
            {
                "version": [
                    f"{old} breaks today's rules for a model, so it cannot be restored: "
                    f"{'; '.join(exc.messages)}. Nothing restored."
                ]
            }
        ) from exc
    active = model.versions.filter(active=True).first()
    if active is not None and old.same_rules(active):
        raise ValidationError(
            {
                "version": [
                    f"{old} has the same components, weights and bands as {active}, active "
                    "now: restoring it would change no score."
                ]
            }
        )
    return old


@transaction.atomic
def health_model_version_restore(
    *,
    model: HealthModel,
    version_id: int | None,
    restored_by: User | None = None,
    notes: str = "",
) -> HealthModelVersion:
    """Make an earlier version of ``model`` score again (a rollback).

    The version is copied into a new one (the next number, ``restored_from`` = the earlier
    version, ``created_by`` = ``restored_by``, notes starting "restored from vN"), which
    becomes the active one; no row is re-activated. So version numbers follow the order in
    which versions started scoring, each version's snapshots come from one stretch of time,
    and who restored what and when is kept like any other change. Snapshots already
    recorded keep the version that made them until their days are rescored
    (``health_recompute``).

    Raises ValidationError and writes nothing when ``health_model_version_restorable``
    refuses (checked under the model's lock, so two restores in a race make one version)."""
    HealthModel.objects.select_for_update().filter(pk=model.pk).first()  # one writer per model
    old = health_model_version_restorable(model=model, version_id=version_id)
    note = f"restored from v{old.version}"
    return health_model_version_create(
        model=model,
        components=old.components,
        green_min=old.green_min,
        yellow_min=old.yellow_min,
        created_by=restored_by,
        notes=f"{note}: {notes.strip()}" if notes.strip() else note,
        restored_from=old,
    )


def health_versions_named_twice() -> list[str]:
    """The active versions that score with two components of one name (stored before
    ``_spec_or_error`` refused them; they still score as they always did, but the account
    page and the override form name components by it, so the two read as one), each in
    words with what to do: "Default v3: components 1 and 4 are both named “Usage”: make a
    new version giving each its own name". One query over the active versions."""
    out = []
    active = HealthModelVersion.objects.filter(active=True).select_related("model")
    for version in active.order_by("model__name", "model_id"):
        if twins := health.twin_names_words(version.components):
            out.append(f"{version}: {twins}: make a new version giving each its own name")
    return out


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
    """One query: the active version of every model with its model, LEFT JOINed to the
    model's rules (a row per rule, one with no rule for a model without any). Returns the
    candidates for ``health.assign`` (one per rule, one for the default model) and the
    active versions by model id."""
    rows = (
        HealthModelVersion.objects.filter(active=True)
        .select_related("model")
        .annotate(
            rule_id=F("model__rules__id"),
            rule_segment=F("model__rules__segment"),
            rule_lifecycle=F("model__rules__lifecycle"),
        )
        .order_by("model_id", "rule_id")
    )
    versions: dict[int, HealthModelVersion] = {}
    assignments = []
    for version in rows:
        m = version.model
        if m.pk not in versions:
            versions[m.pk] = version
            if m.is_default:
                assignments.append(health.Assignment(model_id=m.pk, is_default=True))
        if version.rule_id is not None:
            assignments.append(
                health.Assignment(
                    model_id=m.pk,
                    segment=version.rule_segment,
                    lifecycle=version.rule_lifecycle,
                    rule_id=version.rule_id,
                )
            )
    return assignments, versions


def health_model_for(account: Account) -> HealthModelVersion | None:
    """The active model version that scores ``account`` (most specific rule first)."""
    assignments, versions = _active_versions()
    model_id = health.assign(
        assignments, segment=account.segment, lifecycle=account.lifecycle_stage
    )
    return versions.get(model_id)


# --- assignment rules ------------------------------------------------------------------------
#
# A rule (``HealthAssignmentRule``) sends the accounts of a segment and/or a lifecycle stage
# to a model; a model may serve any number of rules; the default model
# (``HealthModel.is_default``) scores every account no rule matches. Every change writes a
# ``HealthAssignmentChange`` in the same transaction. Rule changes are rare, so each one
# locks every model row first: two admins' changes run one after the other, and the checks
# below (a duplicate rule, the default) stay true until commit.


def _stage_label(lifecycle: str) -> str:
    return dict(AccountLifecycle.choices).get(lifecycle, lifecycle)


def health_rule_words(*, segment: str = "", lifecycle: str = "", is_default: bool = False) -> str:
    """A rule in words: "segment “Enterprise” and stage Onboarding", "every other account"."""
    if is_default:
        return "every other account"
    parts = []
    if segment:
        parts.append(f"segment “{segment}”")
    if lifecycle:
        parts.append(f"stage {_stage_label(lifecycle)}")
    return " and ".join(parts) or "no account"


def _accounts_words(segment: str, lifecycle: str) -> str:
    """Whose accounts a rule sends: "“Enterprise” accounts in onboarding"."""
    stage = f"in {_stage_label(lifecycle).lower()}" if lifecycle else ""
    if segment:
        return f"“{segment}” accounts {stage}".strip()
    return f"accounts {stage}"


def _change_words(*, segment: str = "", lifecycle: str = "", model: HealthModel) -> str:
    """A rule and its model, as the audit trail keeps it: "segment “SMB” → Growth"."""
    return f"{health_rule_words(segment=segment, lifecycle=lifecycle)} → {model.name}"


def health_model_scope_words(
    model: HealthModel, *, rules: Sequence[HealthAssignmentRule] | None = None
) -> str:
    """Which accounts ``model`` scores, in words: "segment “Enterprise”; segment “Strategic”",
    "every other account", "no account". ``rules``: the model's rules if already loaded
    (else one query)."""
    if rules is None:
        rules = list(model.rules.all())
    parts = [
        health_rule_words(segment=r.segment, lifecycle=r.lifecycle)
        for r in sorted(rules, key=lambda r: (r.segment.lower(), r.lifecycle))
    ]
    if model.is_default:
        parts.append("every other account")
    return "; ".join(parts) or "no account"


def _lock_models() -> dict[int, HealthModel]:
    return {m.pk: m for m in HealthModel.objects.select_for_update().order_by("pk")}


def _rule_errors(
    *,
    models: dict[int, HealthModel],
    rule: HealthAssignmentRule | None,
    model: HealthModel,
    segment: str,
    lifecycle: str,
) -> dict[str, list[str]]:
    """What is wrong with sending (segment, lifecycle) to ``model``, by field (``segment``,
    ``lifecycle``, ``model``); ``rule``: the rule being changed (None for a new one)."""
    errors: dict[str, list[str]] = {}
    chosen = models.get(model.pk)
    if chosen is None:
        errors["model"] = ["this model does not exist (any more): reload the page"]
    elif not chosen.versions.filter(active=True).exists():
        errors["model"] = [f"{chosen} has no active version: it cannot score accounts yet"]
    max_length = HealthAssignmentRule._meta.get_field("segment").max_length
    if len(segment) > max_length:
        errors["segment"] = [f"at most {max_length} characters, got {len(segment)}"]
    if lifecycle and lifecycle not in AccountLifecycle.values:
        stages = ", ".join(AccountLifecycle.labels)
        errors["lifecycle"] = [f"unknown lifecycle stage “{lifecycle}”; the stages are: {stages}"]
    if not segment and not lifecycle:
        errors["segment"] = [
            "choose a segment, a stage, or both: every other account is the default model's"
        ]
    if errors:
        return errors
    if segment and (rule is None or segment != rule.segment):
        # segments match exactly: "enterprise" would silently match no "Enterprise" account
        known = Account.objects.segments()
        if segment not in known:
            near = next((k for k in known if k.casefold() == segment.casefold()), None)
            if near is not None:
                errors["segment"] = [
                    f"accounts have the segment “{near}”: write it the same way (a rule's "
                    f"segment must match exactly)"
                ]
                return errors
    taken = (
        HealthAssignmentRule.objects.filter(segment=segment, lifecycle=lifecycle)
        .exclude(pk=rule.pk if rule is not None else None)
        .select_related("model")
        .first()
    )
    if taken is not None:
        # at the segment, unless the rule has none (then the stage is what collides)
        errors["segment" if segment else "lifecycle"] = [
            f"another rule already sends {_accounts_words(segment, lifecycle)} to the model "
            f"“{taken.model}”: change that rule instead"
        ]
    return errors


def _saved_meanwhile(segment: str, lifecycle: str) -> ValidationError:
    return ValidationError(
        {
            "segment" if segment else "lifecycle": [
                f"another rule for {_accounts_words(segment, lifecycle)} was saved meanwhile: "
                "reload the page"
            ]
        }
    )


def _change_log(
    action: str, *, before: str = "", after: str = "", by: User | None
) -> HealthAssignmentChange:
    logger.info("health assignment %s: %s ⇒ %s, by %s", action, before or "-", after or "-", by)
    return HealthAssignmentChange.objects.create(action=action, before=before, after=after, by=by)


@transaction.atomic(durable=True)
def health_rule_add(
    *, model: HealthModel, segment: str = "", lifecycle: str = "", by: User | None = None
) -> HealthAssignmentRule:
    """A new rule: ``model`` scores the accounts of ``segment`` and/or ``lifecycle`` (a
    stage of ``AccountLifecycle``). The segment may be one no account has yet.

    Raises ValidationError, in words, by field (``segment``, ``lifecycle``, ``model``): no
    segment and no stage, a rule for the same segment and stage already, a segment spelled
    unlike the accounts' one only in capitals, an unknown stage, a model without an active
    version. Nothing is written then. Takes effect from the next scoring (nightly run, an
    account's recompute, a rescore of past days)."""
    models = _lock_models()
    segment, lifecycle = (segment or "").strip(), (lifecycle or "").strip()
    errors = _rule_errors(
        models=models, rule=None, model=model, segment=segment, lifecycle=lifecycle
    )
    if errors:
        raise ValidationError(errors)
    chosen = models[model.pk]
    try:
        rule = HealthAssignmentRule.objects.create(
            model=chosen, segment=segment, lifecycle=lifecycle, created_by=by
        )
    except IntegrityError:  # SQLite has no row locks: a rule saved meanwhile
        raise _saved_meanwhile(segment, lifecycle) from None
    _change_log(
        HealthAssignmentChange.Action.ADDED,
        after=_change_words(segment=segment, lifecycle=lifecycle, model=chosen),
        by=by,
    )
    return rule


def health_rule_state(rule: HealthAssignmentRule) -> str:
    """A rule's segment, stage and model in one string, as its row shows them: a change
    sent from a page showing another state is refused (``health_rule_change``)."""
    return f"{rule.segment}|{rule.lifecycle}|{rule.model_id}"


def _assignment_stale(changed: str, *, after: str) -> ValidationError:
    """The refusal of a save from a page opened before someone else's change, naming the
    change of the trail that made the rule (or the default) what it is now (one query)."""
    last = HealthAssignmentChange.objects.select_related("by").filter(after=after).first()
    return ValidationError(
        stale_words(
            changed=changed,
            by=last.by if last else None,
            at=last.at if last else None,
            opened="the page",
            see="the rules as they are now",
        )
    )


@transaction.atomic(durable=True)
def health_rule_change(
    *,
    rule: HealthAssignmentRule,
    model: HealthModel,
    segment: str = "",
    lifecycle: str = "",
    by: User | None = None,
    seen: str | None = None,
) -> HealthAssignmentRule:
    """Change a rule's segment, stage or model (two rules swap models by two changes).
    Refused as ``health_rule_add`` refuses, and for a rule removed meanwhile; nothing is
    written then, nor when nothing changes. ``seen``: the rule as the page showed it
    (``health_rule_state``; None: no check); a change of a rule someone else changed since
    is refused, naming who and when: saving would silently undo their change."""
    models = _lock_models()
    current = HealthAssignmentRule.objects.filter(pk=rule.pk).select_related("model").first()
    if current is None:
        raise ValidationError("this rule does not exist any more: reload the page")
    segment, lifecycle = (segment or "").strip(), (lifecycle or "").strip()
    same = (current.segment, current.lifecycle, current.model_id) == (segment, lifecycle, model.pk)
    if not same and seen is not None and seen != health_rule_state(current):
        now = _change_words(
            segment=current.segment, lifecycle=current.lifecycle, model=current.model
        )
        raise _assignment_stale("This rule was changed", after=now)
    errors = _rule_errors(
        models=models, rule=current, model=model, segment=segment, lifecycle=lifecycle
    )
    if errors:
        raise ValidationError(errors)
    chosen = models[model.pk]
    if (current.segment, current.lifecycle, current.model_id) == (segment, lifecycle, chosen.pk):
        return current
    before = _change_words(
        segment=current.segment, lifecycle=current.lifecycle, model=current.model
    )
    current.segment, current.lifecycle, current.model = segment, lifecycle, chosen
    try:
        current.save(update_fields=["segment", "lifecycle", "model"])
    except IntegrityError:  # SQLite has no row locks: a rule saved meanwhile
        raise _saved_meanwhile(segment, lifecycle) from None
    _change_log(
        HealthAssignmentChange.Action.CHANGED,
        before=before,
        after=_change_words(segment=segment, lifecycle=lifecycle, model=chosen),
        by=by,
    )
    return current


@transaction.atomic(durable=True)
def health_rule_remove(*, rule: HealthAssignmentRule, by: User | None = None) -> str:
    """Remove a rule: its accounts go to the next rule that matches them (at the latest the
    default model); its model keeps its other rules and its versions. Returns the rule in
    words, as the audit trail keeps it. Refused for a rule removed meanwhile."""
    _lock_models()
    current = HealthAssignmentRule.objects.filter(pk=rule.pk).select_related("model").first()
    if current is None:
        raise ValidationError("this rule does not exist any more: reload the page")
    words = _change_words(segment=current.segment, lifecycle=current.lifecycle, model=current.model)
    current.delete()
    _change_log(HealthAssignmentChange.Action.REMOVED, before=words, by=by)
    return words


@transaction.atomic(durable=True)
def health_default_move(
    *, model: HealthModel, by: User | None = None, seen: str | None = None
) -> HealthModel:
    """Make ``model`` the default: it scores every account no rule matches; the old default
    keeps its rules and versions. Raises ValidationError (``model``) for a model that is
    the default already or has no active version; nothing is written then. ``seen``: the
    default model's id as the page showed it (None: no check); a move after someone else
    moved it since is refused, naming who and when."""
    models = _lock_models()
    chosen = models.get(model.pk)
    old = next((m for m in models.values() if m.is_default), None)
    if seen is not None and seen != str(old.pk if old else "") and chosen != old:
        now = f"every other account → {old.name}" if old else ""
        raise _assignment_stale("The default was moved", after=now)
    if chosen is None:
        raise ValidationError({"model": ["this model does not exist (any more): reload the page"]})
    if chosen == old:
        raise ValidationError({"model": [f"{chosen} is the default already"]})
    if not chosen.versions.filter(active=True).exists():
        raise ValidationError(
            {"model": [f"{chosen} has no active version: it cannot score accounts yet"]}
        )
    if old is not None:  # the old default first: one default at a time
        old.is_default = False
        old.save(update_fields=["is_default"])
    chosen.is_default = True
    chosen.save(update_fields=["is_default"])
    _change_log(
        HealthAssignmentChange.Action.DEFAULT_MOVED,
        before=f"every other account → {old.name}" if old is not None else "",
        after=f"every other account → {chosen.name}",
        by=by,
    )
    return chosen


@transaction.atomic
def health_model_copy(
    *, source: HealthModel, name: str, created_by: User | None = None
) -> HealthModel:
    """A new model called ``name``, applying to no account, whose first version copies the
    active version of ``source`` (components and bands). Raises ValidationError (``name``,
    ``source``) for a missing or taken name, or a source without an active version."""
    name = (name or "").strip()
    errors: dict[str, list[str]] = {}
    max_length = HealthModel._meta.get_field("name").max_length
    if not name:
        errors["name"] = ["give the new model a name"]
    elif len(name) > max_length:
        errors["name"] = [f"at most {max_length} characters, got {len(name)}"]
    elif HealthModel.objects.filter(name__iexact=name).exists():
        errors["name"] = [f"a model called “{name}” exists already"]
    active = source.versions.filter(active=True).first()
    if active is None:
        errors["source"] = [f"{source} has no active version to copy"]
    if errors:
        raise ValidationError(errors)
    try:
        with transaction.atomic():
            model = HealthModel.objects.create(name=name)
    except IntegrityError:  # created meanwhile by someone else
        raise ValidationError({"name": [f"a model called “{name}” exists already"]}) from None
    health_model_version_create(
        model=model,
        components=active.components,
        green_min=active.green_min,
        yellow_min=active.yellow_min,
        created_by=created_by,
        notes=f"a copy of {active}",
    )
    return model


# --- overrides -------------------------------------------------------------------------------


OVERRIDE_LONGEST = dt.timedelta(days=366)  # how far ahead an override may end


def health_override_problems(
    *,
    account: Account,
    reason: str,
    expires_at: dt.datetime | None,
    score: float | None = None,
    band: str = "",
    component: str = "",
) -> dict[str, list[str]]:
    """What is wrong with an override ``health_override_create`` is asked for, by field
    (``{}``: nothing), every field at once so a form shows them in one round. Days are
    printed as pages print them (``utc.day_text``), the expiry as its last day in force
    (``until``). An override must end after today (UTC): one ending today ends with
    today's snapshot day and is in force on no snapshot (``_overrides_in_force``)."""
    errors: dict[str, list[str]] = {}
    if not (reason or "").strip():
        errors["reason"] = ["a reason is required"]
    if expires_at is None:
        errors["expires_at"] = ["an expiry is required"]
    else:
        entered = utc.day_text(utc.deadline_day(expires_at)[0])
        today = utc.today()
        if expires_at <= midnight(today + dt.timedelta(days=1)):
            errors["expires_at"] = [f"Until must be after today (you entered {entered})"]
        elif expires_at > timezone.now() + OVERRIDE_LONGEST:
            latest = utc.day_text(today + OVERRIDE_LONGEST)
            errors["expires_at"] = [
                f"Until must be at most {OVERRIDE_LONGEST.days} days ahead, {latest} at the "
                f"latest (an override is a judgement for a while, not a new model; you "
                f"entered {entered})"
            ]
    if score is None and not band:
        errors["score"] = ["give a score (0..100) or a band"]
    if score is not None and not 0 <= score <= 100:
        errors["score"] = [f"must be between 0 and 100, got {score:g}"]
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
    return errors


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
    audit record; it takes effect in snapshots of days ending before it expires. Raises
    one ``ValidationError`` with every problem (``health_override_problems``)."""
    errors = health_override_problems(
        account=account,
        reason=reason,
        expires_at=expires_at,
        score=score,
        band=band,
        component=component,
    )
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


def _score_chunk(
    accounts,
    *,
    as_of: dt.date,
    assignments,
    versions: dict[int, HealthModelVersion],
    usage: adoption.UsageInputs | None = None,
    only: HealthModelVersion | None = None,
) -> tuple[list[tuple], Counter]:
    """Score every account of ``accounts`` as of ``as_of``, in memory: the snapshot rows
    (``_SNAPSHOT_COLUMNS``' order, components as ``ComponentResult``s) and the counts per
    band. ``only``: score every account with that version instead of its assigned one
    (what the backtest of one version asks). A fixed number of queries, no writes."""
    end = midnight(as_of + dt.timedelta(days=1))
    rows = list(accounts.values_list("id", "segment", "lifecycle_stage").order_by("id"))
    measures = account_measures(
        accounts, as_of=as_of, usage=usage, account_ids=[r[0] for r in rows]
    )
    overrides = _overrides_in_force(accounts, end=end)
    if only is not None:
        versions = {only.model_id: only}
    scorers = {model_id: health.Scorer(v.spec()) for model_id, v in versions.items()}
    counts: Counter = Counter()
    snapshots = []
    for account_id, segment, lifecycle in rows:
        if only is not None:
            model_id = only.model_id
        else:
            model_id = health.assign(assignments, segment=segment, lifecycle=lifecycle)
        if model_id is None:
            counts["no_model"] += 1
            continue
        result = scorers[model_id].score(
            measures.get(account_id, {}), overrides=overrides.get(account_id, ())
        )
        counts[result.band or "no_data"] += 1
        snapshots.append(
            (
                account_id,
                as_of,
                versions[model_id].pk,
                result.score,
                result.band,
                result.computed_score,
                result.computed_band,
                result.components,  # ComponentResults: _snapshots_upsert encodes them
                list(result.left_out),
                list(result.reasons),
                [o.as_json() for o in result.overrides],
            )
        )
    return snapshots, counts


def _record_chunk(
    accounts,
    *,
    as_of: dt.date,
    assignments,
    versions: dict[int, HealthModelVersion],
    usage: adoption.UsageInputs | None = None,
    announce: bool = True,
) -> Counter:
    """Score every account of ``accounts`` as of ``as_of`` (``_score_chunk``) and upsert its
    snapshot: a fixed number of queries whatever the chunk's size."""
    snapshots, counts = _score_chunk(
        accounts, as_of=as_of, assignments=assignments, versions=versions, usage=usage
    )
    if snapshots:
        counts["written"] = _snapshots_upsert(snapshots)
        health_band_changes_record(
            accounts,
            as_of=as_of,
            # account, band, score, whether an override was in force, and the computed band
            # when an override of the account set the band (not the score's band)
            scored=[
                (r[0], r[4], r[3], bool(r[_OVERRIDES_AT]), _band_set_by_override(r))
                for r in snapshots
            ],
            announce=announce,
        )
    counts["accounts"] = len(snapshots)
    return counts


# (account, day) natural key: re-recording a day rewrites its rows in place
_SNAPSHOT_COLUMNS = ("account_id", "day", "model_version_id", *SNAPSHOT_FIELDS[1:])
_JSON_COLUMNS = {"components", "left_out", "reasons", "overrides"}
_STAGE = "metrics_health_stage"
_COMPONENTS_AT = _SNAPSHOT_COLUMNS.index("components")
_OVERRIDES_AT = _SNAPSHOT_COLUMNS.index("overrides")


def _with_components_as_json(row: tuple) -> tuple:
    """A snapshot row with its ``ComponentResult``s as the JSON values the field stores."""
    at = _COMPONENTS_AT
    return (*row[:at], [c.as_json() for c in row[at]], *row[at + 1 :])


# False: the stage keeps the server's default compression (pglz), to compare the two
# (docs/benchmarks.md, 2026-11-23: lz4 costs the backend ~25 % less CPU for the upsert)
_LZ4_WANTED = True


def _snapshots_upsert(rows: list[tuple]) -> int:
    """Upsert snapshot rows (tuples in ``_SNAPSHOT_COLUMNS`` order) on ``(account, day)``.

    PostgreSQL: COPY into a temporary table, then one ``INSERT … SELECT … ON CONFLICT DO
    UPDATE`` that leaves unchanged rows alone (a re-run of a day writes nothing). Django's
    ``bulk_create`` sends each column as an array parameter, which psycopg quotes in Python,
    and that took most of the health step's time (docs/benchmarks.md). Elsewhere (SQLite):
    the same upsert, its rows as parameters (one ``executemany``). Four statements per call
    on PostgreSQL, one on SQLite, whatever the rows. Returns the number of rows written: new,
    or different from the row recorded before for their account and day."""
    columns = ", ".join(_SNAPSHOT_COLUMNS)
    updates = [c for c in _SNAPSHOT_COLUMNS if c not in ("account_id", "day")]
    upsert = (
        f"INSERT INTO metrics_healthsnapshot AS old ({columns}) "  # noqa: S608 - our names
        "{rows} ON CONFLICT (account_id, day) DO UPDATE SET "
        + ", ".join(f"{c} = EXCLUDED.{c}" for c in updates)
        + f" WHERE ({', '.join(f'old.{c}' for c in updates)}) "
        + ("IS DISTINCT FROM" if connection.vendor == "postgresql" else "IS NOT")
        + f" ({', '.join(f'EXCLUDED.{c}' for c in updates)})"
    )
    if connection.vendor != "postgresql":
        # SQLite: the same upsert, a row of parameters at a time (one executemany), each
        # value prepared by its model field as bulk_create would
        fields = [HealthSnapshot._meta.get_field(c) for c in _SNAPSHOT_COLUMNS]
        values = [
            [f.get_db_prep_save(v, connection) for f, v in zip(fields, row, strict=True)]
            for row in (_with_components_as_json(r) for r in rows)
        ]
        marks = ", ".join(["%s"] * len(_SNAPSHOT_COLUMNS))
        with connection.cursor() as cursor:
            cursor.executemany(upsert.format(rows=f"VALUES ({marks})"), values)
            return max(cursor.rowcount, 0)
    json_at = [i for i, c in enumerate(_SNAPSHOT_COLUMNS) if c in _JSON_COLUMNS]
    with connection.cursor() as cursor:
        # the stage's JSON columns compressed with lz4 when the server has it (a build
        # option): about twice as fast as the default pglz on the ~2.4 kB of a row's
        # components, and INSERT … SELECT keeps a compressed value as it is, so the snapshot
        # table stores them so (the same values; docs/benchmarks.md). One statement, like
        # the plain CREATE … IF NOT EXISTS it replaces (the query counts are pinned).
        columns_sql = (
            "account_id bigint, day date, model_version_id bigint, score double precision, "
            "band varchar(10), computed_score double precision, computed_band varchar(10), "
            "components jsonb %1$s, left_out jsonb, reasons jsonb %1$s, overrides jsonb"
        )
        cursor.execute(
            "DO $$ BEGIN IF to_regclass('pg_temp." + _STAGE + "') IS NULL THEN "
            "EXECUTE format('CREATE TEMPORARY TABLE " + _STAGE + " (" + columns_sql + ") "
            "ON COMMIT DELETE ROWS', CASE WHEN EXISTS (SELECT FROM pg_settings WHERE "
            "name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)) "
            f"{'' if _LZ4_WANTED else 'AND false'} "
            "THEN 'COMPRESSION lz4' ELSE '' END); END IF; END $$"
        )
        with cursor.cursor.copy(f"COPY {_STAGE} ({columns}) FROM STDIN") as copy:
            # the lines of reasons and left-out lists repeat (one per component result
            # scored alike), the lists themselves less: each string is encoded once, and a
            # list is its strings joined as json.dumps writes them
            encoded: dict[str, str] = {}

            def dumps(value: list[str]) -> str:
                parts = []
                for text in value:
                    found = encoded.get(text)
                    if found is None:
                        found = encoded[text] = json.dumps(text)
                    parts.append(found)
                return "[" + ", ".join(parts) + "]"

            for row in rows:
                row = list(row)
                for i in json_at:
                    if i == _COMPONENTS_AT:  # encoded from the shared parts (health.Scorer)
                        row[i] = health.components_json(row[i])
                    elif i == _OVERRIDES_AT:  # dicts, mostly none
                        row[i] = json.dumps(row[i])
                    else:  # lists of strings, like the JSONField gets them
                        row[i] = dumps(row[i])
                copy.write_row(row)
        cursor.execute(upsert.format(rows=f"SELECT {columns} FROM {_STAGE}"))  # noqa: S608
        written = max(cursor.rowcount, 0)
        cursor.execute(f"TRUNCATE {_STAGE}")  # a caller's transaction may record more chunks
    return written


def _band_set_by_override(row: tuple) -> str | None:
    """The computed band of a snapshot row whose band an override of the whole account set
    (a band override, with or without a score: ``health.score`` then shows the override's
    band, whatever the score says), else None."""
    if any(o.get("band") and not o.get("component") for o in row[_OVERRIDES_AT] or ()):
        return row[_SNAPSHOT_COLUMNS.index("computed_band")] or ""
    return None


def health_band_changes_record(
    accounts,
    *,
    as_of: dt.date,
    scored: Sequence[tuple],
    announce: bool = True,
) -> int:
    """Record a ``health_band_changed`` timeline fact (key ``health-band:<as_of>``, data
    ``{"from", "to", "score_from", "score_to", "as_of", "overridden"}``, the scores as
    recorded; the title prints them through ``health.score_pair`` and ends "set by an
    override" when an override was in force on the new score) for each of ``scored``
    (account id, band, score of the snapshots just recorded, whether overrides were in
    force on it, and optionally the computed band when an override of the account set the
    band: then the data add ``"band_override": True`` and ``"computed_band"``, and the title
    says the band was set, not reached: "Health yellow → red: band set to red by an
    override (score 76.2 → 80.5, computed yellow)", since the score may have risen) whose
    band differs from the account's previous snapshot (the latest before ``as_of``; an
    account's first snapshot is no change), and hand the facts to
    ``accounts.services.timeline_facts_recorded`` (playbooks react within a minute).
    When an override set the previous snapshot's band (overrides in force on it and its band
    not the computed one) and none is in force on the new score, the band is back to the
    model's: the data add ``"override_ended": True`` and the title says so, "Health red →
    yellow: override ended, back to the computed band (score 80.5 → 76.2)": the customer's
    data did not move the band, the override's end did. An override in force on the new
    score too keeps the words above.
    Re-recording a day rewrites its facts and removes one whose change is gone. Two queries
    when every account has a snapshot the day before (the nightly case), one more for those
    that do not, plus the writes. Returns the number of changes. ``announce=False``: the
    facts are written but not handed on (the nightly pipeline's final playbooks step
    evaluates every account with the day's facts anyway)."""
    from accounts.models import TimelineEntry
    from accounts.services import timeline_facts_recorded
    from accounts.timeline import timeline_upsert

    day_before = as_of - dt.timedelta(days=1)
    # account → (band, score, whether an override set that band): an override in force
    # and the band not the computed one (rows without overrides keep the computed band)
    previous: dict[int, tuple[str, float | None, bool]] = {
        account_id: (band, score, bool(overrides) and band != computed_band)
        for account_id, band, score, computed_band, overrides in HealthSnapshot.objects.filter(
            account__in=accounts.values("pk"), day=day_before
        ).values_list("account_id", "band", "score", "computed_band", "overrides")
    }
    gaps = [row[0] for row in scored if row[0] not in previous]
    if gaps:  # no snapshot the day before: the latest one before as_of, if any
        latest = HealthSnapshot.objects.filter(account=OuterRef("pk"), day__lt=as_of).order_by(
            "-day"
        )
        for account_id, band, score, computed_band, overrides in (
            Account.objects.filter(pk__in=gaps)
            .annotate(
                b=Subquery(latest.values("band")[:1]),
                s=Subquery(latest.values("score")[:1]),
                c=Subquery(latest.values("computed_band")[:1]),
                o=Subquery(latest.values("overrides")[:1]),
                d=Subquery(latest.values("day")[:1]),
            )
            .filter(d__isnull=False)
            .values_list("pk", "b", "s", "c", "o")
        ):
            previous[account_id] = (band, score, bool(overrides) and band != computed_band)
    key = f"health-band:{as_of.isoformat()}"
    at = min(timezone.now(), midnight(as_of + dt.timedelta(days=1)) - dt.timedelta(seconds=1))
    facts = []
    for account_id, new_band, new_score, overridden, *rest in scored:
        if account_id not in previous:
            continue
        band, score, set_before = previous[account_id]
        if (band or "") == (new_band or ""):
            continue
        computed_band = rest[0] if rest else None  # set: an override set the band
        # the band a CSM set is gone and nothing overrides the new one: the model's again
        ended = set_before and computed_band is None and not overridden
        was, now = band_change_scores(score, new_score)
        moved = f"Health {band or 'no band'} → {new_band or 'no band'}"
        if computed_band is not None:
            # the band is a CSM's, not the score's: the score may even have risen
            title = (
                f"{moved}: band set to {new_band} by an override "
                f"(score {was} → {now}, computed {computed_band or 'no band'})"
            )
        elif ended:
            # the customer's data did not move the band: the override stopped holding it
            title = f"{moved}: override ended, back to the computed band (score {was} → {now})"
        else:
            # a CSM's judgement reads as one on the timeline, not as the model's verdict
            title = f"{moved} ({was} → {now}{', set by an override' if overridden else ''})"
        # the scores as recorded (one decimal), not rounded: a playbook's evidence
        # prints them as a pair, and 79.6 → 80.4 must not read "80 → 80"
        data = {
            "from": band or None,
            "to": new_band or None,
            "score_from": score,
            "score_to": new_score,
            "as_of": as_of.isoformat(),
            "overridden": overridden,
        }
        if computed_band is not None:
            data |= {"band_override": True, "computed_band": computed_band or None}
        elif ended:
            data["override_ended"] = True
        facts.append(
            TimelineEntry(
                account_id=account_id,
                occurred_at=at,
                kind=BAND_CHANGED_KIND,
                key=key,
                title=title,
                data=data,
            )
        )
    changed = {f.account_id for f in facts}
    TimelineEntry.objects.filter(account__in=accounts.values("pk"), key=key).exclude(
        account_id__in=changed
    ).delete()
    if facts and not announce and connection.vendor == "postgresql":
        _band_facts_copy(facts)  # the nightly case: no ids needed, thousands of facts
    elif facts:
        timeline_upsert(facts)
        if announce:
            timeline_facts_recorded([f.pk for f in facts if f.pk is not None])
    return len(facts)


def band_change_scores(before: Any, after: Any) -> tuple[str, str]:
    """The two scores of a band change as every page, email and CTA prints them: as
    recorded ("50.1 → 28.6", "72 → 41"), as the playbook's evidence, the "what changed"
    list and the overrides print a pair of scores. Not rounded to whole numbers: a band
    change crosses a line, and 79.6 → 85 rounded reads "80 → 85" beside "yellow → green"
    with green from 80; the fact keeps no band lines to tell when rounding would hide the
    crossing (and a model's lines need not be whole). ``health.score_pair``: two values
    that would read alike get the decimals that tell them apart."""
    return health.score_pair(before, after, none="no score", text=health.score_as_recorded)


def band_change_titles_reword(entries=None, *, batch: int = 2000) -> int:
    """Rewrite the scores in the titles of band-change facts recorded when the timeline
    printed them as whole numbers ("Health yellow → red (50 → 29)"), as they print now
    (``band_change_scores``: "(50.1 → 28.6)"), from the scores the fact's data keep. Only
    the pair changes, and only where the title holds the old pair exactly once; the rest
    of the title, the data and the date stay. ``entries``: the TimelineEntry model (a
    migration passes its historical one). Returns the number of titles rewritten."""
    if entries is None:
        from accounts.models import TimelineEntry as entries

    def reword(fact) -> str | None:
        data = fact.data or {}
        if "score_from" not in data or "score_to" not in data:
            return None
        before, after = data["score_from"], data["score_to"]
        old = "{} → {}".format(*health.score_pair(before, after, none="no score"))
        new = "{} → {}".format(*band_change_scores(before, after))
        # the pair as a whole: "(55 → 61," not the start of "55 → 61.1" reworded already
        pair = re.compile(rf"(?<=[( ]){re.escape(old)}(?=[,)])")
        if old == new or len(pair.findall(fact.title)) != 1:
            return None
        return pair.sub(new, fact.title)

    facts = entries.objects.filter(kind=BAND_CHANGED_KIND).only("pk", "title", "data")
    return rows_reword(facts, "title", reword, batch=batch)


_BAND_STAGE = "metrics_band_change_stage"


def _band_facts_copy(facts: list) -> None:
    """``timeline_upsert(facts)`` on PostgreSQL by COPY into a temporary table and one
    ``INSERT … ON CONFLICT (account_id, key) DO UPDATE`` of the same fields: what
    ``bulk_create`` writes, without quoting every value in Python (16,000 band changes on a
    busy night at 100,000 accounts: ~1.5 s of the health step's Python). The facts get no
    ids (the caller does not announce them). Health titles are far below the title limit
    that ``timeline_upsert`` enforces."""
    table = facts[0]._meta.db_table
    definition = (
        "account_id bigint, occurred_at timestamptz, kind varchar(40), key varchar(300), "
        "title varchar(300), data jsonb"
    )
    rows = (
        (f.account_id, f.occurred_at, f.kind, f.key, f.title, json.dumps(f.data)) for f in facts
    )
    columns = "account_id, occurred_at, kind, key, title, data"
    with (
        connection.cursor() as cursor,
        copy_stage(cursor, _BAND_STAGE, definition, columns, rows),
    ):
        cursor.execute(
            f"INSERT INTO {table} (account_id, occurred_at, kind, key, title, detail, data, "  # noqa: S608
            f"created_at) SELECT account_id, occurred_at, kind, key, title, '', data, now() "
            f"FROM {_BAND_STAGE} ON CONFLICT (account_id, key) DO UPDATE SET "
            "occurred_at = EXCLUDED.occurred_at, kind = EXCLUDED.kind, title = EXCLUDED.title, "
            "detail = EXCLUDED.detail, data = EXCLUDED.data"
        )


def health_snapshots_record(
    *,
    as_of: dt.date,
    account_ids: Sequence[int] | None = None,
    chunk_size: int = CHUNK_SIZE,
    usage: adoption.UsageInputs | None = None,
    announce: bool = True,
    threads: int = 1,
    processes: int = 1,
    forked: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Record the health snapshot of ``as_of`` for ``account_ids`` (default: every account),
    in chunks of ``chunk_size``, each a fixed handful of queries and one transaction.
    Idempotent: re-running a day gives the same rows. Returns counts: accounts, green,
    yellow, red, no_data (no score), no_model, and written: the snapshots new or different
    from the ones recorded before for the day (0 when a re-run found every row as it was).
    ``usage``: the day's usage inputs when the caller already read them for every account
    (``health_inputs.account_measures``).
    ``announce``: hand the band changes to the playbooks' event path (a single account's
    recompute, a backfill); the nightly pipeline passes False, its last step evaluates
    every playbook over every account, band changes included, so the event path would do
    the same work a second time (17 s per 10,000 accounts on a night of many changes).
    Reads no raw events (usage comes from the rollups and presences), so a raw-event
    retention does not limit which days can be scored. ``threads``: record that many chunks
    at once, each thread on its own connection (``config.db.in_threads``), so one chunk's
    Python runs while PostgreSQL works for another; only on PostgreSQL outside a
    transaction (a thread's connection would not see the caller's uncommitted rows), else
    one chunk after the other. ``processes``: the same with that many chunks at once in
    forked processes (``config.db.in_processes``: the chunks' Python on as many cores; the
    nightly pipeline in one process), ``forked`` called once they exist. The rows written
    are the same either way."""
    health_model_ensure_default()
    assignments, versions = _active_versions()
    if account_ids is None:
        ids = list(Account.objects.order_by("id").values_list("id", flat=True))
        ranged = True
    else:
        ids = sorted(set(account_ids))
        # the pipeline's chunk tasks get runs of consecutive ids: read them as an id range
        # (one query to check that no other account lies in it) instead of sending a list of
        # thousands of parameters with every query of every chunk
        ranged = bool(ids) and (
            len(ids) == 1
            or not Account.objects.filter(pk__gte=ids[0], pk__lte=ids[-1])
            .exclude(pk__in=ids)
            .exists()
        )

    def record(chunk: list[int]) -> Counter:
        if ranged:  # a contiguous id range, no list of parameters
            scope = Account.objects.filter(pk__gte=chunk[0], pk__lte=chunk[-1])
        else:
            scope = Account.objects.filter(pk__in=chunk)
        with transaction.atomic():
            return _record_chunk(
                scope,
                as_of=as_of,
                assignments=assignments,
                versions=versions,
                usage=usage,
                announce=announce,
            )

    chunks = [ids[start : start + chunk_size] for start in range(0, len(ids), chunk_size)]
    totals: Counter = Counter()
    if processes > 1:
        done = in_processes(record, chunks, processes=processes, forked=forked)
    else:
        if forked is not None:
            forked()
        done = in_threads(record, chunks, threads=threads)
    for counts in done:
        totals.update(counts)
    result = {"day": as_of.isoformat(), "accounts": totals["accounts"]}
    for key in ("green", "yellow", "red", "no_data", "no_model", "written"):
        result[key] = totals[key]
    return result


def health_recompute(
    *,
    start: dt.date,
    end: dt.date,
    account_ids: Sequence[int] | None = None,
    chunk_size: int = CHUNK_SIZE,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Rebuild the snapshots of every day from ``start`` to ``end`` (both included), each as
    of that day with the models active now (a backfill after a model change rescores
    history with the new version), of ``account_ids`` (default: every account). Returns
    one ``health_snapshots_record`` result per day. The snapshots only: ``health_rescore``
    also rescores the later days and refreshes the standings."""
    if end < start:
        raise ValidationError({"to": [f"must be on or after --from ({start}), got {end}"]})
    results = []
    for offset in range((end - start).days + 1):
        day = start + dt.timedelta(days=offset)
        result = health_snapshots_record(as_of=day, account_ids=account_ids, chunk_size=chunk_size)
        results.append(result)
        if progress is not None:
            progress(result)
    return results


def health_days_after(day: dt.date) -> list[dt.date]:
    """The days after ``day`` that have at least one snapshot, oldest first. One query."""
    return list(
        HealthSnapshot.objects.filter(day__gt=day)
        .values_list("day", flat=True)
        .distinct()
        .order_by("day")
    )


def health_rescore_after(
    *,
    day: dt.date,
    account_ids: Sequence[int] | None = None,
    progress: Callable[[dict[str, Any]], None] | None = None,
    starting: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Rescore, with the models active now, every snapshot dated after ``day``: on each
    such day only the accounts that have one there. These are the incremental path's
    snapshots (``recompute_account_health`` dates them today, a day after the nightly
    run's day), which a rescore of the days up to ``day`` would otherwise leave on the
    old version; and they are the latest snapshots, which the queue reads. Accounts
    without a snapshot on such a day get none: their data day stays the nightly one.
    ``account_ids``: those accounts' snapshots only (default: every account's).
    ``starting``: called once, before the first of them is rescored, with what is about to
    be (``{"days", "first", "last", "snapshots"}``; not called when there is none), so a
    caller can say so first. Returns one ``health_snapshots_record`` result per day."""
    rows = HealthSnapshot.objects.filter(day__gt=day)
    if account_ids is not None:
        rows = rows.filter(account_id__in=account_ids)
    rows = rows.values_list("day", "account_id")
    by_day: dict[dt.date, list[int]] = {}
    for later, account_id in rows.order_by("day", "account_id"):
        by_day.setdefault(later, []).append(account_id)
    if by_day and starting is not None:
        days = list(by_day)
        starting(
            {
                "days": len(days),
                "first": days[0],
                "last": days[-1],
                "snapshots": sum(len(ids) for ids in by_day.values()),
            }
        )
    results = []
    for later, ids in by_day.items():
        result = health_snapshots_record(as_of=later, account_ids=ids)
        results.append(result)
        if progress is not None:
            progress(result)
    return results


def health_rescore_range(start: dt.date, end: dt.date) -> tuple[dt.date, dt.date]:
    """The days a rescore from ``start`` to ``end`` records: ``(first, end)``, where
    ``first`` is ``start`` or, when the range starts before the first day any account has
    data (``health_first_data_day``), that day: the days before it would be blank snapshots
    (no score, no band). Raises ValidationError, nothing written, for a range that ends
    before ``start``, an ``end`` that is today or later (``utc.incomplete_day_words``: a
    day still running would be recorded with part of its data, as the nightly run
    refuses), or one that ends before the first day with data (code ``before_data``). A
    book with no data at all is not refused: there is no day to start from, and its
    snapshots are blank whatever the range."""
    if end < start:
        raise ValidationError({"to": [f"must be on or after --from ({start}), got {end}"]})
    if why := utc.incomplete_day_words(end):
        raise ValidationError({"to": [why]})
    first = health_first_data_day()
    if first is not None and end < first:
        raise ValidationError(
            f"no account has data before {first}; recompute from that day on",
            code="before_data",
        )
    return (max(start, first) if first is not None else start), end


def health_rescore(
    *,
    start: dt.date,
    end: dt.date,
    account_ids: Sequence[int] | None = None,
    chunk_size: int = CHUNK_SIZE,
    progress: Callable[[dict[str, Any]], None] | None = None,
    starting: Callable[[dt.date], None] | None = None,
    starting_later: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Rescore health with the models active now, for the Manage page's rescore and
    ``manage.py recompute``: the snapshots of every day from ``start`` to ``end``
    (``health_recompute``), then every snapshot dated after ``end`` (``health_rescore_after``:
    the latest snapshots, which the queue reads, are not left on another version), then the
    standings (the queue's and the account header's rows) of the accounts rescored, from
    their latest snapshot, which one of the two rewrote: every account of ``account_ids``
    (default: every account), since the range gives each of them a snapshot on each of its
    days. ``starting`` is called once with the first day to be recorded, after the range is
    checked; ``progress`` after each day, the range's then the later ones;
    ``starting_later`` once before the later ones (``health_rescore_after``'s ``starting``).

    The range is ``health_rescore_range``'s: it starts no earlier than the first day with
    data, and a range ending today or later, or before that day, raises ``ValidationError``
    before anything is written, as do unknown ``account_ids``. Returns ``{"start": the
    first day recorded, "days": [a health_snapshots_record result per day of the range],
    "later": [one per later day], "standings": account_standings_refresh's counts}``."""
    from .standings import account_standings_refresh  # standings reads what this writes

    start, end = health_rescore_range(start, end)  # the first day with data: read once
    if starting is not None:
        starting(start)
    if account_ids is not None:
        account_ids = sorted(set(account_ids))
        found = set(Account.objects.filter(pk__in=account_ids).values_list("pk", flat=True))
        if missing := [str(pk) for pk in account_ids if pk not in found]:
            raise ValidationError({"account_ids": [f"no account with id {', '.join(missing)}"]})
        if not account_ids:
            raise ValidationError({"account_ids": ["name at least one account, or none for all"]})
    days = health_recompute(
        start=start, end=end, account_ids=account_ids, chunk_size=chunk_size, progress=progress
    )
    later = health_rescore_after(
        day=end, account_ids=account_ids, progress=progress, starting=starting_later
    )
    standings = account_standings_refresh(account_ids=account_ids)
    return {"start": start, "days": days, "later": later, "standings": standings}


def health_weekly_history(
    *,
    as_of: dt.date,
    weeks: int,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Record the snapshots of the ``weeks`` days 7, 14, … days before ``as_of``, oldest
    first, each as of that day with only the data up to it (``health_snapshots_record``): a
    sampled history for a book that has none yet (the demo's), at a seventh of a daily
    backfill's cost, so that the health chart, what changed in a week and the backtest have
    earlier days to read. Band changes are not handed to the playbooks: they are history,
    not news. Returns one result per day."""
    if isinstance(weeks, bool) or not isinstance(weeks, int) or weeks < 0:
        raise ValidationError({"weeks": [f"must be a whole number >= 0, got {weeks!r}"]})
    results = []
    for back in range(weeks, 0, -1):
        result = health_snapshots_record(as_of=as_of - dt.timedelta(days=7 * back), announce=False)
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


def kpi_monthly_history(
    *, as_of: dt.date, months: int, progress: Callable[[dict[str, Any]], None] | None = None
) -> list[dict[str, Any]]:
    """Record the KPI snapshots of the ``months`` periods before the one ending with
    ``as_of``, oldest first: each day is the one before the start of the period after it
    (``kpi_snapshot_period``), the day the dashboard compares a period with
    (``workspace.selectors.kpi_pair``). A history for a book that has none yet (the demo's),
    so that the dashboard's tiles have a month before to compare with and earlier periods
    to pick. ``as_of``'s own snapshot is left to the night. Returns one result per day."""
    if isinstance(months, bool) or not isinstance(months, int) or months < 0:
        raise ValidationError({"months": [f"must be a whole number >= 0, got {months!r}"]})
    days = []
    day = as_of
    for _ in range(months):
        start, _end = kpi_snapshot_period(day)
        day = start - dt.timedelta(days=1)
        days.append(day)
    results = []
    for day in reversed(days):
        result = kpi_snapshots_record(as_of=day)
        results.append(result)
        if progress is not None:
            progress(result)
    return results


def kpi_snapshots_record(
    *, as_of: dt.date, usage: adoption.UsageInputs | None = None
) -> dict[str, Any]:
    """Record the KPI snapshot of ``as_of`` for the whole book, every segment, every owner
    and every manager's team (``KpiSnapshot`` docstring: the trailing month), replacing
    that day's rows and removing those of scopes that no longer exist. The usage inputs
    (every event before the period's end: the costly part) are read once for all scopes;
    each scope is then one ``kpis.scope_report`` (a fixed number of set-based queries, none
    over the events); all rows are written in one upsert. ``usage``: those inputs when the
    caller already read them (the pipeline's health step in one process). Returns counts."""
    start, end = kpi_snapshot_period(as_of)
    segments = Account.objects.segments()
    owners = list(
        User.objects.filter(pk__in=Account.objects.filter(owner__isnull=False).values("owner_id"))
        .order_by("pk")
        .values_list("pk", "email")
    )
    # a manager's team: their own accounts and their reports' (Account.visible_to), for
    # each user someone reports to, when one of them owns an account
    owner_ids = {pk for pk, _ in owners}
    teams: dict[int, tuple[str, set[int]]] = {}
    for report_id, manager_id, manager_email in User.objects.filter(
        manager__isnull=False
    ).values_list("pk", "manager_id", "manager__email"):
        teams.setdefault(manager_id, (manager_email, {manager_id}))[1].add(report_id)
    teams = {pk: team for pk, team in sorted(teams.items()) if team[1] & owner_ids}
    computed_at = timezone.now()
    # the usage inputs (the costly reads: every event before the end) once, for every scope
    if usage is None or usage.end != end:
        usage = adoption.usage_inputs(Account.objects.all(), end=end)

    def report(accounts, keep) -> dict[str, Any]:
        return kpis.scope_report(
            accounts, start=start, end=end, known_on=as_of, usage=usage.restricted(keep)
        )

    rows = [
        KpiSnapshot(
            day=as_of,
            scope_kind=KpiScope.ALL,
            scope_key="",
            report=report(Account.objects.all(), lambda segment, owner: True),
        )
    ]
    for name in segments:
        scoped = report(Account.objects.filter(segment=name), lambda s, o, name=name: s == name)
        scoped["scope"]["segment"] = name
        rows.append(
            KpiSnapshot(day=as_of, scope_kind=KpiScope.SEGMENT, scope_key=name, report=scoped)
        )
    for owner_id, email in owners:
        scoped = report(
            Account.objects.filter(owner_id=owner_id), lambda s, o, pk=owner_id: o == pk
        )
        scoped["scope"]["owner"] = email
        rows.append(
            KpiSnapshot(
                day=as_of, scope_kind=KpiScope.OWNER, scope_key=str(owner_id), report=scoped
            )
        )
    for manager_id, (email, members) in teams.items():
        scoped = report(
            Account.objects.filter(owner_id__in=sorted(members)),
            lambda s, o, members=frozenset(members): o in members,
        )
        scoped["scope"]["team"] = email
        rows.append(
            KpiSnapshot(
                day=as_of, scope_kind=KpiScope.TEAM, scope_key=str(manager_id), report=scoped
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
        "teams": len(teams),
        "removed": removed,
    }


# --- backtest --------------------------------------------------------------------------------


def _backtest_target(version: HealthModelVersion | None) -> HealthModelVersion | None:
    if version is not None:
        return version
    return (
        HealthModelVersion.objects.filter(model__is_default=True, active=True)
        .select_related("model")
        .first()
    )


# The longest horizon asked of a backtest: two years. Past that, "churn within the horizon"
# no longer says much about the score of the as-of day (a contract term is one to two years:
# a longer window holds renewals the score could not see), and a bound keeps every as-of day
# the messages suggest (today − horizon) inside the dates the doors accept (from 1900).
BACKTEST_MAX_HORIZON = 730
BACKTEST_EARLIEST = dt.date(1900, 1, 1)  # as the commands and the KPI API accept
# Suggested weights fitted on fewer churned accounts than this are flagged as too few to
# trust. With a handful of churners a weight per component (six in the default model) can
# be fitted to those very accounts, and the suggested AUC is measured on the accounts the
# weights were fitted on (in-sample, no held-out accounts): it reads high whatever the
# weights would do on the next quarter's churn. 20 is a rule of thumb (a few churners per
# fitted weight), not a statistical test.
SUGGESTION_MIN_CHURNED = 20
# a new installation's backtest: recompute would score nobody, so the words say what is missing
NO_ACCOUNT_YET = (
    "there is no account yet: import your accounts and contracts first; the nightly run "
    "scores them from then on, and a backtest needs months of scores and churn after them"
)


def health_backtest_day(
    *, horizon: int, as_of: dt.date | None = None, partial: bool = False
) -> tuple[dt.date, str]:
    """The as-of day of a backtest and one line saying why, for the doors (the backtest
    command and the admin page), with the day's errors raised as ``health_backtest`` raises
    them (ValidationError by field, nothing computed).

    A backtest scores the snapshots of its as-of day, and with weekly snapshot history most
    days have none (the customers were then all scored in memory, with today's models, or
    not at all). So:

    - no ``as_of``: the latest day that has health snapshots and lies at least ``horizon``
      days before the book's last day, the latest snapshot day but no later than yesterday
      (UTC, the last complete day): the horizon is then fully observed. Refused, naming
      what is missing and the ``recompute`` that fills it, when no snapshot is that old.
    - an ``as_of`` (after the checks ``health_backtest`` makes): refused when the day has no
      snapshot at all, naming the nearest days before and after it that have some; the line
      is then empty (the reader chose the day).

    One to three queries, each answered by the snapshot table's ``(day, band)`` index."""
    today = utc.today()
    if as_of is not None:
        errors = _backtest_errors(as_of, horizon, partial=partial, today=today)
        if errors:
            raise ValidationError(errors)
        # separate queries with a WHERE each, not one aggregate with FILTERs: each is then
        # a seek in the (day, band) index, not a scan of every snapshot of the book
        snapshots = HealthSnapshot.objects
        if snapshots.filter(day=as_of).exists():
            return as_of, ""
        before = snapshots.filter(day__lt=as_of).aggregate(d=Max("day"))["d"]
        after = snapshots.filter(day__gt=as_of).aggregate(d=Min("day"))["d"]
        near = [f"{d} (before)" for d in [before] if d] + [f"{d} (after)" for d in [after] if d]
        raise ValidationError(
            {
                "as_of": [
                    ValidationError(
                        f"{as_of} has no health snapshots, so there is nothing to backtest; "
                        + (
                            f"the nearest days that have them: {' and '.join(near)}"
                            if near
                            else NO_ACCOUNT_YET
                            if not Account.objects.exists()
                            else "no day has any: run recompute for the days to backtest first"
                        ),
                        code="no_snapshots",
                    )
                ]
            }
        )
    error = _horizon_error(horizon)
    if error is not None:
        raise ValidationError({"horizon": [error]})
    yesterday = utc.yesterday()
    latest = HealthSnapshot.objects.filter(day__lte=yesterday).aggregate(day=Max("day"))["day"]
    if latest is None:
        start = yesterday - dt.timedelta(days=horizon)
        fill = (
            f"run recompute --from {start} --to {start} first"
            if Account.objects.exists()
            else NO_ACCOUNT_YET
        )
        raise ValidationError(
            {
                "as_of": [
                    ValidationError(
                        f"no health snapshots on or before {yesterday} (yesterday), so no day "
                        f"to backtest; {fill}",
                        code="no_snapshots",
                    )
                ]
            }
        )
    last = latest - dt.timedelta(days=horizon)
    day = HealthSnapshot.objects.filter(day__lte=last).aggregate(day=Max("day"))["day"]
    if day is None:
        raise ValidationError(
            {
                "as_of": [
                    ValidationError(
                        f"no health snapshots at least {horizon} days before {latest} (the "
                        f"latest snapshot day), so no {horizon}-day window is fully observed; "
                        f"run recompute --from {last} --to {last} first",
                        code="no_snapshots",
                    )
                ]
            }
        )
    return day, (
        f"as of {day}: the latest day with health snapshots at least {horizon} days before "
        f"{latest}, the latest snapshot day (so the {horizon}-day window is fully observed)"
    )


def _horizon_error(horizon: Any) -> ValidationError | None:
    """A horizon of 1 to ``BACKTEST_MAX_HORIZON`` whole days, else what is wrong."""
    if (
        isinstance(horizon, bool)
        or not isinstance(horizon, int)
        or not 1 <= horizon <= BACKTEST_MAX_HORIZON
    ):
        return ValidationError(
            f"must be a whole number of days from 1 to {BACKTEST_MAX_HORIZON}, got {horizon!r}"
        )
    return None


def _backtest_errors(
    as_of: Any, horizon: Any, *, partial: bool, today: dt.date
) -> dict[str, list[ValidationError]]:
    """What is wrong with a backtest's input, by field (empty when nothing): a horizon of 1 to
    ``BACKTEST_MAX_HORIZON`` days, an as-of day from 1900 to today, and a window that ends by
    today unless ``partial`` (then at least one day of it must have passed). The incomplete
    window's error has the code ``incomplete_window``: the doors add how to ask for it."""
    errors: dict[str, list[ValidationError]] = {}
    if (error := _horizon_error(horizon)) is not None:
        errors["horizon"] = [error]
    if not isinstance(as_of, dt.date):
        errors["as_of"] = [ValidationError(f"expected a date, got {as_of!r}")]
    elif as_of > today:
        errors["as_of"] = [ValidationError(f"{as_of} is in the future (today is {today}, UTC)")]
    elif as_of < BACKTEST_EARLIEST:
        errors["as_of"] = [ValidationError(f"{as_of} is before {BACKTEST_EARLIEST}")]
    if errors:
        return errors
    end = as_of + dt.timedelta(days=horizon)
    observed = (today - as_of).days
    if end > today and not observed:  # as of today: even a partial window has no day yet
        errors["as_of"] = [
            ValidationError(
                f"{as_of} is today: no day of its {horizon}-day window has passed yet. Pick "
                f"an as-of day on or before {today - dt.timedelta(days=horizon)}"
            )
        ]
    elif end > today and not partial:
        errors["as_of"] = [
            ValidationError(
                f"the {horizon}-day window from {as_of} ends on {end}, after today ({today}, "
                "UTC): who churns in it is not known yet. Pick an as-of day on or before "
                f"{today - dt.timedelta(days=horizon)}, or ask for the {observed} of "
                f"{horizon} days observed so far",
                code="incomplete_window",
            )
        ]
    return errors


def health_backtest(
    *,
    as_of: dt.date,
    horizon: int = 90,
    version: HealthModelVersion | None = None,
    partial: bool = False,
) -> dict[str, Any]:
    """The predictive check of docs/metrics.md: over the accounts that were customers on
    ``as_of`` (MRR > 0, ``kpis.revenue``), the ROC AUC of ``100 − score`` (their health
    snapshot of that day) as a predictor of logo churn by ``as_of + horizon`` (no longer a
    customer that day), the churn rate per band (a percentage), the green accounts that
    churned, and component weights fitted to the outcome (``metrics.backtest.fit_weights``)
    with their AUC beside the current weights' AUC over the same accounts.

    With ``version``, only the customers scored on ``as_of`` by a version of its model count,
    each with ``version``'s score (a stored snapshot of another version of the model is
    rescored in memory, so the headline is the asked version's), and the weights are
    suggested for it; without, the whole book counts and the weights are suggested for the
    default model's active version. Customers without a snapshot that day are scored in
    memory with the models active now: a backtest writes nothing (no snapshot, no timeline
    fact, nothing handed to the playbooks). ``auc`` is ``None``, never 0, when it cannot be
    computed, and ``messages`` says why.

    No looking ahead: churn is what the contracts say on a day that has come. A window that
    ends after today (UTC) is refused (ValidationError, code ``incomplete_window``) unless
    ``partial``: an AUC over fewer days is another figure, and a reader of ``auc`` who did not
    ask for it would compare it with full windows. With ``partial`` the window is observed
    up to today: ``observed_until`` (today) and ``observed_days`` say how much of it, churn
    is "no longer a customer on ``observed_until``" (a contract merely scheduled to end later
    counts as retained), ``complete`` is False, the first message says so, and no weights are
    suggested (the retained accounts' outcome is not known yet). For a finished window
    ``observed_until`` is ``window_end`` and ``observed_days`` the horizon.

    ``data_gaps``: a component of the models that scored the customers whose sources (usage,
    tickets, invoices, answers, stakeholders, CSM activity, texts) have no row at all on or
    before ``as_of`` for any account, with the first day they have one: its score that day
    describes missing data, not the customers (e.g. 0 % seat utilisation before usage was
    tracked). Raises ValidationError (nothing computed) for a horizon outside 1 ..
    ``BACKTEST_MAX_HORIZON`` days or an ``as_of`` after today or before 1900. A fixed number
    of queries whatever the book's size (plus the in-memory scoring of customers without a
    fitting snapshot)."""
    from . import backtest
    from .kpis.revenue import contract_facts

    today = utc.today()
    errors = _backtest_errors(as_of, horizon, partial=partial, today=today)
    if errors:
        raise ValidationError(errors)
    end = as_of + dt.timedelta(days=horizon)
    observed = min(end, today)
    complete = end <= today
    target = _backtest_target(version)
    result: dict[str, Any] = {
        "as_of": as_of.isoformat(),
        "horizon": horizon,
        "window_end": end.isoformat(),
        "complete": complete,
        # the last day whose customers are known: churn is counted on it
        "observed_until": observed.isoformat(),
        "observed_days": (observed - as_of).days,
        "model": str(target.model) if version is not None and target else None,
        "customers": 0,
        "scored": 0,
        "churned": 0,
        "auc": None,
        "bands": backtest.churn_by_band([]),
        "green_churned": [],
        "suggestion": None,
        "recorded_snapshots": 0,  # kept for the shape: a backtest records nothing
        "scored_in_memory": 0,
        "data_gaps": [],
        "messages": [],
    }
    messages = result["messages"]
    if not complete:
        messages.append(
            # days in words, as the pages print them (the result's keys keep ISO days)
            f"PARTIAL WINDOW: churn observed from {utc.day_text(as_of)} to "
            f"{utc.day_text(observed)}, {result['observed_days']} of {horizon} days (the window "
            f"ends on {utc.day_text(end)}, after today): an account counts as churned only if "
            f"it was no longer a customer on {utc.day_text(observed)}; contracts that end later "
            "count as retained. The AUC covers "
            f"{result['observed_days']} of {horizon} days, and no weights are suggested."
        )
    facts = {f.id: f for f in contract_facts(Account.objects.all(), days=[as_of, observed])}
    customers = {pk: f for pk, f in facts.items() if f.customer_on(as_of)}
    if not customers:
        messages.append(f"no customers on {as_of}: nothing to backtest (AUC not computed)")
        return result

    rows = HealthSnapshot.objects.filter(day=as_of).values(
        "account_id",
        "score",
        "band",
        "components",
        "model_version_id",
        "model_version__model_id",
    )
    snaps = {r["account_id"]: r for r in rows if r["account_id"] in customers}
    missing = sorted(set(customers) - set(snaps))

    def another_version(pks: Iterable[int]) -> list[int]:
        """Those of ``pks`` scored by ``version``'s model, but with another version of it."""
        return sorted(
            pk
            for pk in pks
            if snaps[pk]["model_version__model_id"] == version.model_id
            and snaps[pk]["model_version_id"] != version.pk
        )

    # each customer is in one note at most: without a snapshot (scored in memory), or
    # stored with another version of the asked model (rescored in memory)
    if version is not None:
        # the asked version's scores: a snapshot of another version of its model is rescored
        other = another_version(snaps)
    if missing:
        assignments, versions = _active_versions()
        snaps.update(
            _scored_in_memory(missing, as_of=as_of, assignments=assignments, versions=versions)
        )
        result["scored_in_memory"] += len(missing)
        note = (
            f"{len(missing)} customer{'s' if len(missing) != 1 else ''} had no health snapshot "
            f"on {utc.day_text(as_of)}: scored in memory "
            "with the models active now (nothing recorded)"
        )
        if version is not None and (unasked := another_version(missing)):
            # the asked version's scores for them too, within this note's count
            snaps.update(_scored_in_memory(unasked, as_of=as_of, only=version))
            note += f"; the {len(unasked)} of them {version.model} scores, with {version}"
        messages.append(note)
        target = _backtest_target(version)
    if version is not None:
        if other:
            snaps.update(_scored_in_memory(other, as_of=as_of, only=version))
            result["scored_in_memory"] += len(other)
            messages.append(
                f"{len(other)} customer{'s were' if len(other) != 1 else ' was'} stored with "
                f"another version of {version.model} on {utc.day_text(as_of)}: rescored in "
                f"memory with {version}"
            )
        customers = {
            pk: f
            for pk, f in customers.items()
            if pk in snaps and snaps[pk]["model_version__model_id"] == version.model_id
        }
        if not customers:
            messages.append(
                f"no customers on {utc.day_text(as_of)} were scored by {version.model}: "
                "nothing to backtest (AUC not computed)"
            )
            return result

    result["data_gaps"] = _backtest_data_gaps(
        {snaps[pk]["model_version_id"] for pk in customers if pk in snaps}, as_of=as_of
    )
    churned = {pk: not f.customer_on(observed) for pk, f in customers.items()}
    result["customers"] = len(customers)
    result["churned"] = sum(churned.values())
    scored = [pk for pk in sorted(customers) if snaps.get(pk, {}).get("score") is not None]
    result["scored"] = len(scored)
    result["bands"] = backtest.churn_by_band(
        (snaps.get(pk, {}).get("band") or "", churned[pk]) for pk in sorted(customers)
    )
    result["auc"] = backtest.roc_auc(
        [100 - snaps[pk]["score"] for pk in scored], [churned[pk] for pk in scored]
    )
    if result["auc"] is not None:
        result["auc"] = round(result["auc"], 4)
    elif not scored:
        messages.append(f"no customer had a health score on {as_of} (AUC not computed)")
    elif not any(churned[pk] for pk in scored):
        messages.append(f"no scored customer churned by {observed} (AUC not computed)")
    else:
        messages.append(f"every scored customer churned by {observed} (AUC not computed)")
    result["green_churned"] = sorted(
        (
            {
                "id": pk,
                "external_id": customers[pk].external_id,
                "name": customers[pk].name,
                "score": snaps[pk]["score"],
            }
            for pk in scored
            if churned[pk] and snaps[pk]["band"] == health.GREEN
        ),
        key=lambda row: (-row["score"], row["name"], row["id"]),
    )
    if target is not None and complete:
        result["suggestion"] = _backtest_suggestion(
            target, snaps=snaps, churned=churned, messages=messages
        )
    return result


# Where each measure's data comes from, for ``_backtest_data_gaps`` and
# ``health_first_data_day``: (words, model, the field that dates a row). Usage is read from
# the daily rollups, as scoring reads it; a contract gives its account licensed seats from
# its start (``health_inputs.account_measures``).
_DATA_SOURCES = {
    "contracts": ("contract", "accounts.Contract", "start_date"),
    "usage": ("product usage", "accounts.UsageDaily", "day"),
    "tickets": ("ticket", "accounts.Ticket", "opened_at"),
    "invoices": ("invoice", "accounts.Invoice", "issued_on"),
    "surveys": ("survey answer", "surveys.Response", "answered_at"),
    "stakeholders": ("stakeholder", "accounts.Stakeholder", "created_at"),
    "activities": ("CSM activity", "accounts.Activity", "occurred_at"),
    "texts": ("customer text", "voice.TextSentiment", "occurred_at"),
}
_MEASURE_SOURCES = {
    "seat_utilisation": "usage",
    "usage_trend": "usage",
    "usage_trend_users": "usage",
    "key_feature_adoption": "usage",
    "open_escalations": "tickets",
    "tickets_per_100_seats_30d": "tickets",
    "overdue_invoices": "invoices",
    "failed_payments_90d": "invoices",
    "nps": "surveys",
    "csat": "surveys",
    "ces": "surveys",
    "champion_present": "stakeholders",
    "days_since_last_touch": "activities",
    "text_sentiment": "texts",
    "relationship_score": "stakeholders",
}


def _as_day(value: Any) -> dt.date | None:
    """A MIN() read by a plain cursor as a UTC day: PostgreSQL gives a date or an aware
    datetime, SQLite a text."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).date() if value.tzinfo else value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def _source_rows(source: str, *, before: dt.date | None = None) -> tuple[str, tuple]:
    """The SQL of one ``_DATA_SOURCES`` row: its first row by date (the first day that
    source has data), or with ``before`` any row dated before that day (unordered, for an
    EXISTS that stops at one)."""
    from django.apps import apps

    _words, label, field = _DATA_SOURCES[source]
    model = apps.get_model(label)
    qs = model._base_manager.order_by(field)
    if before is not None:
        is_datetime = model._meta.get_field(field).get_internal_type() == "DateTimeField"
        qs = qs.order_by().filter(**{f"{field}__lt": midnight(before) if is_datetime else before})
    return qs.values_list(field, flat=True)[:1].query.sql_with_params()


def _one_row(parts: list[tuple[str, tuple]], wrap: str) -> tuple:
    """One statement selecting each query of ``parts`` wrapped in ``wrap`` ("EXISTS({})",
    "({})"): one round trip for any number of sources."""
    sql = "SELECT " + ", ".join(wrap.format(q) for q, _ in parts)
    with connection.cursor() as cursor:
        cursor.execute(sql, [p for _, params in parts for p in params])
        return cursor.fetchone()


def _sources_first_days(sources: Sequence[str]) -> list[dt.date | None]:
    """The first day each of ``sources`` has a row (None: none yet), in one statement."""
    return [_as_day(v) for v in _one_row([_source_rows(s) for s in sources], "({})")]


def health_first_data_day() -> dt.date | None:
    """The first day any account has data a health snapshot scores: the earliest row of
    any of scoring's sources (``_DATA_SOURCES``: a contract's start, which gives seats,
    usage, tickets, invoices, survey answers, stakeholders, CSM activity, texts), None when
    the book has none. Before that day every account's snapshot is blank (no score, no
    band: ``account_measures`` finds nothing), so a recompute refuses a range that ends
    before it (``health_rescore_range``). A source's first row, not ``customer_since``:
    usage during a trial, before the contract, scores too. One query."""
    days = [d for d in _sources_first_days(list(_DATA_SOURCES)) if d is not None]
    return min(days) if days else None


def _backtest_data_gaps(version_ids: set[int], *, as_of: dt.date) -> list[dict[str, Any]]:
    """The components of ``version_ids`` none of whose sources (``_MEASURE_SOURCES``) has a
    row dated on or before ``as_of``, for any account: one entry per component key (label,
    sources in words, ``first_day`` the first day one of them has a row, None when none has
    yet, and a ``message``). Three queries whatever the book: the versions, one EXISTS per
    source in one statement (each stops at its first row), and the first day of the sources
    without one, only if there are any (a scan, only in that rare case)."""
    if not version_ids:
        return []
    return health_backtest_data_gaps(
        components=[
            c
            for raw in HealthModelVersion.objects.filter(pk__in=version_ids).values_list(
                "components", flat=True
            )
            for c in raw or []
        ],
        as_of=as_of,
    )


def health_backtest_data_gaps(
    *, components: Iterable[Mapping[str, Any]], as_of: dt.date
) -> list[dict[str, Any]]:
    """``_backtest_data_gaps`` for components given as their JSON (a version's
    ``components``, a draft's ``ComponentSpec.as_json()``): the health model editor's
    preview asks with the version and draft it already holds. One query (an EXISTS per
    source in one statement), a second only when a source has no row by ``as_of``."""
    by_key: dict[str, tuple[str, set[str]]] = {}
    for c in components:
        sources = {
            _MEASURE_SOURCES[m.get("measure")]
            for m in c.get("measures") or []
            if m.get("measure") in _MEASURE_SOURCES
        }
        if c.get("key") and sources:
            _label, known = by_key.setdefault(c["key"], (c.get("label") or c["key"], set()))
            known |= sources
    needed = sorted(set().union(*(s for _, s in by_key.values())) if by_key else ())
    if not needed:
        return []
    end = as_of + dt.timedelta(days=1)
    present = _one_row([_source_rows(s, before=end) for s in needed], "EXISTS({})")
    missing = [s for s, has in zip(needed, present, strict=True) if not has]
    if not missing:
        return []
    first = dict(zip(missing, _sources_first_days(missing), strict=True))
    gaps = []
    for key, (label, sources) in by_key.items():
        if not sources <= set(missing):
            continue
        days = [first[s] for s in sources if first[s] is not None]
        first_day = min(days) if days else None
        words = " or ".join(_DATA_SOURCES[s][0] for s in sorted(sources))
        since = (
            f"the first is dated {utc.day_text(first_day)}" if first_day else "there is none yet"
        )
        gaps.append(
            {
                "component": key,
                "label": label,
                "sources": [_DATA_SOURCES[s][0] for s in sorted(sources)],
                "first_day": first_day.isoformat() if first_day else None,
                "message": (
                    f"{label}: no {words} recorded on or before {utc.day_text(as_of)} for any "
                    "account "
                    f"({since}): its score that day describes missing data, not the customers"
                ),
            }
        )
    return gaps


def _scored_in_memory(
    account_ids: Sequence[int],
    *,
    as_of: dt.date,
    assignments=None,
    versions: dict[int, HealthModelVersion] | None = None,
    only: HealthModelVersion | None = None,
) -> dict[int, dict[str, Any]]:
    """The backtest's view of a snapshot (``score``, ``band``, ``components`` as stored,
    ``model_version_id``, ``model_version__model_id``) for ``account_ids`` as of ``as_of``,
    scored in memory (``_score_chunk``) and written nowhere."""
    by_pk: dict[int, HealthModelVersion] = {}
    if only is not None:
        by_pk[only.pk] = only
    for v in (versions or {}).values():
        by_pk[v.pk] = v
    found: dict[int, dict[str, Any]] = {}
    for start in range(0, len(account_ids), CHUNK_SIZE):
        chunk = account_ids[start : start + CHUNK_SIZE]
        rows, _counts = _score_chunk(
            Account.objects.filter(pk__in=chunk),
            as_of=as_of,
            assignments=assignments or [],
            versions=versions or {},
            only=only,
        )
        for row in rows:
            account_id, _day, version_id, score, band, *_rest = row
            found[account_id] = {
                "account_id": account_id,
                "score": score,
                "band": band,
                "components": [c.as_json() for c in row[_COMPONENTS_AT]],
                "model_version_id": version_id,
                "model_version__model_id": by_pk[version_id].model_id,
            }
    return found


def _backtest_suggestion(
    target: HealthModelVersion,
    *,
    snaps: dict[int, dict[str, Any]],
    churned: dict[int, bool],
    messages: list[str],
) -> dict[str, Any] | None:
    """Weights fitted on the customers ``target``'s model scored, and both AUCs over the
    accounts both weightings can score."""
    from . import backtest

    keys = [c["key"] for c in target.components]
    current = {c["key"]: c["weight"] for c in target.components}
    ids = [
        pk
        for pk in sorted(churned)
        if pk in snaps and snaps[pk]["model_version__model_id"] == target.model_id
    ]
    samples = [
        {c["key"]: c.get("score") for c in snaps[pk]["components"] if c.get("key") in current}
        for pk in ids
    ]
    outcomes = [churned[pk] for pk in ids]
    weights = backtest.fit_weights(samples, outcomes, keys)
    if weights is None:
        messages.append(
            f"no weights suggested for {target}: it needs churned and retained customers "
            "with component scores, and a component whose low score goes with churn"
        )
        return None
    pairs = [
        (backtest.weighted_score(s, current), backtest.weighted_score(s, weights), c, pk)
        for s, c, pk in zip(samples, outcomes, ids, strict=True)
    ]
    pairs = [p for p in pairs if p[0] is not None and p[1] is not None]

    def auc(index: int) -> float | None:
        value = backtest.roc_auc([100 - p[index] for p in pairs], [p[2] for p in pairs])
        return None if value is None else round(value, 4)

    # Both AUCs re-weight the recorded component scores, so they compare weights and only
    # weights. The current one is then the headline AUC itself (the same scores of the same
    # accounts: ``weighted_score`` does ``health.score``'s arithmetic), unless the headline
    # counted other accounts or other scores; ``current_differs`` says which, in words.
    headline = [pk for pk in sorted(churned) if snaps.get(pk, {}).get("score") is not None]
    differs = []
    if len(pairs) != len(headline):
        differs.append(
            f"over {len(pairs)} of the {len(headline)} scored accounts (the rest were scored "
            f"by another model or have no score under one of the two weightings)"
        )
    moved = sum(1 for p in pairs if p[0] != snaps[p[3]]["score"])
    if moved:
        differs.append(
            f"{moved} recorded score{'s differ' if moved != 1 else ' differs'} from the "
            "current weights applied to the components (an override of the account's score, "
            "or a snapshot of a version with other weights)"
        )
    fitted_churned = sum(outcomes)
    few = ""
    if fitted_churned < SUGGESTION_MIN_CHURNED:
        # ``fit_weights`` fits on every sample up to ``MAX_SAMPLES`` (above, a stride of
        # them), and ``auc(1)`` is measured on those samples: the same accounts, or a set
        # that holds them
        on = (
            "the same accounts it was fitted on"
            if len(samples) <= backtest.MAX_SAMPLES
            else "accounts that include those it was fitted on"
        )
        few = (
            f"Fitted on {fitted_churned} churned account{'s' if fitted_churned != 1 else ''}: "
            f"too few to trust; the suggested AUC is measured on {on}."
        )
    labels = {c["key"]: c.get("label") or c["key"] for c in target.components}
    return {
        "model_version_id": target.pk,
        "model_version": str(target),
        "accounts": len(ids),
        "accounts_compared": len(pairs),
        "churned": fitted_churned,
        "too_few_churned": few,
        "current_weights": current,
        "weights": weights,
        # one row per component, by its label, for the pages
        "rows": [
            {"key": k, "label": labels[k], "current": current.get(k), "suggested": w}
            for k, w in weights.items()
        ],
        "current_auc": auc(0),
        "auc": auc(1),
        "current_differs": differs,
    }
