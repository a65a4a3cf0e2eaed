"""The portfolio dashboard: KPI tiles from the nightly KPI snapshots (one row per scope and
day, so the page never runs the KPI engine), the band distribution from the account
standings, and the drill-downs to the accounts behind each number."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.module_loading import import_string

from accounts import book, utc
from accounts.exports import figure_cell
from accounts.models import Account, Role, User
from accounts.money import count_text, money_exact
from metrics import kpis
from metrics.kpis import revenue
from metrics.kpis.common import change_text, pct_text, percent_text
from metrics.models import KpiScope
from metrics.priority import money_short

from . import integrations, selectors

DOCS = "https://github.com/opencs/opencs/blob/main/docs/metrics.md"

# (section, key, label, unit kind, better when higher, docs anchor, drill-down)
TILES = [
    (
        "revenue",
        "mrr_end",
        "MRR",
        "money",
        True,
        "basics-mrr-customers-the-two-days-of-a-period",
        "mrr_end",
    ),
    (
        "retention",
        "nrr",
        "NRR",
        "pct",
        True,
        "revenue-and-retention-revenue-retention",
        "movements",
    ),
    (
        "retention",
        "grr",
        "GRR",
        "pct",
        True,
        "revenue-and-retention-revenue-retention",
        "movements",
    ),
    (
        "retention",
        "logo_churn_rate",
        "Logo churn",
        "pct",
        False,
        "revenue-and-retention-revenue-retention",
        "churn",
    ),
    (
        "retention",
        "revenue_churn_rate",
        "Revenue churn",
        "pct",
        False,
        "revenue-and-retention-revenue-retention",
        "churn",
    ),
    (
        "revenue",
        "expansion_mrr",
        "Expansion MRR",
        "money",
        True,
        "revenue-and-retention-revenue-retention",
        "expansion",
    ),
    (
        "voice_of_customer",
        "nps",
        "NPS",
        "score",
        True,
        "voice-of-the-customer-voice_of_customer",
        "surveys",
    ),
    (
        "voice_of_customer",
        "csat",
        "CSAT",
        "pct",
        True,
        "voice-of-the-customer-voice_of_customer",
        "surveys",
    ),
    (
        "voice_of_customer",
        "ces",
        "CES",
        "score",
        True,
        "voice-of-the-customer-voice_of_customer",
        "surveys",
    ),
    ("adoption", "ttfv", "Median TTFV", "days", False, "adoption-and-engagement-adoption", ""),
    (
        "adoption",
        "seat_utilisation",
        "Seat utilisation",
        "pct",
        True,
        "adoption-and-engagement-adoption",
        "",
    ),
]
MOVEMENTS = ("new", "reactivation", "expansion", "contraction", "churn")
# the MRR on the period's first day and on its end day (the day after it), per account
MRR_DRILLS = {"mrr_start": "start", "mrr_end": "end"}
DRILLS = {*MOVEMENTS, "movements", *MRR_DRILLS}
DRILL_ROWS = 500  # accounts listed on the page, the largest first; the CSV has them all


def docs_url(anchor: str) -> str:
    return reverse("workspace:metrics-doc") + (f"#{anchor}" if anchor else "")


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, dict | list):
        return None
    try:
        return float(Decimal(str(value)))
    except (InvalidOperation, ValueError):
        return None


def _decimal(value: Any) -> Decimal | None:
    number = _number(value)
    return None if number is None else Decimal(str(value))


def pct_whole(value: Any) -> str:
    """A rate in whole percent, as the cohort heatmap prints it ("97"), except where that
    would read as 100 or 0 when it is neither: a cohort that kept 199 of 200 logos is
    "99.5", not "100" (``pct_text``'s rule, from one decimal). An em dash for nothing."""
    number = _number(value)
    if number is None:
        return "—"
    whole = f"{number:.0f}"
    if float(whole) in (0.0, 100.0) and number not in (0.0, 100.0):
        return pct_text(number)
    return whole


def movement_text(kind: str, amount: Any) -> str:
    """An MRR movement's amount (positive, as the engine gives it) as a change to the
    cent: "+$1,612.08" for new, reactivation and expansion, "−$252.45" for contraction
    and churn, "$0.00" for none."""
    value = Decimal(str(amount or 0))
    if not value:
        return money_exact(abs(value))
    sign = "−" if kind in ("contraction", "churn") else "+"
    return sign + money_exact(abs(value))


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "money":
        return money_short(value)
    if unit == "pct":
        return percent_text(value)
    if unit == "days":
        return f"{value:.0f} d"
    return f"{value:.1f}"


def _count(value: Any) -> str:
    return f"{int(value):,}"


def _n(value: Any, one: str) -> str:
    """A count of the inputs with its noun: "1 promoter", "1,200 answers"."""
    return count_text(int(value), one)


def _cents(value: Any) -> str:
    return money_exact(Decimal(str(value)))


def tile_working(section: str, key: str, report: Mapping[str, Any], display: str) -> str:
    """How a tile's number came out of the snapshot's inputs, with the figures themselves:
    "(11 promoters − 6 detractors) / 25 answers × 100 = 20.0". For a tile with no value,
    the reason there is none (no answers, no MRR on the first day). ``display``: the tile's
    value as printed. "" when the snapshot lacks an input (a row written before it was
    stored)."""
    entry = report.get(section, {}).get(key)
    if not entry:
        return ""
    inputs = entry.get("inputs") or {}
    period = report.get("period", {})
    first = utc.day_text(period["start"]) if period.get("start") else "the first day"
    end = utc.day_text(period["end"]) if period.get("end") else "the end day"
    none = entry.get("value") is None
    try:
        if key == "mrr_end":
            customers = report["revenue"]["customers_end"]["value"]
            return (
                f"{_cents(entry['value'])}: the MRR of the contracts covering {end}, the day "
                f"after the period, over {_n(customers, 'customer')}"
            )
        if key in ("nrr", "grr", "revenue_churn_rate"):
            start = _cents(inputs["start_mrr"])
            if none:
                return f"no MRR on the period's first day ({first}) to measure against"
            lost = f"{_cents(inputs['contraction'])} contraction − {_cents(inputs['churn'])} churn"
            if key == "nrr":
                kept = f"({start} start + {_cents(inputs['expansion'])} expansion − {lost})"
            elif key == "grr":
                kept = f"({start} start − {lost})"
            else:
                kept = (
                    f"({_cents(inputs['contraction'])} contraction + "
                    f"{_cents(inputs['churn'])} churn)"
                )
            return f"{kept} / {start} start × 100 = {display}"
        if key == "logo_churn_rate":
            if none:
                return f"no customers on the period's first day ({first})"
            customers, churned = _count(inputs["customers_start"]), inputs["churned_customers"]
            return (
                f"{_count(churned)} of the {_n(inputs['customers_start'], 'customer')} on "
                f"{first} no longer paying on {end}: "
                f"{_count(churned)} / {customers} × 100 = {display}"
            )
        if key == "expansion_mrr":
            accounts = inputs["accounts"]
            return (
                f"{_cents(entry['value'])} more MRR on {end} than on {first}, from "
                f"{_n(accounts, 'account')} paying on both days"
            )
        if key == "nps":
            if none:
                return "no NPS answers in the period"
            return (
                f"({_n(inputs['promoters'], 'promoter')} − "
                f"{_n(inputs['detractors'], 'detractor')}) / {_n(inputs['responses'], 'answer')} "
                f"× 100 = {display}; the {_n(inputs['passives'], 'passive')} (7 or 8) "
                f"{'counts' if inputs['passives'] == 1 else 'count'} only among the answers"
            )
        if key == "csat":
            if none:
                return "no CSAT answers in the period"
            satisfied, responses = _count(inputs["satisfied_4_or_5"]), _count(inputs["responses"])
            were = "was" if inputs["satisfied_4_or_5"] == 1 else "were"
            return (
                f"{satisfied} of {_n(inputs['responses'], 'answer')} {were} 4 or 5: "
                f"{satisfied} / {responses} × 100 = {display}"
            )
        if key == "ces":
            if none:
                return "no CES answers in the period"
            responses = inputs["responses"]
            return (
                f"the mean of {_n(responses, 'answer')} "
                f"(1 to 7, 7 = very easy) = {display}; {_count(inputs['easy_5_or_more'])} "
                "of them 5 or more"
            )
        if key == "ttfv":
            if none:
                return inputs.get("note") or "no account that became a customer in the period"
            reached, waiting = inputs["reached"], len(inputs.get("not_yet") or [])
            return (
                f"the median of {_count(reached)} new customer{'s' if reached != 1 else ''}' "
                f"days to first value = {display}; {_count(waiting)} not there yet"
            )
        if key == "seat_utilisation":
            if none:
                return "no licensed seats on the period's last day"
            active, seats = _count(inputs["active_users_30d"]), _count(inputs["licensed_seats"])
            return (
                f"{active} users active in the 30 days / {seats} licensed seats "
                f"({_count(inputs['accounts_with_seats'])} accounts with seats) × 100 = {display}"
            )
    except (KeyError, TypeError, ValueError, InvalidOperation):
        return ""
    return ""


def _delta(
    value: float | None,
    previous: float | None,
    unit: str,
    higher_better: bool,
    *,
    earlier: bool = False,
) -> dict:
    """The change against the period before, in words. ``earlier``: there is a snapshot of
    that period (then a value missing there means no data then, e.g. no survey answers,
    not that there was no period)."""
    if not earlier:
        return {"text": "no earlier period", "tone": "idle"}
    if value is None:
        return {"text": "no value to compare", "tone": "idle"}
    if previous is None:
        return {"text": "no value the month before", "tone": "idle"}
    # in decimal, from the stored figures: 40.02 − 40.04 is −0.02 exactly, not a float's
    # −0.019999…, and two equal figures differ by exactly 0
    diff = Decimal(str(value)) - Decimal(str(previous))
    if diff == 0:
        return {"text": "no change vs previous", "tone": "idle"}
    # money in the tile's short form, but to the cent under 50 cents (the short form would
    # read "$0"); a rate in points with the decimals that keep a non-zero change from reading
    # 0.0 (GRR down 0.01 pp is "−0.01 pp"), so the sign always goes with a non-zero figure
    text = change_text(
        diff,
        unit,
        money=lambda size: money_exact(size) if size < Decimal("0.5") else fmt(float(size), unit),
    )
    tone = "good" if (diff > 0) == higher_better else "bad"
    return {"text": f"{text} vs previous", "tone": tone}


# --- scope ---------------------------------------------------------------------------------


def has_team(user: User, owners: list[User]) -> bool:
    """A manager with someone reporting to them gets "My team" (``owners``: their choices,
    the manager and their reports)."""
    return user.role == Role.MANAGER and len(owners) > 1


def resolve_scope(
    user: User,
    params: Mapping[str, str],
    owners: list[User],
    segments: list[str],
    *,
    owns_accounts: Callable[[], bool] | None = None,
) -> tuple[selectors.DashboardScope, list[str]]:
    """Admins see the book (no owner), a segment or an owner; a manager their team (no
    owner: their own and their reports' accounts, ``KpiScope.TEAM``) or one of its owners;
    a CSM their own book. ``owners``: the user's ``selectors.owner_choices``;
    ``owns_accounts``: says whether the user owns accounts, called only when it matters
    (their own book is the fallback when no owner is asked for); None: one query then.
    The reports app passes both to check many users in a fixed number of queries."""
    notices = []
    segment = params.get("segment", "")
    owner = params.get("owner", "")
    owner_ids = {str(u.pk): u for u in owners}
    if segment and segment not in segments:
        notices.append(f"Unknown segment “{segment}” ignored.")
        segment = ""
    if owner and owner not in owner_ids:
        notices.append(f"Unknown owner “{owner}” ignored.")
        owner = ""
    if segment and owner:
        notices.append("Segment and owner cannot be combined: showing the segment.")
        owner = ""
    if user.role == Role.ADMIN:
        if segment:
            return selectors.DashboardScope(
                KpiScope.SEGMENT, segment, segment, segment=segment
            ), notices
        if owner:
            u = owner_ids[owner]
            return selectors.DashboardScope(KpiScope.OWNER, owner, str(u), owner=u), notices
        return selectors.DashboardScope(KpiScope.ALL, "", "Whole book"), notices
    team = has_team(user, owners)
    if segment:
        notices.append(
            "Segment views are for admins: showing "
            + ("your team." if team and not owner else "an owner's book.")
        )
    if not owner and team:
        return selectors.DashboardScope(KpiScope.TEAM, str(user.pk), "My team", team=user), notices
    if not owner:
        if owns_accounts is None:
            mine = Account.objects.filter(owner=user).exists()
        else:
            mine = owns_accounts()
        candidates = [u for u in owners if u.pk != user.pk]
        chosen = user if mine or not candidates else candidates[0]
        owner = str(chosen.pk)
    u = owner_ids.get(owner, user)
    return selectors.DashboardScope(KpiScope.OWNER, str(u.pk), str(u), owner=u), notices


def _standings(user: User, scope: selectors.DashboardScope):
    qs = selectors.standings_for(user, scope="team")
    if scope.segment:
        qs = qs.filter(account__segment=scope.segment)
    if scope.owner is not None:
        qs = qs.filter(account__owner=scope.owner)
    return qs


def scope_accounts(user: User, scope: selectors.DashboardScope):
    """The accounts the KPI engine reads for a drill-down or the cohorts, before it narrows
    them to the scope's segment or owner: the team's, or all the user may see."""
    if scope.team is not None:
        return selectors.team_accounts(scope.team)
    return Account.objects.visible_to(user)


def band_queue_url(user: User, scope: selectors.DashboardScope, band: str) -> str:
    """The queue of a band of the health distribution: the same accounts as its count (the
    scope's current customers in that band; the queue leaves churned accounts out unless
    asked, as the distribution does). A CSM's queue has no team view: their own book is
    the dashboard's scope."""
    query = {"scope": "team"} if selectors.team_scope_allowed(user) else {}
    query["band"] = band
    if scope.owner is not None:
        query["owner"] = str(scope.owner.pk)
    if scope.segment:
        query["segment"] = scope.segment
    return reverse("home") + "?" + urlencode(query)


def _other_owner(user: User, scope: selectors.DashboardScope) -> bool:
    """The scope is one owner's book and not the user's own."""
    return scope.owner is not None and scope.owner.pk != user.pk


def dashboard_context(user: User, params: Mapping[str, str]) -> dict[str, Any]:
    owners = selectors.owner_choices(user)
    segments = selectors.segment_choices(user) if user.role == Role.ADMIN else []
    scope, notices = resolve_scope(user, params, owners, segments)
    days = selectors.kpi_days(scope)
    day = days[0] if days else None
    wanted = params.get("day", "")
    if wanted:
        try:
            parsed = dt.date.fromisoformat(wanted)
        except ValueError:
            parsed = None
        if parsed in days:
            day = parsed
        else:
            notices.append(f"No KPI snapshot for “{wanted}”: showing the latest.")
    current = previous = None
    if day is not None:
        current, previous = selectors.kpi_pair(scope, day)
    report = current.report if current else {}
    before = previous.report if previous else {}
    base_query = {"segment": scope.segment, "owner": str(scope.owner.pk) if scope.owner else ""}
    base_query = {k: v for k, v in base_query.items() if v}
    if day:
        base_query["day"] = day.isoformat()
    links = integrations.links()
    tiles = []
    for section, key, label, unit, higher, anchor, drill in TILES:
        entry = report.get(section, {}).get(key, {})
        value = _number(entry.get("value"))
        prev = _number(before.get(section, {}).get(key, {}).get("value")) if before else None
        if drill in DRILLS:
            drill_url = (
                reverse("workspace:drilldown") + "?" + urlencode({**base_query, "metric": drill})
            )
        elif drill == "surveys" and links.get("survey_results") and not _other_owner(user, scope):
            # the results page covers the accounts the user may see, by segment: the same
            # scope as the tile's unless the tile is another owner's book (no link then)
            drill_url = links["survey_results"] + (
                "?" + urlencode({"segment": scope.segment}) if scope.segment else ""
            )
        else:
            drill_url = None
        display = fmt(value, unit)
        working = tile_working(section, key, report, display)
        note = (entry.get("inputs") or {}).get("note", "")
        tiles.append(
            {
                "key": key,
                "label": label,
                "value": value,
                "display": display,
                "working": working,
                "previous": prev,
                "previous_display": fmt(prev, unit),
                "unit": entry.get("unit", ""),
                "kind": unit,
                # the snapshot's own figures (Decimal, to the cent), for the CSV
                "exact": _decimal(entry.get("value")),
                "previous_exact": _decimal(
                    before.get(section, {}).get(key, {}).get("value") if before else None
                ),
                "delta": _delta(value, prev, unit, higher, earlier=bool(before)),
                "docs": docs_url(anchor),
                "drill": drill_url,
                # a tile without a value says why beside the dash, not only on hover
                "note": note or (working if value is None and entry else ""),
            }
        )
    for hook in settings.DASHBOARD_TILE_HOOKS:  # targets, on/off track, trend (reports app)
        import_string(hook)(tiles, scope_kind=scope.kind, scope_key=scope.key, day=day)
    distribution = selectors.health_distribution(_standings(user, scope))
    # each account counts from its own data day: the page names the day(s), once
    distribution["as_of"] = utc.as_of_text(
        distribution["first_day"], distribution["last_day"], today=selectors.today()
    )
    for band in distribution["bands"]:
        band["url"] = band_queue_url(user, scope, band["band"])
    revenue = report.get("revenue", {})
    waterfall = []
    if revenue:
        waterfall.append(
            {
                "label": "Start MRR",
                "amount": _number(revenue["mrr_start"]["value"]),
                "kind": "total",
                "metric": "mrr_start",
            }
        )
        for name in MOVEMENTS:
            amount = _number(revenue[f"{name}_mrr"]["value"]) or 0
            sign = -1 if name in ("contraction", "churn") else 1
            waterfall.append(
                {
                    "label": name.capitalize(),
                    "amount": sign * amount,
                    "kind": name,
                    "metric": name,
                    "accounts": revenue[f"{name}_mrr"]["inputs"].get("accounts"),
                }
            )
        waterfall.append(
            {
                "label": "End MRR",
                "amount": _number(revenue["mrr_end"]["value"]),
                "kind": "total",
                "metric": "mrr_end",
            }
        )
        for step in waterfall:
            step["url"] = (
                reverse("workspace:drilldown")
                + "?"
                + urlencode({**base_query, "metric": step["metric"]})
            )
            step["display"] = fmt(abs(step["amount"] or 0), "money")
            # the table prints every step to the cent: Start + New + Reactivation +
            # Expansion − Contraction − Churn = End can be checked on screen
            step["exact"] = money_exact(abs(step["amount"] or 0))
    return {
        "scope": scope,
        "notices": notices,
        "days": days[:60],
        "day": day,
        "period_start": report.get("period", {}).get("start"),
        "period_last_day": report.get("period", {}).get("as_of"),
        "period_end": report.get("period", {}).get("end"),
        "previous_day": previous.day if previous else None,
        "tiles": tiles,
        "distribution": distribution,
        "renewals_url": reverse("workspace:renewals")
        + "?"
        + urlencode(
            {
                "renewal": selectors.RENEWALS_DUE_DAYS,
                **({"owner": base_query["owner"]} if "owner" in base_query else {}),
                **({"segment": base_query["segment"]} if "segment" in base_query else {}),
            }
        ),
        "waterfall": waterfall,
        # a book with no MRR yet (a new installation): axes around nothing say less than words
        "waterfall_empty": not any(step["amount"] for step in waterfall),
        "owners": owners,
        "segments": segments,
        "is_admin": user.role == Role.ADMIN,
        "has_team": has_team(user, owners),
        "query": base_query,
        "csv_url": reverse("workspace:dashboard")
        + "?"
        + urlencode({**base_query, "format": "csv"}),
        "docs": docs_url(""),
    }


def period_day(
    scope: selectors.DashboardScope, params: Mapping[str, str], notices: list[str]
) -> dt.date:
    """The last day of the dashboard's period for ``scope``: ``?day=`` when it has a KPI
    snapshot, else the latest snapshot's day (what the dashboard shows by default), else
    yesterday (the night's day, before any snapshot). A ``?day=`` not used says why in
    ``notices``. One query."""
    days = selectors.kpi_days(scope)
    day = days[0] if days else selectors.today() - dt.timedelta(days=1)
    wanted = params.get("day", "")
    if wanted:
        try:
            parsed = dt.date.fromisoformat(wanted)
            if parsed in days:
                day = parsed
            else:
                notices.append(f"No KPI snapshot for “{wanted}”: showing the latest.")
        except ValueError:
            notices.append(f"“{wanted}” is not a date: showing the latest.")
    return day


def drilldown_context(
    user: User,
    params: Mapping[str, str],
    *,
    limit: int | None = DRILL_ROWS,
    name_rows: bool = True,
) -> dict[str, Any]:
    """The accounts behind a number of the dashboard's period and scope, over the accounts
    the user can see: an MRR movement (the same engine as the API's /kpis/movements/), or
    the MRR on the period's first or end day (``mrr_start``, ``mrr_end``: each account with
    its MRR that day, ``revenue.contract_facts`` as in the report, so they sum to the
    tile). ``limit``: rows kept, the largest first (None: all, for the CSV); ``count`` and
    ``totals`` always cover every account. ``name_rows=False`` leaves the rows without
    their accounts' current name, segment and owner (``drilldown_csv_rows`` adds them a
    chunk at a time)."""
    owners = selectors.owner_choices(user)
    segments = selectors.segment_choices(user) if user.role == Role.ADMIN else []
    scope, notices = resolve_scope(user, params, owners, segments)
    metric = params.get("metric", "movements")
    if metric not in DRILLS:
        notices.append(f"Unknown number “{metric}”: showing every MRR movement.")
        metric = "movements"
    day = period_day(scope, params, notices)
    from metrics.services import kpi_snapshot_period

    start, end = kpi_snapshot_period(day)
    rows: list[dict[str, Any]] = []
    totals: dict[str, Any] = {}
    scope_args = {
        "segment": scope.segment or None,
        "owner": scope.owner.email if scope.owner else None,
        "accounts": scope_accounts(user, scope),
    }
    if metric in MRR_DRILLS:
        on = start if MRR_DRILLS[metric] == "start" else end
        try:
            scoped, _ = kpis.scope_resolve(**scope_args)
            facts = revenue.contract_facts(scoped, days=[on])
        except ValidationError as exc:
            notices.extend(m for msgs in exc.message_dict.values() for m in msgs)
            facts = []
        total = Decimal(0)
        for f in facts:
            if f.mrr[on]:  # accounts without MRR that day add nothing
                total += f.mrr[on]
                rows.append(
                    {
                        "id": f.id,
                        "external_id": f.external_id,
                        "name": f.name,
                        "amount": f.mrr[on],
                        "kind": "",
                    }
                )
        totals[f"MRR on {utc.day_text(on)}"] = money_exact(total)
        totals["accounts"] = f"{len(rows):,}"
    else:
        on = None
        try:
            report = kpis.movements_report(start=start, end=end, **scope_args)
        except ValidationError as exc:
            notices.extend(m for msgs in exc.message_dict.values() for m in msgs)
            report = {"movements": {}}
        wanted_kinds = MOVEMENTS if metric == "movements" else (metric,)
        for kind in wanted_kinds:
            move = report["movements"].get(kind, {"amount": "0", "accounts": []})
            # to the cent and signed, as the dashboard's movements table prints them: the
            # totals are checked against it by eye, and churn is MRR lost, not gained
            totals[kind] = movement_text(kind, move["amount"])
            for entry in move["accounts"]:
                rows.append({**_account_entry(entry), "kind": kind})
    rows.sort(key=lambda r: (-abs(_number(r["amount"]) or 0), r.get("name", ""), r["id"] or 0))
    count = len(rows)
    if limit is not None:
        rows = rows[:limit]
    if name_rows:
        _name_rows(rows, on)
    keep = ("segment", "owner", "day")
    return {
        "scope": scope,
        "metric": metric,
        "title": MRR_TITLES.get(metric) or f"{metric.capitalize()} MRR",
        "mrr_on": on,
        "notices": notices,
        "start": start,
        "end": end,
        "last_day": end - dt.timedelta(days=1),
        "rows": rows,
        "count": count,
        "totals": totals,
        "back": reverse("workspace:dashboard")
        + "?"
        + urlencode({k: v for k, v in params.items() if k in keep}),
        "csv_url": reverse("workspace:drilldown")
        + "?"
        + urlencode(
            {
                **{k: v for k, v in params.items() if k in keep},
                "metric": metric,
                "format": "csv",
            }
        ),
        "docs": docs_url(
            "basics-mrr-customers-the-two-days-of-a-period"
            if metric in MRR_DRILLS
            else "revenue-and-retention-revenue-retention"
        ),
    }


def _name_rows(rows: list[dict[str, Any]], on: dt.date | None) -> None:
    """The accounts' current name, external id, segment and owner on ``rows``, and the
    amount as the page prints it. One query."""
    ids = [r["id"] for r in rows if r.get("id")]
    accounts = {
        a.pk: a
        for a in Account.objects.filter(pk__in=ids)
        .select_related("owner")
        .only(
            "pk",
            "external_id",
            "name",
            "segment",
            "owner__email",
            "owner__first_name",
            "owner__last_name",
        )
    }
    for r in rows:
        a = accounts.get(r.get("id"))
        r["name"] = a.name if a else r.get("name", "")
        r["external_id"] = a.external_id if a else r.get("external_id", "")
        r["segment"] = a.segment if a else ""
        r["owner"] = str(a.owner) if a and a.owner else ""
        r["amount_text"] = (
            money_exact(Decimal(str(r["amount"]))) if on else movement_text(r["kind"], r["amount"])
        )


TILES_CSV_HEADER = [
    "Metric",
    "Value",
    "Previous period",
    "Unit",
    "Currency",
    "Period first day",
    "Period last day",
    "Compared with the month ending",
]


def tiles_csv_rows(context: Mapping[str, Any]) -> list[list[Any]]:
    """The dashboard's tiles as CSV rows: the snapshot's figures (a tile's "$1.5k" is
    1500.00 here; a ratio to four decimal places: ``figure_cell``), money with the currency
    in its own column, other units in words."""
    units = {"money": "", "pct": "%", "days": "days"}
    return [
        [
            t["label"],
            figure_cell(t["exact"], money=t["kind"] == "money"),
            figure_cell(t["previous_exact"], money=t["kind"] == "money"),
            units.get(t["kind"], t["kind"]) if t["kind"] != "money" else "",
            settings.CURRENCY if t["kind"] == "money" else "",
            context["period_start"],
            context["period_last_day"],
            context["previous_day"],
        ]
        for t in context["tiles"]
    ]


CSV_CHUNK = 2000  # accounts named per query while the CSV streams


def drilldown_csv_header(context: Mapping[str, Any]) -> list[str]:
    if context["mrr_on"]:
        return ["Account ID", "External ID", "Account", "Segment", "Owner", "MRR on",
                "MRR", "Currency"]  # fmt: skip
    return ["Account ID", "External ID", "Account", "Segment", "Owner", "Movement",
            "MRR change", "Currency", "Period first day", "Period last day"]  # fmt: skip


def drilldown_csv_rows(context: Mapping[str, Any]) -> Iterator[list[Any]]:
    """The drill-down's rows for its CSV (``drilldown_context(limit=None,
    name_rows=False)``), named a chunk of ``CSV_CHUNK`` accounts at a time, so a book of
    100,000 accounts never holds 100,000 account rows at once (nor sends 100,000 ids in one
    query). A movement's change is signed, as the page prints it: contraction and churn are
    negative, so the column sums to the net change. The period's end is its last day (the
    engine's end is the day after)."""
    rows, on = context["rows"], context["mrr_on"]
    last = context["end"] - dt.timedelta(days=1)
    for begin in range(0, len(rows), CSV_CHUNK):
        chunk = rows[begin : begin + CSV_CHUNK]
        _name_rows(chunk, on)
        for r in chunk:
            head = [r["id"], r["external_id"], r["name"], r["segment"], r["owner"]]
            amount = Decimal(str(r["amount"] or 0))
            if on:
                yield [*head, on, amount, settings.CURRENCY]
            else:
                sign = -1 if r["kind"] in ("contraction", "churn") else 1
                yield [*head, r["kind"], sign * amount, settings.CURRENCY, context["start"], last]


MRR_TITLES = {"movements": "MRR movements", "mrr_start": "Start MRR", "mrr_end": "MRR"}


def _account_entry(entry: Any) -> dict[str, Any]:
    """A movement's account entry, whatever its exact shape in the engine's output."""
    if isinstance(entry, dict):
        amount = entry.get("amount", entry.get("delta", entry.get("mrr", "")))
        return {
            "id": entry.get("id") or entry.get("account_id"),
            "amount": amount,
            "name": entry.get("name", ""),
            "external_id": entry.get("external_id", ""),
        }
    return {"id": entry, "amount": ""}


COHORT_MONTHS = 12
COHORT_CACHE_SECONDS = 3600


def cohorts_context(user: User, params: Mapping[str, str]) -> dict[str, Any]:
    """The cohort retention heatmap of the last 12 months for the dashboard's scope (the KPI
    engine's ``cohorts_report`` over the accounts the user can see), up to the end of the
    day the dashboard's period ends on (``period_day``: ``?day=`` or the latest snapshot's),
    never into today's unfinished day. Loaded after the page (it reads every contract of
    the scope) and kept an hour in the cache: contracts change with imports, not by the
    minute, and the key names the book's version (``accounts.book``), so an import of
    accounts or contracts is shown at once."""
    from django.core.cache import cache

    from metrics.kpis.common import add_months, month_start

    owners = selectors.owner_choices(user)
    segments = selectors.segment_choices(user) if user.role == Role.ADMIN else []
    scope, notices = resolve_scope(user, params, owners, segments)
    last_day = period_day(scope, params, notices)
    end = last_day + dt.timedelta(days=1)  # exclusive, as the KPI period's
    start = add_months(month_start(end), -COHORT_MONTHS)
    key = f"workspace:cohorts:{user.role}:{scope.kind}:{scope.key}:{start}:{end}:{book.version()}"
    if user.role != Role.ADMIN:
        key += f":{user.pk}"
    rows = cache.get(key)
    if rows is None:
        report = kpis.cohorts_report(
            start=start,
            end=end,
            segment=scope.segment or None,
            owner=scope.owner.email if scope.owner else None,
            accounts=scope_accounts(user, scope),
        )
        rows = report["rows"]
        cache.set(key, rows, COHORT_CACHE_SECONDS)
    width = max((len(r["columns"]) for r in rows), default=0)
    for row in rows:
        for col in row["columns"]:
            col["heat"] = min(10, max(0, round((_number(col.get("logos")) or 0) / 10)))
            col["logos_text"] = pct_whole(col.get("logos"))
            col["mrr_text"] = pct_whole(col.get("mrr"))
    return {
        "cohorts": rows,
        "cohort_width": range(width),
        "start": start,
        "end": end,
        "last_day": last_day,
        "notices": notices,
    }
