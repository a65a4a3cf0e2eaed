"""``responses.csv``: past NPS/CSAT/CES answers from another tool, through the same intake as
every other file (``import_data --kind responses``, the upload page, ``POST
/api/v1/survey-responses/``). Registered with ``accounts.intake`` in ``SurveysConfig.ready``.

Columns: ``stakeholder_email`` or ``account_external_id`` (at least one), ``kind``
(nps/csat/ces), ``score`` (on the kind's scale), ``comment``, ``answered_at``. An answer is
named by its account, person, kind and time: re-importing the same file changes nothing, a
changed score or comment updates the answer. Each new answer lands on the account timeline as a
``survey_answer`` fact; imported (past) answers do not set off the playbooks' hooks.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from django.db.models.functions import Lower
from django.utils import timezone

from accounts import timeline
from accounts.intake import cells
from accounts.intake.columns import Column
from accounts.models import Stakeholder

from . import scoring
from .models import Response

BATCH = 2_000
FUTURE_SLACK = dt.timedelta(days=1)

COLUMNS = (
    Column("stakeholder_email", cells.email, field=""),
    Column("account_external_id", cells.text(200), field=""),
    Column("kind", cells.choice(["nps", "csat", "ces"]), required=True),
    Column("score", cells.integer(-1000, 1000), required=True),
    Column("comment", cells.text(5000)),
    Column("answered_at", cells.timestamp, required=True),
)


def load(loader, source, result, rows) -> None:
    """The intake's loader for "responses" (see ``accounts.intake.register_kind``)."""
    seen: dict[str, int] = {}
    batch: list = []
    for row in rows:
        result.rows += 1
        loader._tick()
        batch.append(row)
        if len(batch) >= BATCH:
            _batch(loader, source, result, batch, seen)
            batch = []
    if batch:
        _batch(loader, source, result, batch, seen)


def _people(emails: set[str]) -> dict[str, list[tuple[int, int, str]]]:
    """lower-cased email -> [(stakeholder id, account id, name)]."""
    found: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
    listed = sorted(emails)
    for start in range(0, len(listed), 5000):
        for email, pk, account_id, name in (
            Stakeholder.objects.annotate(lower_email=Lower("email"))
            .filter(lower_email__in=listed[start : start + 5000])
            .values_list("lower_email", "id", "account_id", "name")
        ):
            found[email].append((pk, account_id, name))
    return found


def _batch(loader, source, result, batch, seen: dict[str, int]) -> None:
    loader._resolve_accounts(
        {v["account_external_id"] for _, v, _ in batch if v.get("account_external_id")}
    )
    people = _people({v["stakeholder_email"] for _, v, _ in batch if v.get("stakeholder_email")})
    latest_allowed = timezone.now() + FUTURE_SLACK
    valid: list[tuple[int, str, Response, str]] = []
    for number, values, problems in batch:
        email = values.get("stakeholder_email")
        external = values.get("account_external_id")
        kind, score, answered_at = (
            values.get("kind"),
            values.get("score"),
            values.get("answered_at"),
        )
        if kind and score is not None:
            try:
                scoring.parse_score(kind, score)
            except scoring.ScoreError as exc:
                problems.append(("score", f"{exc} ({kind})"))
        if answered_at is not None and answered_at > latest_allowed:
            problems.append(("answered_at", f"{answered_at.isoformat()} is in the future"))
        account_id = stakeholder_id = None
        name = ""
        if not email and not external:
            problems.append(("stakeholder_email", "give stakeholder_email or account_external_id"))
        if external:
            account_id = loader._account_id(external, problems)
        if email:
            candidates = people.get(email, [])
            if account_id is not None:
                candidates = [c for c in candidates if c[1] == account_id]
            if len(candidates) == 1:
                stakeholder_id, found_account, name = candidates[0]
                account_id = found_account
            elif not external:
                if not candidates:
                    problems.append(("stakeholder_email", f"no stakeholder with email {email}"))
                else:
                    problems.append(
                        (
                            "stakeholder_email",
                            f"{email} is a stakeholder of {len(candidates)} accounts; "
                            "give account_external_id",
                        )
                    )
        if not problems and account_id is not None:
            who = stakeholder_id if stakeholder_id is not None else (email or "-")
            key = f"{account_id}:{who}:{kind}:{answered_at.astimezone(dt.UTC).isoformat()}"
            if key in seen:
                problems.append(("answered_at", f"the same answer is already in row {seen[key]}"))
            else:
                seen[key] = number
        if problems:
            result.rejected += 1
            for column, message in problems:
                loader.error(source, number, column, message)
            continue
        response = Response(
            account_id=account_id,
            stakeholder_id=stakeholder_id,
            kind=kind,
            score=score,
            comment=values.get("comment") or "",
            answered_at=answered_at,
            is_current=True,
            source=Response.Source.IMPORT,
            import_key=key,
        )
        valid.append((number, key, response, name or email or ""))
    if loader.failed or not valid:
        return
    _write(loader, result, valid)


def _write(loader, result, valid) -> None:
    from .services import _fact

    existing = {
        r.import_key: r
        for r in Response.objects.filter(import_key__in=[key for _, key, _, _ in valid])
    }
    created, updated = [], []
    names: dict[str, str] = {}
    for _, key, response, name in valid:
        names[key] = name
        old = existing.get(key)
        if old is None:
            created.append(response)
        elif (old.score, old.comment) != (response.score, response.comment):
            old.score, old.comment = response.score, response.comment
            updated.append(old)
        else:
            result.unchanged += 1
    Response.objects.bulk_create(created, batch_size=1000)
    Response.objects.bulk_update(updated, ["score", "comment"], batch_size=1000)
    result.created += len(created)
    result.updated += len(updated)
    timeline.timeline_upsert(_fact(r, names[r.import_key]) for r in created + updated)
    loader.result.accounts |= {r.account_id for r in created + updated}
