"""Writes and previews behind the admin screens: the health model editor's draft preview
(band distribution and backtest AUC of the draft beside the current version, nothing
saved), saving a draft as a new version, and the health backfill with its progress."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from typing import Any

from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from accounts import utc
from accounts.models import Account, AccountLifecycle, User
from metrics import backtest, health
from metrics.kpis.revenue import contract_facts
from metrics.models import HealthModel, HealthModelVersion, HealthSnapshot
from metrics.services import health_backtest_data_gaps, health_model_version_create

HORIZON = 90  # days after the backtest day in which a customer's churn counts
BACKFILL_KEY = "workspace:backfill:{}"
BACKFILL_TTL = 24 * 3600
# the ids of the latest rescorings, newest first: the cache cannot list its keys
BACKFILL_RECENT_KEY = "workspace:backfill:recent"
BACKFILL_RECENT = 20
# a rescoring that finds the pipeline busy (the night's run, another rescoring) waits for it:
# in a worker, the task tries again every BACKFILL_RETRY_SECONDS for BACKFILL_WAIT_HOURS; run
# inline (embedded mode: no worker), the request waits up to BACKFILL_INLINE_WAIT_MINUTES
BACKFILL_RETRY_SECONDS = 60
BACKFILL_WAIT_HOURS = 6
BACKFILL_INLINE_WAIT_MINUTES = 10
# a second ask for the same days joins a rescoring not started yet (queued, or waiting and
# tried within these minutes: a task lost longer ago is not waited for)
BACKFILL_JOIN_MINUTES = 10
LABELS = {"green": "Green", "yellow": "Yellow", "red": "Red", "none": "No score"}


def band_of(score: float | None, *, green_min: float, yellow_min: float) -> str:
    if score is None:
        return "none"
    if score >= green_min:
        return "green"
    if score >= yellow_min:
        return "yellow"
    return "red"


class DraftScorer:
    """Scores recorded snapshots with a draft of a model, for the editor's preview: a
    component whose measures and mappings are those of the version in force keeps its
    recorded score (only its weight may differ); any other component is scored again
    from the measure values the snapshot recorded (``inputs``), so a changed mapping or
    an added measure shows. A measure the version in force does not read was not
    recorded: it counts as no data here (``unrecorded`` names them)."""

    def __init__(self, version: HealthModelVersion, spec: health.ModelSpec) -> None:
        current = version.spec()
        measures_now = {c.key: c.measures for c in current.components}
        recorded = {m.measure for c in current.components for m in c.measures}
        self.spec = spec
        self.current_weights = {c.key: float(c.weight) for c in current.components}
        self.weights = {c.key: float(c.weight) for c in spec.components}
        self.rescored = [c for c in spec.components if measures_now.get(c.key) != c.measures]
        self.unrecorded = sorted(
            {
                health.MEASURES[m.measure].label
                for c in self.rescored
                for m in c.measures
                if m.measure not in recorded
            }
        )
        self._scorer = health.Scorer(spec)

    def current(self, components: list[dict]) -> float | None:
        return backtest.weighted_score(_component_scores(components), self.current_weights)

    def draft(self, components: list[dict]) -> float | None:
        scores = _component_scores(components)
        if self.rescored:
            values: dict[str, Any] = {}
            for c in components:
                values.update(c.get("inputs") or {})
            for comp in self.rescored:
                scores[comp.key] = self._scorer.component(comp, values).score
        return backtest.weighted_score(scores, self.weights)


def _component_scores(components: list[dict]) -> dict[str, float | None]:
    return {c["key"]: c.get("score") for c in components}


def health_model_preview(*, version: HealthModelVersion, spec: health.ModelSpec) -> dict[str, Any]:
    """What a draft (``spec``, checked by ``health.parse_model``) would do, without saving
    it: the band distribution of the current customers the model scores (churned accounts
    left out, as on the dashboard), each at its latest snapshot of the last
    ``PREVIEW_DAYS`` days, scored as recorded by the current version and by the draft
    (``DraftScorer``: re-weighted, and the components whose measures or mappings changed
    scored again from the recorded measure values), how many of them would change band
    (``changed``; ``moves`` by from → to band, moves down first), and the ROC AUC of
    ``100 − score`` for logo churn within ``HORIZON`` days of an earlier day whose window
    has passed (``_preview_backtest``; current vs draft, same accounts). Overrides are not
    replayed: the distribution is of computed scores. A fixed handful of queries.

    Not only the latest day's snapshots: the nightly run scores the whole book as of
    yesterday, while an account's new data rescores it as of today, so the latest day holds
    just the few accounts touched since midnight."""
    scorer = DraftScorer(version, spec)
    model_days = HealthSnapshot.objects.filter(model_version__model=version.model_id)
    latest = model_days.aggregate(d=Max("day"))["d"]
    result: dict[str, Any] = {
        "day": latest,
        "bands": [],
        "accounts": 0,
        "changed": 0,
        "moves": [],
        "backtest": None,
        "rescored": [c.label for c in scorer.rescored],
        "unrecorded": scorer.unrecorded,
    }
    if latest is None:
        result["message"] = (
            "No account has been scored by this model yet, so there is nothing to preview: "
            "give it a rule, then wait for the nightly run or rescore past days."
        )
        return result
    rows = _latest_components(model_days, latest)
    now: Counter = Counter()
    draft: Counter = Counter()
    moves: Counter = Counter()
    for components in rows:
        before = band_of(
            scorer.current(components), green_min=version.green_min, yellow_min=version.yellow_min
        )
        after = band_of(
            scorer.draft(components), green_min=spec.green_min, yellow_min=spec.yellow_min
        )
        now[before] += 1
        draft[after] += 1
        if before != after:
            moves[before, after] += 1
    total = len(rows)
    result["accounts"] = total
    # how many accounts the draft would move, and between which bands (worst news first)
    result["changed"] = sum(moves.values())
    order = {"green": 0, "yellow": 1, "red": 2, "none": 3}
    result["moves"] = [
        {"from": a, "to": b, "from_label": LABELS[a], "to_label": LABELS[b], "accounts": n}
        for (a, b), n in sorted(
            moves.items(), key=lambda m: (order[m[0][0]] - order[m[0][1]], m[0])
        )
    ]
    for band in ("green", "yellow", "red", "none"):
        result["bands"].append(
            {
                "band": band,
                "label": LABELS[band],
                "current": now[band],
                "draft": draft[band],
                "current_pct": round(100 * now[band] / total, 1) if total else 0,
                "draft_pct": round(100 * draft[band] / total, 1) if total else 0,
            }
        )
    result["backtest"] = _preview_backtest(version, scorer, latest)
    return result


PREVIEW_DAYS = 7  # an account's latest snapshot counts in the preview if this recent


def _latest_components(model_days, latest: dt.date) -> list[dict]:
    """The ``components`` of each account's latest snapshot within ``PREVIEW_DAYS`` days up
    to ``latest``: one grouped query, then one per distinct latest day (usually two:
    yesterday's nightly run and today's rescored accounts). Churned accounts are left out:
    they are still scored, but a draft is judged on the book of current customers."""
    recent = model_days.filter(day__gt=latest - dt.timedelta(days=PREVIEW_DAYS)).exclude(
        account__lifecycle_stage=AccountLifecycle.CHURNED
    )
    newest = dict(
        recent.order_by().values("account_id").annotate(d=Max("day")).values_list("account_id", "d")
    )
    rows = []
    for day in sorted(set(newest.values()), reverse=True):
        for account_id, components in recent.filter(day=day).values_list(
            "account_id", "components"
        ):
            if newest.get(account_id) == day:
                rows.append(components)
    return rows


def _preview_backtest(
    version: HealthModelVersion,
    scorer: DraftScorer,
    latest: dt.date,
    *,
    today: dt.date | None = None,
) -> dict[str, Any]:
    """AUC of the current version and the draft (``scorer``) on a recorded day at least 30
    days before ``latest``, for churn within the following days, judged only on days that
    have passed: the latest such day whose whole ``HORIZON`` is over by the last complete
    day (``day + HORIZON <= yesterday``: the admin backtest page's default day, so that the
    two pages agree when every day is recorded; today's churn is not all known yet), or,
    while the history is shorter, the latest day at least 30 days back with the window
    shortened to the days since then (``horizon_shortened``; the page says so). A contract
    that is merely scheduled to end is not churn yet."""
    today = today or utc.today()
    model_days = HealthSnapshot.objects.filter(model_version__model=version.model_id)
    newest_allowed = latest - dt.timedelta(days=30)
    full = min(newest_allowed, today - dt.timedelta(days=HORIZON + 1))
    day = model_days.filter(day__lte=full).aggregate(d=Max("day")).get("d")
    shortened = False
    if day is None:
        day = model_days.filter(day__lte=newest_allowed).aggregate(d=Max("day")).get("d")
        shortened = day is not None
    if day is None:
        return {"day": None, "message": "less than 30 days of health history: no backtest yet"}
    horizon = HORIZON if not shortened else (today - day).days
    end = day + dt.timedelta(days=horizon)
    facts = {f.id: f for f in contract_facts(Account.objects.all(), days=[day, end])}
    snaps = model_days.filter(day=day)
    pairs = []
    for account_id, components in snaps.values_list("account_id", "components"):
        f = facts.get(account_id)
        if f is None or not f.customer_on(day):
            continue
        a = scorer.current(components)
        b = scorer.draft(components)
        if a is not None and b is not None:
            pairs.append((a, b, not f.customer_on(end)))

    def auc(index: int) -> float | None:
        value = backtest.roc_auc([100 - p[index] for p in pairs], [p[2] for p in pairs])
        return None if value is None else round(value, 3)

    out = {
        "day": day,
        "end": end,
        "horizon": horizon,
        "horizon_shortened": shortened,
        "customers": len(pairs),
        "churned": sum(p[2] for p in pairs),
        "current_auc": auc(0),
        "draft_auc": auc(1),
    }
    if shortened:
        out["horizon_note"] = (
            f"No recorded day is {HORIZON} days old yet, so churn is counted over the "
            f"{horizon} days from {utc.day_text(day)} to today, not {HORIZON}."
        )
    if out["current_auc"] is None:
        out["message"] = "AUC not computed: it needs customers who churned and who stayed"
    # the backtest command's warnings, for the version in force and the draft: a component
    # none of whose sources has a row by the day scores missing data, not customers (one
    # query, a second only when there is such a gap)
    out["data_gaps"] = health_backtest_data_gaps(
        components=[*version.components, *(c.as_json() for c in scorer.spec.components)],
        as_of=day,
    )
    return out


@transaction.atomic
def health_model_draft_save(
    *,
    model: HealthModel,
    based_on: int,
    spec: health.ModelSpec,
    user: User,
    notes: str = "",
) -> HealthModelVersion:
    """The editor's draft (``spec``, checked by ``health.parse_model``) as ``model``'s new
    active version (``health_model_version_create``: versions are never edited, snapshots
    keep the version that made them). ``based_on``: the version number the draft started
    from. Raises ValidationError, writing nothing, when another version was saved since
    (the draft would silently undo it) or when the draft changes nothing."""
    HealthModel.objects.select_for_update().filter(pk=model.pk).first()  # one writer per model
    active = model.versions.select_related("created_by").filter(active=True).first()
    if active is not None and active.version != based_on:
        by = f" by {active.created_by}" if active.created_by else ""
        raise ValidationError(
            f"v{active.version} was saved{by} at {utc.moment_text(active.created_at)} UTC, after "
            f"you opened v{based_on}. Your draft is not saved: reload the editor to see "
            f"v{active.version}, then make your change again."
        )
    components = [c.as_json() for c in spec.components]
    if (
        active is not None
        and components == [c.as_json() for c in active.spec().components]
        and (spec.green_min, spec.yellow_min) == (active.green_min, active.yellow_min)
    ):
        raise ValidationError(f"The draft is the same as v{active.version}: nothing to save.")
    return health_model_version_create(
        model=model,
        components=components,
        green_min=spec.green_min,
        yellow_min=spec.yellow_min,
        created_by=user,
        notes=notes,
    )


# --- backfill ------------------------------------------------------------------------------


def backfill_start(*, days: int, user: User) -> str:
    """Queue the rescoring of the last ``days`` days (ending yesterday, the nightly run's
    day) with the models active now, and of the snapshots dated later (the intraday ones
    of accounts recomputed today); returns the job id its progress is kept under. The days
    are ``health_rescore_range``'s: none before the first day any account has data (the
    progress names the days rescored); a range wholly before it is recorded as failed with
    that service's words and not queued. The same days asked again while their rescoring
    has not started (queued, or waiting for the pipeline): that job's id, nothing queued
    (``_backfill_not_started``)."""
    from metrics.services import health_days_after, health_rescore_range

    from . import tasks

    job = uuid.uuid4().hex
    end = utc.yesterday()
    start = end - dt.timedelta(days=max(1, days) - 1)
    state = {
        "status": "queued",
        "done": 0,
        "by": user.email,
        "started_at": timezone.now().isoformat(),
        "start": start.isoformat(),
        "end": end.isoformat(),
    }
    try:
        start, end = health_rescore_range(start, end)
    except ValidationError as exc:
        state.update(status="failed", total=0, error="; ".join(exc.messages))
    else:
        if joined := _backfill_not_started(start, end):
            return joined
        state.update(
            start=start.isoformat(),
            total=(end - start).days + 1 + len(health_days_after(end)),
        )
    cache.set(BACKFILL_KEY.format(job), state, BACKFILL_TTL)
    # read-modify-write: two admins starting at the same instant may drop one id from this
    # list (never the job itself, whose progress stays under its own key and link)
    recent = [j for j in cache.get(BACKFILL_RECENT_KEY, []) if j != job]
    cache.set(BACKFILL_RECENT_KEY, [job, *recent][:BACKFILL_RECENT], BACKFILL_TTL)
    if state["status"] == "queued":
        tasks.health_backfill.delay(job, start.isoformat(), end.isoformat())
    return job


def _backfill_not_started(start: dt.date, end: dt.date) -> str | None:
    """The id of a rescoring of the same days that has not started yet (queued, or waiting
    for the pipeline and tried within ``BACKFILL_JOIN_MINUTES``), if any. It reads the models
    active when it starts, so a second ask (a double click on Rescore, a second admin) is
    answered by it: a second job would wait for it and then rescore every day again."""
    ids = cache.get(BACKFILL_RECENT_KEY, [])
    states = cache.get_many([BACKFILL_KEY.format(j) for j in ids])
    since = timezone.now() - dt.timedelta(minutes=BACKFILL_JOIN_MINUTES)
    for job in ids:
        state = states.get(BACKFILL_KEY.format(job)) or {}
        seen = state.get("seen_at") or state.get("started_at")
        if (
            state.get("status") in ("queued", "waiting")
            and (state.get("start"), state.get("end")) == (start.isoformat(), end.isoformat())
            and seen
            and dt.datetime.fromisoformat(seen) >= since
        ):
            return job
    return None


def _with_range(state: dict[str, Any]) -> dict[str, Any]:
    """A rescoring's progress plus, for a range, ``first``, ``last``, ``days`` (the days
    asked for) and ``later`` (the later days whose intraday snapshots were rescored too:
    why "4 of 4 days" follows a request for 3)."""
    row = dict(state)
    if state.get("start") and state.get("end"):
        first, last = dt.date.fromisoformat(state["start"]), dt.date.fromisoformat(state["end"])
        row.update(first=first, last=last, days=(last - first).days + 1)
        row["later"] = max(0, (state.get("total") or 0) - row["days"])
    return row


def backfill_progress(job: str) -> dict[str, Any] | None:
    state = cache.get(BACKFILL_KEY.format(job))
    return None if state is None else _with_range(state)


def backfill_recent() -> list[dict[str, Any]]:
    """The rescorings of the last day (their progress expires after ``BACKFILL_TTL``),
    newest first, each its progress plus ``job`` (its id) and, for a range, ``first``,
    ``last``, ``days`` (its days) and ``later`` (the later days whose intraday snapshots
    were rescored too). Two cache reads."""
    jobs = cache.get(BACKFILL_RECENT_KEY, [])
    found = cache.get_many([BACKFILL_KEY.format(j) for j in jobs])
    rows = []
    for j in jobs:
        state = found.get(BACKFILL_KEY.format(j))
        if state is None:  # expired, or the cache was cleared
            continue
        started = state.get("started_at")
        row = {**_with_range(state), "job": j}
        row["started"] = dt.datetime.fromisoformat(started) if started else None
        rows.append(row)
    return rows


def backfill_run(*, job: str, start: dt.date, end: dt.date, inline: bool, tries: int = 0) -> bool:
    """Rescore each day from ``start`` to ``end``, then every snapshot dated after ``end``
    (an account recomputed today has its latest snapshot there: left alone, the queue and
    the account page would show the old version until the next night, and its history
    would mix versions), then the queue standings (``metrics.services.health_rescore``,
    as ``manage.py recompute`` does); progress in the cache after each day.

    One writer of the snapshots at a time, under the pipeline lock: while the night's run
    or another rescoring holds it, the rescoring waits (their days interleaved would leave
    rows of two models, or standings read between the two). ``inline`` (embedded mode, the
    request runs it): it waits here, up to ``BACKFILL_INLINE_WAIT_MINUTES``. Else (a
    worker): it is left "waiting" with the holder's words and returns False, for the task
    to try again in ``BACKFILL_RETRY_SECONDS``; after ``BACKFILL_WAIT_HOURS`` of waiting it
    fails, nothing rescored. True when it is over (done or failed). ``tries``: how many
    times the task tried before (Celery's retries), a bound of its own: the progress, and
    with it when the waiting began, lives in the cache, which may lose it (evicted, cleared).
    """
    from metrics import pipeline
    from metrics.services import health_days_after, health_rescore

    key = BACKFILL_KEY.format(job)
    state = cache.get(key) or {}

    def waiting(words: str) -> None:
        state.setdefault("waiting_since", timezone.now().isoformat())
        state["seen_at"] = timezone.now().isoformat()  # still tried: a second ask joins it
        state.update({"status": "waiting", "busy": words, "wait_hours": BACKFILL_WAIT_HOURS})
        cache.set(key, state, BACKFILL_TTL)

    def progress(result: dict[str, Any]) -> None:
        state["done"] += 1
        state["last_day"] = result.get("day")
        cache.set(key, state, BACKFILL_TTL)

    wait = BACKFILL_INLINE_WAIT_MINUTES * 60 if inline else 0
    try:
        with pipeline.exclusive_when_free(timeout=wait, waiting=waiting):
            # counted again now: an account may have been recomputed since it was queued
            state["total"] = (end - start).days + 1 + len(health_days_after(end))
            state.update({"status": "running", "done": 0})
            state.pop("busy", None)
            cache.set(key, state, BACKFILL_TTL)
            health_rescore(start=start, end=end, progress=progress)
    except pipeline.PipelineBusy as exc:
        since = dt.datetime.fromisoformat(state.get("waiting_since") or timezone.now().isoformat())
        # a lost progress starts counting afresh: the tries made bound the wait all the same
        waited = max(timezone.now() - since, tries * dt.timedelta(seconds=BACKFILL_RETRY_SECONDS))
        if inline or waited >= dt.timedelta(hours=BACKFILL_WAIT_HOURS):
            # "Nothing rescored: the pipeline stayed busy for 6 hours: another … stop it."
            limit = (
                f"{BACKFILL_INLINE_WAIT_MINUTES} minutes"
                if inline
                else f"{BACKFILL_WAIT_HOURS} hours"
            )
            state.update(
                {
                    "status": "failed",
                    "total": 0,
                    "error": f"the pipeline stayed busy for {limit}: {exc}",
                }
            )
            state.pop("busy", None)
            cache.set(key, state, BACKFILL_TTL)
            return True
        waiting(exc.holder())
        return False
    except Exception as exc:
        state.update({"status": "failed", "error": str(exc)[:300]})
        cache.set(key, state, BACKFILL_TTL)
        raise
    state["status"] = "done"
    cache.set(key, state, BACKFILL_TTL)
    return True
