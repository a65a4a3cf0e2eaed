"""Writes and workflows over the customer data."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Iterable
from functools import partial

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from . import book, intake, utc
from .models import (
    Account,
    Activity,
    ChangeRecord,
    ImportRecord,
    Milestone,
    Role,
    TimelineEntry,
    User,
)
from .stale import stale_words

logger = logging.getLogger(__name__)


def account_data_changed(account_ids: Iterable[int]) -> None:
    """Tell whoever listens that these accounts' data changed (new events, tickets …).

    The listeners are named in ``settings.ACCOUNT_DATA_CHANGED_HOOKS`` (the health
    recompute of the metrics app): this app sits below them and does not import them."""
    ids = set(account_ids)
    if ids:
        for path in settings.ACCOUNT_DATA_CHANGED_HOOKS:
            import_string(path)(ids)


def timeline_facts_recorded(entry_ids: Iterable[int]) -> None:
    """Tell whoever listens that these TimelineEntry facts were written (a survey answer,
    an escalated ticket, a band change), once the current transaction commits.

    The listeners are named in ``settings.TIMELINE_FACT_HOOKS`` (the playbooks' event
    triggers): lower apps record facts, higher apps react to them (STYLE.md §1)."""
    ids = sorted(set(entry_ids))
    if not ids:
        return
    for path in settings.TIMELINE_FACT_HOOKS:
        transaction.on_commit(partial(import_string(path), ids))


# the kinds whose rows the cached reads of the pages show (segments, contracts: cohorts)
BOOK_KINDS = ("accounts", "contracts")


def import_record_run(
    *,
    record: ImportRecord,
    sources: list[intake.Source],
    progress: intake.core.ProgressCallback | None = None,
) -> ImportRecord:
    """Run an import and keep its record: who, when, what, counts, the first row errors.

    The record is written outside the import's transaction (``run_import`` owns that one),
    so a rejected or failed import still leaves its record behind."""
    record.status = ImportRecord.Status.RUNNING
    record.started_at = timezone.now()
    record.save(update_fields=["status", "started_at", "updated_at"])
    try:
        result = intake.run_import(
            sources,
            dry_run=record.dry_run,
            ignore_unknown=record.ignore_unknown,
            progress=progress,
        )
    except intake.IntakeError as exc:
        record.status = ImportRecord.Status.REJECTED
        record.errors = [{"source": record.filename, "row": 0, "column": "", "message": str(exc)}]
        record.finished_at = timezone.now()
        record.save()
        return record
    except Exception:
        logger.exception("import %s failed", record.uuid)
        record.status = ImportRecord.Status.FAILED
        record.errors = [
            {
                "source": record.filename,
                "row": 0,
                "column": "",
                "message": "internal error; see the server log",
            }
        ]
        record.finished_at = timezone.now()
        record.save()
        raise
    if not result.ok:
        record.status = ImportRecord.Status.REJECTED
    elif record.dry_run:
        record.status = ImportRecord.Status.VALIDATED
    else:
        record.status = ImportRecord.Status.SUCCEEDED
        account_data_changed(result.accounts)
        if any(r.created or r.updated for r in result.results if r.kind in BOOK_KINDS):
            book.changed()
    for name in ("rows", "created", "updated", "unchanged", "rejected"):
        setattr(record, name, result.total(name))
    record.errors = [e.as_dict() for e in result.errors]
    record.per_kind = {r.source: r.as_dict() for r in result.results}
    record.finished_at = timezone.now()
    record.save()
    return record


@transaction.atomic
def activity_log(
    *,
    account: Account,
    author: User | None,
    kind: str,
    subject: str,
    body: str = "",
    occurred_at: dt.datetime | None = None,
) -> Activity:
    """Record a note, call or meeting with the customer and its timeline fact
    (kind "activity", key "activity:<id>"), in one transaction. The account's data changed
    (``account_data_changed``): its health's last CSM touch and its texts' sentiment are
    recomputed, as after any new data."""
    activity = Activity(
        account=account,
        author=author,
        kind=kind,
        subject=subject,
        body=body,
        occurred_at=occurred_at or timezone.now(),
    )
    activity.full_clean()
    activity.save()
    who = (author.get_full_name() or author.email) if author else "someone"
    entry = TimelineEntry.objects.create(
        account=account,
        occurred_at=activity.occurred_at,
        kind=TimelineEntry.Kind.ACTIVITY,
        key=f"activity:{activity.pk}",
        title=f"{activity.get_kind_display()} by {who}: {subject}"[:300],
        detail=body,
        data={"activity_id": activity.pk, "activity_kind": kind},
    )
    timeline_facts_recorded([entry.pk])
    account_data_changed([account.pk])
    return activity


def milestone_editable_by(user: User | None, account: Account, *, seen: bool = False) -> bool:
    """Who may record, change or clear an account's milestones: whoever may log its
    activities, i.e. whoever sees it with a role (its CSM, their manager, an admin).
    ``seen``: the caller found the account among ``Account.objects.visible_to(user)``
    already (a page's access check), so no query is needed."""
    if user is None or not user.is_authenticated or user.role not in Role.values:
        return False
    return seen or Account.objects.visible_to(user).filter(pk=account.pk).exists()


def _who(user: User | None) -> str:
    return (user.get_full_name() or user.email) if user else "someone"


def _milestone_fact(
    *, account: Account, kind: str, title: str, now: dt.datetime, data: dict, detail: str = ""
) -> TimelineEntry:
    """The timeline fact of a milestone change, handed on to the apps that react to facts
    (a first-value CTA can close on it). Each change is its own fact: a user's action
    happens once, so the key only has to be new (two changes can share an instant)."""
    entry = TimelineEntry.objects.create(
        account=account,
        occurred_at=now,
        kind=kind,
        key=f"milestone:{data['milestone']}:{now:%Y%m%dT%H%M%S}:{uuid.uuid4().hex[:12]}",
        title=title[:300],
        detail=detail,
        data=data,
    )
    timeline_facts_recorded([entry.pk])
    return entry


@transaction.atomic
def milestone_record(
    *,
    account: Account,
    reached_on: dt.date,
    by: User | None,
    kind: str = Milestone.Kind.FIRST_VALUE,
    note: str = "",
    check_access: bool = True,
) -> Milestone:
    """Record (or change) the day an account reached a milestone, as a CSM says it.

    ``reached_on`` is a UTC day, today at the latest; a day before ``customer_since`` is
    accepted (first value during a trial counts as 0 days in TTFV). ``note`` is optional,
    500 characters at most. With ``check_access`` (the default) ``by`` must be allowed to
    (``milestone_editable_by``), else ``PermissionDenied``. Bad input raises
    ``ValidationError`` naming the field, and nothing is written. Writes a
    ``milestone_recorded`` timeline fact saying who set which day (and what it was)."""
    if check_access and not milestone_editable_by(by, account):
        raise PermissionDenied("you may not change this account's milestones")
    errors: dict[str, list[str]] = {}
    if kind not in Milestone.Kind.values:
        errors["kind"] = [f"unknown milestone {kind!r}; one of: {', '.join(Milestone.Kind.values)}"]
    if not isinstance(reached_on, dt.date) or isinstance(reached_on, dt.datetime):
        errors["reached_on"] = ["a day is needed (YYYY-MM-DD)"]
    elif reached_on > (today := utc.today()):
        errors["reached_on"] = [
            f"{utc.day_text(reached_on)} is in the future (today is {utc.day_text(today)}, UTC)"
        ]
    note = (note or "").strip()
    if errors:
        raise ValidationError(errors)
    now = timezone.now()
    milestone = Milestone.objects.select_for_update().filter(account=account, kind=kind).first()
    previous = milestone.reached_on if milestone else None
    if milestone is None:
        milestone = Milestone(account=account, kind=kind)
    milestone.reached_on = reached_on
    milestone.note = note
    milestone.recorded_by = by
    milestone.recorded_at = now
    milestone.full_clean(validate_unique=False)  # note length; the row lock covers unique
    milestone.save()
    label = milestone.get_kind_display()
    if previous is None:
        title = f"{label} on {utc.day_text(reached_on)}, recorded by {_who(by)}"
    elif previous != reached_on:
        title = (
            f"{label}: the day changed to {utc.day_text(reached_on)} "
            f"(was {utc.day_text(previous)}) by {_who(by)}"
        )
    else:
        title = f"{label} on {utc.day_text(reached_on)} confirmed by {_who(by)}"
    _milestone_fact(
        account=account,
        kind=TimelineEntry.Kind.MILESTONE_RECORDED,
        title=title,
        now=now,
        detail=note,
        data={
            "milestone": kind,
            "reached_on": reached_on.isoformat(),
            "previous": previous.isoformat() if previous else None,
            "by": by.pk if by else None,
        },
    )
    return milestone


@transaction.atomic
def milestone_clear(
    *,
    account: Account,
    by: User | None,
    kind: str = Milestone.Kind.FIRST_VALUE,
    check_access: bool = True,
) -> bool:
    """Clear a recorded milestone (it was recorded by mistake). False, and nothing written,
    when there was none; else a ``milestone_cleared`` timeline fact says who cleared which
    day. Access and an unknown ``kind`` as in ``milestone_record``."""
    if check_access and not milestone_editable_by(by, account):
        raise PermissionDenied("you may not change this account's milestones")
    if kind not in Milestone.Kind.values:
        raise ValidationError(
            {"kind": [f"unknown milestone {kind!r}; one of: {', '.join(Milestone.Kind.values)}"]}
        )
    milestone = Milestone.objects.select_for_update().filter(account=account, kind=kind).first()
    if milestone is None:
        return False
    milestone.delete()
    _milestone_fact(
        account=account,
        kind=TimelineEntry.Kind.MILESTONE_CLEARED,
        title=(
            f"{milestone.get_kind_display()}: the day cleared by {_who(by)} "
            f"(was {utc.day_text(milestone.reached_on)})"
        ),
        now=timezone.now(),
        data={
            "milestone": kind,
            "reached_on": None,
            "previous": milestone.reached_on.isoformat(),
            "by": by.pk if by else None,
        },
    )
    return True


@transaction.atomic
def user_access_update(
    *,
    user: User,
    role: str | None,
    manager: User | None,
    is_active: bool,
    by: User,
    seen: str | None = None,
) -> User:
    """Set a user's role (one of the role groups, or none), manager and active flag, and
    record what changed (``ChangeRecord``: who, when, each value before and after). An admin
    cannot lock themselves out (drop their own admin role or deactivate themselves), and a
    user cannot be their own manager.

    ``seen``: the user's access as the page showed it (``User.access_state``; None: no
    check). A change is refused, writing nothing, when the user was changed since: the row
    sends every value, so saving would silently undo the other admin's change. A save that
    changes nothing is no error and records nothing (a second click on Save)."""
    from django.contrib.auth.models import Group

    from .models import Role
    from .roles import ensure_roles

    if role is not None and role not in Role.values:
        raise ValidationError(f"unknown role {role!r}")
    if manager is not None and manager.pk == user.pk:
        raise ValidationError("a user cannot be their own manager")
    if user.pk == by.pk and (role != Role.ADMIN or not is_active):
        raise ValidationError("you cannot remove your own admin access")
    # the row locked: of two admins saving at once, the second reads the first's change
    locked = user_access_locked(user.pk)
    changes = _access_changes(locked, role=role, manager=manager, is_active=is_active)
    if not changes:
        return locked
    if seen is not None and seen != locked.access_state:
        last = change_last(ChangeRecord.Subject.USER, locked.pk)
        raise ValidationError(
            stale_words(
                changed=f"{locked} was changed",
                by=last.by if last else None,
                at=last.at if last else None,
                opened="the page",
                see="their access as it is now",
            )
        )
    ensure_roles()
    role_groups = Group.objects.filter(name__in=Role.values)
    locked.groups.remove(*role_groups)
    if role is not None:
        locked.groups.add(role_groups.get(name=role))
    locked.manager = manager
    locked.is_active = is_active
    # a superuser is an admin whatever the groups say: the role screen is the one truth
    if locked.is_superuser and role != Role.ADMIN:
        locked.is_superuser = False
    locked.is_staff = role == Role.ADMIN
    locked.save(update_fields=["manager", "is_active", "is_superuser", "is_staff"])
    locked.__dict__.pop("role", None)  # cached_property
    _user_change_record(locked, changes, by=by)
    return locked


def user_access_locked(pk: int) -> User:
    """A user's row locked for a change of their access (call it in the change's
    transaction), with what ``access_state`` reads: of two admins saving at once, the second
    reads the first's change."""
    return (
        User.objects.select_for_update(of=("self",))
        .select_related("manager")
        .prefetch_related("groups")
        .get(pk=pk)
    )


def user_access_recorded(*, before: User, after: User, by: User | None) -> ChangeRecord | None:
    """Record what changed in a user's role, manager and sign-in between ``before`` (read
    before the change, e.g. by ``user_access_locked``) and ``after`` (read after it), in the
    users page's words; None when none of them changed. For a change made elsewhere than
    the users page (the Django admin): its "Recent changes" lists it, and a stale save
    refused there names who made it."""
    after.__dict__.pop("role", None)  # cached_property: read the groups as saved
    changes = _access_changes(
        before, role=after.role, manager=after.manager, is_active=after.is_active
    )
    return _user_change_record(after, changes, by=by) if changes else None


def _user_change_record(user: User, changes: list[str], *, by: User | None) -> ChangeRecord:
    return change_record(
        subject=ChangeRecord.Subject.USER,
        subject_id=user.pk,
        name=f"{user} ({user.email})" if user.get_full_name() else user.email,
        action=ChangeRecord.Action.CHANGED,
        words="; ".join(changes),
        by=by,
    )


def _access_changes(
    user: User, *, role: str | None, manager: User | None, is_active: bool
) -> list[str]:
    """What a save would change, in words: "role CSM → Manager", "manager none → Max",
    "can sign in yes → no" (empty: nothing)."""
    changes = []
    if user.role != role:
        changes.append(f"role {user.role or 'none'} → {role or 'none'}")
    if user.manager_id != (manager.pk if manager else None):
        changes.append(f"manager {user.manager or 'none'} → {manager or 'none'}")
    if user.is_active != is_active:
        yes_no = {True: "yes", False: "no"}
        changes.append(f"can sign in {yes_no[user.is_active]} → {yes_no[is_active]}")
    return changes


# --- the audit trail -----------------------------------------------------------------------


def change_record(
    *, subject: str, subject_id: int, name: str, action: str, words: str = "", by: User | None
) -> ChangeRecord:
    """Record one change for the audit trail (call it in the change's own transaction)."""
    logger.info("%s %s %s: %s, by %s", subject, subject_id, action, words or "-", by)
    return ChangeRecord.objects.create(
        subject=subject,
        subject_id=subject_id,
        name=name[: ChangeRecord._meta.get_field("name").max_length],
        action=action,
        words=words[: ChangeRecord._meta.get_field("words").max_length],
        by=by,
    )


def change_last(subject: str, subject_id: int) -> ChangeRecord | None:
    """The latest recorded change of one row (one query), or None."""
    return (
        ChangeRecord.objects.select_related("by")
        .filter(subject=subject, subject_id=subject_id)
        .first()
    )


def changes_recent(subject: str, *, limit: int = 15) -> list[ChangeRecord]:
    """A page's "Recent changes": the latest changes of one kind, newest first (one query)."""
    return list(ChangeRecord.objects.select_related("by").filter(subject=subject)[:limit])


# --- API tokens -------------------------------------------------------------------------------


def api_token_issue(*, user: User, name: str, scope: str, by: User | None = None):
    """Issue an API token acting as ``user``; returns ``(token, key)``. The clear key exists
    only in this return value (only its hash is stored): the caller shows it once and never
    logs it. ``by``: the signed-in person making it on the Manage page, stored as the
    token's ``created_by``; None means a command (``manage.py create_api_token``). Refused,
    nothing written, with the reason by field (``user``, ``name``, ``scope``): an inactive
    user, a name blank or longer than 100 characters, an unknown scope."""
    from .models import ApiToken

    errors: dict[str, str] = {}
    if not user.is_active:
        errors["user"] = f"{user.email} cannot sign in (inactive): a token would not work."
    name = (name or "").strip()
    max_length = ApiToken._meta.get_field("name").max_length
    if not name:
        errors["name"] = "Say what the token is for, e.g. “CRM sync”."
    elif len(name) > max_length:
        errors["name"] = f"At most {max_length} characters, got {len(name)}."
    if scope not in ApiToken.Scope.values:
        allowed = " or ".join(ApiToken.Scope.values)
        errors["scope"] = f"“{str(scope)[:20]}” is no scope: {allowed}."
    if errors:
        raise ValidationError(errors)
    via = ApiToken.Via.COMMAND if by is None else ApiToken.Via.PAGE
    token, key = ApiToken.issue(user=user, name=name, scope=scope, created_by=by, created_via=via)
    # the token's id, never its key (nor its prefix): logs are read by more people
    logger.info(
        "api token %s (%s) issued for user %s by %s",
        token.pk,
        scope,
        user.pk,
        by.pk if by is not None else "command line",
    )
    return token, key


def api_token_revoke(*, token, by: User | None = None, via: str | None = None):
    """Revoke ``token`` now: every later call with its key gets 401. Stores when, who
    (``by``, the signed-in person; None for a command) and where (``via``: the Manage page
    unless said otherwise, a command when there is no ``by``). Refused (ValidationError,
    nothing written) when it is revoked already, also when another admin got there first:
    the first revocation and its revoker stay."""
    if via is None:
        via = token.Via.COMMAND if by is None else token.Via.PAGE
    now = timezone.now()
    # conditional UPDATE: of two admins revoking at once, one writes and the other is told
    revoked = (
        type(token)
        .objects.filter(pk=token.pk, revoked_at=None)
        .update(revoked_at=now, revoked_by=by, revoked_via=via, updated_at=now)
    )
    token.refresh_from_db()
    if not revoked:
        raise ValidationError(
            f"“{token.name}” was revoked already, on {token.revoked_at:%Y-%m-%d %H:%M} UTC."
        )
    logger.info(
        "api token %s revoked (%s) by %s",
        token.pk,
        via,
        by.pk if by is not None else "command line",
    )
    return token
