"""Reads of the CSM workspace. Set-based: each page is a fixed handful of queries whatever
the number of accounts, pinned by tests (tests/workspace/)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.paginator import Page, Paginator
from django.db.models import (
    Count,
    F,
    JSONField,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
)
from django.db.models.functions import JSONObject
from django.urls import reverse
from django.utils import timezone

from accounts import book, utc
from accounts.models import (
    Account,
    AccountLifecycle,
    Activity,
    Contract,
    Role,
    Stakeholder,
    TimelineEntry,
    UsageDaily,
    UsageFeatureDaily,
    User,
)
from accounts.money import old_due_reword
from metrics import health
from metrics import priority as prio
from metrics.kpis import adoption
from metrics.kpis.common import pct_text
from metrics.models import (
    AccountStanding,
    HealthModel,
    HealthModelVersion,
    HealthOverride,
    HealthSnapshot,
    KpiSnapshot,
)
from metrics.standings import renews_within

PER_PAGE = 20
BANDS = {"red": "Red", "yellow": "Yellow", "green": "Green", "none": "No score"}
RENEWAL_WINDOWS = (30, 60, 90, 180)
SORTS = {
    "priority": ("Priority", [F("priority").desc(), "account_id"]),
    "arr": ("ARR", [F("arr").desc(), "account_id"]),
    "renewal": ("Renewal date", [F("renewal_on").asc(nulls_last=True), "account_id"]),
    "score": ("Health score", [F("score").asc(nulls_last=True), "account_id"]),
    "trend": ("7-day change", [F("trend_7").asc(nulls_last=True), "account_id"]),
    "name": ("Name", ["account__name", "account_id"]),
}
SCOPES = {"mine": "My accounts", "team": "Team"}


today = utc.today  # the UTC day, as every page counts


# --- filters -------------------------------------------------------------------------------


@dataclass
class QueueFilters:
    """The queue's filters after checking; ``notices`` name each value that was ignored."""

    scope: str = "mine"
    band: str = ""
    segment: str = ""
    owner: int | None = None
    lifecycle: str = ""
    renewal: int | None = None
    q: str = ""
    sort: str = "priority"
    page: str = "1"
    notices: list[str] = field(default_factory=list)

    def query(self, **changes: Any) -> dict[str, str]:
        """The filters as URL parameters (defaults left out), with ``changes`` applied."""
        values = {
            "scope": self.scope,
            "band": self.band,
            "segment": self.segment,
            "owner": "" if self.owner is None else str(self.owner),
            "lifecycle": self.lifecycle,
            "renewal": "" if self.renewal is None else str(self.renewal),
            "q": self.q,
            "sort": "" if self.sort == "priority" else self.sort,
        }
        values.update({k: str(v) for k, v in changes.items()})
        return {k: v for k, v in values.items() if v}

    def narrows(self, *, renewal_default: int | None = None) -> bool:
        """Whether the reader chose a filter that leaves accounts out: the scope and the
        sort leave none out, nor does the renewals page's own window (``renewal_default``)."""
        chosen = (self.band, self.segment, self.lifecycle, self.q)
        return any(chosen) or self.owner is not None or self.renewal not in (None, renewal_default)


def team_scope_allowed(user: User) -> bool:
    return user.role in (Role.ADMIN, Role.MANAGER)


def team_members(manager: User) -> QuerySet[User]:
    """A manager's team: the manager and the users who report to them (``User.manager``),
    whose accounts ``Account.visible_to`` shows the manager."""
    return teams_members([manager.pk])


def teams_members(manager_ids: Iterable[int]) -> QuerySet[User]:
    """The members of several managers' teams at once (``team_members`` of each)."""
    ids = list(manager_ids)
    return User.objects.filter(Q(pk__in=ids) | Q(manager_id__in=ids))


def team_accounts(manager: User) -> QuerySet[Account]:
    """The accounts of a manager's team: the same book as ``Account.visible_to(manager)``,
    written as "owner in (a small set of users)": the OR across the user join of
    visible_to makes PostgreSQL scan every account to count or sort a manager's team."""
    return Account.objects.filter(owner_id__in=team_members(manager).values("pk"))


def owner_choices(user: User) -> list[User]:
    """Whose accounts the user may filter by: everyone for an admin, the manager and their
    reports for a manager, oneself for a CSM. One query (none for a CSM)."""
    return owner_choices_by_user([user])[user.pk]


def owner_choices_by_user(users: Iterable[User]) -> dict[int, list[User]]:
    """``owner_choices`` of several users, by user id, in a fixed number of queries whatever
    their number: one for the managers' teams, one for everyone when an admin is among
    them (the users' roles should be loaded: ``prefetch_related("groups")``)."""
    users = list(users)
    order = ("first_name", "email")
    managers = {u.pk for u in users if u.role == Role.MANAGER}
    teams: dict[int, list[User]] = {pk: [] for pk in managers}
    if managers:
        for member in teams_members(managers).filter(is_active=True).order_by(*order):
            # in their own manager's team, and in the team they lead, when both are asked
            for pk in {member.pk, member.manager_id} & managers:
                teams[pk].append(member)
    everyone: list[User] = []
    if any(u.role == Role.ADMIN for u in users):
        everyone = list(User.objects.filter(is_active=True).order_by(*order))
    out = {}
    for u in users:
        if u.role == Role.ADMIN:
            out[u.pk] = list(everyone)
        elif u.role == Role.MANAGER:
            out[u.pk] = teams[u.pk]
        else:
            out[u.pk] = [u]
    return out


SEGMENTS_CACHE_SECONDS = 300


def segment_choices(user: User) -> list[str]:
    """The segments of the accounts the user can see (index on segment). One query, then
    kept five minutes per user: a DISTINCT over 100,000 accounts on every queue request
    costs more than the rest of the page, and segments change with imports only."""
    from django.core.cache import cache

    key = f"workspace:segments:{user.pk}:{book.version()}"  # afresh after an import
    found = cache.get(key)
    if found is None:
        found = Account.objects.visible_to(user).segments()
        cache.set(key, found, SEGMENTS_CACHE_SECONDS)
    return found


def queue_filters(
    params: Mapping[str, str],
    *,
    user: User,
    segments: list[str],
    owners: list[User],
    default_sort: str = "priority",
    default_scope: str | None = None,
) -> QueueFilters:
    """Read the filters from the URL. An unknown value is dropped with a notice saying which
    and why, never an error: a shared link with a stale filter still opens."""
    f = QueueFilters(sort=default_sort)
    notices = f.notices
    scope = params.get("scope", "")
    if scope == "team" and team_scope_allowed(user):
        f.scope = "team"
    elif scope and scope != "mine":
        notices.append(f"Unknown view “{scope}” ignored: showing your accounts.")
    elif not scope:
        f.scope = default_scope or "mine"
    band = params.get("band", "")
    if band in BANDS:
        f.band = band
    elif band:
        notices.append(f"Unknown band “{band}” ignored.")
    segment = params.get("segment", "")
    if segment in segments:
        f.segment = segment
    elif segment:
        notices.append(f"Unknown segment “{segment}” ignored.")
    owner = params.get("owner", "")
    if owner:
        ids = {str(u.pk): u.pk for u in owners}
        if owner in ids:
            f.owner = ids[owner]
            if f.owner != user.pk and f.scope == "mine" and team_scope_allowed(user):
                f.scope = "team"
        else:
            notices.append(f"Unknown owner “{owner}” ignored.")
    lifecycle = params.get("lifecycle", "")
    if lifecycle in AccountLifecycle.values:
        f.lifecycle = lifecycle
    elif lifecycle:
        notices.append(f"Unknown lifecycle stage “{lifecycle}” ignored.")
    renewal = params.get("renewal", "")
    if renewal in {str(w) for w in RENEWAL_WINDOWS}:
        f.renewal = int(renewal)
    elif renewal:
        notices.append(f"Unknown renewal window “{renewal}” ignored (30, 60, 90 or 180 days).")
    f.q = params.get("q", "").strip()[:100]
    sort = params.get("sort", "")
    if sort in SORTS:
        f.sort = sort
    elif sort:
        notices.append(f"Unknown sort “{sort}” ignored.")
    f.page = params.get("page", "1")
    return f


# --- the queue -----------------------------------------------------------------------------


def standings_for(user: User, *, scope: str = "team") -> QuerySet[AccountStanding]:
    """The standing rows of the accounts the user may see (``mine``: owned by them)."""
    qs = AccountStanding.objects.all()
    if scope == "mine":
        return qs.filter(account__owner=user)
    if user.role == Role.ADMIN:
        return qs
    if user.role == Role.MANAGER:  # the team's accounts, as ``team_accounts``
        return qs.filter(account__owner_id__in=team_members(user).values("pk"))
    return qs.filter(account__in=Account.objects.visible_to(user))


def with_band_lines(standings: QuerySet[AccountStanding]) -> QuerySet[AccountStanding]:
    """``standings`` each with ``green_min`` and ``yellow_min``, the band lines of the model
    version that made its score (its snapshot of the same day), so a page prints the score
    beside its band without crossing a line (``health.score_beside_band``). Two subqueries
    in the same query, each one probe of the snapshot's (account, day) key, evaluated for
    the rows fetched only; ``None`` without a snapshot. (Whether an override set the score
    is the standing's own ``overridden``.)"""
    snapshot = HealthSnapshot.objects.filter(account_id=OuterRef("account_id"), day=OuterRef("day"))
    return standings.annotate(
        green_min=Subquery(snapshot.values("model_version__green_min")[:1]),
        yellow_min=Subquery(snapshot.values("model_version__yellow_min")[:1]),
    )


def _version_of_day(day: str) -> Subquery:
    """The model version (id, number, model id and name, as one JSON object) of the account's
    snapshot of the standing's ``day`` field; None without one (or without a day)."""
    found = HealthSnapshot.objects.filter(account_id=OuterRef("account_id"), day=OuterRef(day))
    return Subquery(
        found.values(
            v=JSONObject(
                id="model_version_id",
                version="model_version__version",
                model_id="model_version__model_id",
                model="model_version__model__name",
            )
        )[:1],
        output_field=JSONField(),
    )


def account_standing(account: Account) -> AccountStanding | None:
    """Where one account stands, with its band lines (``with_band_lines``) and the model
    versions of the snapshots of its day and of the days its trends name (``version_now``,
    ``version_7``, ``version_30``: ``trend_notes`` reads them); ``None`` before the first
    nightly run. One query."""
    standings = with_band_lines(AccountStanding.objects.filter(account=account))
    return standings.annotate(
        version_now=_version_of_day("day"),
        version_7=_version_of_day("trend_7_day"),
        version_30=_version_of_day("trend_30_day"),
    ).first()


def _version_label(v: Mapping[str, Any], *, beside: Mapping[str, Any]) -> str:
    """ "v1" beside a version of the same model, "Enterprise v1" beside another model's."""
    if v["model_id"] == beside["model_id"]:
        return f"v{v['version']}"
    return f"{v['model']} v{v['version']}"


def trend_notes(standing: AccountStanding | None, *, may_rescore: bool) -> dict[str, dict]:
    """Why a trend of ``standing`` (from ``account_standing``) is "—": the snapshot it would
    compare with was scored by another model version, or another model (metrics.standings
    compares like with like), e.g. ``{"30": {"text": "scored by v1 on 19 Oct 2026, v2 now",
    "url": …}}``; trends that are known or missing for want of a snapshot get no note.
    ``url`` (only when ``may_rescore``, which the view decides): where an admin rescores
    those days, the versions page's rescore offer for a new version of the same model, the
    assignments page's rescore for another model. No query."""
    notes: dict[str, dict] = {}
    now = getattr(standing, "version_now", None)
    if standing is None or now is None:
        return notes
    for key, trend, day, then in (
        ("7", standing.trend_7, standing.trend_7_day, getattr(standing, "version_7", None)),
        ("30", standing.trend_30, standing.trend_30_day, getattr(standing, "version_30", None)),
    ):
        if trend is not None or then is None or then["id"] == now["id"]:
            continue
        text = (
            f"scored by {_version_label(then, beside=now)} on {utc.day_text(day)}, "
            f"{_version_label(now, beside=then)} now"
        )
        url = ""
        if may_rescore and then["model_id"] == now["model_id"]:
            url = reverse("workspace:health-model-versions", args=[now["model_id"]])
            url += f"?changed={now['id']}#version-changed"
        elif may_rescore:
            url = reverse("workspace:health-assignments") + "#rescore"
        notes[key] = {"text": text, "url": url}
    return notes


def account_data_day(account: Account) -> dt.date:
    """The day of the account's data, the day its page counts days from: its standing's
    day (that of its latest health snapshot), or today before its first scoring. One
    query; the account page has it from ``account_standing`` already."""
    day = AccountStanding.objects.filter(account=account).values_list("day", flat=True).first()
    return day or today()


def current_customers(standings: QuerySet[AccountStanding]) -> QuerySet[AccountStanding]:
    """The standings of current customers: every account but those whose lifecycle stage is
    churned (former customers). What the queue lists unless a lifecycle stage is asked for,
    and what the dashboard's health distribution and "renewals due" count, so a band's
    count and the queue it opens hold the same accounts."""
    return standings.exclude(account__lifecycle_stage=AccountLifecycle.CHURNED)


COUNT_CAP = 10_000  # rows counted exactly; beyond, the page says "10,000+" (see CappedPaginator)


class CappedPaginator(Paginator):
    """Counts at most ``COUNT_CAP + 1`` rows (``SELECT COUNT(*) FROM (... LIMIT n)``): an exact
    count of a 100,000-account book costs more than the page itself, and nobody pages past
    500 pages of 20. ``capped`` tells the template to say "10,000+". ``count`` given: a
    count the caller already has (the queue's data-days aggregate), no query."""

    def __init__(self, *args: Any, count: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if count is not None:
            self._capped_count = count

    @property
    def count(self) -> int:  # type: ignore[override]
        if not hasattr(self, "_capped_count"):
            n = self.object_list.order_by().values("pk")[: COUNT_CAP + 1].count()
            self._capped_count = n
        return min(self._capped_count, COUNT_CAP)

    @property
    def capped(self) -> bool:
        self.count  # noqa: B018 (computes it)
        return self._capped_count > COUNT_CAP


def queue_standings(*, user: User, filters: QueueFilters) -> QuerySet[AccountStanding]:
    """The standings the queue lists for ``filters``, unordered: every page of it."""
    qs = standings_for(user, scope=filters.scope)
    if filters.band == "none":
        qs = qs.filter(band="")
    elif filters.band:
        qs = qs.filter(band=filters.band)
    if filters.segment:
        qs = qs.filter(account__segment=filters.segment)
    if filters.owner is not None:
        qs = qs.filter(account__owner_id=filters.owner)
    if filters.lifecycle:
        qs = qs.filter(account__lifecycle_stage=filters.lifecycle)
    else:  # former customers are no call to make: shown only when asked for
        qs = current_customers(qs)
    if filters.renewal is not None:  # from each row's data day, as its "renews in N days"
        qs = qs.filter(renews_within(filters.renewal))
    if filters.q:
        qs = qs.filter(Q(account__name__icontains=filters.q) | Q(account__external_id=filters.q))
    return qs


def queue(*, user: User, filters: QueueFilters, per_page: int = PER_PAGE) -> Page:
    """One page of the queue: accounts with their standing (priority, reason, band, ARR,
    renewal, CTAs), ordered by ``filters.sort``, and ``page.data_days``, the data days of
    the whole list (``data_days``). Three queries: the data days with the count, the page's
    account ids (a narrow sort: PostgreSQL sorts (key, id) pairs, not whole joined rows,
    which spilled to disk for a 100,000-account team sorted by ARR), then those rows with
    their account and owner."""
    qs = queue_standings(user=user, filters=filters)
    # the header's days must cover every row, not the page's, so this reads the whole list;
    # its count then comes free, in place of the paginator's capped count query
    days = data_days(qs, today=today())
    ids = qs.order_by(*SORTS[filters.sort][1]).values_list("account_id", flat=True)
    page = CappedPaginator(ids, per_page, count=days["total"]).get_page(filters.page)
    page.data_days = days  # type: ignore[attr-defined]
    wanted = list(page.object_list)
    rows = {
        s.account_id: s
        for s in with_band_lines(
            AccountStanding.objects.filter(account_id__in=wanted).select_related(
                "account", "account__owner"
            )
        )
    }
    page.object_list = [rows[pk] for pk in wanted if pk in rows]
    return page


def data_days(standings: QuerySet[AccountStanding], *, today: dt.date) -> dict[str, Any]:
    """The data days of ``standings`` as a list's header names them (``utc.data_days_text``):
    ``first`` and ``last`` (None for no row), ``settled`` (the latest day before ``today``)
    and ``rescored`` (how many rows are of ``today``: rescored since the nightly run, which
    scores yesterday). Over the whole list, not a page, so the line does not change with
    sort or page. One aggregate query; unlike the capped count it reads every row of the
    list, which is only the narrow ``day`` column beside the filters' joins; ``total``, the
    number of rows, comes with it."""
    return standings.order_by().aggregate(
        total=Count("pk"),
        first=Min("day"),
        last=Max("day"),
        settled=Max("day", filter=Q(day__lt=today)),
        rescored=Count("pk", filter=Q(day=today)),
    )


def default_scope(user: User) -> str:
    """Managers and admins who own no account start on the team view."""
    if team_scope_allowed(user) and not Account.objects.filter(owner=user).exists():
        return "team"
    return "mine"


# --- the account page ----------------------------------------------------------------------

TIMELINE_GROUPS = {
    "notes": ("Notes and calls", Q(kind="activity")),
    "ctas": ("CTAs", Q(kind__startswith="cta")),
    "surveys": ("Survey answers", Q(kind__startswith="survey")),
    "tickets": ("Tickets", Q(kind__startswith="ticket")),
    "billing": ("Invoices and payments", Q(kind__startswith="invoice") | Q(kind="payment_failed")),
    "usage": ("Usage", Q(kind__startswith="usage")),
    "health": ("Health", Q(kind__startswith="health")),
    "contracts": (
        "Contracts and people",
        Q(kind__startswith="contract") | Q(kind="stakeholder_added"),
    ),
}
TIMELINE_PER_PAGE = 25


def timeline_page(*, account: Account, group: str, page: str | int) -> Page:
    """One page of what happened to the account, newest first. Facts dated ahead (a
    contract's end, recorded when the contract is imported) are left out until their day
    comes: the timeline tells what has happened, and the Renewal tile what is coming."""
    qs = TimelineEntry.objects.filter(account=account, occurred_at__lte=timezone.now())
    if group in TIMELINE_GROUPS:
        qs = qs.filter(TIMELINE_GROUPS[group][1])
    return Paginator(qs.order_by("-occurred_at", "-id"), TIMELINE_PER_PAGE).get_page(page)


def mrr_history(contracts: list[Contract], *, months: int = 24, on: dt.date) -> list[dict]:
    """MRR on the first day of each of the last ``months`` months (and ``on``), from the
    account's contracts (end date inclusive, as in docs/metrics.md "Basics"). Pure."""
    firsts = []
    year, month = on.year, on.month
    for _ in range(months):
        firsts.append(dt.date(year, month, 1))
        month -= 1
        if month == 0:
            year, month = year - 1, 12
    days = sorted(firsts) + ([on] if on.day != 1 else [])
    out = []
    for day in days:
        mrr = sum(
            (
                c.mrr
                for c in contracts
                if c.start_date <= day and (c.end_date is None or c.end_date >= day)
            ),
            Decimal(0),
        )
        out.append({"day": day, "mrr": mrr})
    return out


def usage_days_filled(rows, *, start: dt.date, end: dt.date) -> list[dict]:
    """One row per calendar day from ``start`` to ``end`` (or the last row's day, if later),
    in order: the days without a rollup (no event) get 0 events and 0 active users, so a
    chart of the list has a true time axis. No row at all gives [] ("no usage")."""
    by_day = {row["day"]: row for row in rows}
    if not by_day:
        return []
    end = max(end, *by_day)
    return [
        by_day.get(day) or {"day": day, "events": 0, "active_users": 0}
        for day in (start + dt.timedelta(days=n) for n in range((end - start).days + 1))
    ]


def version_runs(series: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The stretches of days of ``series`` (``account_detail``'s health history, by day)
    scored by one model version, each as {"label": "Default v2", "first", "last"}; empty
    when one version scored them all (nothing to tell apart). No query."""
    runs: list[dict[str, Any]] = []
    for row in series:
        label = f"{row['model']} v{row['version']}"
        if runs and runs[-1]["label"] == label:
            runs[-1]["last"] = row["day"]
        else:
            runs.append({"label": label, "first": row["day"], "last": row["day"]})
    return runs if len(runs) > 1 else []


def priority_working(standing: AccountStanding | None) -> str:
    """How the queue priority of ``standing`` adds up, from the row's own stored inputs (the
    band, ARR, the day of the data and the renewal, the 7-day trend, overdue CTAs) through
    ``metrics.priority`` again: "15 (yellow) + 6.7 (−7 in 7 days) + 6 ($60k ARR) = 27.7".
    "" when the sum is not the stored priority (the rules changed since the row was
    written: the next refresh rewrites it) or there is no row. No query."""
    if standing is None:
        return ""
    result = prio.priority(
        band=standing.band or "",
        arr=standing.arr,
        days_to_renewal=prio.days_between(standing.day, standing.renewal_on),
        trend_7=standing.trend_7,
        overdue_ctas=standing.overdue_ctas,
    )
    if abs(result.points - standing.priority) > 0.05:
        return ""
    terms = " + ".join(f"{round(points, 1):g} ({words})" for words, points in result.factors)
    return f"{terms} = {result.points:g}"


def health_history_text(series: list[dict[str, Any]]) -> str:
    """The health history chart in words, for the reader who cannot see it (its text
    alternative) and the one who wants the figures: the first and the latest score, the
    lowest and the highest (the earliest day of each when several tie), and how many
    scores: "From 80 on 1 Jun 2026 to 75.3 on 23 Nov 2026; lowest 69 on 19 Sep 2026,
    highest 88 on 26 Oct 2026 (26 scores)." "" without any. No query."""
    rows = [r for r in series if r.get("score") is not None]
    if not rows:
        return ""

    def at(row: dict[str, Any]) -> str:
        return f"{health.score_as_recorded(row['score'])} on {utc.day_text(row['day'])}"

    first, last = rows[0], rows[-1]
    if len(rows) == 1:
        return f"One score: {at(first)}."
    low = min(rows, key=lambda r: float(r["score"]))
    high = max(rows, key=lambda r: float(r["score"]))
    return (
        f"From {at(first)} to {at(last)}; lowest {at(low)}, highest {at(high)} "
        f"({len(rows)} scores)."
    )


def health_breakdown(latest: HealthSnapshot | None) -> dict[str, Any]:
    """How the account page's health breakdown says each number of ``latest`` was made,
    from what the snapshot stored (no query, nothing rescored):

    - ``components``: each stored component with ``score_text`` (as "what changed" prints
      a score: "75", "72.5") and ``working``, its measures' points and how they combine,
      "seat utilisation 100 · usage trend 50 → mean 75": the mean of the measures with
      data, those without said "no data" and left out, as the scorer does; the mean is the
      stored computed score. An overridden component says the shown score is the
      override's. "" for a snapshot stored without points.
    - ``total``: the weighted mean of the components that count (a weight and a score,
      the others left out and the weights renormalised, ``health.weighted_mean``),
      "(75 × 35 + 70 × 20 + …) / 100 = 72.1"; when an override of the whole account set
      the shown score it says the shown one comes from the override. "" without any.

    The measures are named in the order of the model version's components."""
    if latest is None:
        return {"components": [], "total": ""}
    num = health.score_as_recorded
    order = {
        c.get("key"): [m.get("measure") for m in c.get("measures") or []]
        for c in latest.model_version.components or []
    }
    rows = []
    for c in latest.components or []:
        points = c.get("measure_points") or {}
        keys = [k for k in order.get(c.get("key"), []) if k in points]
        keys += [k for k in points if k not in keys]
        parts = []
        for key in keys:
            measure = health.MEASURES.get(key)
            label = measure.label if measure else key.replace("_", " ")
            value = points[key]
            parts.append(f"{label} {'no data' if value is None else num(value)}")
        scored = sum(points[k] is not None for k in keys)
        computed = c.get("computed_score", c.get("score"))
        working = ""
        if parts:
            if not scored or computed is None:
                result = "no data"
            else:
                result = f"mean {num(computed)}" if scored > 1 else num(computed)
                if scored < len(keys):
                    result += " (no data is left out of the mean)"
            working = f"{' · '.join(parts)} → {result}"
            if c.get("overridden") and c.get("score") is not None:
                working += f"; the {num(c['score'])} shown comes from the override below"
        score = c.get("score")
        rows.append(
            {
                **c,
                # a snapshot scored before the one spelling of money says "(633,600.00 USD
                # due)": the latest one of an account not scored any more keeps it
                "reason": old_due_reword(c.get("reason") or ""),
                "score_text": "no data" if score is None else num(score),
                "working": working,
            }
        )
    counted = [
        c
        for c in latest.components or []
        if (c.get("weight") or 0) > 0 and c.get("score") is not None
    ]
    total = ""
    value, _ = health.weighted_mean([(c["weight"], c["score"]) for c in counted])
    if value is not None:
        terms = " + ".join(f"{num(c['score'])} × {num(c['weight'])}" for c in counted)
        weights = num(sum(c["weight"] for c in counted))
        total = f"({terms}) / {weights} = {num(value)}"
        whole = [o for o in latest.overrides or [] if not o.get("component")]
        if whole and whole[0].get("score") is not None:
            total = (
                f"Computed score {total}; the score shown, {num(latest.score)}, "
                f"comes from the override below."
            )
        else:
            total = f"Score {total}."
    return {"components": rows, "total": total}


def account_detail(*, account: Account, timeline_group: str = "", timeline_page_no: Any = 1):
    """Everything the account page shows, in a fixed number of queries (about ten)."""
    on = today()
    # each day with the model version that scored it: the chart marks where it changes and
    # names it in the tooltip (a new version's scores are not a movement of the customer)
    snaps = [
        {"day": day, "score": score, "band": band, "model": model, "version": version}
        for day, score, band, model, version in HealthSnapshot.objects.filter(
            account=account, day__gte=on - dt.timedelta(days=180)
        )
        .order_by("day")
        .values_list("day", "score", "band", "model_version__model__name", "model_version__version")
    ]
    latest = (
        HealthSnapshot.objects.filter(account=account)
        .select_related("model_version__model")
        .order_by("-day")
        .first()
    )
    changes: list[str] = []
    compared_with = None
    if latest is not None:
        before = (
            HealthSnapshot.objects.filter(
                account=account, day__lte=latest.day - dt.timedelta(days=7)
            )
            .select_related("model_version__model")
            .order_by("-day")
            .first()
        )
        if before is not None:
            compared_with = before.day
            changes = health.what_changed(before.as_dict(), latest.as_dict())
    usage = usage_days_filled(
        UsageDaily.objects.filter(account=account, day__gte=on - dt.timedelta(days=90))
        .order_by("day")
        .values("day", "events", "active_users"),
        start=on - dt.timedelta(days=90),
        end=on,
    )
    key_features = set(settings.KEY_FEATURES)
    # the 30 whole UTC days before today, the window of the health usage measures
    # (``adoption.Days``: the window ending with today is today − 30 … today − 1): today's
    # partial day is not one of them
    window = adoption.Days.ending(on)
    features = [
        {**row, "key": row["event"] in key_features}
        for row in UsageFeatureDaily.objects.filter(
            account=account, day__gte=window.window, day__lt=window.end
        )
        .values("event")
        .annotate(days=Count("day"), peak_users=Max("users"), events=Sum("events"))
        .order_by("-days", "event")[:12]
    ]
    contracts = list(Contract.objects.filter(account=account).order_by("-start_date"))
    stakeholders = list(
        Stakeholder.objects.filter(account=account)
        .annotate(last_touch=Max("activities__occurred_at"))
        .order_by("-is_primary", "role", "name")
    )
    last_activity = (
        Activity.objects.filter(account=account)
        .order_by("-occurred_at")
        .only("occurred_at")
        .first()
    )
    return {
        "today": on,
        "latest": latest,
        "left_out_note": health.left_out_note(latest.components) if latest else "",
        "breakdown": health_breakdown(latest),
        "changes": changes,
        "compared_with": compared_with,
        "health_series": snaps,
        "health_versions": version_runs(snaps),
        "health_history_text": health_history_text(snaps),
        "usage_series": usage,
        "features": features,
        "features_first_day": window.window,
        "features_last_day": window.end - dt.timedelta(days=1),
        "contracts": contracts,
        "mrr_series": mrr_history(contracts, on=on),
        "stakeholders": stakeholders,
        "last_touch": last_activity.occurred_at if last_activity else None,
        "timeline": timeline_page(account=account, group=timeline_group, page=timeline_page_no),
    }


# --- the dashboard -------------------------------------------------------------------------


@dataclass
class DashboardScope:
    kind: str  # KpiScope
    key: str
    label: str
    segment: str = ""
    owner: User | None = None
    team: User | None = None  # the manager whose team it is


def kpi_days(scope: DashboardScope) -> list[dt.date]:
    """The days with a KPI snapshot for the scope, newest first (at most a year)."""
    return list(
        KpiSnapshot.objects.filter(scope_kind=scope.kind, scope_key=scope.key)
        .order_by("-day")
        .values_list("day", flat=True)[:366]
    )


def kpi_pair(scope: DashboardScope, day: dt.date) -> tuple[KpiSnapshot | None, KpiSnapshot | None]:
    """The snapshot of ``day`` and the one of the period before (the day a month earlier,
    whose trailing month ends where this one starts). One query."""
    from metrics.services import kpi_snapshot_period

    start, _ = kpi_snapshot_period(day)
    previous_day = start - dt.timedelta(days=1)
    rows = {
        s.day: s
        for s in KpiSnapshot.objects.filter(
            scope_kind=scope.kind, scope_key=scope.key, day__in=[day, previous_day]
        )
    }
    return rows.get(day), rows.get(previous_day)


RENEWALS_DUE_DAYS = 90  # the dashboard's "renewals due" window, the renewals page's default


def health_distribution(standings: QuerySet[AccountStanding]) -> dict[str, Any]:
    """Accounts and ARR per band, and renewals due in 90 days, over the current customers
    of ``standings`` (``current_customers``: churned accounts are still scored, for the
    backtest and win-back playbooks, but a former customer is no part of the book's
    health). Renewals count from each account's data day (``standings.renews_within``), as
    the renewals page the tile opens does; ``first_day`` and ``last_day`` are the earliest
    and the latest of those days (None for no account), which the page names. One
    aggregate query."""
    standings = current_customers(standings)
    aggregates: dict[str, Any] = {}
    for band in ("green", "yellow", "red", ""):
        key = band or "none"
        aggregates[f"{key}_n"] = Count("pk", filter=Q(band=band))
        aggregates[f"{key}_arr"] = Sum("arr", filter=Q(band=band))
    window = renews_within(RENEWALS_DUE_DAYS)
    aggregates["renewals_n"] = Count("pk", filter=window)
    aggregates["renewals_arr"] = Sum("arr", filter=window)
    aggregates["total_n"] = Count("pk")
    aggregates["total_arr"] = Sum("arr")
    aggregates["first_day"] = Min("day")
    aggregates["last_day"] = Max("day")
    agg = standings.aggregate(**aggregates)
    bands = []
    total_n = agg["total_n"] or 0
    total_arr = agg["total_arr"] or Decimal(0)
    for band, label in (
        ("red", "Red"),
        ("yellow", "Yellow"),
        ("green", "Green"),
        ("none", "No score"),
    ):
        n = agg[f"{band}_n"] or 0
        arr = agg[f"{band}_arr"] or Decimal(0)
        bands.append(
            {
                "band": band,
                "label": label,
                "accounts": n,
                "arr": arr,
                # None when there is nothing to share (no customer, no ARR): a dash, not 0
                "pct_accounts": round(100 * n / total_n, 1) if total_n else None,
                "pct_arr": round(float(100 * arr / total_arr), 1) if total_arr else None,
                # printed as the tiles print rates: 1 of 3,000 is 0.03 %, not "0.0"
                "pct_accounts_text": pct_text(100 * n / total_n) if total_n else "—",
                "pct_arr_text": pct_text(float(100 * arr / total_arr)) if total_arr else "—",
            }
        )
    return {
        "bands": bands,
        "accounts": total_n,
        "arr": total_arr,
        "renewals_due": agg["renewals_n"] or 0,
        "renewals_arr": agg["renewals_arr"] or Decimal(0),
        "first_day": agg["first_day"],
        "last_day": agg["last_day"],
    }


def override_targets(latest: HealthSnapshot | None) -> list[tuple[str, str]]:
    """The components of the model that scored ``latest`` (the account's last snapshot) that
    an override may set (key, label), the locked ones left out (the service refuses them).
    No query: the snapshot's version is loaded with it."""
    if latest is None:
        return []
    spec = latest.model_version.spec()
    return [(c.key, c.label) for c in spec.components if not c.locked]


def override_locked(latest: HealthSnapshot | None) -> list[tuple[str, str]]:
    """The components of the model that scored ``latest`` that are locked against override
    (key, label): the override form names them rather than leave them missing unexplained.
    No query, as ``override_targets``."""
    if latest is None:
        return []
    return [(c.key, c.label) for c in latest.model_version.spec().components if c.locked]


def overrides_shown(latest: HealthSnapshot | None) -> list[dict[str, Any]]:
    """The overrides applied to ``latest`` as the account page shows them, each with the
    last day it holds ("until", the day before it expires at midnight UTC), when it was made
    ("created_at", UTC, from its row; blank for a row gone) and, for one of
    the whole score, its score beside the computed one as a pair (``health.score_pair``:
    an override of 80 over a computed 79.96 does not read "80, computed 80")."""
    shown = []
    overrides = (latest.overrides if latest is not None else None) or []
    # the snapshot records who by email; the page names people (one query, with overrides)
    emails = {o.get("created_by") for o in overrides} - {"", None}
    names = {u.email: str(u) for u in User.objects.filter(email__in=emails)} if emails else {}
    # when each was made, from its row (the audit record; one query): the snapshot keeps
    # who, why and until, not when
    ids = [o["id"] for o in overrides if isinstance(o.get("id"), int)]
    made = (
        dict(HealthOverride.objects.filter(pk__in=ids).values_list("pk", "created_at"))
        if ids
        else {}
    )
    for o in overrides:
        last, _ = utc.deadline_day(dt.datetime.fromisoformat(o["expires_at"]))
        score_text, computed_text = health.score_pair(
            o.get("score"),
            latest.computed_score if not o.get("component") else None,
            none="no data",
            text=health.score_as_recorded,
        )
        shown.append(
            {
                **o,
                "until": utc.day_text(last),
                "created_by": names.get(o.get("created_by"), o.get("created_by") or ""),
                "created_at": utc.moment_text(made[o["id"]]) if o.get("id") in made else "",
                "score_text": score_text,
                "computed_text": computed_text,
            }
        )
    return shown


# --- health model history ------------------------------------------------------------------


def _weights(version: HealthModelVersion) -> dict[str, float]:
    return {c["key"]: c["weight"] for c in version.components}


def health_model_history(model: HealthModel) -> dict[str, Any]:
    """Every version of ``model``, newest first, for the history page: one query.

    ``components``: a column per component any version has (key and label, in the order of
    the newest version that has it). Each row: the version, its weight per column (``None``
    where it has no such component) with ``changed`` where it differs from the version
    before it, ``bands_changed`` likewise, and ``same_as_active`` when it scores exactly as
    the active version (nothing to restore); ``active`` is the version scoring now."""
    versions = list(
        model.versions.select_related("created_by", "restored_from").order_by("-version")
    )
    labels: dict[str, str] = {}
    for v in versions:
        for c in v.components:
            labels.setdefault(c["key"], c.get("label") or c["key"])
    active = next((v for v in versions if v.active), None)
    rows = []
    for i, v in enumerate(versions):
        before = versions[i + 1] if i + 1 < len(versions) else None
        mine = _weights(v)
        theirs = _weights(before) if before else {}
        rows.append(
            {
                "version": v,
                "weights": [
                    {
                        "key": key,
                        "label": labels[key],
                        "weight": mine.get(key),
                        "changed": before is not None and mine.get(key) != theirs.get(key),
                    }
                    for key in labels
                ],
                "bands_changed": before is not None
                and (v.green_min, v.yellow_min) != (before.green_min, before.yellow_min),
                # restoring it would change nothing (it was restored already, say)
                "same_as_active": active is not None and v is not active and v.same_rules(active),
            }
        )
    return {
        "components": [{"key": k, "label": label} for k, label in labels.items()],
        "rows": rows,
        "versions": versions,
        "active": active,
        # an active version stored before two components of one name were refused
        "twins": health.twin_names_words(active.components) if active else "",
    }


def health_version_diff(current: HealthModelVersion, other: HealthModelVersion) -> dict[str, Any]:
    """What making ``other``'s rules score again would change against ``current``: weight
    per component (either side ``None`` where a version lacks it), thresholds, whether
    both have the same components but for their weights (the draft preview re-weights
    recorded component scores, so it only applies then) and which components of both
    score differently but for their weights (``rules_changed``, by label). No query."""
    now, then = _weights(current), _weights(other)
    labels = {
        c["key"]: c.get("label") or c["key"] for c in [*current.components, *other.components]
    }
    rules_current, rules_other = _rules(current), _rules(other)
    rules_now = {c["key"]: c for c in rules_current}
    rules_then = {c["key"]: c for c in rules_other}
    return {
        "weights": [
            {
                "key": key,
                "label": label,
                "now": now.get(key),
                "then": then.get(key),
                "changed": now.get(key) != then.get(key),
            }
            for key, label in labels.items()
        ],
        "green": {"now": current.green_min, "then": other.green_min},
        "yellow": {"now": current.yellow_min, "then": other.yellow_min},
        "same_components": rules_current == rules_other,
        # the components of both whose name, measures, points or lock differ: the weights
        # table alone would not show that restoring changes how they score
        "rules_changed": [
            labels[key]
            for key in labels
            if key in rules_now and key in rules_then and rules_now[key] != rules_then[key]
        ],
    }


def _rules(version: HealthModelVersion) -> list[dict]:
    """A version's components less their weights (what a component scores and how)."""
    return sorted(
        ({k: v for k, v in c.items() if k != "weight"} for c in version.components),
        key=lambda c: c["key"],
    )
