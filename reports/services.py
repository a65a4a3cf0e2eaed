"""KPI targets and what follows from them: validation, the defaults, the evaluation at the
end of each target's review period (a pipeline-final hook: ``settings.PIPELINE_FINAL_HOOKS``
lists ``reports.services.targets_evaluate``), alerts through the outbox, the dashboard's
target / on-track / trend per tile, the off-track list, the weekly digests and the scheduled
CSV reports.

KPI values are read from the nightly ``metrics.KpiSnapshot`` rows (the trailing month ending
the evaluated day, per scope), never recomputed here."""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Callable, Iterable
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q, prefetch_related_objects
from django.template.loader import render_to_string
from django.urls import reverse

from accounts import once, utc
from accounts.exports import csv_safe, export_filename, figure_cell
from accounts.models import Account, AccountLifecycle, ChangeRecord, Role, TimelineEntry, User
from accounts.money import money_exact
from accounts.services import change_record
from accounts.stale import changed_since, stale_words
from config.site import absolute_url
from metrics import kpis
from metrics.kpis.common import change_text, percent_text
from metrics.models import AccountStanding, KpiSnapshot
from metrics.services import BAND_CHANGED_KIND
from metrics.standings import renews_within
from outbox import services as outbox
from outbox import slack
from workspace import dashboard, selectors

from . import catalog
from .models import Alert, DigestSubscription, KpiTarget, ScheduledReport, ScopeKind

logger = logging.getLogger(__name__)

UNSUBSCRIBE_SALT = "reports.digest-unsubscribe"
TREND_PERIODS = 6
TOP_MOVERS = 5


# --- targets ---------------------------------------------------------------------------------


def target_errors(data: dict[str, Any]) -> dict[str, list[str]]:
    """Field errors of a target (kpi, scope_kind, scope_key, direction, value, cadence,
    max_change, owner); empty when it can be saved."""
    errors: dict[str, list[str]] = {}
    kpi = data.get("kpi")
    if kpi not in catalog.KPIS:
        errors["kpi"] = [f"unknown KPI {kpi!r}; one of {', '.join(catalog.KPIS)}"]
    if data.get("direction") not in (catalog.AT_LEAST, catalog.AT_MOST):
        errors["direction"] = ["must be at_least or at_most"]
    if data.get("cadence") not in catalog.CADENCES:
        errors["cadence"] = [f"must be one of {', '.join(catalog.CADENCES)}"]
    if data.get("value") is None or data.get("value") == "":
        errors["value"] = ["a target value is required"]
    elif "kpi" not in errors:
        problems = catalog.value_check(kpi, data["value"])
        if problems:
            errors["value"] = problems
    change = data.get("max_change")
    if change not in (None, ""):
        number = catalog.number(change)
        if number is None or number <= 0:
            errors["max_change"] = [f"must be a positive number, got {change!r}"]
    kind = data.get("scope_kind") or ScopeKind.ALL
    if kind not in ScopeKind.values:
        errors["scope_kind"] = ["must be all, segment or owner"]
    else:
        _key, problem = scope_key_resolve(kind, data.get("scope_key") or "")
        if problem:
            errors["scope_key"] = [problem]
    return errors


LISTED = 12  # at most this many segments or owners named in an error


@transaction.atomic
def target_save(*, form, user: User) -> KpiTarget:
    """Save a valid ``TargetForm`` (a new target or a change), ``user`` named as the last to
    save it. A change is refused, writing nothing, when the target was saved by someone else
    after the page was opened (the form's ``opened_at``): the form sends every field, so
    saving would silently undo their change. A save that changes nothing is no error: a
    second click on Save sends the same form again."""
    target = form.instance
    if target.pk is not None:
        rows = KpiTarget.objects.select_related("updated_by")
        locked = rows.select_for_update(of=("self",)).get(pk=target.pk)
        opened_at = form.cleaned_data.get("opened_at") or ""
        fields = form.Meta.fields
        same = all(getattr(locked, f) == form.cleaned_data.get(f) for f in fields)
        if same:
            return locked
        if changed_since(opened_at, locked.updated_at):
            raise ValidationError(
                stale_words(
                    changed="This target was changed",
                    by=locked.updated_by,
                    at=locked.updated_at,
                    see="the target as it is now",
                )
            )
    target.updated_by = user
    return form.save()


def scheduled_report_create(
    *, form, user: User, key: str = ""
) -> tuple[ScheduledReport | None, bool]:
    """Save a valid new ``ScheduledReportForm`` as ``user``'s report; returns it and whether
    it is new. ``key``: the form's key (``accounts.once``): the same form sent again (a double
    click, a request resent) makes nothing and returns the report the first send made (None
    if it was removed since), not a second one that would mail its recipients twice each
    period. Two sends at the same instant meet the key's unique index: the second waits for
    the first and returns its report."""
    with transaction.atomic():
        if not once.claim(key):
            return once.made_by(key, ScheduledReport), False
        report = form.save(commit=False)
        report.created_by = user
        report.save()
        form.save_m2m()
        once.made(key, report)
    return report, True


def target_remove(*, target: KpiTarget, by: User) -> bool:
    """Remove a target and record it (``ChangeRecord``: which, who, when), listed under the
    targets page's "Recently removed". False, nothing recorded, when it was removed already
    (two clicks, or two people at once: one removal, one record)."""
    name = (
        f"{target.kpi_label} {target_text(target)}, {target.get_cadence_display().lower()}, "
        f"{scope_texts([target])[(target.scope_kind, target.scope_key)]}"
    )
    return _removed_and_recorded(target, subject=ChangeRecord.Subject.KPI_TARGET, name=name, by=by)


def scheduled_report_remove(*, report: ScheduledReport, by: User) -> bool:
    """Remove a scheduled report (its recipients get no more of it) and record it, listed
    under the page's "Recently removed". False, nothing recorded, when it was removed
    already."""
    scope = scope_texts([report])[(report.scope_kind, report.scope_key)]
    name = f"“{report.name}”, {report.get_cadence_display().lower()}, {scope}"
    return _removed_and_recorded(
        report, subject=ChangeRecord.Subject.SCHEDULED_REPORT, name=name, by=by
    )


def _removed_and_recorded(
    row: KpiTarget | ScheduledReport, *, subject: ChangeRecord.Subject, name: str, by: User
) -> bool:
    """Delete ``row`` and, in the same transaction, record its removal under ``name``;
    False, nothing recorded, when another removal took it first (one removal, one record)."""
    with transaction.atomic():
        removed, _ = type(row).objects.filter(pk=row.pk).delete()
        if removed:
            change_record(
                subject=subject,
                subject_id=row.pk,
                name=name,
                action=ChangeRecord.Action.REMOVED,
                by=by,
            )
    return bool(removed)


def _listing(names: list[str]) -> str:
    more = f" and {len(names) - LISTED} more" if len(names) > LISTED else ""
    return ", ".join(names[:LISTED]) + more


def book_owners_queryset():
    """The users who own accounts (whose book can be a scope), by name then email."""
    return User.objects.filter(pk__in=Account.objects.values("owner_id")).order_by(
        "first_name", "last_name", "email"
    )


def owner_label(user: User) -> str:
    """ "Sam Silva (sam@example.com)", or the email alone when the user has no name."""
    name = user.get_full_name()
    return f"{name} ({user.email})" if name else user.email


def scope_key_resolve(kind: str, key: str) -> tuple[str, str | None]:
    """The stored key of a scope from what a person or an API client gave, and the problem
    with it (None when there is none).

    A segment is matched ignoring case and resolves to its stored spelling ("smb" → "SMB");
    an owner's book is given by the owner's user id (what is stored, as KPI snapshots key
    it), email or full name ("Sam Silva"), and resolves to the user id. An unknown value is
    refused with the values that exist."""
    key = (key or "").strip()
    if kind == ScopeKind.ALL:
        return ("", "leave empty for all accounts") if key else ("", None)
    if kind == ScopeKind.SEGMENT:
        if not key:
            return "", "name a segment"
        if Account.objects.filter(segment=key).exists():
            return key, None
        known = Account.objects.segments()
        same = [s for s in known if s.casefold() == key.casefold()]
        if len(same) == 1:
            return same[0], None
        if same:
            return key, f"segment {key!r} matches {_listing(same)}: give the exact spelling"
        if not known:
            return key, f"no account has segment {key!r}: no account has a segment yet"
        return key, f"no account has segment {key!r}; the segments are {_listing(known)}"
    if kind == ScopeKind.OWNER:
        if not key:
            return "", "choose the account owner whose book this is"
        return _user_key_resolve(
            list(book_owners_queryset()),
            key,
            who="account owners",
            none_yet="no account owner matches {key!r}: no account has an owner yet",
            unknown=(
                "no account owner matches {key!r} (a user id, email or full name); "
                "the owners are {listed}"
            ),
        )
    if kind == ScopeKind.TEAM:
        if not key:
            return "", "choose the manager whose team this is"
        return _user_key_resolve(
            list(team_managers_queryset()),
            key,
            who="managers",
            none_yet="no manager matches {key!r}: nobody reports to a manager yet",
            unknown="no manager with a team matches {key!r}; the managers are {listed}",
        )
    raise ValueError(f"unknown scope kind {kind!r}")


def _user_key_resolve(
    users: list[User], key: str, *, who: str, none_yet: str, unknown: str
) -> tuple[str, str | None]:
    """The user id a typed owner or team key names among ``users`` (``_users_matching``),
    else the problem: several of ``who`` match (give the email), ``none_yet`` when there is
    nobody to match, else ``unknown`` (both formatted with ``key``, and ``unknown`` with the
    ``listed`` users)."""
    found = _users_matching(users, key)
    if len(found) == 1:
        return str(found[0].pk), None
    if found:
        emails = _listing([u.email for u in found])
        return key, f"several {who} are named {key!r}: give the email ({emails})"
    if not users:
        return key, none_yet.format(key=key)
    return key, unknown.format(key=key, listed=_listing([owner_label(u) for u in users]))


def _users_matching(users: list[User], key: str) -> list[User]:
    """The ``users`` a typed scope key names: a user id, an email (any case) or a full name
    (any case and spacing)."""
    if key.isdigit():
        return [u for u in users if u.pk == int(key)]
    if "@" in key:
        return [u for u in users if u.email.casefold() == key.casefold()]
    wanted = " ".join(key.split()).casefold()
    return [u for u in users if " ".join(u.get_full_name().split()).casefold() == wanted]


def team_managers_queryset():
    """The users someone reports to (whose team can be a scope), by name then email."""
    return User.objects.filter(pk__in=User.objects.values("manager_id")).order_by(
        "first_name", "last_name", "email"
    )


# --- who may see a scope's figures -----------------------------------------------------------
#
# The dashboard decides which KPI scopes a user sees (``workspace.dashboard.resolve_scope``:
# admins the book, a segment or an owner; a manager their team or one owner of it; a CSM
# their own book). Targets, alerts, the off-track list, the digest and the scheduled reports
# carry a scope's figures too, so they ask the same question through the same rule: the
# scope is visible when the dashboard, asked for it, would show that very scope.

ScopeCheck = Callable[[str, str], "str | None"]


def _role_words(user: User) -> str:
    if user.role == Role.MANAGER:
        return "a manager sees their team's accounts only"
    return "a CSM sees their own book only"


def scope_check(user: User) -> ScopeCheck:
    """A function ``(scope_kind, scope_key) → None`` when ``user`` may see that scope's
    figures, else why not (a phrase naming neither the user nor the scope). ``scope_checks``
    of one user: none for an admin, at most three queries otherwise (the role unless read
    already, a manager's team, whether they own accounts); build one per user and call it
    for each scope of a list."""
    return scope_checks([user])[user.pk]


def scope_checks(users: Iterable[User]) -> dict[int, ScopeCheck]:
    """``scope_check`` of several users, by user id, in a fixed number of queries whatever
    their number: at most three (the roles not read yet, the managers' teams, and which of
    them own accounts once a check needs it); then each scope asked is decided in Python by
    the dashboard's rule, ``workspace.dashboard.resolve_scope``, given what it would read."""
    users = list(users)
    judged = [u for u in users if u.is_active]
    # ``User.role`` reads the groups once per user object: load them for all at once,
    # unless the role was read already (the signed-in user's, by the view's access check)
    prefetch_related_objects(
        [u for u in judged if not u.is_superuser and "role" not in u.__dict__], "groups"
    )
    seeing = [u for u in judged if u.role in (Role.MANAGER, Role.CSM)]
    owners = selectors.owner_choices_by_user(seeing)

    @functools.cache
    def owning() -> frozenset[int]:
        # read once for all of them, and only when a check falls back to the user's own
        # book (a CSM, or a manager without a team, asked for a scope they may not see)
        ids = [u.pk for u in seeing]
        return frozenset(
            Account.objects.filter(owner_id__in=ids)
            .order_by()  # no default ordering: DISTINCT over the owner alone
            .values_list("owner_id", flat=True)
            .distinct()
        )

    return {
        u.pk: _scope_check(
            u, owners=owners.get(u.pk, []), owns_accounts=lambda pk=u.pk: pk in owning()
        )
        for u in users
    }


def _scope_check(
    user: User, *, owners: list[User], owns_accounts: Callable[[], bool]
) -> ScopeCheck:
    """The rule of ``scope_check`` with what it reads given: the user's owner choices
    (``selectors.owner_choices``) and whether they own accounts (asked when needed)."""
    if not user.is_active:
        return lambda kind, key: "deactivated"
    role = user.role
    if role is None:
        return lambda kind, key: "has no role, so sees no accounts"
    if role == Role.ADMIN:
        return lambda kind, key: None

    def check(kind: str, key: str) -> str | None:
        if kind == ScopeKind.SEGMENT:
            params = {"segment": key}
        elif kind == ScopeKind.OWNER:
            params = {"owner": key}
        else:
            params = {}
        shown, _notices = dashboard.resolve_scope(
            user, params, owners, [key], owns_accounts=owns_accounts
        )
        if (shown.kind, shown.key) == (kind, key):
            return None
        if kind == ScopeKind.ALL:
            return f"the whole book is for admins; {_role_words(user)}"
        if kind == ScopeKind.SEGMENT:
            return f"segments are for admins; {_role_words(user)}"
        if kind == ScopeKind.TEAM and key == str(user.pk):
            return "nobody reports to this manager, so there is no team: choose the own book"
        return _role_words(user)

    return check


def scope_visible_to(user: User, scope_kind: str, scope_key: str) -> bool:
    """May ``user`` see the figures of this scope? The rule of ``scope_check``."""
    return scope_check(user)(scope_kind, scope_key) is None


def scope_errors(
    user: User, scope_kind: str, scope_key: str, *, recipients: Iterable[User] = ()
) -> dict[str, list[str]]:
    """Why ``user`` (the one saving) may not set a target or a report for this scope, or
    why some ``recipients`` may not receive its figures: ``{"scope_key": [...],
    "recipients": [...]}``, empty when all may. The scope must be valid already. A fixed
    number of queries whatever the number of recipients (``scope_checks``)."""
    recipients = list(recipients)
    scope = SimpleNamespace(scope_kind=scope_kind, scope_key=scope_key)
    text = scope_texts([scope])[(scope_kind, scope_key)]
    errors: dict[str, list[str]] = {}
    checks = scope_checks([user, *recipients])
    why = checks[user.pk](scope_kind, scope_key)
    if why is not None:  # the scope first: whom it may go to follows from it
        return {"scope_key": [f"You cannot choose {text}: {why}."]}
    refused = []
    for person in recipients:
        why = checks[person.pk](scope_kind, scope_key)
        if why is not None:
            refused.append(f"{person.email} cannot see {text} ({why})")
    if refused:
        errors["recipients"] = ["; ".join(refused) + "."]
    return errors


def scope_texts(items: Iterable[Any]) -> dict[tuple[str, str], str]:
    """(scope_kind, scope_key) → how people read it ("segment SMB", "Sam Silva's book"),
    for objects with those two attributes; one query when an owner's book is among them."""
    items = list(items)
    ids = {
        int(i.scope_key)
        for i in items
        if i.scope_kind in (ScopeKind.OWNER, ScopeKind.TEAM) and str(i.scope_key).isdigit()
    }
    users = {str(u.pk): u for u in User.objects.filter(pk__in=ids)} if ids else {}
    out = {}
    for i in items:
        if i.scope_kind == ScopeKind.ALL:
            text = "all accounts"
        elif i.scope_kind == ScopeKind.SEGMENT:
            text = f"segment {i.scope_key}"
        elif i.scope_kind == ScopeKind.TEAM:
            who = owner_label(users[i.scope_key]) if i.scope_key in users else i.scope_key
            text = f"the team of {who}"
        elif i.scope_key in users:
            text = f"owner's book: {owner_label(users[i.scope_key])}"
        else:
            text = f"owner's book {i.scope_key}"
        out[(i.scope_kind, i.scope_key)] = text
    return out


def targets_load_defaults() -> int:
    """The benchmark targets for all accounts, each KPI at its tier's cadence; a KPI that
    already has an all-accounts target keeps it (idempotent, edits survive). Returns how
    many were created."""
    have = set(KpiTarget.objects.filter(scope_kind=ScopeKind.ALL).values_list("kpi", flat=True))
    new = [
        KpiTarget(
            kpi=kpi,
            direction=direction,
            value=Decimal(value),
            cadence=catalog.KPIS[kpi].tier,
            scope_kind=ScopeKind.ALL,
        )
        for kpi, direction, value in catalog.DEFAULTS
        if kpi not in have
    ]
    KpiTarget.objects.bulk_create(new, ignore_conflicts=True)
    return len(new)


# --- evaluation ------------------------------------------------------------------------------


def _snapshots(days: Iterable[dt.date], scopes: Iterable[tuple[str, str]]) -> dict:
    """{(day, kind, key): report} of the given days and scopes. One query."""
    scopes = set(scopes)
    days = set(days)
    if not scopes or not days:
        return {}
    cond = Q()
    for kind, key in scopes:
        cond |= Q(scope_kind=kind, scope_key=key)
    rows = KpiSnapshot.objects.filter(cond, day__in=days).values_list(
        "day", "scope_kind", "scope_key", "report"
    )
    return {(d, k, key): r for d, k, key, r in rows}


def _owner_email(target: KpiTarget) -> str | None:
    if target.scope_kind != ScopeKind.OWNER:
        return None
    return User.objects.filter(pk=int(target.scope_key)).values_list("email", flat=True).first()


def movers(
    target: KpiTarget, report: dict, limit: int = TOP_MOVERS, *, reports: dict | None = None
) -> list[dict]:
    """The accounts that moved a revenue KPI most in the snapshot's period (the MRR
    movements drill-down, largest amounts first); [] for the other KPIs, whose reports do not
    break down by account. ``reports``: a dict the caller keeps while it evaluates several
    targets, so targets of the same period and scope share one movements report (NRR, GRR
    and expansion of the whole book: one pass over the contracts instead of three, 1.6 s
    each at 100,000 accounts)."""
    if not catalog.KPIS[target.kpi].revenue:
        return []
    period = report.get("period") or {}
    try:
        start, end = dt.date.fromisoformat(period["start"]), dt.date.fromisoformat(period["end"])
        segment = target.scope_key if target.scope_kind == ScopeKind.SEGMENT else None
        owner = _owner_email(target)
        team = target.scope_key if target.scope_kind == ScopeKind.TEAM else None
        key = (start, end, segment, owner, team)
        moves = None if reports is None else reports.get(key)
        if moves is None:
            # a team's movers are its accounts' (the team snapshot's book), not the book's
            accounts = None
            if team is not None:
                manager = User.objects.filter(pk=int(team)).first()
                if manager is None:
                    raise ValueError(f"no manager {team}")  # never the whole book's movers
                accounts = selectors.team_accounts(manager)
            moves = kpis.movements_report(
                start=start, end=end, segment=segment, owner=owner, accounts=accounts
            )
            if reports is not None:
                reports[key] = moves
    except (KeyError, ValueError, ValidationError):
        return []
    rows = []
    for kind, move in moves["movements"].items():
        sign = -1 if kind in ("contraction", "churn") else 1
        for entry in move["accounts"]:
            rows.append(
                {
                    "id": entry["id"],
                    "name": entry["name"],
                    "external_id": entry["external_id"],
                    "movement": kind,
                    "amount": str(sign * Decimal(str(entry["amount"]))),
                }
            )
    rows.sort(key=lambda r: (-abs(Decimal(r["amount"])), r["name"]))
    return rows[:limit]


def _fmt(value: Decimal | None, unit: str) -> str:
    if value is None:
        return "no data"
    if unit == "money":
        # to the cent, as the dashboard prints money ("$1,234.56")
        return ("−" if value < 0 else "") + money_exact(abs(value))
    if unit == "%":
        # as the dashboard's tiles print a rate: GRR 99.986 % is "99.99%", never "100.0%"
        # (which would say nothing churned), and with the same spacing
        return percent_text(value)
    if unit in ("days", "hours"):
        return f"{value:.1f} {unit}"
    return f"{value:.1f}"


def target_text(target: KpiTarget) -> str:
    sign = "≥" if target.direction == catalog.AT_LEAST else "≤"
    return f"{sign} {_fmt(Decimal(target.value), catalog.KPIS[target.kpi].unit)}"


def targets_evaluate(*, as_of: dt.date) -> dict[str, int]:
    """Evaluate every target whose review period ends with ``as_of``: one Alert row per
    (target, period) (the unique constraint makes a re-run a no-op), and for the ones that
    crossed their target or moved more than ``max_change`` since the previous period, an
    email to the owner (admins when none) and the configured webhooks, through the outbox
    under ``alert:<target>:<period>``. A KPI without data records "no data" and sends
    nothing."""
    due = []
    for target in KpiTarget.objects.select_related("owner"):
        period = catalog.period_ending(target.cadence, as_of)
        if period:
            due.append((target, period))
    if not due:
        return {"evaluated": 0, "alerts": 0, "no_data": 0}
    prev_days = {t.cadence: catalog.previous_period_end(t.cadence, as_of) for t, _ in due}
    prev_periods = {t.pk: catalog.period_ending(t.cadence, prev_days[t.cadence]) for t, _ in due}
    reports = _snapshots(
        [as_of, *prev_days.values()], [(t.scope_kind, t.scope_key) for t, _ in due]
    )
    known = {
        (target_id, period): status
        for target_id, period, status in Alert.objects.filter(target_id__in=[t.pk for t, _ in due])
        .filter(period__in={p for _, p in due} | set(prev_periods.values()))
        .values_list("target_id", "period", "status")
    }
    rows, fired = [], []
    movements: dict = {}  # movers' reports, shared by targets of one period and scope
    for target, period in due:
        if (target.pk, period) in known:
            continue  # evaluated before: the dedup
        report = reports.get((as_of, target.scope_kind, target.scope_key))
        value = catalog.value_in(report, target.kpi) if report else None
        prev_report = reports.get((prev_days[target.cadence], target.scope_kind, target.scope_key))
        previous = catalog.value_in(prev_report, target.kpi) if prev_report else None
        alert = Alert(
            target=target,
            period=period,
            as_of=as_of,
            value=value,
            previous=previous,
            target_value=target.value,
        )
        if value is None:
            alert.status = Alert.Status.NO_DATA
            rows.append(alert)
            continue
        on = catalog.on_track(value, target.direction, target.value)
        alert.status = Alert.Status.ON_TRACK if on else Alert.Status.OFF_TRACK
        before = known.get((target.pk, prev_periods[target.pk]))
        if before is None:
            was_off = previous is not None and not catalog.on_track(
                previous, target.direction, target.value
            )
        else:
            was_off = before == Alert.Status.OFF_TRACK
        if not on and not was_off:
            alert.reasons.append("crossed")
        if (
            target.max_change is not None
            and previous is not None
            and abs(value - previous) > target.max_change
        ):
            alert.reasons.append("moved")
        if alert.reasons:
            alert.movers = movers(target, report, reports=movements)
            alert.notified = True
            fired.append(alert)
        rows.append(alert)
    with transaction.atomic():
        Alert.objects.bulk_create(rows, ignore_conflicts=True)
        for alert in fired:
            alert_notify(alert)
    return {
        "evaluated": len(rows),
        "alerts": len(fired),
        "no_data": sum(1 for a in rows if a.status == Alert.Status.NO_DATA),
    }


def _recipients(target: KpiTarget) -> list[str]:
    """The target's owner when they may see its scope (``scope_check``), else the admins:
    an owner who lost access since (role changed, moved team, deactivated) gets no figures
    of it, and the skip is logged."""
    owner = target.owner
    if target.owner_id and owner.email:
        why = scope_check(owner)(target.scope_kind, target.scope_key)
        if why is None:
            return [owner.email]
        logger.warning(
            "alert of target %s: owner %s cannot see %s:%s (%s); sent to the admins",
            target.pk,
            owner.email,
            target.scope_kind,
            target.scope_key,
            why,
        )
    admins = User.objects.filter(Q(groups__name=Role.ADMIN) | Q(is_superuser=True))
    return sorted(
        set(admins.filter(is_active=True).exclude(email="").values_list("email", flat=True))
    )


def _one_line(text: str) -> str:
    """A subject from names that may hold line breaks (a segment or a person's name)."""
    return " ".join(text.split())


def period_text(cadence: str, last: dt.date) -> str:
    """A target's period ending ``last``, for people: "the week of 16–22 Nov 2026" (an ISO
    week, Monday to Sunday), "Sep 2026", "Q3 2026 (Jul–Sep)"."""
    if cadence == catalog.WEEKLY:
        return f"the week of {utc.span_text(last - dt.timedelta(days=6), last)}"
    if cadence == catalog.MONTHLY:
        return f"{last:%b %Y}"
    first = catalog.previous_period_end(cadence, last) + dt.timedelta(days=1)
    return f"Q{(last.month - 1) // 3 + 1} {last.year} ({first:%b}–{last:%b})"


def period_key_text(key: str) -> str:
    """A period's key ("2026-W47", "2026-11", "2026-Q4", as reports and their logs keep
    it) in the words of ``period_text``: "the week of 16–22 Nov 2026", "Nov 2026", "Q4
    2026 (Oct–Dec)". A key that names no period is said as it is."""
    period = catalog.period_key_end(key or "")
    return period_text(*period) if period else key


def alert_message(alert: Alert) -> dict[str, str]:
    target = alert.target
    kpi = catalog.KPIS[target.kpi]
    value, previous = alert.value, alert.previous
    status = "off target" if alert.status == Alert.Status.OFF_TRACK else "on target"
    subject = _one_line(
        f"{kpi.label} {_fmt(value, kpi.unit)} for {target.scope_label} "
        f"({status}, target {target_text(target)})"
    )
    period = period_text(target.cadence, alert.as_of)
    lines = [
        f"{kpi.label} for {target.scope_label}, {period} "
        f"(figures as of {utc.day_text(alert.as_of)}):",
        f"  now:      {_fmt(value, kpi.unit)}",
        f"  previous: {_fmt(previous, kpi.unit)}",
        f"  target:   {target_text(target)} ({target.get_cadence_display()} review)",
    ]
    if "crossed" in alert.reasons:
        lines.append("It is now off target.")
    if "moved" in alert.reasons:
        lines.append(
            f"It moved by {change_text(value - previous, kpi.unit)}, more than the "
            f"{change_text(Decimal(target.max_change), kpi.unit, signed=False)} set for one "
            "period."
        )
    if alert.movers:
        lines.append("")
        lines.append("The accounts that moved it most (MRR movements):")
        for m in alert.movers:
            lines.append(
                f"  {m['name']} ({m['external_id']}): {m['movement']} "
                f"{change_text(Decimal(m['amount']), 'money')}"
            )
    elif not kpi.revenue:
        lines.append("")
        lines.append("This KPI does not break down by account; see the dashboard.")
    lines.append("")
    lines.append(f"Off-track KPIs: {absolute_url(reverse('reports:off-track'))}")
    return {"subject": subject, "text": "\n".join(lines)}


def alert_notify(alert: Alert) -> None:
    """The alert's email and webhooks, through the outbox (keys name the alert)."""
    message = alert_message(alert)
    key = f"alert:{alert.target_id}:{alert.period}"
    source = f"kpi-target:{alert.target_id}"
    to = _recipients(alert.target)
    if to:
        outbox.email_enqueue(
            key=key, to=to, subject=message["subject"], text=message["text"], source=source
        )
    url = getattr(settings, "REPORTS_ALERT_WEBHOOK_URL", "")
    if url:
        body = {
            "kpi": alert.target.kpi,
            "scope": {"kind": alert.target.scope_kind, "key": alert.target.scope_key},
            "period": alert.period,
            "as_of": alert.as_of.isoformat(),
            "status": alert.status,
            "reasons": alert.reasons,
            "value": None if alert.value is None else str(alert.value),
            "previous": None if alert.previous is None else str(alert.previous),
            "target": {"direction": alert.target.direction, "value": str(alert.target.value)},
            "movers": alert.movers,
        }
        outbox.webhook_enqueue(
            key=f"{key}:webhook",
            url=url,
            body=body,
            secret=getattr(settings, "REPORTS_ALERT_WEBHOOK_SECRET", ""),
            source=source,
        )
    slack_url = getattr(settings, "REPORTS_ALERT_SLACK_URL", "")
    if slack_url:
        outbox.webhook_enqueue(
            key=f"{key}:slack",
            url=slack_url,
            body={"text": slack.text("{subject}\n{text}", **message)},
            source=source,
        )


# --- the dashboard ---------------------------------------------------------------------------


def _spark(values: list[Decimal | None]) -> str:
    """SVG polyline points (60 x 16) of the values that exist."""
    known = [(i, float(v)) for i, v in enumerate(values) if v is not None]
    if len(known) < 2:
        return ""
    low, high = min(v for _, v in known), max(v for _, v in known)
    span = (high - low) or 1.0
    step = 60 / max(len(values) - 1, 1)
    return " ".join(f"{i * step:.1f},{15 - (v - low) / span * 14:.1f}" for i, v in known)


def tiles_decorate(
    tiles: list[dict], *, scope_kind: str, scope_key: str, day: dt.date | None
) -> None:
    """Add ``target`` (text, on_track, trend, scope) to the dashboard's tiles whose KPI has
    a target for the scope (else the all-accounts target). Two queries."""
    if day is None:
        return
    keys = [t["key"] for t in tiles if t.get("key") in catalog.KPIS]
    targets: dict[str, KpiTarget] = {}
    for t in KpiTarget.objects.filter(kpi__in=keys).filter(
        Q(scope_kind=scope_kind, scope_key=scope_key) | Q(scope_kind=ScopeKind.ALL)
    ):
        exact = t.scope_kind == scope_kind and t.scope_key == scope_key
        if exact or t.kpi not in targets:
            targets[t.kpi] = t
    ends = {
        cadence: catalog.period_ends(cadence, day, TREND_PERIODS) for cadence in catalog.CADENCES
    }
    wanted = {d for t in targets.values() for d in ends[t.cadence]}
    reports = _snapshots(wanted, [(scope_kind, scope_key)])
    for tile in tiles:
        target = targets.get(tile.get("key"))
        if target is None:
            continue
        series = [
            (
                catalog.value_in(reports[(d, scope_kind, scope_key)], target.kpi)
                if (d, scope_kind, scope_key) in reports
                else None
            )
            for d in ends[target.cadence]
        ]
        current = catalog.number(tile.get("value"))
        on = catalog.on_track(current, target.direction, Decimal(target.value))
        tile["target"] = {
            "text": target_text(target),
            "on_track": on,
            "state": "no data" if on is None else ("on track" if on else "off track"),
            "cadence": target.get_cadence_display(),
            "scope": target.scope_label,
            "trend": series,
            "spark": _spark(series),
        }


def off_track(*, day: dt.date | None = None, user: User | None = None) -> dict[str, Any]:
    """Every target's KPI at the latest snapshot day (or ``day``), off-track first; with
    ``user``, only the targets whose scope they may see (``scope_check``: a manager their
    team's, an admin all), and ``hidden`` counts the others, so the page can say it left
    them out. Two queries and one for the day, and one for a manager's team."""
    if day is None:
        day = KpiSnapshot.objects.order_by("-day").values_list("day", flat=True).first()
    targets = list(KpiTarget.objects.select_related("owner"))
    every = len(targets)
    if user is not None:
        check = scope_check(user)
        targets = [t for t in targets if check(t.scope_kind, t.scope_key) is None]
    reports = _snapshots([day] if day else [], [(t.scope_kind, t.scope_key) for t in targets])
    scopes = scope_texts(targets)
    rows = []
    for t in targets:
        report = reports.get((day, t.scope_kind, t.scope_key))
        value = catalog.value_in(report, t.kpi) if report else None
        on = catalog.on_track(value, t.direction, Decimal(t.value))
        rows.append(
            {
                "target": t,
                "label": t.kpi_label,
                "doc_anchor": t.kpi_doc_anchor,
                "scope": scopes[(t.scope_kind, t.scope_key)],
                "value": _fmt(value, catalog.KPIS[t.kpi].unit),
                "target_text": target_text(t),
                "on_track": on,
                "state": "no data" if on is None else ("on track" if on else "off track"),
                "owner": t.owner,
                "cadence": t.get_cadence_display(),
            }
        )
    order = {False: 0, None: 1, True: 2}
    rows.sort(key=lambda r: (order[r["on_track"]], r["label"], r["scope"]))
    return {
        "day": day,
        "rows": rows,
        "off": [r for r in rows if r["on_track"] is False],
        "hidden": every - len(targets),  # targets of scopes the user may not see
    }


# --- digests ---------------------------------------------------------------------------------


def unsubscribe_token(user: User) -> str:
    return signing.dumps({"u": user.pk}, salt=UNSUBSCRIBE_SALT)


def unsubscribe_user(token: str) -> User | None:
    """The user a digest's unsubscribe link names (None for a bad or forged link)."""
    try:
        data = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    except signing.BadSignature:
        return None
    return User.objects.filter(pk=data.get("u")).first()


def digest_subscribe(user: User, *, weekly: bool) -> DigestSubscription:
    sub, _ = DigestSubscription.objects.update_or_create(user=user, defaults={"weekly": weekly})
    return sub


@transaction.atomic
def notifications_save(user: User, choices: dict[str, bool]) -> None:
    """The settings page's choices: ``weekly`` (the digest, for a user with a role) and
    ``cta_<kind>`` for each kind of CTA email, saved together."""
    from playbooks import services as playbooks_services
    from playbooks.models import CtaEmailKind

    if user.role is not None and "weekly" in choices:
        digest_subscribe(user, weekly=bool(choices["weekly"]))
    for kind in CtaEmailKind.values:
        if f"cta_{kind}" in choices:
            playbooks_services.cta_email_set(user=user, kind=kind, on=bool(choices[f"cta_{kind}"]))


def is_leader(user: User) -> bool:
    return user.role in (Role.MANAGER, Role.ADMIN)


def digest_for(user: User, *, today: dt.date) -> dict[str, Any]:
    """The week's digest of ``user`` (the seven days before ``today``): a CSM's accounts
    whose band changed, new and overdue CTAs, renewals in the next 30 days (both of current
    customers: churned accounts left out) and new detractors; a leader's KPIs against
    targets and the off-track list."""
    since = dt.datetime.combine(today - dt.timedelta(days=7), dt.time.min, tzinfo=dt.UTC)
    now = dt.datetime.combine(today, dt.time.min, tzinfo=dt.UTC)
    if is_leader(user):
        board = off_track(user=user)
        return {
            "role": "leader",
            "day": board["day"],
            "kpis": board["rows"],
            "off": board["off"],
            "link": absolute_url(reverse("reports:off-track")),
        }
    mine = Account.objects.filter(owner=user)
    # churned accounts are still scored (metrics.services), but their band changes and
    # contract ends are no news for the CSM: left out, as the queue and renewals do
    current = mine.exclude(lifecycle_stage=AccountLifecycle.CHURNED)
    band_changes = list(
        TimelineEntry.objects.filter(
            account__in=current,
            kind=BAND_CHANGED_KIND,
            occurred_at__gte=since,
            occurred_at__lt=now,
        )
        .select_related("account")
        .order_by("account__name", "-occurred_at")
    )
    detractors = list(
        TimelineEntry.objects.filter(
            account__in=mine,
            kind="survey_answer",
            data__survey_kind="nps",
            data__unhappy=True,
            occurred_at__gte=since,
            occurred_at__lt=now,
        )
        .select_related("account")
        .order_by("-occurred_at")
    )
    # from each account's data day, as the queue's and the renewals page's windows count
    renewals = list(
        AccountStanding.objects.filter(renews_within(30), account__in=current)
        .select_related("account")
        .order_by("renewal_on", "account__name")
    )
    new_ctas, overdue_ctas = [], []
    try:
        from playbooks.models import OPEN_STATUSES, Cta
    except ImportError:  # pragma: no cover - playbooks is installed with reports
        Cta = None
    if Cta is not None:
        base = Cta.objects.filter(owner=user).select_related("account")
        new_ctas = list(base.filter(opened_at__gte=since, opened_at__lt=now).order_by("due_at"))
        overdue_ctas = list(
            base.filter(status__in=OPEN_STATUSES, due_at__lt=now).order_by("due_at")
        )
    return {
        "role": "csm",
        "band_changes": band_changes,
        "new_ctas": new_ctas,
        "overdue_ctas": overdue_ctas,
        "renewals": renewals,
        "renewals_as_of": utc.as_of_text(
            min((s.day for s in renewals), default=None),
            max((s.day for s in renewals), default=None),
            today=today,
        ),
        "detractors": detractors,
        "link": absolute_url(reverse("home")),
    }


DIGEST_LINES = 20  # lines one section of a digest lists; the rest are counted and linked


def _digest_sections(content: dict[str, Any]) -> bool:
    """Cut each of the digest's lists to its first ``DIGEST_LINES``, keeping the whole
    count (``<name>_count``), how many were left out (``<name>_more``) and the page that
    lists them all (``<name>_link``); a CSM with 200 accounts gets a readable email, not
    200 lines. Returns whether any section has something to say."""
    mine = reverse("playbooks:cta-list") + "?status=active&mine=1"
    links = {
        "band_changes": reverse("home"),
        "new_ctas": mine,
        "overdue_ctas": mine,
        "renewals": reverse("workspace:renewals"),
        "detractors": reverse("home"),
        "kpis": reverse("reports:off-track"),
        "off": reverse("reports:off-track"),
    }
    news = False
    for name, link in links.items():
        items = content.get(name)
        if items is None:  # not a section of this role's digest
            continue
        news = news or bool(items)
        content[name] = items[:DIGEST_LINES]
        content[f"{name}_count"] = len(items)
        content[f"{name}_more"] = len(items) - len(content[name])
        content[f"{name}_link"] = absolute_url(link)
    return news


def digest_send(user: User, *, today: dt.date) -> bool:
    """Queue the user's digest of the seven days before ``today`` (once per ISO week of
    ``today``: outbox key). Nothing is sent, and False returned, when no section has
    anything in it (a CSM's quiet week, a leader without a target to see): a digest that
    says "none" five times every Monday teaches people to ignore it."""
    if not user.email:
        return False
    content = digest_for(user, today=today)
    if not _digest_sections(content):
        return False
    year, week, _ = today.isocalendar()
    unsubscribe = absolute_url(reverse("reports:unsubscribe", args=[unsubscribe_token(user)]))
    covered = utc.span_text(today - dt.timedelta(days=7), today - dt.timedelta(days=1))
    content.update(
        user=user,
        today=today,
        covered=covered,
        site=absolute_url(""),
        unsubscribe=unsubscribe,
    )
    text = render_to_string("reports/digest_email.txt", content)
    html = render_to_string("reports/digest_email.html", content)
    outbox.email_enqueue(
        key=f"digest:{user.pk}:{year}-W{week:02d}",
        to=[user.email],
        # the week it is about, not the ISO week it is sent in (a Monday's digest is about
        # the week before)
        subject=f"Your weekly customer success digest, {covered}",
        text=text,
        html=html,
        source="digest",
        headers=outbox.unsubscribe_headers(unsubscribe),
    )
    return True


def digests_send(*, today: dt.date) -> int:
    """Everyone subscribed and active gets their digest. Returns how many were queued."""
    users = User.objects.filter(digest_subscription__weekly=True, is_active=True).order_by("pk")
    return sum(digest_send(u, today=today) for u in users)


# --- scheduled reports -----------------------------------------------------------------------


def report_rows(report: ScheduledReport, *, day: dt.date | None = None) -> list[list[Any]]:
    """The dashboard view's figures (every KPI with a target, and the dashboard's tiles'
    KPIs) for the report's scope at its KPI snapshot of ``day`` (the latest without one):
    KPI, value (a number: a negative NPS stays a number), unit, currency (for money), the
    target's direction ("at least", "at most") and its number (in the value's unit, so a
    spreadsheet compares the two), status, and the period's first and last day (not the
    engine's exclusive end)."""
    qs = KpiSnapshot.objects.filter(scope_kind=report.scope_kind, scope_key=report.scope_key)
    if day is not None:
        qs = qs.filter(day=day)
    snap = qs.order_by("-day").first()
    targets = {
        t.kpi: t
        for t in KpiTarget.objects.filter(
            Q(scope_kind=report.scope_kind, scope_key=report.scope_key) | Q(scope_kind="all")
        ).order_by("scope_kind")  # "all" first: the exact scope ("owner"/"segment") wins
    }
    rows = [
        [
            "KPI",
            "Value",
            "Unit",
            "Currency",
            "Target direction",
            "Target",
            "Status",
            "Period first day",
            "Period last day",
        ]
    ]
    for key, kpi in catalog.KPIS.items():
        value = catalog.value_in(snap.report, key) if snap else None
        target = targets.get(key)
        state = ""
        if target is not None:
            on = catalog.on_track(value, target.direction, Decimal(target.value))
            state = "no data" if on is None else ("on track" if on else "off track")
        period = snap.report.get("period", {}) if snap else {}
        rows.append(
            [
                kpi.label,
                figure_cell(value, money=kpi.unit == "money"),
                "" if kpi.unit == "money" else kpi.unit,
                settings.CURRENCY if kpi.unit == "money" else "",
                target.get_direction_display() if target else "",
                figure_cell(Decimal(target.value), money=kpi.unit == "money") if target else "",
                state,
                period.get("start", ""),
                period.get("as_of") or (snap.day if snap else ""),
            ]
        )
    return rows


def _csv_text(rows: list[list[Any]]) -> str:
    """The rows as a CSV file's text, formulas neutralised, with the BOM the downloads
    have (Excel on Windows reads the attachment as UTF-8 then: "≥ 100.0%" stays legible)."""
    import csv
    import io

    buffer = io.StringIO()
    buffer.write("\ufeff")
    writer = csv.writer(buffer)
    for row in rows:
        writer.writerow([csv_safe(c) for c in row])
    return buffer.getvalue()


def report_recipients_split(report: ScheduledReport) -> tuple[list[User], list[dict[str, str]]]:
    """The report's recipients who may see its scope now, and the others as ``{"email",
    "reason"}`` (deactivated, no role, or a role or team that no longer covers the scope).
    Recipients without an email address are in neither. A fixed number of queries whatever
    the number of recipients (``scope_checks``)."""
    allowed, skipped = [], []
    recipients = [u for u in report.recipients.all() if u.email]
    checks = scope_checks(recipients)
    for user in sorted(recipients, key=lambda u: u.email):
        why = checks[user.pk](report.scope_kind, report.scope_key)
        if why is None:
            allowed.append(user)
        else:
            skipped.append({"email": user.email, "reason": why})
    return allowed, skipped


def scheduled_report_send(report: ScheduledReport, *, period: str, day: dt.date) -> int:
    """The report's CSV (its scope's figures of ``day``, the period's last day) to each
    recipient who may see its scope, once per period (outbox key). The others are skipped,
    logged, and kept on the report (``skipped``) for its page. The period counts as sent
    (``last_sent_day``) even when nobody may receive it. Returns how many emails were
    queued."""
    allowed, skipped = report_recipients_split(report)
    for entry in skipped:
        logger.warning(
            "scheduled report %s, %s: %s skipped: cannot see %s:%s (%s)",
            report.pk,
            period,
            entry["email"],
            report.scope_kind,
            report.scope_key,
            entry["reason"],
        )
    changes: dict[str, Any] = {"last_sent_day": day, "waiting_for": None}
    if skipped != report.skipped or period != report.skipped_period:
        changes.update(skipped=skipped, skipped_period=period)
    ScheduledReport.objects.filter(pk=report.pk).update(**changes)
    for name, value in changes.items():
        setattr(report, name, value)
    if not allowed:
        return 0
    content = _csv_text(report_rows(report, day=day))
    scope = scope_texts([report])[(report.scope_kind, report.scope_key)]
    # in words, as the pages say them: not "Team 7" (a manager's id) nor "2026-W47"
    when = period_text(report.cadence, day)
    by = report.created_by
    why = (
        f"You get this report because {owner_label(by)} added you to it."
        if by is not None
        else "You get this report because you are one of its recipients."
    )
    text = (
        f"The figures of {report.name} ({scope}), {when}, as of {utc.day_text(day)}, are "
        f"attached as CSV.\nDashboard: {absolute_url(reverse('workspace:dashboard'))}\n\n"
        f"{why} An admin or a manager can take you off it.\n"
    )
    sent = 0
    for user in allowed:
        outbox.email_enqueue(
            key=f"report:{report.pk}:{period}:{user.pk}",
            to=[user.email],
            subject=_one_line(f"Report “{report.name}”, {when}"),
            text=text,
            attachments=[
                {
                    # what and which days: report-book-weekly-2026-w47-2026-11-22.csv
                    "filename": export_filename("report", report.name, period, day),
                    "content": content,
                    "mimetype": "text/csv",
                }
            ],
            source=f"report:{report.pk}",
        )
        sent += 1
    return sent


# a period whose figures were late (the night failed or ran after the reports' hour) is
# still sent by the runs of the following days, up to a week after it ended
CATCH_UP_DAYS = 7


def report_periods_due(report: ScheduledReport, *, as_of: dt.date) -> list[tuple[dt.date, str]]:
    """The periods of the report's cadence still to send by the run for ``as_of`` (the last
    complete day), oldest first, as ``(last day, period key)``: those that ended in the
    ``CATCH_UP_DAYS`` up to ``as_of``, after the last one sent, and not before the day
    before the report was made (a new report starts with the period that just ended, not
    with older ones)."""
    first = max(
        as_of - dt.timedelta(days=CATCH_UP_DAYS - 1),
        report.created_at.astimezone(dt.UTC).date() - dt.timedelta(days=1),
    )
    if report.last_sent_day is not None:
        first = max(first, report.last_sent_day + dt.timedelta(days=1))
    due = []
    for offset in range((as_of - first).days + 1):
        day = first + dt.timedelta(days=offset)
        period = catalog.period_ending(report.cadence, day)
        if period:
            due.append((day, period))
    return due


def scheduled_reports_send(*, as_of: dt.date) -> int:
    """Every report whose cadence period ended on ``as_of`` or, not sent yet, in the week
    before it (``report_periods_due``). A period goes out with its scope's KPI snapshot of
    its last day, never a later or an earlier one: while that snapshot is missing the report
    waits (``waiting_for``, said on its page, logged), and its later periods wait behind it.
    Returns how many emails were queued."""
    reports = list(ScheduledReport.objects.prefetch_related("recipients__groups"))
    due_by_report = {r.pk: report_periods_due(r, as_of=as_of) for r in reports}
    # which scopes have figures on the days due: one query for every report
    days = {day for due in due_by_report.values() for day, _ in due}
    recorded = (
        set(KpiSnapshot.objects.filter(day__in=days).values_list("scope_kind", "scope_key", "day"))
        if days
        else set()
    )
    sent = 0
    for report in reports:
        for day, period in due_by_report[report.pk]:
            if (report.scope_kind, report.scope_key, day) not in recorded:
                logger.warning(
                    "scheduled report %s, %s: waiting, no KPI figures recorded for %s:%s on %s",
                    report.pk,
                    period,
                    report.scope_kind,
                    report.scope_key,
                    day,
                )
                if report.waiting_for != day:
                    ScheduledReport.objects.filter(pk=report.pk).update(waiting_for=day)
                    report.waiting_for = day
                break
            if report.waiting_for is not None and report.waiting_for < day:
                logger.warning(
                    "scheduled report %s: the period ending %s was not sent, its KPI figures "
                    "were not recorded within %s days",
                    report.pk,
                    report.waiting_for,
                    CATCH_UP_DAYS,
                )
            sent += scheduled_report_send(report, period=period, day=day)
    return sent
