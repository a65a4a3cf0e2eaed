"""Writes of the playbooks app: playbook configuration (versioned), the evaluation engine
that opens CTAs, the life of a CTA, outcomes, escalations and the noise budget.

Engine (``playbooks_evaluate``): set-based. The facts of every account come from a fixed
handful of aggregate queries (``playbooks.facts``), the rules run in Python
(``playbooks.rules``, pure), and the new CTAs are bulk-created under the database's
one-open-CTA-per-(playbook, account) constraint, in batches of ``BATCH`` CTAs per
transaction with their steps, timeline facts and outbox messages. A second evaluation
creates nothing; an evaluation killed midway left whole batches only, and the next one
opens the rest. Anything that leaves the machine (emails, webhooks, Slack) is an outbox row
with a key naming the fact ("cta:<id>:opened:email"), written in the CTA's transaction: it
is sent once, after commit, with bounded retries, and never blocks the pipeline. A step
that names a survey campaign starts it for the CTA's account after commit, on a worker
(``cta_step_survey_start``, a task per 100 such steps; none when no step names one).

Two ways in:
- nightly: ``playbooks_evaluate_all(as_of=…)`` is the pipeline's last step
  (``settings.PIPELINE_FINAL_HOOKS``: metrics calls it without importing playbooks), so it
  reads the health snapshots that run has just written; it also records outcomes, promotes
  pending CTAs and escalates overdue ones;
- events: ``playbooks.tasks.timeline_facts_recorded`` (``settings.TIMELINE_FACT_HOOKS``)
  evaluates the event-like triggers (survey answers, escalations, band changes, failed
  payments) for the accounts of new timeline facts, within seconds on a worker.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F, Q
from django.urls import reverse
from django.utils import timezone

from accounts import utc
from accounts.models import Account, Role, TimelineEntry, User
from accounts.money import count_text, old_due_reword
from accounts.stale import stale_words
from accounts.timeline import rows_reword, timeline_upsert
from config.db import copy_stage
from config.site import absolute_url
from metrics.kpis.common import midnight
from metrics.models import AccountStanding
from metrics.standings import account_standings_refresh
from outbox.destinations import url_problem

from . import facts as facts_module
from . import rules, selectors
from .models import (
    ACTIVE_STATUSES,
    OPEN_STATUSES,
    Cta,
    CtaComment,
    CtaEmailKind,
    CtaEmailOff,
    CtaStatus,
    CtaStep,
    Notification,
    Outcome,
    OwnerRule,
    Playbook,
    PlaybookVersion,
    Priority,
)

logger = logging.getLogger(__name__)

BATCH = 1000  # CTAs per transaction when opening
FOLLOWUP_DAYS = 30  # effectiveness: health this many days after opening vs at opening

CONFIG_FIELDS = (
    "name",
    "description",
    "enabled",
    "trigger",
    "trigger_params",
    "segments",
    "lifecycle_stages",
    "owners",
    "arr_min",
    "arr_max",
    "cta_title",
    "cta_type",
    "priority",
    "steps",
    "owner_rule",
    "owner_user",
    "success",
    "success_params",
    "success_days",
    "cooldown_days",
    "email_owner",
    "webhook_url",
    "webhook_secret",
    "slack_url",
)


# --- playbook configuration ------------------------------------------------------------------


def _config_json(playbook: Playbook) -> dict[str, Any]:
    out = {}
    for name in CONFIG_FIELDS:
        value = getattr(playbook, "owner_user_id" if name == "owner_user" else name)
        out[name] = str(value) if isinstance(value, Decimal) else value
    return out


def _version_config(playbook: Playbook) -> dict[str, Any]:
    """The configuration a ``PlaybookVersion`` keeps: ``_config_json`` without the webhook
    signing secret, which says only whether one was set (``webhook_secret_set``). Versions
    are a history to read, never restored from, so the secret would serve nothing there and
    every snapshot would be one more copy of it to leak (a database dump, an export)."""
    config = _config_json(playbook)
    config["webhook_secret_set"] = bool(config.pop("webhook_secret"))
    return config


def _apply_config(playbook: Playbook, config: Mapping[str, Any]) -> None:
    """Check ``config`` (every field, ``rules.validate_playbook`` then the model's own
    checks) and copy it onto ``playbook``; raises ValidationError with field errors."""
    merged = {name: config.get(name, getattr(playbook, name, None)) for name in CONFIG_FIELDS}
    owner_user = merged["owner_user"]
    if isinstance(owner_user, User):
        owner_user = owner_user.pk
    merged["owner_user"] = owner_user
    clean, errors = rules.validate_playbook(merged)
    if owner_user is not None and not User.objects.filter(pk=owner_user).exists():
        errors.setdefault("owner_user", []).append(f"no user with id {owner_user}")
    # a segment added must be one some account has (a typo would never match); one already
    # saved stays, so an unrelated edit (disabling) is not refused when its accounts left
    added = [s for s in clean.get("segments") or [] if s not in (playbook.segments or [])]
    if added and not errors.get("segments"):
        known = Account.objects.segments()
        if unknown := [s for s in added if s not in known]:
            errors["segments"] = [
                f"no account has segment {', '.join(map(repr, unknown))}; "
                + (f"the segments are: {', '.join(known)}" if known else "no account has one")
            ]
    if problems := _step_campaign_errors(clean.get("steps") or [], kept=playbook.steps):
        errors.setdefault("steps", []).extend(problems)
    # webhook destinations: not this machine nor an internal network (SSRF). An address
    # saved already is left to the send's check, as saved segments are, so an unrelated edit
    # (disabling the playbook) is not refused; the send refuses it all the same.
    for name in ("webhook_url", "slack_url"):
        url = merged[name]
        if url and url != getattr(playbook, name, "") and (problem := url_problem(url)):
            errors.setdefault(name, []).append(problem)
    if errors:
        raise ValidationError(errors)
    for name in CONFIG_FIELDS:
        if name == "owner_user":
            playbook.owner_user_id = owner_user if clean["owner_rule"] == "named_user" else None
        elif name in clean:
            setattr(playbook, name, clean[name])
        else:
            setattr(playbook, name, merged[name] if merged[name] is not None else "")
    playbook.enabled = bool(merged["enabled"]) if merged["enabled"] is not None else True
    playbook.full_clean(exclude=["owner_user"])


def _step_campaign_errors(steps: Sequence[Mapping[str, Any]], *, kept: Any) -> list[str]:
    """The steps naming a survey campaign a step may not start (``selectors.
    step_survey_campaigns``), each by its number. A campaign the playbook's steps named
    already stays allowed, as saved segments do, so an unrelated edit (disabling the
    playbook) is not refused once that campaign closed: its CTAs then say on their page that
    nothing was sent. One query, none when no step names a campaign."""
    named = rules.step_campaigns(steps)
    if not named:
        return []
    allowed = set(rules.step_campaigns(kept if isinstance(kept, list) else []))
    eligible = selectors.step_survey_campaigns().filter(pk__in=named)
    allowed |= set(eligible.values_list("pk", flat=True))
    problems = []
    for n, step in enumerate(steps, start=1):
        campaign = step.get("survey_campaign")
        if campaign and campaign not in allowed:
            problems.append(
                f"step {n}: campaign {campaign} is not an active survey campaign started by "
                "a playbook step"
            )
    return problems


def playbook_config_errors(*, config: Mapping[str, Any]) -> dict[str, list[str]]:
    """The field errors ``playbook_create`` would raise for ``config``; nothing written.
    The editor shows them beside the errors of fields it could not parse."""
    try:
        _apply_config(Playbook(version=1), config)
    except ValidationError as exc:
        return exc.message_dict
    return {}


@transaction.atomic
def playbook_create(
    *, config: Mapping[str, Any], created_by: User | None = None, starter: str = ""
) -> Playbook:
    """A new playbook (version 1) from ``config`` (``CONFIG_FIELDS``; users by id).
    Raises ValidationError with field errors: an unknown trigger parameter, negative days,
    steps without titles … nothing is written then."""
    playbook = Playbook(starter=starter, version=1)
    _apply_config(playbook, config)
    try:
        with transaction.atomic():
            playbook.save()
    except IntegrityError:  # the same name saved meanwhile (two sends at once): no 500
        if Playbook.objects.filter(name=playbook.name).exists():
            raise ValidationError(
                {"name": [f"A playbook called “{playbook.name}” was saved meanwhile."]}
            ) from None
        raise
    PlaybookVersion.objects.create(
        playbook=playbook, version=1, config=_version_config(playbook), created_by=created_by
    )
    return playbook


@transaction.atomic
def playbook_update(
    *,
    playbook: Playbook,
    config: Mapping[str, Any],
    updated_by: User | None = None,
    based_on: int | None = None,
) -> Playbook:
    """Change a playbook: the next version, the previous configuration kept in
    ``PlaybookVersion``. Open CTAs keep the version that opened them. No change, no version.
    ``based_on``: the version the editor showed (None: no check, as the API's PATCH, which
    sends only the fields it changes). Raises ValidationError, writing nothing, when another
    version was saved since: the editor sends every field, so saving would silently undo
    the other person's change. A save that changes nothing is no error whatever it was based
    on: a second click on Save sends the same form again, and finds its change made."""
    locked = Playbook.objects.select_for_update().get(pk=playbook.pk)
    stale = based_on is not None and locked.version != based_on
    before = _config_json(locked)
    _apply_config(locked, config)
    if _config_json(locked) == before:
        return locked
    if stale:
        raise ValidationError({NON_FIELD_ERRORS: [playbook_stale_words(locked, based_on)]})
    locked.version += 1
    locked.save()
    PlaybookVersion.objects.create(
        playbook=locked,
        version=locked.version,
        config=_version_config(locked),
        created_by=updated_by,
    )
    return locked


def playbook_stale_words(playbook: Playbook, based_on: int) -> str:
    """Why a save based on version ``based_on`` is refused: who saved the version in force,
    and when (one query)."""
    latest = (
        PlaybookVersion.objects.select_related("created_by")
        .filter(playbook=playbook, version=playbook.version)
        .first()
    )
    return stale_words(
        changed=f"v{playbook.version} was saved",
        by=latest.created_by if latest else None,
        at=latest.created_at if latest else None,
        opened=f"v{based_on}",
        see=f"v{playbook.version}",
    )


def starter_playbooks_load() -> list[Playbook]:
    """The starter playbooks (``playbooks.starters``) a new installation begins with, each
    created once (by its starter key, so an edited or renamed one is left alone)."""
    from .starters import STARTERS

    have = set(Playbook.objects.exclude(starter="").values_list("starter", flat=True))
    return [
        playbook_create(config=config, starter=key)
        for key, config in STARTERS.items()
        if key not in have
    ]


# --- the engine ------------------------------------------------------------------------------


@dataclass
class _Candidate:
    playbook: Playbook
    account_id: int
    owner_id: int | None
    match: rules.Match
    facts: Mapping[str, Any]


def _rule(p: Playbook) -> rules.Rule:
    return rules.Rule(
        id=p.pk,
        trigger=p.trigger,
        trigger_params=p.trigger_params,
        segments=tuple(p.segments or ()),
        lifecycle_stages=tuple(p.lifecycle_stages or ()),
        owners=tuple(p.owners or ()),
        arr_min=p.arr_min,
        arr_max=p.arr_max,
    )


@dataclass(frozen=True)
class _Needs:
    """What ``facts.gather`` must read for a set of playbooks (``_fact_needs``)."""

    sources: frozenset[str]
    score_days: frozenset[int]  # days back whose health score a rule compares with
    window: int  # days of band changes and survey answers
    previous_active: bool  # the active users of the 30 days before too

    def gather(self, *, as_of: dt.date, account_ids: Sequence[int] | None = None) -> dict:
        return facts_module.gather(
            as_of=as_of,
            sources=self.sources,
            account_ids=account_ids,
            score_days=[as_of - dt.timedelta(days=d) for d in self.score_days],
            window_days=self.window,
            previous_active=self.previous_active,
        )


def _fact_needs(playbooks: Iterable[Playbook], *, success: Iterable[str] = ()) -> _Needs:
    sources: set[str] = set()
    score_days: set[int] = set()
    window = 1
    previous_active = False
    for p in playbooks:
        sources.update(rules.TRIGGERS[p.trigger].sources)
        # and its success condition's, where it can hold before opening: a CTA whose success
        # is met already is not opened (``_already_met_possible``)
        if _already_met_possible(p):
            sources.update(rules.SUCCESSES[p.success].sources)
        if p.arr_min is not None or p.arr_max is not None:
            sources.add("contracts")
        if p.trigger in ("score_dropped", "relationship_dropped"):
            score_days.add(p.trigger_params["days"])
        if p.trigger == "usage_dropped" and p.trigger_params.get("measure") == "active_users":
            sources.add("active_users")
            previous_active = True
        window = max(window, p.trigger_params.get("within_days", 1))
    for key in success:
        sources.update(rules.SUCCESSES[key].sources)
    return _Needs(frozenset(sources), frozenset(score_days), window, previous_active)


def _owner_for(
    playbook: Playbook, account_owner: int | None, managers: dict[int, int]
) -> int | None:
    if playbook.owner_rule == OwnerRule.NAMED_USER:
        return playbook.owner_user_id
    if playbook.owner_rule == OwnerRule.CSM_MANAGER:
        return managers.get(account_owner) if account_owner else None
    return account_owner


def _lapses_at(match: rules.Match) -> dt.datetime | None:
    """When the matched condition's own deadline passes: a contract ending without renewal
    (``renewal_on``, its last day) lapses at the end of that day (UTC); None for the rest."""
    end = match.data.get("renewal_on")
    if not end:
        return None
    return midnight(dt.date.fromisoformat(end) + dt.timedelta(days=1))


def _renewal_lead(playbook: Playbook) -> int | None:
    """The lead time of a renewal playbook: its window of N days before the contract end
    ("renewal within 90 days"); None for other triggers."""
    if playbook.trigger != "renewal_within":
        return None
    days = (playbook.trigger_params or {}).get("days")
    return days if isinstance(days, int) else None


def _step_due_on(
    cta: Cta, due_days: int, *, lead: int | None = None, start: dt.date | None = None
) -> dt.date:
    """A step's due day: ``due_days`` after ``start``, the day the CTA enters its owner's
    queue (default: the day it opens, UTC: the night's run opens it the day after its data
    day, and a step due before the CTA existed would be late at birth).

    A CTA about a contract end (``renewal_on`` in its evidence, as ``_lapses_at`` reads it)
    is scheduled back from that end instead: a renewal playbook's steps are days into its
    window (``lead`` days before the end, ``_renewal_lead``), so "proposal at day 45 of 90"
    is due 45 days before the end whenever the CTA opened; a step the schedule puts before
    ``start`` (a CTA opened late, or waiting over the cap) is due on ``start``, and none is
    due after the contract's last day: a renewal step due after the contract ended is of
    no use. Never before ``start``, even for a contract that ended before it."""
    start = start or cta.opened_at.astimezone(dt.UTC).date()
    end = (cta.evidence_data or {}).get("renewal_on")
    if not end:
        return start + dt.timedelta(days=due_days)
    end = dt.date.fromisoformat(end)
    base = end - dt.timedelta(days=lead) if lead is not None else start
    return max(start, min(base + dt.timedelta(days=due_days), end))


def _steps_due(cta: Cta, playbook: Playbook, *, start: dt.date | None = None) -> list[dt.date]:
    """The due day of each of ``playbook``'s steps for ``cta`` (``_step_due_on``)."""
    lead = _renewal_lead(playbook)
    return [
        _step_due_on(cta, step.get("due_days", 0), lead=lead, start=start)
        for step in playbook.steps or ()
    ]


def due_after_steps(last_step: dt.date) -> dt.datetime:
    """The rule of a CTA's due date: it is due when its last step is, by the end of that
    UTC day (a CTA is done when its steps are). Only a CTA without steps is due by its
    urgency alone (``_due_at``)."""
    return midnight(last_step + dt.timedelta(days=1))


def _due_at(priority: str, start: dt.datetime) -> dt.datetime:
    """Due by urgency: ``PLAYBOOK_DUE_HOURS`` after ``start``; 0 hours = the end of that
    UTC day (a red account is handled the same day)."""
    hours = settings.PLAYBOOK_DUE_HOURS.get(priority, 48)
    if hours == 0:
        return midnight(start.astimezone(dt.UTC).date() + dt.timedelta(days=1))
    return start + dt.timedelta(hours=hours)


def playbooks_evaluate(
    *,
    as_of: dt.date | None = None,
    account_ids: Sequence[int] | None = None,
    triggers: Iterable[str] | None = None,
    playbooks: Sequence[Playbook] | None = None,
    now: dt.datetime | None = None,
    tell_open: bool = False,
) -> dict[str, Any]:
    """Evaluate the enabled playbooks (or those given; with ``triggers``, only those with
    one of these triggers) for every account (or ``account_ids``) as of ``as_of`` (default:
    today, UTC) and open the CTAs they call for. Returns counts: playbooks, accounts,
    matched, opened, pending, skipped_open (one is open already), skipped_cooldown,
    skipped_already_met (the playbook's success condition holds already: ``_open_for``),
    told (with ``tell_open``: the event path, a new fact matching a playbook whose CTA for
    the account is open is added to that CTA as a comment, once per evidence, so a second
    unhappy answer reaches the CSM who handles the first). A fixed number of queries for
    the facts, plus a few per batch of new CTAs."""
    as_of = as_of or utc.today()
    now = now or timezone.now()
    if playbooks is None:
        qs = Playbook.objects.filter(enabled=True).order_by("pk")
        if triggers is not None:
            qs = qs.filter(trigger__in=list(triggers))
        playbooks = list(qs)
    counts: Counter = Counter(playbooks=len(playbooks))
    if not playbooks:
        return _with_zeros(counts)
    facts = _fact_needs(playbooks).gather(as_of=as_of, account_ids=account_ids)
    counts["accounts"] = len(facts)
    counts.update(
        _open_for(
            playbooks, facts, as_of=as_of, now=now, account_ids=account_ids, tell_open=tell_open
        )
    )
    return _with_zeros(counts)


def _with_zeros(counts: Counter) -> dict[str, Any]:
    for key in (
        "matched",
        "opened",
        "pending",
        "skipped_open",
        "skipped_cooldown",
        "skipped_already_met",
    ):
        counts.setdefault(key, 0)
    return dict(counts)


def _arr_at_open(f: Mapping[str, Any]) -> str | None:
    """The ARR a CTA keeps from its opening (``evidence_data["arr_at_open"]``): what the
    success "ARR grew" compares with."""
    return str(f["arr"]) if f.get("arr") is not None else None


def _success_reason(
    playbook: Playbook,
    f: Mapping[str, Any],
    *,
    opened_on: dt.date,
    arr_at_open: Any,
    steps_left: int,
) -> str | None:
    """Whether ``playbook``'s success condition holds on one account's facts for one CTA
    (the reason, or None): the one check the outcome (``_outcomes_record``) and the opening
    (``_open_for``) both make, so a CTA the outcome would close as met is never opened."""
    cta = {"opened_on": opened_on, "arr_at_open": arr_at_open, "steps_left": steps_left}
    return rules.success_met(playbook.success, playbook.success_params, f, cta)


def _already_met_possible(playbook: Playbook) -> bool:
    """Whether ``playbook``'s success condition can hold before its CTA opens: a state of
    the account (renewed, first value, payments clear, health back), not something done
    after opening (``rules.Success.after_opening``)."""
    success = rules.SUCCESSES.get(playbook.success)
    return success is not None and not success.after_opening


def _open_for(
    playbooks: Sequence[Playbook],
    facts: Mapping[int, Mapping[str, Any]],
    *,
    as_of: dt.date,
    now: dt.datetime,
    account_ids: Sequence[int] | None,
    tell_open: bool = False,
) -> Counter:
    """Open the CTAs ``playbooks`` call for on ``facts`` (with their success conditions'
    sources: ``_fact_needs``), unless one is open for the (playbook, account), it closed
    within the cooldown, or the playbook's success condition already holds on these facts
    for the CTA it would open (``skipped_already_met``: a first value reached before the
    onboarding CTA): the outcome check would close it as a success at once, counting a
    success nobody worked for and starting the cooldown."""
    counts: Counter = Counter()
    again: dict[tuple[int, int], str] = {}  # (playbook, account) -> evidence, CTA open
    ids = [p.pk for p in playbooks]
    existing = Cta.objects.open().filter(playbook_id__in=ids)
    recent_closed = Cta.objects.filter(
        playbook_id__in=ids,
        closed_at__gte=now - dt.timedelta(days=max(p.cooldown_days for p in playbooks)),
    )
    if account_ids is not None:
        existing = existing.filter(account_id__in=list(account_ids))
        recent_closed = recent_closed.filter(account_id__in=list(account_ids))
    open_pairs = set(existing.values_list("playbook_id", "account_id"))
    closed: dict[tuple[int, int], dt.datetime] = {}
    for pb, acc, closed_at in recent_closed.values_list("playbook_id", "account_id", "closed_at"):
        if closed_at > closed.get((pb, acc), closed_at - dt.timedelta(seconds=1)):
            closed[(pb, acc)] = closed_at
    managers = dict(User.objects.filter(manager__isnull=False).values_list("pk", "manager_id"))

    candidates: list[_Candidate] = []
    for playbook in playbooks:
        rule = _rule(playbook)
        cooldown = dt.timedelta(days=playbook.cooldown_days)
        for account_id, f in facts.items():
            match = rules.evaluate(rule, f, as_of)
            if match is None:
                continue
            counts["matched"] += 1
            if (playbook.pk, account_id) in open_pairs:
                counts["skipped_open"] += 1
                if tell_open:
                    again[(playbook.pk, account_id)] = match.evidence
                continue
            last = closed.get((playbook.pk, account_id))
            if last is not None and last + cooldown > now:
                counts["skipped_cooldown"] += 1
                continue
            if _already_met_possible(playbook) and _success_reason(
                playbook,
                f,
                opened_on=as_of,
                arr_at_open=_arr_at_open(f),
                steps_left=len(playbook.steps or ()),
            ):
                counts["skipped_already_met"] += 1
                continue
            owner = _owner_for(playbook, f.get("owner_id"), managers)
            candidates.append(_Candidate(playbook, account_id, owner, match, f))
    if candidates:
        counts.update(ctas_open(candidates, as_of=as_of, now=now))
    if again:
        counts["told"] = _tell_open_ctas(again)
    return counts


def _tell_open_ctas(again: Mapping[tuple[int, int], str]) -> int:
    """Add each evidence to the open CTA of its (playbook, account) as a comment, unless that
    CTA has it already (the same fact evaluated twice). Returns how many were added."""
    ctas = list(
        Cta.objects.open().filter(
            playbook_id__in={pb for pb, _ in again}, account_id__in={acc for _, acc in again}
        )
    )
    said = set(  # what was added already: one query for them all
        CtaComment.objects.filter(cta__in=ctas, author=None, body__startswith=AGAIN).values_list(
            "cta_id", "body"
        )
    )
    comments = []
    for cta in ctas:
        evidence = again.get((cta.playbook_id, cta.account_id))
        body = f"{AGAIN}{evidence}"
        if evidence is None or evidence == cta.evidence or (cta.pk, body) in said:
            continue
        comments.append(CtaComment(cta=cta, author=None, body=body[:5000]))
    if not comments:
        return 0
    # one insert for the comments and one for their timeline facts, whatever their number
    # (what ``cta_comment_add`` does for one)
    CtaComment.objects.bulk_create(comments)
    timeline_upsert(
        [
            _fact(
                c.cta,
                f"comment:{c.pk}",
                "cta_comment",
                f"Comment on CTA {c.cta.title}: {c.body[:200]}",
                at=c.created_at,
                by="",
            )
            for c in comments
        ]
    )
    return len(comments)


AGAIN = "Matched again while open: "


# evidence written before counts of one were said in the singular (``count_text``): the
# seat utilisation of a one-seat contract, a drop of exactly one point
OLD_ONE_EVIDENCE = (
    (" of 1 seats active in 30 days)", " of 1 seat active in 30 days)"),
    ("(−1 points in ", "(−1 point in "),
)


def old_evidence_reword(text: str) -> str:
    """Evidence in the words the triggers used before the one spelling of money and before
    counts of one were said in the singular, as they write it now: "(633,600.00 USD due)"
    → "($633,600.00 due)" (``accounts.money.old_due_reword``), "1 of 1 seats active" →
    "1 of 1 seat active", "(−1 points in 7 days)" → "(−1 point in 7 days)"."""
    text = old_due_reword(text)
    for old, new in OLD_ONE_EVIDENCE:
        text = text.replace(old, new)
    return text


def evidence_words_reword(ctas=None, comments=None, entries=None) -> int:
    """Rewrite evidence stored in the old words (``old_evidence_reword``) as the triggers
    write it now: the CTAs' evidence, the comments the engine added when a CTA matched
    again, and the timeline facts that quote them (a CTA opened or waiting, such a
    comment). An open CTA with the old words would otherwise get a comment "Matched again"
    the next night for the same fact newly spelt. A person's comment, and its fact (``by``
    names them), keep their words. The models are passed by a migration (its historical
    ones). Returns how many rows were rewritten."""
    ctas, comments, entries = ctas or Cta, comments or CtaComment, entries or TimelineEntry
    old = r"\.\d\d [A-Z]{3} due\)| of 1 seats active in 30 days\)|\(−1 points in "
    done = 0
    for column, rows in (
        ("evidence", ctas.objects.filter(evidence__regex=old)),
        ("body", comments.objects.filter(author=None, body__regex=old)),
        (
            "title",
            entries.objects.filter(
                Q(kind="cta_opened") | Q(kind="cta_comment", data__by=""), title__regex=old
            ),
        ),
    ):
        rows = rows.only("pk", column)
        done += rows_reword(rows, column, lambda r, c=column: old_evidence_reword(getattr(r, c)))
    return done


def _cta_payload(cta: Cta, *, account: Mapping[str, Any], owner_email: str) -> dict[str, Any]:
    return {
        "event": "cta.opened",
        "cta": {
            "id": cta.pk,
            "title": cta.title,
            "type": cta.cta_type,
            "priority": cta.priority,
            "status": cta.status,
            "due_at": cta.due_at.isoformat(),
            "evidence": cta.evidence,
            "url": absolute_url(reverse("playbooks:cta-detail", args=[cta.pk])),
        },
        "account": account,
        "playbook": {"id": cta.playbook_id, "version": cta.playbook_version},
        "owner": owner_email,
    }


# --- which CTA emails a person gets ----------------------------------------------------------

CTA_EMAIL_SALT = "playbooks.cta-email-unsubscribe"


def cta_emails_off(user_ids: Iterable[int], kind: str) -> set[int]:
    """Those of ``user_ids`` who turned ``kind`` off. One query (none for nobody)."""
    ids = set(user_ids)
    if not ids:
        return set()
    return set(
        CtaEmailOff.objects.filter(user_id__in=ids, kind=kind).values_list("user_id", flat=True)
    )


def cta_email_settings(user: User) -> dict[str, bool]:
    """Each kind of CTA email, on or off for ``user`` (on unless turned off). One query."""
    off = set(CtaEmailOff.objects.filter(user=user).values_list("kind", flat=True))
    return {kind: kind not in off for kind in CtaEmailKind.values}


def cta_email_set(*, user: User, kind: str, on: bool) -> None:
    """Turn one kind of CTA email on or off for ``user``; doing it twice changes nothing."""
    if kind not in CtaEmailKind.values:
        raise ValidationError({"kind": [f"no CTA email is called {kind!r}"]})
    if on:
        CtaEmailOff.objects.filter(user=user, kind=kind).delete()
    else:
        CtaEmailOff.objects.get_or_create(user=user, kind=kind)


def cta_email_token(user_id: int, kind: str) -> str:
    return signing.dumps({"u": user_id, "k": kind}, salt=CTA_EMAIL_SALT)


def cta_email_token_read(token: str) -> tuple[User, str] | None:
    """The user and the kind a CTA email's unsubscribe link names (None for a bad or
    forged link, or a kind that no longer exists)."""
    try:
        data = signing.loads(token, salt=CTA_EMAIL_SALT)
    except signing.BadSignature:
        return None
    user = User.objects.filter(pk=data.get("u")).first()
    if user is None or data.get("k") not in CtaEmailKind.values:
        return None
    return user, data["k"]


def _cta_email_extras(user_id: int, kind: str) -> tuple[str, dict[str, str]]:
    """The closing lines of a CTA email (why, and how to stop this kind) and its
    List-Unsubscribe headers: the mail program's own button, one POST without a session
    (RFC 8058), turns this kind off and no other."""
    from outbox import services as outbox

    url = absolute_url(
        reverse("playbooks:cta-email-unsubscribe", args=[cta_email_token(user_id, kind)])
    )
    why = {
        CtaEmailKind.OPENED: "You get this email because a playbook opened a CTA for you.",
        CtaEmailKind.ESCALATED: "You get this email because you manage the CTAs' owners.",
    }[kind]
    settings_url = absolute_url(reverse("reports:notifications"))
    text = f"\n--\n{why}\nStop these emails: {url}\nAll your email settings: {settings_url}\n"
    return text, outbox.unsubscribe_headers(url)


def _actions_enqueue(ctas: Sequence[Cta], playbooks: Mapping[int, Playbook]) -> int:
    """The outbox messages of newly opened CTAs (keys name the fact: sent once); no email
    to an owner who turned "opened" CTA emails off. Four queries at most, whatever the
    number of CTAs."""
    from outbox import services as outbox
    from outbox import slack

    with_actions = [
        c
        for c in ctas
        if (p := playbooks[c.playbook_id]).email_owner or p.webhook_url or p.slack_url
    ]
    if not with_actions:
        return 0
    accounts = {
        a["id"]: a
        for a in Account.objects.filter(pk__in=[c.account_id for c in with_actions]).values(
            "id", "external_id", "name"
        )
    }
    emails = dict(
        User.objects.filter(pk__in={c.owner_id for c in with_actions if c.owner_id}).values_list(
            "pk", "email"
        )
    )
    emailed = {c.owner_id for c in with_actions if playbooks[c.playbook_id].email_owner}
    muted = cta_emails_off(emailed & set(emails), CtaEmailKind.OPENED)
    messages = []
    mails: dict[int, list[tuple[Cta, str]]] = {}  # owner's id -> (CTA, its line)
    for cta in with_actions:
        p = playbooks[cta.playbook_id]
        account = accounts[cta.account_id]
        owner_email = emails.get(cta.owner_id, "")
        source = p.source_label
        line = f"{cta.title} — {account['name']}: {cta.evidence}"
        if p.email_owner and owner_email and cta.owner_id not in muted:
            mails.setdefault(cta.owner_id, []).append((cta, line))
        if p.webhook_url:
            messages.append(
                outbox.webhook_message(
                    key=f"cta:{cta.pk}:opened:webhook",
                    url=p.webhook_url,
                    body=_cta_payload(cta, account=account, owner_email=owner_email),
                    secret=p.webhook_secret,
                    source=source,
                )
            )
        if p.slack_url:
            text = slack.text(
                "New CTA for {owner}: {title} — {account}: {evidence}\n<{url}|Open the CTA>",
                owner=owner_email or "nobody",
                title=cta.title,
                account=account["name"],
                evidence=cta.evidence,
                url=absolute_url(reverse("playbooks:cta-detail", args=[cta.pk])),
            )
            messages.append(
                outbox.webhook_message(
                    key=f"cta:{cta.pk}:opened:slack",
                    url=p.slack_url,
                    body={"text": text},
                    source=source,
                )
            )
    for owner_id, opened in mails.items():
        messages.extend(_opened_emails(owner_id, emails[owner_id], opened, playbooks, accounts))
    outbox.messages_enqueue(messages)
    return len(messages)


OPENED_MAIL_SINGLE = 3  # an owner given more new CTAs at once gets one email listing them


def _opened_emails(
    owner_id: int,
    owner_email: str,
    opened: Sequence[tuple[Cta, str]],
    playbooks: Mapping[int, Playbook],
    accounts: Mapping[int, Mapping[str, Any]],
) -> list:
    """The emails telling an owner of the CTAs just opened for them: one per CTA, or, past
    ``OPENED_MAIL_SINGLE`` at once (a night's evaluation), one that counts them and lists
    the first ``ESCALATION_MAIL_LINES``. Keyed by the (first) CTA: a CTA opens once, so a
    re-run sends nothing twice."""
    from outbox import services as outbox

    def link(cta: Cta) -> str:
        return absolute_url(reverse("playbooks:cta-detail", args=[cta.pk]))

    first = opened[0][0]
    source = playbooks[first.playbook_id].source_label
    footer, headers = _cta_email_extras(owner_id, CtaEmailKind.OPENED)
    if len(opened) <= OPENED_MAIL_SINGLE:
        return [
            outbox.email_message(
                key=f"cta:{cta.pk}:opened:email",
                to=[owner_email],
                subject=_one_line(f"New CTA: {cta.title} ({accounts[cta.account_id]['name']})"),
                text=f"{line}\n\nDue {utc.due_by_text(cta.due_at)}.\n{link(cta)}\n{footer}",
                source=playbooks[cta.playbook_id].source_label,
                headers=headers,
            )
            for cta, line in opened
        ]
    n = len(opened)
    listed = opened[:ESCALATION_MAIL_LINES]
    body = f"{n} new CTAs for you:\n\n" + "\n".join(
        f"- {line}\n  Due {utc.due_by_text(cta.due_at)}. {link(cta)}" for cta, line in listed
    )
    if n > len(listed):
        body += f"\n\n… and {n - len(listed)} more."
    mine = absolute_url(reverse("playbooks:cta-list") + "?status=active&mine=1")
    body += f"\n\nAll your open CTAs: {mine}\n"
    return [
        outbox.email_message(
            key=f"cta:{first.pk}:opened:email",
            to=[owner_email],
            subject=f"{n} new CTAs for you",
            text=body + footer,
            source=source,
            headers=headers,
        )
    ]


# the kinds of the timeline facts ``_fact`` writes (registered in apps.py for the API)
FACT_KINDS = (
    "cta_opened",
    "cta_started",
    "cta_comment",
    "cta_step_done",
    "cta_step_automatic",
    "cta_snoozed",
    "cta_escalated",
    "cta_reassigned",
    "cta_outcome",
    "cta_closed",
)


def _fact(
    cta: Cta | _Decided, key: str, kind: str, title: str, *, at: dt.datetime, **data
) -> TimelineEntry:
    return TimelineEntry(
        account_id=cta.account_id,
        key=f"cta:{cta.pk}:{key}",
        kind=kind,
        occurred_at=at,
        title=title,
        data={"cta": cta.pk, "playbook": cta.playbook_id, **data},
    )


# the accounts whose CTAs changed, gathered by the night's playbooks step to refresh their
# standings once at its end (None: refresh after each write)
_standings_changed: ContextVar[set[int] | None] = ContextVar("standings_changed", default=None)


def _standings_refresh(account_ids: Iterable[int]) -> None:
    """Once the current transaction commits (at once outside one), rebuild the queue
    standings of these accounts (``metrics.standings``: their open and overdue CTA counts and
    the priority they weigh in): every write that opens, closes, promotes or moves the due
    date of CTAs calls it, so the queue never shows an account's CTAs as "none" beside its
    open CTA. Inside the night's playbooks step the accounts are gathered instead, and
    refreshed in one pass at the step's end (the night's standings step ran before it)."""
    ids = sorted(set(account_ids))
    gathering = _standings_changed.get()
    if gathering is not None:
        gathering.update(ids)
    elif ids:
        transaction.on_commit(partial(account_standings_refresh, account_ids=ids))


def _standing_keys(account_ids: Iterable[int]) -> dict[int, tuple[float, Decimal]]:
    """The queue priority points and ARR of accounts (``AccountStanding``), the tie-breakers
    of CTAs due at the same time; an account without a standing yet is absent. One query
    per 10,000 accounts."""
    ids = sorted(set(account_ids))
    out: dict[int, tuple[float, Decimal]] = {}
    for start in range(0, len(ids), 10_000):
        rows = AccountStanding.objects.filter(account_id__in=ids[start : start + 10_000])
        out.update((a, (p, arr)) for a, p, arr in rows.values_list("account_id", "priority", "arr"))
    return out


# the order in which CTAs over the cap wait and move into the queue, in words (pages say it)
WAITING_ORDER = "promoted soonest due first, then by the account's priority points, then by ARR"


def _urgency_key(due_at: dt.datetime, standing: tuple[float, Decimal] | None, *tail: Any) -> tuple:
    """Sort key of CTAs competing for room under a cap (``WAITING_ORDER``): the soonest
    due first, then the account's higher priority points, then the higher ARR."""
    points, arr = standing or (0.0, Decimal(0))
    return (due_at, -points, -arr, *tail)


def ctas_open(
    candidates: Sequence[_Candidate], *, as_of: dt.date, now: dt.datetime | None = None
) -> Counter:
    """Open a CTA per candidate (playbook, account, owner, evidence). Past the owner's cap
    (``PLAYBOOK_MAX_OPEN_CTAS_PER_CSM`` open or in progress), CTAs below high priority wait
    as *pending* (shown to admins as the backlog); which ones get the room left and which
    wait goes by urgency (``WAITING_ORDER``: due date, then the account's priority points,
    then ARR), as the promotion of pending CTAs does. A candidate whose (playbook, account)
    got an open CTA meanwhile is skipped (constraint).

    A CTA is due when its last step is (``due_after_steps``; a renewal's steps count back
    from the contract end, ``_step_due_on``). A CTA whose condition lapses before the due
    date its priority gives (a contract ending within 48 h, ``_lapses_at``) is, like a
    high-priority one, never set aside for the backlog."""
    now = now or timezone.now()
    cap = settings.PLAYBOOK_MAX_OPEN_CTAS_PER_CSM
    counts: Counter = Counter()
    owners = {c.owner_id for c in candidates if c.owner_id}
    load = Counter(
        dict(
            Cta.objects.active()
            .filter(owner_id__in=owners)
            .values("owner_id")
            .order_by()
            .annotate(n=Count("pk"))
            .values_list("owner_id", "n")
        )
    )
    built = []
    schedule: dict[tuple[int, int], list[dt.date]] = {}  # (playbook, account) → steps' days
    for c in candidates:
        p = c.playbook
        data = dict(c.match.data)
        if (arr_at_open := _arr_at_open(c.facts)) is not None:
            data["arr_at_open"] = arr_at_open
        title = p.cta_title
        if c.match.headline:  # what fired, where the trigger has alternatives
            title = f"{title} ({c.match.headline})"[:300]
        cta = Cta(
            playbook=p,
            playbook_version=p.version,
            account_id=c.account_id,
            owner_id=c.owner_id,
            title=title,
            cta_type=p.cta_type,
            priority=p.priority,
            status=CtaStatus.OPEN,
            evidence=c.match.evidence,
            evidence_data=_jsonable(data),
            opened_at=now,
            opened_on=as_of,
            health_at_open=c.facts.get("score"),
            followup_on=as_of + dt.timedelta(days=FOLLOWUP_DAYS),
            success_deadline=as_of + dt.timedelta(days=p.success_days),
        )
        by_urgency = _due_at(p.priority, now)
        steps = schedule[(p.pk, c.account_id)] = _steps_due(cta, p)
        cta.due_at = due_after_steps(max(steps)) if steps else by_urgency
        lapses_at = _lapses_at(c.match)
        urgent = p.priority == Priority.HIGH or (lapses_at is not None and lapses_at < by_urgency)
        if not steps and lapses_at is not None and lapses_at < cta.due_at:
            cta.due_at = max(lapses_at, now)
        built.append((c, cta, urgent))
    # who gets the room under a cap: the urgent ones (they never wait), then by urgency;
    # the tie-breakers are read only when some owner has more candidates than room
    wanting = Counter(c.owner_id for c, _, _ in built if c.owner_id)
    contested = {o for o, n in wanting.items() if load[o] + n > cap}
    waiting = [c.account_id for c, _, urgent in built if not urgent and c.owner_id in contested]
    standings = _standing_keys(waiting) if waiting else {}
    built.sort(
        key=lambda b: (
            not b[2],
            *_urgency_key(b[1].due_at, standings.get(b[0].account_id),
                          b[0].playbook.pk, b[0].account_id),
        )
    )  # fmt: skip
    rows = []
    for c, cta, urgent in built:
        if c.owner_id and load[c.owner_id] >= cap and not urgent:
            cta.status = CtaStatus.PENDING
        elif c.owner_id:
            load[c.owner_id] += 1
        rows.append((c, cta))
    playbooks = {c.playbook.pk: c.playbook for c in candidates}
    for start in range(0, len(rows), BATCH):
        batch = [cta for _, cta in rows[start : start + BATCH]]
        created = _create_batch(batch, playbooks, schedule, now)
        counts["opened"] += sum(1 for c in created if c.status == CtaStatus.OPEN)
        counts["pending"] += sum(1 for c in created if c.status == CtaStatus.PENDING)
        counts["skipped_open"] += len(rows[start : start + BATCH]) - len(created)
    return counts


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


@transaction.atomic
def _create_batch(
    ctas: list[Cta],
    playbooks: Mapping[int, Playbook],
    schedule: Mapping[tuple[int, int], list[dt.date]],
    now: dt.datetime,
) -> list[Cta]:
    """One transaction: the CTAs, their steps (due on the days ``schedule`` gives each
    (playbook, account), the days its due date was set from), their timeline facts, their
    outbox rows."""
    try:
        with transaction.atomic():
            created = Cta.objects.bulk_create(ctas)
    except IntegrityError:
        # another evaluation opened some of these meanwhile: one by one, keeping the rest
        created = []
        for cta in ctas:
            cta.pk = None
            try:
                with transaction.atomic():
                    cta.save(force_insert=True)
            except IntegrityError:
                continue
            created.append(cta)
    if not created:
        return []
    # survey steps: only when a playbook here has one (the night's thousands of CTAs of
    # playbooks without any cost no query and no task)
    surveying = {
        pk: rules.step_campaigns(playbooks[pk].steps) for pk in {c.playbook_id for c in created}
    }
    names = selectors.campaign_names(c for ids in surveying.values() for c in ids)
    steps, sends = [], []
    for cta in created:
        playbook = playbooks[cta.playbook_id]
        for n, (step, due_on) in enumerate(
            zip(playbook.steps, schedule[(cta.playbook_id, cta.account_id)], strict=True),
            start=1,
        ):
            row = CtaStep(cta=cta, position=n, title=step["title"], due_on=due_on)
            if campaign := step.get("survey_campaign"):
                words = rules.survey_words(campaign, names)
                row.title = f"{step['title'][: 296 - len(words)]} ({words})"
                sends.append((row, campaign))
            steps.append(row)
    CtaStep.objects.bulk_create(steps)
    if sends:  # the steps have their ids now
        pairs = [[row.pk, campaign] for row, campaign in sends]
        transaction.on_commit(partial(_step_surveys_enqueue, pairs))
    timeline_upsert(
        _fact(
            cta,
            "opened",
            "cta_opened",
            (
                f"CTA opened: {cta.title} — {cta.evidence}"
                if cta.status == CtaStatus.OPEN
                else f"CTA waiting (owner at the cap of open CTAs): {cta.title} — {cta.evidence}"
            ),
            at=now,
            status=cta.status,
        )
        for cta in created
    )
    _actions_enqueue([c for c in created if c.status == CtaStatus.OPEN], playbooks)
    _standings_refresh(c.account_id for c in created)
    return created


STEP_SURVEYS_PER_TASK = 100


def _step_surveys_enqueue(pairs: Sequence[list[int]]) -> None:
    """After the CTAs' commit: their survey steps ([step id, campaign id]) to a worker, a
    task per ``STEP_SURVEYS_PER_TASK`` (a broker away: kept for the sweeper)."""
    from outbox.services import task_enqueue

    from .tasks import start_step_surveys  # tasks import this module

    for start in range(0, len(pairs), STEP_SURVEYS_PER_TASK):
        task_enqueue(start_step_surveys, args=[list(pairs[start : start + STEP_SURVEYS_PER_TASK])])


def cta_step_survey_start(
    *, step_id: int, campaign_id: int, now: dt.datetime | None = None
) -> str | None:
    """A CTA step that sends a survey: start ``campaign_id`` for the CTA's account (its
    audience filters, fatigue and opt-outs apply; ``surveys.services.
    campaign_start_for_account``) in the round "playbook:cta:<id>", so the CTA surveys each
    person once however often this runs. The step is then done, by nobody (the system), and
    a comment on the CTA says what was sent. When the campaign may not be started any more
    (closed, or no longer started by a playbook step) or the CTA was closed meanwhile,
    nothing is sent, the step stays to do, and the comment says why. Returns the comment's
    text, None when the step is gone or was done already (a task run twice)."""
    from surveys import services as surveys
    from surveys.models import Campaign

    now = now or timezone.now()
    with transaction.atomic():
        step = (
            CtaStep.objects.select_for_update(of=("self",))
            .select_related("cta")
            .filter(pk=step_id)
            .first()
        )
        if step is None or step.done_at is not None:
            return None
        cta = step.cta
        campaign = Campaign.objects.filter(pk=campaign_id).first()
        name = f"'{campaign.name}'" if campaign else str(campaign_id)
        refused = None
        if campaign is None:
            refused = f"Survey campaign {campaign_id} was not sent: it no longer exists."
        elif not selectors.step_survey_campaigns().filter(pk=campaign.pk).exists():
            if campaign.status != Campaign.Status.ACTIVE:
                why = campaign.get_status_display().lower()
            elif campaign.closes_at is not None and campaign.closes_at <= now:
                why = f"closed since {utc.moment_text(campaign.closes_at)} UTC"
            else:
                why = "no longer started by a playbook step"
            refused = f"Survey {name} was not sent: the campaign is {why}."
        elif not cta.is_open:
            refused = f"Survey {name} was not sent: the CTA is {cta.get_status_display().lower()}."
        if refused is not None:
            # said once, however often the task runs (the step stays to do)
            if not CtaComment.objects.filter(cta=cta, author=None, body=refused).exists():
                cta_comment_add(cta=cta, body=refused)
            return refused
        summary = surveys.campaign_start_for_account(
            campaign_id=campaign.pk,
            account_id=cta.account_id,
            round=f"playbook:cta:{cta.pk}",
            now=now,
        )
        CtaStep.objects.filter(pk=step.pk, done_at=None).update(done_at=now, done_by=None)
        sent = summary.describe(subject=f"survey {name}")
        note = f"Step {step.position} done automatically: {sent}"
        timeline_upsert(
            # not "cta_step_done": nobody acted, so it is no follow-up of an unhappy answer
            [_fact(cta, f"step:{step.pk}:done", "cta_step_automatic",
                   f"CTA step done automatically: {step.title} ({cta.title})", at=now, by="")]
        )  # fmt: skip
        cta_comment_add(cta=cta, body=note)
        return note


def cta_open(
    *, playbook: Playbook, account: Account, evidence: str, as_of: dt.date | None = None
) -> Cta | None:
    """Open one CTA of ``playbook`` for ``account`` by hand (owner by the playbook's rule);
    None when one is open already."""
    managers = {}
    if account.owner_id and playbook.owner_rule == OwnerRule.CSM_MANAGER:
        managers = dict(User.objects.filter(pk=account.owner_id).values_list("pk", "manager_id"))
    owner = _owner_for(playbook, account.owner_id, managers)
    candidate = _Candidate(playbook, account.pk, owner, rules.Match(evidence), {})
    counts = ctas_open([candidate], as_of=as_of or utc.today())
    if not (counts["opened"] or counts["pending"]):
        return None
    return Cta.objects.open().get(playbook=playbook, account=account)


# --- nightly: outcomes, pending, escalations -------------------------------------------------


def playbooks_evaluate_all(*, as_of: dt.date) -> dict[str, Any]:
    """The nightly pipeline's last step: open the CTAs every enabled playbook calls for,
    record the outcomes of CTAs whose success condition is met or whose deadline passed,
    move pending CTAs into owners' queues where there is room, and escalate overdue ones.
    One fact gathering for all of it. Returns counts (recorded in the PipelineRun)."""
    changed: set[int] = set()
    token = _standings_changed.set(changed)
    try:
        counts = _evaluate_all(as_of=as_of)
    finally:
        _standings_changed.reset(token)
    # the standings step ran before this one: the accounts whose CTAs changed, in one pass
    # over that night's health (~1 s for 4,400 accounts at 100,000; docs/benchmarks.md)
    counts["standings"] = len(changed)
    if changed:
        account_standings_refresh(account_ids=sorted(changed), day=as_of)
    return counts


def _evaluate_all(*, as_of: dt.date) -> dict[str, Any]:
    now = timezone.now()
    every = {p.pk: p for p in Playbook.objects.order_by("pk")}
    playbooks = [p for p in every.values() if p.enabled]
    awaiting = _awaiting_outcome(every)
    needs = _fact_needs(playbooks, success={every[a["playbook_id"]].success for a in awaiting})
    facts = needs.gather(as_of=as_of)
    counts: Counter = Counter(playbooks=len(playbooks), accounts=len(facts))
    # outcomes first: a CTA closed by its success tonight starts its cooldown tonight
    counts.update(_outcomes_record(awaiting, every, facts, as_of=as_of, now=now))
    if playbooks:
        counts.update(_open_for(playbooks, facts, as_of=as_of, now=now, account_ids=None))
    counts["promoted"] = ctas_promote_pending(now=now)
    counts["escalated"] = ctas_escalate_overdue(now=now)
    return _with_zeros(counts)


def cta_successes_evaluate(
    *, account_ids: Iterable[int], successes: Iterable[str], as_of: dt.date | None = None
) -> dict[str, int]:
    """The event path's part of the night's outcomes: for these accounts only, record the
    success of each CTA awaiting an outcome whose playbook's success condition is one of
    ``successes`` and is met as of ``as_of`` (default today, UTC), closing it if still open
    (a first-value CTA closes once a CSM records first value). Missed deadlines stay the
    night's to record. Returns counts: successes (and failures, always 0 here)."""
    as_of = as_of or utc.today()
    wanted = set(successes)
    every = {p.pk: p for p in Playbook.objects.order_by("pk")}
    awaiting = [
        row
        for row in _awaiting_outcome(every, account_ids=account_ids)
        if every[row["playbook_id"]].success in wanted
    ]
    if not awaiting:
        return {"successes": 0, "failures": 0}
    needs = _fact_needs((), success={every[row["playbook_id"]].success for row in awaiting})
    facts = needs.gather(as_of=as_of, account_ids=sorted({row["account_id"] for row in awaiting}))
    counts = _outcomes_record(
        awaiting, every, facts, as_of=as_of, now=timezone.now(), deadlines=False
    )
    return dict(counts)


def _awaiting_outcome(
    playbooks: Mapping[int, Playbook], *, account_ids: Iterable[int] | None = None
) -> list[dict[str, Any]]:
    """The CTAs still waiting for an outcome (not cancelled), of every account or of
    ``account_ids``, as plain rows; ``steps_left`` only for playbooks whose success is
    "every step done". Two queries at most."""
    awaiting = Cta.objects.filter(outcome="")
    if account_ids is not None:
        awaiting = awaiting.filter(account_id__in=sorted(set(account_ids)))
    rows = list(
        awaiting.exclude(status=CtaStatus.CANCELLED).values(
            "id",
            "playbook_id",
            "account_id",
            "status",
            "title",
            "opened_on",
            "success_deadline",
            "evidence_data__arr_at_open",
        )  # fmt: skip
    )
    by_steps = [pk for pk, p in playbooks.items() if p.success == "steps_done"]
    left: dict[int, int] = {}
    if by_steps:
        left = dict(
            CtaStep.objects.filter(
                cta__playbook_id__in=by_steps, cta__outcome="", done_at__isnull=True
            )
            .values("cta_id")
            .order_by()
            .annotate(n=Count("pk"))
            .values_list("cta_id", "n")
        )
    for row in rows:
        row["steps_left"] = left.get(row["id"], 0)
    return rows


@dataclass(frozen=True)
class _Decided:
    """The outcome the night decided for one CTA (a plain record: building a model
    instance per CTA awaiting an outcome cost a second per 5,000)."""

    pk: int
    account_id: int
    playbook_id: int
    title: str
    outcome: Outcome
    outcome_detail: str
    close_note: str | None = None  # closes the CTA (done) when set


def _outcomes_record(
    awaiting: Sequence[dict[str, Any]],
    playbooks: Mapping[int, Playbook],
    facts: Mapping[int, Mapping[str, Any]],
    *,
    as_of: dt.date,
    now: dt.datetime,
    deadlines: bool = True,
) -> Counter:
    """Record the outcome of each awaiting CTA whose success condition is met (and close it
    if still open) or, with ``deadlines``, whose deadline passed: one set-based update
    (``_outcomes_write``) and one timeline upsert."""
    decided = []
    for row in awaiting:
        f = facts.get(row["account_id"])
        if f is None:
            continue
        p = playbooks[row["playbook_id"]]
        reason = _success_reason(
            p,
            f,
            opened_on=row["opened_on"],
            arr_at_open=row["evidence_data__arr_at_open"],
            steps_left=row["steps_left"],
        )
        close_note = None
        if reason is not None:
            outcome, detail = Outcome.SUCCESS, reason
            if row["status"] in OPEN_STATUSES:
                close_note = f"Closed automatically: {reason}"
        elif deadlines and as_of > row["success_deadline"]:
            outcome = Outcome.FAILURE
            detail = f"success condition not met by {utc.day_text(row['success_deadline'])}"
        else:
            continue
        decided.append(
            _Decided(
                row["id"],
                row["account_id"],
                row["playbook_id"],
                row["title"],
                outcome,
                detail,
                close_note,
            )  # fmt: skip
        )
    counts: Counter = Counter(successes=0, failures=0)
    if not decided:
        return counts
    with transaction.atomic():
        written = _outcomes_write(decided, now=now)
        recorded = [d for d in decided if d.pk in written]
        timeline_upsert(
            _fact(
                d,
                "outcome",
                "cta_outcome",
                f"CTA {d.outcome.label.lower()}: {d.title} — {d.outcome_detail}",
                at=now,
                outcome=d.outcome,
            )
            for d in recorded
        )
        _standings_refresh(d.account_id for d in recorded if d.close_note is not None)
    counts.update("successes" if d.outcome == Outcome.SUCCESS else "failures" for d in recorded)
    return counts


_OUTCOME_STAGE = "playbooks_outcome_stage"
_OUTCOME_FIELDS = ("outcome", "outcome_detail", "outcome_at", "status", "closed_at", "close_note")


def _outcomes_write(decided: Sequence[_Decided], *, now: dt.datetime) -> set[int]:
    """Write the outcomes ``decided`` (at ``now``; closing the CTAs given a close note),
    only where no outcome is recorded yet and the CTA is not cancelled (as
    ``_awaiting_outcome`` reads them), and close only CTAs still open: a CTA closed,
    cancelled or given an outcome by hand since it was read keeps what it has. Returns the
    ids of the CTAs whose outcome this call recorded.

    PostgreSQL: COPY into a temporary table, then one ``UPDATE … FROM`` (four statements
    whatever the number of CTAs; ``bulk_update``'s ``CASE WHEN`` per row took 9 s for
    7,000 outcomes, docs/benchmarks.md). Elsewhere (SQLite): ``bulk_update`` of the rows
    still awaiting an outcome."""
    if not decided:
        return set()
    if connection.vendor != "postgresql":
        still = dict(
            Cta.objects.filter(pk__in=[d.pk for d in decided], outcome="")
            .exclude(status=CtaStatus.CANCELLED)
            .values_list("pk", "status")
        )
        closing, only_outcome = [], []
        for d in decided:
            if d.pk not in still:
                continue
            cta = Cta(pk=d.pk, outcome=d.outcome, outcome_detail=d.outcome_detail, outcome_at=now)
            if d.close_note is not None and still[d.pk] in OPEN_STATUSES:
                cta.status, cta.closed_at, cta.close_note = CtaStatus.DONE, now, d.close_note
                closing.append(cta)
            else:
                only_outcome.append(cta)
        for group, fields in ((closing, _OUTCOME_FIELDS), (only_outcome, _OUTCOME_FIELDS[:3])):
            if group:
                Cta.objects.bulk_update(group, fields, batch_size=500)
        return {c.pk for c in closing + only_outcome}
    opened = ", ".join(f"'{s}'" for s in OPEN_STATUSES)
    definition = "id bigint, outcome varchar(8), outcome_detail text, close_note text"
    columns = "id, outcome, outcome_detail, close_note"
    rows = ((d.pk, d.outcome, d.outcome_detail, d.close_note) for d in decided)
    with (
        connection.cursor() as cursor,
        copy_stage(cursor, _OUTCOME_STAGE, definition, columns, rows),
    ):
        closes = f"s.close_note IS NOT NULL AND c.status IN ({opened})"
        cursor.execute(
            f"UPDATE {Cta._meta.db_table} AS c SET outcome = s.outcome, "  # noqa: S608 - our names
            "outcome_detail = s.outcome_detail, outcome_at = %s, "
            f"status = CASE WHEN {closes} THEN %s ELSE c.status END, "
            f"closed_at = CASE WHEN {closes} THEN %s ELSE c.closed_at END, "
            f"close_note = CASE WHEN {closes} THEN s.close_note ELSE c.close_note END "
            f"FROM {_OUTCOME_STAGE} AS s WHERE c.id = s.id AND c.outcome = '' "
            "AND c.status <> %s RETURNING c.id",
            [now, CtaStatus.DONE, now, CtaStatus.CANCELLED],
        )
        written = {pk for (pk,) in cursor.fetchall()}
    return written


def ctas_promote_pending(
    *, now: dt.datetime | None = None, owner_ids: Sequence[int] | None = None
) -> int:
    """Pending CTAs (of every owner, or of ``owner_ids``) move into their owner's queue
    (open) while the owner has room under the cap, by urgency (``WAITING_ORDER``: the
    soonest due first, then the account's priority points, then its ARR). A CTA moved in
    starts its schedule today (``_reschedule``): its steps count from today (a renewal's
    stay counted back from the contract end, none before today), and it is due with its
    last step. Returns how many moved."""
    now = now or timezone.now()
    cap = settings.PLAYBOOK_MAX_OPEN_CTAS_PER_CSM
    waiting = Cta.objects.filter(status=CtaStatus.PENDING)
    if owner_ids is not None:
        waiting = waiting.filter(owner_id__in=list(owner_ids))
    owners = set(waiting.values_list("owner_id", flat=True).order_by().distinct())
    if not owners:
        return 0
    load = Counter(
        dict(
            Cta.objects.active()
            .filter(owner_id__in=owners)
            .values("owner_id")
            .order_by()
            .annotate(n=Count("pk"))
            .values_list("owner_id", "n")
        )
    )
    # only the pending CTAs of owners with room are read (a full queue costs nothing)
    room = [o for o in owners if o is None or load[o] < cap]
    if not room:
        return 0
    pending = list(
        waiting.filter(Q(owner_id__in=[o for o in room if o is not None]) | Q(owner__isnull=True))
        .select_related("playbook")
        .annotate(
            standing_points=F("account__standing__priority"),
            standing_arr=F("account__standing__arr"),
        )
        .order_by("pk")
    )

    def urgency(c: Cta) -> tuple:
        standing = None if c.standing_points is None else (c.standing_points, c.standing_arr)
        return _urgency_key(c.due_at, standing, c.pk)

    moved = []
    for cta in sorted(pending, key=urgency):
        if cta.owner_id and load[cta.owner_id] >= cap:
            continue
        load[cta.owner_id] += 1
        moved.append(cta)
    by_id = {c.pk: c for c in moved}
    with transaction.atomic():
        # claim: a concurrent sweep moves each once
        claimed = _claim([c.pk for c in moved], "status = %s", [CtaStatus.OPEN],
                         where="status = %s", where_params=[CtaStatus.PENDING])  # fmt: skip
        promoted = [by_id[pk] for pk in sorted(claimed)]
        for cta in promoted:
            cta.status = CtaStatus.OPEN
        _reschedule(promoted, now=now)
        timeline_upsert(
            _fact(c, "promoted", "cta_opened", f"CTA moved into the queue: {c.title}", at=now)
            for c in promoted
        )
        _actions_enqueue(promoted, {c.playbook_id: c.playbook for c in promoted})
        _standings_refresh(c.account_id for c in promoted)
    return len(promoted)


def _reschedule(ctas: Sequence[Cta], *, now: dt.datetime) -> None:
    """CTAs that waited over the cap start their schedule on the day they move into the
    queue: a step not done yet moves as many days later as the CTA waited (a renewal's
    steps, counted back from the contract end, stay, none due before today); the CTA is
    due with its last step (``due_after_steps``), one without steps by its urgency from
    now. Three queries (the steps, their update, the CTAs' update), none for no CTA."""
    if not ctas:
        return
    today = now.astimezone(dt.UTC).date()
    steps: dict[int, list[CtaStep]] = {}
    for step in CtaStep.objects.filter(cta__in=ctas).order_by("cta_id", "position"):
        steps.setdefault(step.cta_id, []).append(step)
    moved_steps = []
    for cta in ctas:
        own = steps.get(cta.pk, [])
        renewal = bool((cta.evidence_data or {}).get("renewal_on"))
        waited = max(dt.timedelta(0), today - cta.opened_at.astimezone(dt.UTC).date())
        for step in own:
            if step.done_at is not None:
                continue
            due = max(step.due_on, today) if renewal else step.due_on + waited
            if due != step.due_on:
                step.due_on = due
                moved_steps.append(step)
        cta.due_at = (
            due_after_steps(max(s.due_on for s in own)) if own else _due_at(cta.priority, now)
        )
    if moved_steps:
        CtaStep.objects.bulk_update(moved_steps, ["due_on"], batch_size=500)
    Cta.objects.bulk_update(ctas, ["due_at"], batch_size=500)


def _db_datetime(value: dt.datetime) -> Any:
    """A datetime as the database stores it (SQLite: naive UTC text), for raw SQL."""
    return connection.ops.adapt_datetimefield_value(value)


def _claim(
    ids: Sequence[int], sets: str, params: Sequence[Any], *, where: str, where_params=()
) -> list[int]:
    """``UPDATE playbooks_cta SET <sets> WHERE id IN ids AND <where> RETURNING id``, in
    batches of ``BATCH``: the CTAs this call changed. A concurrent sweep that read the
    same rows finds ``where`` false for them, so each row is claimed once."""
    claimed: list[int] = []
    with connection.cursor() as cursor:
        for start in range(0, len(ids), BATCH):
            chunk = list(ids[start : start + BATCH])
            marks = ", ".join(["%s"] * len(chunk))
            cursor.execute(
                f"UPDATE {Cta._meta.db_table} SET {sets} "  # noqa: S608 - our names
                f"WHERE id IN ({marks}) AND {where} RETURNING id",
                [*params, *chunk, *where_params],
            )
            claimed.extend(pk for (pk,) in cursor.fetchall())
    return claimed


def ctas_escalate_overdue(*, now: dt.datetime | None = None) -> int:
    """Open or in-progress CTAs past due (and not snoozed) escalate once to their owner's
    manager: the CTA is flagged and gets a timeline fact, and each manager gets one
    notification and one email (outbox) for the CTAs of a batch (``ESCALATION_BATCH``)
    escalated to them, not one per CTA, in the batch's transaction: a sweep that dies
    half-way has told the managers of exactly the CTAs it flagged. Returns how many
    escalated."""

    now = now or timezone.now()
    today = now.astimezone(dt.UTC).date()
    overdue = list(
        Cta.objects.active()
        .filter(due_at__lt=now, escalated_at__isnull=True)
        .filter(Q(snoozed_until__isnull=True) | Q(snoozed_until__lte=today))
        .values_list("pk", flat=True)
    )
    done = 0
    for start in range(0, len(overdue), ESCALATION_BATCH):
        with transaction.atomic():
            ctas = _escalate(overdue[start : start + ESCALATION_BATCH], now=now)
            per_manager: dict[int, _Told] = {}
            for cta in ctas:
                if cta.escalated_to is not None:
                    told = per_manager.setdefault(cta.escalated_to.pk, _Told(cta.escalated_to))
                    told.count += 1
                    if len(told.listed) < ESCALATION_MAIL_LINES:
                        told.listed.append(cta)
            _escalations_tell(list(per_manager.values()))
            done += len(ctas)
    return done


# CTAs flagged per transaction; a night that escalates more tells each manager once a batch
ESCALATION_BATCH = 5000
ESCALATION_MAIL_LINES = 50  # CTAs listed in one manager's email; the rest behind a link


@dataclass
class _Told:
    """What a manager is told of a sweep: how many CTAs, the first few of them."""

    manager: User
    count: int = 0
    listed: list[Cta] = field(default_factory=list)


def _escalate(ids: Sequence[int], *, now: dt.datetime) -> list[Cta]:
    """Flag ``ids`` escalated to their owner's manager (those not escalated meanwhile by a
    concurrent sweep), with their timeline facts: a fixed number of queries. Returns the CTAs
    flagged (their managers are told once for the whole sweep, after its batches)."""
    active = ", ".join(["%s"] * len(ACTIVE_STATUSES))
    claimed = _claim(
        ids,
        f"escalated_at = %s, escalated_to_id = (SELECT u.manager_id FROM {User._meta.db_table} "
        f"AS u WHERE u.id = {Cta._meta.db_table}.owner_id)",
        [_db_datetime(now)],
        # still overdue: not closed, snoozed or escalated since the sweep read it
        where=f"escalated_at IS NULL AND status IN ({active}) AND due_at < %s "
        "AND (snoozed_until IS NULL OR snoozed_until <= %s)",
        where_params=[
            *ACTIVE_STATUSES,
            _db_datetime(now),
            connection.ops.adapt_datefield_value(now.astimezone(dt.UTC).date()),
        ],
    )
    ctas = list(
        Cta.objects.filter(pk__in=claimed)
        .select_related("owner", "escalated_to", "account", "playbook")
        .order_by("pk")
    )
    facts = []
    for cta in ctas:
        manager = cta.escalated_to
        facts.append(
            _fact(
                cta,
                "escalated",
                "cta_escalated",
                _escalation_line(cta)
                + (f", to {manager}" if manager else ", no manager to escalate to"),
                at=now,
            )
        )
    timeline_upsert(facts)
    return ctas


def _escalation_line(cta: Cta) -> str:
    who = str(cta.owner) if cta.owner else "nobody"
    return f"Overdue CTA escalated: {cta.title} for {cta.account.name} (owner: {who})"


def _one_line(text: str) -> str:
    """A subject from names that may hold line breaks (an imported account name)."""
    return " ".join(text.split())


def _escalations_tell(groups: list[_Told]) -> None:
    """One notification and one email per manager for the CTAs just escalated to them (a
    count and the first ``ESCALATION_MAIL_LINES``), keyed by the first CTA's id: a CTA
    escalates once, so no two tellings share a key."""
    from outbox import services as outbox

    notes, emails = [], []
    everything = reverse("playbooks:cta-list") + "?status=active&escalated=me"
    muted = cta_emails_off([t.manager.pk for t in groups], CtaEmailKind.ESCALATED)
    for told in groups:
        first, n = told.listed[0], told.count
        if n == 1:
            text = _escalation_line(first)
            link = reverse("playbooks:cta-detail", args=[first.pk])
            subject = _one_line(f"Escalated: {first.title} ({first.account.name})")
        else:
            text = (
                f"{n} overdue CTAs escalated to you, the first: "
                f"{first.title} for {first.account.name}"
            )
            link = everything
            subject = f"Escalated: {n} overdue CTAs"
        notes.append(
            Notification(
                key=f"cta:{first.pk}:escalated", user=told.manager, text=text[:500], link=link
            )
        )
        lines = [
            f"- {cta.title} for {cta.account.name} (owner: {cta.owner or 'nobody'}), due "
            f"{utc.due_by_text(cta.due_at)}: {cta.evidence}\n  "
            + absolute_url(reverse("playbooks:cta-detail", args=[cta.pk]))
            for cta in told.listed
        ]
        body = (
            f"{n} overdue CTA{'s' if n > 1 else ''} of your team escalated to you:\n\n"
            + "\n".join(lines)
            + "\n"
        )
        if n > len(lines):
            body += f"\n… and {n - len(lines)} more.\n"
        body += f"\nAll CTAs escalated to you: {absolute_url(everything)}\n"
        if told.manager.pk in muted or not told.manager.email:
            continue  # the notification above is still shown in the app
        footer, headers = _cta_email_extras(told.manager.pk, CtaEmailKind.ESCALATED)
        emails.append(
            outbox.email_message(
                key=f"cta:{first.pk}:escalated:email",
                to=[told.manager.email],
                subject=subject,
                text=body + footer,
                source=first.playbook.source_label,
                headers=headers,
            )
        )
    Notification.objects.bulk_create(notes, ignore_conflicts=True)
    outbox.messages_enqueue(emails)


# --- the life of a CTA -----------------------------------------------------------------------


def _locked(cta: Cta) -> Cta:
    return Cta.objects.select_for_update().select_related("playbook").get(pk=cta.pk)


def _not_closed(cta: Cta) -> None:
    if not cta.is_open:
        raise ValidationError({"status": [f"the CTA is {cta.get_status_display().lower()}"]})


def _waiting_words(cta: Cta) -> str:
    cap = settings.PLAYBOOK_MAX_OPEN_CTAS_PER_CSM
    return f"the CTA is waiting: its owner is at the cap of {cap} open CTAs"


def start_words(cta: Cta, user: User | None) -> str:
    """The label of the action that starts ``cta``: a pending one says it goes over the
    cap ("Start this CTA now (over your cap of 25)")."""
    if cta.status != CtaStatus.PENDING:
        return "Start"
    cap = settings.PLAYBOOK_MAX_OPEN_CTAS_PER_CSM
    whose = (
        "your"
        if user is not None and cta.owner_id == user.pk
        else (f"{cta.owner}'s" if cta.owner else "the")
    )
    return f"Start this CTA now (over {whose} cap of {cap})"


@transaction.atomic
def cta_start(*, cta: Cta, user: User | None = None) -> Cta:
    """open → in progress. A pending CTA (waiting over its owner's cap) may be started by
    hand, over the cap: the page's button says so (``start_words``)."""
    cta = _locked(cta)
    _not_closed(cta)
    if cta.status != CtaStatus.IN_PROGRESS:
        cta.status = CtaStatus.IN_PROGRESS
        cta.save(update_fields=["status", "updated_at"])
        timeline_upsert([_fact(cta, "started", "cta_started", f"CTA started: {cta.title}",
                               at=timezone.now(), by=user.email if user else "")])  # fmt: skip
    return cta


@transaction.atomic
def cta_step_complete(*, cta: Cta, step: CtaStep, user: User | None = None) -> CtaStep:
    """Tick a step done (once; ticking again changes nothing). An open CTA moves to
    in progress. A pending one (waiting over its owner's cap) is refused: it is started
    explicitly (``cta_start``), over the cap, first."""
    cta = _locked(cta)
    if step.cta_id != cta.pk:
        raise ValidationError({"step": ["this step belongs to another CTA"]})
    _not_closed(cta)
    if cta.status == CtaStatus.PENDING:
        # ticking a step would start it, and put its owner over the cap without a word
        raise ValidationError({"status": [_waiting_words(cta) + ": start it first"]})
    now = timezone.now()
    if CtaStep.objects.filter(pk=step.pk, done_at__isnull=True).update(done_at=now, done_by=user):
        step.done_at, step.done_by = now, user
        timeline_upsert(
            [
                _fact(
                    cta,
                    f"step:{step.pk}:done",
                    "cta_step_done",
                    f"CTA step done: {step.title} ({cta.title})",
                    at=now,
                    by=user.email if user else "",
                )
            ]
        )
        if cta.status == CtaStatus.OPEN:
            cta.status = CtaStatus.IN_PROGRESS
            cta.save(update_fields=["status", "updated_at"])
    else:
        step.refresh_from_db()
    return step


@transaction.atomic
def cta_snooze(*, cta: Cta, until: dt.date, user: User | None = None) -> Cta:
    """Hide a CTA from the queue until ``until`` (a future day); it is due again then, by
    its urgency (or later, when it was due later), and does not escalate meanwhile."""
    cta = _locked(cta)
    _not_closed(cta)
    today = utc.today()
    if not isinstance(until, dt.date) or until <= today:
        raise ValidationError({"snoozed_until": [f"pick a day after today ({today})"]})
    if until > today + dt.timedelta(days=365):
        last = today + dt.timedelta(days=365)
        raise ValidationError(
            {"snoozed_until": [f"pick a day within a year (by {utc.day_text(last)})"]}
        )
    cta.snoozed_until = until
    # due again by its urgency after the snooze, never sooner than it was (a renewal due
    # with its last step in a month is not due in 3 days for a 1-day snooze)
    cta.due_at = max(cta.due_at, _due_at(cta.priority, midnight(until)))
    cta.save(update_fields=["snoozed_until", "due_at", "updated_at"])
    now = timezone.now()
    timeline_upsert(
        [
            _fact(
                cta,
                f"snoozed:{now.timestamp():.0f}",
                "cta_snoozed",
                f"CTA snoozed until {utc.day_text(until)}: {cta.title}",
                at=now,
                until=until.isoformat(),
            )
        ]
    )
    _standings_refresh([cta.account_id])  # due again later: no longer overdue
    return cta


def cta_snooze_a_week(*, cta: Cta, user: User | None = None) -> Cta:
    """The one-click snooze: a week after the current snooze when it ends later than
    today (a click never brings a CTA back sooner), else a week from today."""
    today = utc.today()
    start = max(cta.snoozed_until or today, today)
    return cta_snooze(cta=cta, until=start + dt.timedelta(days=7), user=user)


@transaction.atomic
def cta_reassign(*, cta: Cta, owner: User, user: User | None = None) -> Cta:
    """Give the CTA to another team member (it keeps its status and due date): one of
    ``owners_for_reassign`` for ``user`` (a manager: anyone in their team; an admin:
    anyone active; otherwise someone who can see the account)."""
    cta = _locked(cta)
    _not_closed(cta)
    if not owner.is_active:
        raise ValidationError({"owner": [f"{owner} is not an active user"]})
    cta = Cta.objects.select_related("account__owner", "playbook").get(pk=cta.pk)
    allowed = User.objects.filter(_reassign_choices(cta, user), pk=owner.pk).exists()
    if not allowed:
        if not Account.objects.filter(pk=cta.account_id).visible_to(owner).exists():
            raise ValidationError({"owner": [f"{owner} cannot see this account"]})
        raise ValidationError({"owner": [f"you cannot give CTAs to {owner}"]})
    if owner.pk == cta.owner_id:
        return cta
    before = cta.owner
    cta.owner = owner
    cta.save(update_fields=["owner", "updated_at"])
    now = timezone.now()
    timeline_upsert(
        [
            _fact(
                cta,
                f"reassigned:{now.timestamp():.0f}:{owner.pk}",
                "cta_reassigned",
                f"CTA reassigned from {before or 'nobody'} to {owner}: {cta.title}",
                at=now,
                to=owner.email,
            )
        ]
    )
    return cta


class OpenStepsError(ValidationError):
    """Closing a CTA as done while steps are open, unconfirmed: ``steps`` are those steps."""

    def __init__(self, steps: Sequence[CtaStep], total: int):
        self.steps = list(steps)
        self.total = total
        super().__init__({"steps": [open_steps_words(self.steps, total)]})


def open_steps_words(steps: Sequence[CtaStep], total: int) -> str:
    n = len(steps)
    names = ", ".join(f"“{s.title}” (due {utc.day_text(s.due_on)})" for s in steps)
    verb = "is" if n == 1 else "are"
    return (
        f"{n} of {count_text(total, 'step')} {verb} still open: {names}. Closing the CTA as "
        "done marks "
        f"{'it' if n == 1 else 'them'} skipped"
    )


@transaction.atomic
def cta_close(
    *,
    cta: Cta,
    status: str = CtaStatus.DONE,
    note: str = "",
    user: User | None = None,
    skip_open_steps: bool = True,
) -> Cta:
    """Close a CTA as done or cancelled, with an optional note. Its cooldown starts now; the
    outcome is still measured (done) against the success condition by its deadline.
    A pending CTA of the owner may move into the freed place (next sweep).

    Steps not done when a CTA closes are *skipped* (a closed CTA's open step is shown so,
    never as due). With ``skip_open_steps=False`` closing as done with steps open raises
    ``OpenStepsError`` naming them: the CTA page passes it until the user confirms (the
    API and the system close as asked). Cancelling skips them anyway."""
    if status not in (CtaStatus.DONE, CtaStatus.CANCELLED):
        raise ValidationError({"status": [f"must be done or cancelled, got {status!r}"]})
    cta = _locked(cta)
    _not_closed(cta)
    steps = list(cta.steps.order_by("position"))
    left = [s for s in steps if s.done_at is None]
    if left and status == CtaStatus.DONE and not skip_open_steps:
        raise OpenStepsError(left, len(steps))
    now = timezone.now()
    cta.status, cta.closed_at, cta.close_note = status, now, note.strip()
    cta.save(update_fields=["status", "closed_at", "close_note", "updated_at"])
    skipped = (
        f" ({len(left)} of {len(steps)} step{'s' if len(steps) != 1 else ''} skipped)"
        if left
        else ""
    )
    timeline_upsert(
        [
            _fact(
                cta,
                "closed",
                "cta_closed",
                f"CTA {cta.get_status_display().lower()}: {cta.title}{skipped}"
                + (f" — {cta.close_note}" if cta.close_note else ""),
                at=now,
                status=status,
                by=user.email if user else "",
                skipped=[s.title for s in left],
            )
        ]
    )
    _standings_refresh([cta.account_id])
    if cta.owner_id:  # room in the owner's queue: their next pending CTA moves in
        transaction.on_commit(partial(ctas_promote_pending, owner_ids=[cta.owner_id]))
    return cta


@transaction.atomic
def cta_comment_add(*, cta: Cta, body: str, user: User | None = None) -> CtaComment:
    body = (body or "").strip()
    if not body:
        raise ValidationError({"body": ["a comment cannot be empty"]})
    comment = CtaComment.objects.create(cta=cta, author=user, body=body[:5000])
    timeline_upsert(
        [
            _fact(
                cta,
                f"comment:{comment.pk}",
                "cta_comment",
                f"Comment on CTA {cta.title}: {body[:200]}",
                at=comment.created_at,
                by=user.email if user else "",
            )
        ]
    )
    return comment


def notification_read(*, user: User, notification_id: int) -> None:
    Notification.objects.filter(pk=notification_id, user=user, read_at__isnull=True).update(
        read_at=timezone.now()
    )


def _reassign_choices(cta: Cta, user: User | None) -> Q:
    """Who may be given ``cta`` by ``user`` (``owners_for_reassign``), as a filter."""
    owner = cta.account.owner
    # anyone: the users who can see the CTA's account (admins, its owner, the owner's
    # manager); a CSM gives CTAs only to them
    who = Q(is_superuser=True) | Q(groups__name=Role.ADMIN)
    if owner is not None:
        who |= Q(pk=owner.pk)
        if owner.manager_id:
            who |= Q(pk=owner.manager_id)
    role = user.role if user is not None else None
    if role == Role.ADMIN:  # an admin: anyone active with a role
        who |= Q(is_superuser=True) | Q(groups__name__in=list(Role.values))
    elif role == Role.MANAGER:  # a manager: their team (their reports) and themselves
        who |= Q(pk=user.pk) | Q(manager=user)
    return who


def owners_for_reassign(*, cta: Cta, user: User | None = None) -> list[User]:
    """The active users ``user`` may give the CTA to: those who can see its account
    (``Account.visible_to``: admins, the account's owner and the owner's manager) — all a
    CSM may choose — and, for a manager, everyone in their team (their reports) and
    themselves; for an admin, every active user with a role. A CTA given to someone who
    cannot see its account is still theirs to see and work (``Cta.visible_to``). One
    query."""
    return list(
        User.objects.filter(_reassign_choices(cta, user), is_active=True)
        .distinct()
        .order_by("email")
    )
