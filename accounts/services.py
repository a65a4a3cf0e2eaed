"""Writes and workflows over the customer data."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from functools import partial

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from . import intake
from .models import Account, Activity, ImportRecord, TimelineEntry, User

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


@transaction.atomic
def user_access_update(
    *, user: User, role: str | None, manager: User | None, is_active: bool, by: User
) -> User:
    """Set a user's role (one of the role groups, or none), manager and active flag. An admin
    cannot lock themselves out (drop their own admin role or deactivate themselves), and a
    user cannot be their own manager."""
    from django.contrib.auth.models import Group
    from django.core.exceptions import ValidationError

    from .models import Role
    from .roles import ensure_roles

    if role is not None and role not in Role.values:
        raise ValidationError(f"unknown role {role!r}")
    if manager is not None and manager.pk == user.pk:
        raise ValidationError("a user cannot be their own manager")
    if user.pk == by.pk and (role != Role.ADMIN or not is_active):
        raise ValidationError("you cannot remove your own admin access")
    ensure_roles()
    role_groups = Group.objects.filter(name__in=Role.values)
    user.groups.remove(*role_groups)
    if role is not None:
        user.groups.add(role_groups.get(name=role))
    user.manager = manager
    user.is_active = is_active
    # a superuser is an admin whatever the groups say: the role screen is the one truth
    if user.is_superuser and role != Role.ADMIN:
        user.is_superuser = False
    user.is_staff = role == Role.ADMIN
    user.save(update_fields=["manager", "is_active", "is_superuser", "is_staff"])
    user.__dict__.pop("role", None)  # cached_property
    return user
