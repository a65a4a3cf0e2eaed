"""Writes of the voice of the customer: score texts, record the daily account scores,
compute the themes, keep the north star. Set-based: bulk upserts on natural keys, so every
write can run twice (tasks are ``acks_late``)."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator

from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q, Sum
from django.db.models.functions import TruncWeek
from django.utils import timezone

from accounts.models import Account, Activity, Contract, Ticket, UsageEvent, UsageFeatureDaily

from . import selectors, sentiment, themes
from .models import (
    AccountVoiceScore,
    NorthStar,
    NorthStarWeek,
    TextSentiment,
    Theme,
    ThemeRun,
    ThemeText,
)

logger = logging.getLogger(__name__)

BATCH = 2000
CHUNK = 5000  # accounts per daily-score chunk
THEME_MAX_TEXTS = 50_000  # the most recent texts: keeps a run within minutes
THEME_WINDOW_DAYS = 365
TEXT_KINDS = (Activity.Kind.NOTE, Activity.Kind.CALL, Activity.Kind.MEETING)

Source = TextSentiment.Source


# --- texts -----------------------------------------------------------------------------------


def _sources(
    *, account_ids: Iterable[int] | None, since: dt.datetime | None
) -> Iterator[tuple[str, int, int, dt.datetime, str]]:
    """Every customer text as ``(source, source_id, account_id, occurred_at, raw)``:
    ticket subjects, CSM notes, calls and meetings (subject and body), and survey comments.
    Streamed."""
    tickets = Ticket.objects.all()
    activities = Activity.objects.filter(kind__in=TEXT_KINDS)
    ids = None
    if account_ids is not None:
        ids = list(account_ids)
        tickets, activities = (
            tickets.filter(account_id__in=ids),
            activities.filter(account_id__in=ids),
        )
    if since is not None:
        tickets, activities = (
            tickets.filter(updated_at__gte=since),
            activities.filter(updated_at__gte=since),
        )
    for pk, account_id, at, subject in (
        tickets.values_list("pk", "account_id", "opened_at", "subject")
        .order_by()
        .iterator(chunk_size=BATCH)
    ):
        yield Source.TICKET, pk, account_id, at, subject
    for pk, account_id, at, subject, body in (
        activities.values_list("pk", "account_id", "occurred_at", "subject", "body")
        .order_by()
        .iterator(chunk_size=BATCH)
    ):
        raw = f"{subject}. {body}" if subject and body else subject or body
        yield Source.ACTIVITY, pk, account_id, at, raw
    yield from _survey_comments(account_ids=ids, since=since)


def survey_responses():
    """The surveys app's answer model, or None while that app has none (it lands in its own
    issue; until then there are no survey comments to read)."""
    try:
        return apps.get_model("surveys", "Response")
    except LookupError:
        return None


def _survey_comments(
    *, account_ids: list[int] | None, since: dt.datetime | None
) -> Iterator[tuple[str, int, int, dt.datetime, str]]:
    """Survey comments of every answer, replaced ones too: a changed answer is a new row and
    the old one history, whose comment spoke for the person until the change. Readers leave
    out the replaced ones as of their day (``selectors.replaced_survey_comment``)."""
    Response = survey_responses()
    if Response is None:
        return
    rows = Response.objects.exclude(comment="")
    if account_ids is not None:
        rows = rows.filter(account_id__in=account_ids)
    if since is not None:
        rows = rows.filter(created_at__gte=since)
    for pk, account_id, at, comment in (
        rows.values_list("pk", "account_id", "answered_at", "comment")
        .order_by()
        .iterator(chunk_size=BATCH)
    ):
        yield Source.SURVEY, pk, account_id, at, comment


def _upsert(rows: list[TextSentiment]) -> None:
    TextSentiment.objects.bulk_create(
        rows,
        batch_size=BATCH,
        update_conflicts=True,
        unique_fields=["source", "source_id"],
        update_fields=[
            "account",
            "occurred_at",
            "text",
            "truncated",
            "score",
            "note",
            "updated_at",
        ],
    )


def text_sentiments_refresh(
    *, account_ids: Iterable[int] | None = None, since: dt.datetime | None = None
) -> dict[str, int]:
    """Score the texts (of ``account_ids``, changed since ``since``; default every text)
    and upsert one ``TextSentiment`` per text, keyed by (source, source id). Returns
    ``{"texts", "scored", "not_scored", "truncated"}``. Memory stays flat: batches of
    ``BATCH``; each batch its own transaction (a crash leaves scored texts scored)."""
    counts: Counter = Counter()
    now = timezone.now()
    batch: list[TextSentiment] = []
    for source, pk, account_id, at, raw in _sources(account_ids=account_ids, since=since):
        s = sentiment.score(raw)
        counts["texts"] += 1
        counts["scored" if s.score is not None else "not_scored"] += 1
        counts["truncated"] += s.truncated
        batch.append(
            TextSentiment(
                source=source,
                source_id=pk,
                account_id=account_id,
                occurred_at=at,
                text=s.text,
                truncated=s.truncated,
                score=s.score,
                note=s.note,
                updated_at=now,
            )
        )
        if len(batch) >= BATCH:
            _upsert(batch)
            batch = []
    if batch:
        _upsert(batch)
    return {k: counts[k] for k in ("texts", "scored", "not_scored", "truncated")}


# --- daily account scores --------------------------------------------------------------------


def voice_scores_record(
    *, as_of: dt.date, account_ids: list[int] | None = None, chunk: int = CHUNK
) -> dict[str, int]:
    """Record every account's sentiment and relationship of ``as_of`` (upsert per account
    and day). Per chunk of ``chunk`` accounts: three reads and one bulk upsert. Accounts
    with neither score get a row too (both None): "no data" on that day is a fact the
    triggers must see, not a gap."""
    ids = account_ids
    if ids is None:
        ids = list(Account.objects.order_by("id").values_list("id", flat=True))
    counts: Counter = Counter()
    for start in range(0, len(ids), chunk):
        part = ids[start : start + chunk]
        scope = Account.objects.filter(pk__in=part)
        sents = selectors.account_sentiments(scope, as_of=as_of)
        rels = selectors.account_relationships(scope, as_of=as_of)
        rows = []
        for account_id in part:
            s, r = sents.get(account_id), rels.get(account_id)
            counts["accounts"] += 1
            counts["with_sentiment"] += s is not None
            counts["with_relationship"] += r is not None and r.score is not None
            rows.append(
                AccountVoiceScore(
                    account_id=account_id,
                    day=as_of,
                    sentiment=None if s is None else round(s["sentiment"]),
                    sentiment_texts=0 if s is None else s["texts"],
                    relationship=None if r is None else r.score,
                    relationship_reasons=[] if r is None else list(r.reasons),
                    relationship_inputs={} if r is None else {"engaged": r.engaged_people},
                )
            )
        with transaction.atomic():
            AccountVoiceScore.objects.bulk_create(
                rows,
                batch_size=BATCH,
                update_conflicts=True,
                unique_fields=["account", "day"],
                update_fields=[
                    "sentiment",
                    "sentiment_texts",
                    "relationship",
                    "relationship_reasons",
                    "relationship_inputs",
                ],
            )
    return dict(counts)


# --- themes ----------------------------------------------------------------------------------


def _book_outcomes(as_of: dt.date) -> tuple[set[int], set[int], dict[int, float]]:
    """The accounts that were ever customers (a paid contract started by ``as_of``), those
    of them that are not customers on ``as_of`` (churned), and ARR on ``as_of``."""
    ever = set(
        Contract.objects.filter(mrr__gt=0, start_date__lte=as_of)
        .values_list("account_id", flat=True)
        .distinct()
    )
    covering = Q(start_date__lte=as_of) & (Q(end_date__isnull=True) | Q(end_date__gte=as_of))
    arr = {
        a: float(m) * 12
        for a, m in Contract.objects.filter(covering)
        .values("account_id")
        .order_by()
        .annotate(m=Sum("mrr"))
        .values_list("account_id", "m")
        if m
    }
    churned = {a for a in ever if not arr.get(a)}
    return ever, churned, arr


def _nps_counts(as_of: dt.date) -> dict[int, tuple[int, int, int]]:
    """Per account: the NPS answers of the 365 days ending with ``as_of`` in force at its
    end (an answer changed after ``as_of`` counts as it was) — (answers, promoters 9-10,
    detractors 0-6). Empty without the surveys app's answers."""
    Response = survey_responses()
    if Response is None:
        return {}
    end = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC)
    changed = Response.objects.filter(
        invitation=OuterRef("invitation"),
        answered_at__gt=OuterRef("answered_at"),
        answered_at__lt=end,
    )
    return {
        row["account_id"]: (row["n"], row["promoters"], row["detractors"])
        for row in Response.objects.filter(
            kind="nps",
            answered_at__lt=end,
            answered_at__gte=end - dt.timedelta(days=365),
        )
        .exclude(Exists(changed))
        .values("account_id")
        .order_by()
        .annotate(
            n=Count("pk"),
            promoters=Count("pk", filter=Q(score__gte=9)),
            detractors=Count("pk", filter=Q(score__lte=6)),
        )
    }


def _nps(accounts: Iterable[int], counts: dict[int, tuple[int, int, int]]) -> float | None:
    """NPS over the answers of ``accounts``: (promoters − detractors) / answers × 100."""
    n = p = d = 0
    for a in accounts:
        if a in counts:
            n, p, d = n + counts[a][0], p + counts[a][1], d + counts[a][2]
    return None if not n else round(100 * (p - d) / n, 1)


def _rate(part: set[int], churned: set[int]) -> float | None:
    return None if not part else round(100 * len(part & churned) / len(part), 1)


def _months(as_of: dt.date, count: int = 6) -> list[str]:
    y, m = as_of.year, as_of.month
    out = []
    for _ in range(count):
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y, m - 1) if m > 1 else (y - 1, 12)
    return out[::-1]


def theme_run_start(*, as_of: dt.date, requested_by=None) -> ThemeRun | None:
    """A new run, unless one is running already (then None: one at a time)."""
    with transaction.atomic():
        stale = timezone.now() - dt.timedelta(minutes=30)  # a crashed run does not block
        ThemeRun.objects.filter(status=ThemeRun.Status.RUNNING, created_at__lt=stale).update(
            status=ThemeRun.Status.FAILED, error="did not finish within 30 minutes"
        )
        if ThemeRun.objects.select_for_update().filter(status=ThemeRun.Status.RUNNING).exists():
            return None
        return ThemeRun.objects.create(as_of=as_of, requested_by=requested_by)


def themes_compute(
    *,
    run: ThemeRun,
    max_texts: int = THEME_MAX_TEXTS,
    max_themes: int = 20,
) -> ThemeRun:
    """Find the themes of the book's most recent texts (at most ``max_texts``, from the
    ``THEME_WINDOW_DAYS`` before ``run.as_of``) and store them with their outcomes; the
    previous runs' themes are removed once this one succeeded. A failure is recorded on the
    run (and re-raised)."""
    began = time.monotonic()
    try:
        end = dt.datetime.combine(run.as_of + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC)
        rows = list(
            TextSentiment.objects.filter(
                occurred_at__lt=end,
                occurred_at__gte=end - dt.timedelta(days=THEME_WINDOW_DAYS),
            )
            .exclude(text="")
            .exclude(selectors.replaced_survey_comment(end))
            .order_by("-occurred_at", "-id")
            .values_list("id", "account_id", "occurred_at", "score", "text")[:max_texts]
        )
        found = themes.find_themes([r[4] for r in rows], max_themes=max_themes)
        ever, churned, arr = _book_outcomes(run.as_of)
        nps_counts = _nps_counts(run.as_of)
        months = _months(run.as_of)
        with transaction.atomic():
            for rank, t in enumerate(found, start=1):
                members = [rows[i] for i in t.members]
                accounts = {r[1] for r in members}
                scored = [r[3] for r in members if r[3] is not None]
                per_month = Counter(r[2].astimezone(dt.UTC).strftime("%Y-%m") for r in members)
                mentioning = accounts & ever
                rest = ever - accounts
                theme = Theme.objects.create(
                    run=run,
                    rank=rank,
                    label=t.label[:200],
                    terms=list(t.terms),
                    texts=len(members),
                    negative_share=(
                        round(100 * sum(1 for s in scored if s < 0) / len(scored), 1)
                        if scored
                        else None
                    ),
                    mean_sentiment=round(sum(scored) / len(scored), 1) if scored else None,
                    quotes=[rows[i][0] for i in t.quotes],
                    outcomes={
                        "accounts": len(accounts),
                        "arr": round(sum(arr.get(a, 0.0) for a in accounts), 2),
                        "customers": len(mentioning),
                        "churn_rate": _rate(mentioning, churned),
                        "rest_customers": len(rest),
                        "rest_churn_rate": _rate(rest, churned),
                        "nps": _nps(accounts, nps_counts),
                        "rest_nps": _nps(set(nps_counts) - accounts, nps_counts),
                    },
                    trend=[{"month": m, "texts": per_month.get(m, 0)} for m in months],
                )
                ThemeText.objects.bulk_create(
                    (
                        ThemeText(theme=theme, text_id=r[0], account_id=r[1], similarity=sim)
                        for r, sim in zip(members, t.similarity, strict=True)
                    ),
                    batch_size=BATCH,
                )
            run.status = ThemeRun.Status.SUCCEEDED
            run.texts, run.themes = len(rows), len(found)
            run.seconds = round(time.monotonic() - began, 2)
            run.finished_at = timezone.now()
            run.save()
            Theme.objects.filter(run__lt=run.pk).delete()  # older runs' themes
    except Exception as exc:
        ThemeRun.objects.filter(pk=run.pk).update(
            status=ThemeRun.Status.FAILED,
            error=f"{type(exc).__name__}: {exc}"[:2000],
            seconds=round(time.monotonic() - began, 2),
            finished_at=timezone.now(),
        )
        raise
    logger.info("themes run #%s: %d themes over %d texts", run.pk, run.themes, run.texts)
    return run


# --- north star ------------------------------------------------------------------------------


@transaction.atomic
def north_star_set(*, label: str, event: str, aggregation: str, user) -> NorthStar:
    """Choose the north-star metric (replaces the previous one; its weeks are rebuilt by
    the caller's task)."""
    star = NorthStar(
        pk=1, label=label.strip(), event=event.strip(), aggregation=aggregation, updated_by=user
    )
    star.full_clean(validate_unique=False, validate_constraints=False)
    if not UsageFeatureDaily.objects.filter(event=star.event).exists():
        raise ValidationError({"event": f"no usage event named {star.event!r} has been seen"})
    star.save()
    NorthStarWeek.objects.all().delete()  # another metric: the old weeks mean nothing now
    return star


def north_star_weeks_record(*, as_of: dt.date, weeks: int = 13) -> dict[str, int]:
    """Rebuild every account's north-star value for the ``weeks`` weeks ending with the
    week of ``as_of`` (one aggregate query and one bulk insert, in one transaction). The
    count comes from the daily per-event rollups; a sum needs the raw events."""
    star = selectors.north_star()
    first = selectors.week_start(as_of) - dt.timedelta(weeks=weeks - 1)
    end = as_of + dt.timedelta(days=1)
    values: dict[tuple[int, dt.date], float] = defaultdict(float)
    if star is not None:
        if star.aggregation == NorthStar.Aggregation.COUNT:
            query = (
                UsageFeatureDaily.objects.filter(event=star.event, day__gte=first, day__lt=end)
                .annotate(week=TruncWeek("day"))
                .values("account_id", "week")
                .order_by()
                .annotate(v=Sum("events"))
            )
        else:
            t0 = dt.datetime.combine(first, dt.time.min, tzinfo=dt.UTC)
            t1 = dt.datetime.combine(end, dt.time.min, tzinfo=dt.UTC)
            query = (
                UsageEvent.objects.filter(event=star.event, occurred_at__gte=t0, occurred_at__lt=t1)
                .annotate(week=TruncWeek("occurred_at", tzinfo=dt.UTC))
                .values("account_id", "week")
                .order_by()
                .annotate(v=Sum("value"))
            )
        for row in query:
            week = row["week"]
            if isinstance(week, dt.datetime):
                week = week.date()
            values[(row["account_id"], week)] += float(row["v"] or 0)
    with transaction.atomic():
        NorthStarWeek.objects.filter(week__gte=first).delete()
        NorthStarWeek.objects.bulk_create(
            (NorthStarWeek(account_id=a, week=w, value=v) for (a, w), v in values.items()),
            batch_size=BATCH,
        )
    return {"weeks": weeks, "rows": len(values)}


def known_events(limit: int = 50) -> list[str]:
    """The usage event names seen in the last 90 days, most used first (for the north-star
    form's suggestions). One query over the per-event daily rollups."""
    since = timezone.now().date() - dt.timedelta(days=90)
    return list(
        UsageFeatureDaily.objects.filter(day__gte=since)
        .values("event")
        .order_by()
        .annotate(n=Sum("events"))
        .order_by("-n", "event")
        .values_list("event", flat=True)[:limit]
    )
