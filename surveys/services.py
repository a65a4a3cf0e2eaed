"""Writes and workflows of the surveys app.

- ``campaign_round_send`` / ``campaign_start_for_account`` / ``survey_invitation_issue``:
  issue invitations (fatigue, opt-outs, one per person per round) and enqueue their emails
  through the outbox (idempotent keys ``survey-invite:<id>``: no double send on a retry).
- ``campaigns_send_due``, ``event_campaigns_run``, ``invitation_reminders_send``: the
  sweepers behind the Celery beat entries (``surveys.tasks``) and ``manage.py surveys_send``;
  ``campaign_send_now``: one campaign's next round now (the editor's "Send now").
- ``response_record``: an answer from the public page. A first answer outside a
  transaction is one prepared statement (the invitation read and, when it may take a first
  answer, the write of the response, its timeline fact and its ``AnswerToAnnounce`` row);
  any other answer locks the invitation row
  (SELECT … FOR UPDATE) and demotes the previous current answer first. A partial unique
  constraint keeps one current answer per invitation: it is what sends a first answer that
  lost a race to the locked path.
- ``answers_announce``: the listeners (playbooks, health) hear of new answers in batches,
  every few seconds (``surveys.tasks.announce_answers``), not one publish per answer.
- ``optout_record``: never survey this address again.
"""

from __future__ import annotations

import calendar
import datetime as dt
import functools
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.db.models import Count, Min, Q
from django.utils import timezone
from django.utils.module_loading import import_string

from accounts import once, utc
from accounts.models import Contract, Stakeholder, Ticket, TimelineEntry
from accounts.services import account_data_changed, timeline_facts_recorded
from accounts.stale import changed_since, stale_words
from config.db import prepared_cursor

from . import mail, scoring
from .models import AnswerToAnnounce, Campaign, Invitation, OptOut, Response, Survey

FACT_KIND = "survey_answer"
COMMENT_MAX = 5000
ANNOUNCE_BATCH = 5000  # answers per claim; a run claims until none is left
ANNOUNCE_CLAIM_SECONDS = 20  # a run that died: its answers are announced again after this
# invitations whose emails are rendered and queued together (a round, the reminders): bounds
# the memory of the rendered emails and the size of the outbox's insert
SEND_CHUNK = 1000


class InvitationClosed(Exception):
    """The invitation expired or its campaign closed: nothing can be recorded."""


@dataclass
class RoundSummary:
    """What one send did: invitations issued, and the people left out and why."""

    issued: list[int] = field(default_factory=list)  # invitation ids
    already_invited: int = 0
    opted_out: int = 0
    fatigued: int = 0
    no_email: int = 0
    round: str = ""

    def as_dict(self) -> dict[str, int]:
        return {
            "issued": len(self.issued),
            "already_invited": self.already_invited,
            "opted_out": self.opted_out,
            "fatigued": self.fatigued,
            "no_email": self.no_email,
        }

    def describe(self, subject: str = "") -> str:
        return round_summary_text(self.as_dict(), subject=subject)


def _people(n: int) -> str:
    return "1 person" if n == 1 else f"{n} people"


def round_summary_text(counts: dict[str, int], *, subject: str = "") -> str:
    """A round's counts (``RoundSummary.as_dict``) in words, for the page and the command:
    "[subject] sent to 4 people; 37 left out: 36 surveyed in the last 30 days or 4 times in
    a year, 1 opted out." """
    reasons = [
        (
            counts["fatigued"],
            f"surveyed in the last {settings.SURVEY_FATIGUE_DAYS} days or "
            f"{settings.SURVEY_FATIGUE_MAX_PER_YEAR} times in a year",
        ),
        (counts["opted_out"], "opted out"),
        (counts["no_email"], "without an email address"),
        (counts["already_invited"], "already invited in this round"),
    ]
    left_out = sum(n for n, _ in reasons)
    issued = counts["issued"]
    sent = f"{subject} sent to" if subject else "Sent to"
    if not issued and not left_out:
        return f"{sent} nobody: no stakeholder matches the audience."
    text = f"{sent} {_people(issued) if issued else 'nobody'}"
    if left_out:
        text += f"; {left_out} left out: " + ", ".join(f"{n} {why}" for n, why in reasons if n)
    return text + "."


def new_token() -> str:
    """256 random bits, URL-safe (43 characters)."""
    return secrets.token_urlsafe(32)


# --- audience and fatigue ---------------------------------------------------------------------


def campaign_audience(campaign: Campaign, *, account_ids: list[int] | None = None):
    """Stakeholders of the accounts matching the campaign's filters (empty filter = any),
    optionally within ``account_ids``. Bands come from the health snapshots through
    ``settings.SURVEY_BAND_FILTER`` (metrics sits above this app)."""
    from accounts.models import Account

    accounts = Account.objects.all()
    if account_ids is not None:
        accounts = accounts.filter(id__in=account_ids)
    if campaign.segments:
        accounts = accounts.filter(segment__in=campaign.segments)
    if campaign.lifecycle_stages:
        accounts = accounts.filter(lifecycle_stage__in=campaign.lifecycle_stages)
    if campaign.bands and settings.SURVEY_BAND_FILTER:
        accounts = import_string(settings.SURVEY_BAND_FILTER)(accounts, list(campaign.bands))
    people = Stakeholder.objects.filter(account__in=accounts.values("id"))
    if campaign.roles:
        people = people.filter(role__in=campaign.roles)
    return people.order_by("id")


def fatigued_emails(emails: set[str], *, now: dt.datetime) -> set[str]:
    """Addresses surveyed (an invitation sent) within ``SURVEY_FATIGUE_DAYS`` or already
    ``SURVEY_FATIGUE_MAX_PER_YEAR`` times in the last 365 days. One query per 5,000."""
    recent = now - dt.timedelta(days=settings.SURVEY_FATIGUE_DAYS)
    year = now - dt.timedelta(days=365)
    found: set[str] = set()
    listed = sorted(emails)
    for start in range(0, len(listed), 5000):
        rows = (
            Invitation.objects.filter(email__in=listed[start : start + 5000], sent_at__gte=year)
            .values("email")
            .order_by()
            .annotate(recent=Count("id", filter=Q(sent_at__gte=recent)), year=Count("id"))
        )
        found |= {
            r["email"]
            for r in rows
            if r["recent"] or r["year"] >= settings.SURVEY_FATIGUE_MAX_PER_YEAR
        }
    return found


def opted_out(emails: set[str]) -> set[str]:
    return set(OptOut.objects.filter(email__in=emails).values_list("email", flat=True))


# --- sending -------------------------------------------------------------------------------------


@transaction.atomic
def campaign_round_send(
    *,
    campaign: Campaign,
    round: str,
    account_ids: list[int] | None = None,
    now: dt.datetime | None = None,
) -> RoundSummary:
    """Issue one round of ``campaign`` to its audience (within ``account_ids`` if given) and
    enqueue the emails. Left out: people without an email address, opted-out addresses,
    fatigued addresses, people already invited in this round; an address shared by two
    stakeholders is invited once. Re-running a round issues nothing new.

    The round's queries do not grow with its size (up to ``SEND_CHUNK`` invitations; one
    more read and two outbox queries per further chunk): the invitations are inserted
    already marked sent (``sent_at``: they are this transaction's own rows, and their emails
    are queued before it commits) and their emails go to the outbox together
    (``outbox.messages_enqueue``: one delivery task per 50), keyed ``survey-invite:<id>`` as
    ``invitation_email_send`` keys one, so a retry queues nothing twice."""
    now = now or timezone.now()
    summary = RoundSummary(round=round)
    people = list(
        campaign_audience(campaign, account_ids=account_ids).only("id", "account_id", "email")
    )
    earlier = list(
        Invitation.objects.filter(campaign=campaign, round=round).values_list(
            "stakeholder_id", "email"
        )
    )
    invited = {stakeholder_id for stakeholder_id, _ in earlier}
    invited_emails = {email for _, email in earlier}
    emails = {p.email.strip().lower() for p in people if p.email.strip()}
    out = opted_out(emails)
    tired = fatigued_emails(emails - out - invited_emails, now=now)
    expires_at = now + dt.timedelta(days=campaign.expires_after_days)
    if campaign.closes_at is not None:
        expires_at = min(expires_at, campaign.closes_at)
    new: list[Invitation] = []
    taken: set[str] = set(invited_emails)
    for person in people:
        email = person.email.strip().lower()
        if person.id in invited:
            summary.already_invited += 1
        elif not email:
            summary.no_email += 1
        elif email in out:
            summary.opted_out += 1
        elif email in taken:
            summary.already_invited += 1
        elif email in tired:
            summary.fatigued += 1
        else:
            taken.add(email)
            new.append(
                Invitation(
                    campaign=campaign,
                    round=round,
                    stakeholder_id=person.id,
                    account_id=person.account_id,
                    email=email,
                    token=new_token(),
                    expires_at=expires_at,
                    sent_at=now,  # its email is queued below, in this transaction
                )
            )
    Invitation.objects.bulk_create(new, batch_size=1000, ignore_conflicts=True)
    # ignore_conflicts leaves pks unset: read back the rows this call inserted (by their new
    # tokens; a row lost to a concurrent send of the same round was not inserted) and queue
    # their emails, a chunk at a time
    tokens = [i.token for i in new]
    for start in range(0, len(tokens), SEND_CHUNK):
        invitations = list(
            Invitation.objects.filter(token__in=tokens[start : start + SEND_CHUNK])
            .select_related("stakeholder", "account")
            .order_by("id")
        )
        for invitation in invitations:
            invitation.campaign = campaign  # and its survey: no query per invitation
        mail.invitation_emails(invitations, reminder=False)
        summary.issued += [i.pk for i in invitations]
    return summary


@transaction.atomic
def invitation_email_send(*, invitation_id: int, now: dt.datetime | None = None) -> bool:
    """Claim the invitation (``sent_at`` from empty to now, a conditional UPDATE) and enqueue
    its email in the same transaction. False when it was already sent: a retried task or a
    second sweeper sends nothing twice (and the outbox key would refuse it anyway)."""
    now = now or timezone.now()
    if not Invitation.objects.filter(pk=invitation_id, sent_at=None).update(sent_at=now):
        return False
    invitation = Invitation.objects.select_related(
        "campaign__survey", "stakeholder", "account"
    ).get(pk=invitation_id)
    mail.invitation_email(invitation, reminder=False)
    return True


def campaign_start_for_account(
    *, campaign_id: int, account_id: int, round: str, now: dt.datetime | None = None
) -> RoundSummary:
    """Send an event campaign to one account's audience (a ticket solved, a renewal coming,
    a playbook step). ``round`` names the event ("ticket:T-17", "playbook:cta:12" …): the
    same event never surveys the same person twice. Raises ValidationError for a campaign
    that is not active."""
    campaign = Campaign.objects.select_related("survey").get(pk=campaign_id)
    if campaign.status != Campaign.Status.ACTIVE:
        raise ValidationError({"campaign": [f"campaign {campaign_id} is not active"]})
    return campaign_round_send(campaign=campaign, round=round, account_ids=[account_id], now=now)


def survey_invitation_issue(
    *, campaign_id: int, stakeholder_id: int, round: str, now: dt.datetime | None = None
) -> Invitation | None:
    """Invite one person (a playbook step naming a stakeholder). Same rules as a round:
    None when the person has no address, opted out, is fatigued or was already invited in
    this round (then the existing invitation is returned)."""
    campaign = Campaign.objects.select_related("survey").get(pk=campaign_id)
    if campaign.status != Campaign.Status.ACTIVE:
        raise ValidationError({"campaign": [f"campaign {campaign_id} is not active"]})
    person = Stakeholder.objects.get(pk=stakeholder_id)
    existing = Invitation.objects.filter(campaign=campaign, round=round, stakeholder=person).first()
    if existing is not None:
        return existing
    now = now or timezone.now()
    email = person.email.strip().lower()
    if not email or opted_out({email}) or fatigued_emails({email}, now=now):
        return None
    with transaction.atomic():
        invitation = Invitation.objects.create(
            campaign=campaign,
            round=round,
            stakeholder=person,
            account_id=person.account_id,
            email=email,
            token=new_token(),
            expires_at=_expiry(campaign, now),
        )
        invitation_email_send(invitation_id=invitation.pk, now=now)
    invitation.refresh_from_db()
    return invitation


def _expiry(campaign: Campaign, now: dt.datetime) -> dt.datetime:
    expires_at = now + dt.timedelta(days=campaign.expires_after_days)
    if campaign.closes_at is not None:
        expires_at = min(expires_at, campaign.closes_at)
    return expires_at


def _add_months(moment: dt.datetime, months: int) -> dt.datetime:
    month = moment.month - 1 + months
    year, month = moment.year + month // 12, month % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def campaign_following_run(campaign: Campaign, now: dt.datetime) -> dt.datetime | None:
    """The send after the one starting now: none for a one-off; for a recurring campaign the
    first of its send time plus N, 2N … months that lies after ``now`` (from the same base
    each time, so a 31st does not drift to the 28th; a long outage skips the missed runs)."""
    if campaign.trigger != Campaign.Trigger.RECURRING or not campaign.recurrence_months:
        return None
    base = campaign.next_run_at or now
    step = 1
    following = _add_months(base, campaign.recurrence_months)
    while following <= now:
        step += 1
        following = _add_months(base, step * campaign.recurrence_months)
    return following


def _campaign_run(campaign: Campaign, *, now: dt.datetime) -> RoundSummary | None:
    """Claim the campaign's next scheduled round and send it: a conditional UPDATE moves
    ``runs`` and ``next_run_at`` on from what ``campaign`` holds, so two sweepers (or a sweeper
    and "Send now") never send one run twice. None when another run claimed it first."""
    run = campaign.runs + 1
    with transaction.atomic():
        claimed = Campaign.objects.filter(
            pk=campaign.pk, runs=campaign.runs, next_run_at=campaign.next_run_at
        ).update(
            runs=run,
            next_run_at=campaign_following_run(campaign, now),
            updated_at=now,
            updated_by=None,  # the send moved it on, not the last editor
        )
        if not claimed:
            return None
        return campaign_round_send(campaign=campaign, round=str(run), now=now)


def campaigns_send_due(*, now: dt.datetime | None = None) -> dict[int, dict[str, int]]:
    """Send every active one-off or recurring campaign whose ``next_run_at`` has come (each
    run claimed by ``_campaign_run``). A one-off campaign sends once: after its run it has
    no next run, and one that ran is never sent again even if a send time came back."""
    now = now or timezone.now()
    sent: dict[int, dict[str, int]] = {}
    due = (
        Campaign.objects.filter(
            status=Campaign.Status.ACTIVE,
            trigger__in=[Campaign.Trigger.ONE_OFF, Campaign.Trigger.RECURRING],
            next_run_at__lte=now,
        )
        .exclude(trigger=Campaign.Trigger.ONE_OFF, runs__gt=0)
        .order_by("next_run_at")
    )
    for campaign in due.select_related("survey"):
        summary = _campaign_run(campaign, now=now)
        if summary is not None:
            sent[campaign.pk] = summary.as_dict()
    return sent


def campaign_send_refusal(campaign: Campaign, *, now: dt.datetime | None = None) -> str:
    """Why "Send now" may not send ``campaign`` (a sentence), or "" when it may: only an
    active one-off campaign not yet sent or an active recurring one that has not closed."""
    now = now or timezone.now()
    name = f"“{campaign.name}”"
    if campaign.trigger == Campaign.Trigger.EVENT:
        event = campaign.get_event_display().lower() if campaign.event else "an event"
        return (
            f"{name} starts on an event ({event}): it surveys one account when that happens, "
            "never everyone at once."
        )
    if campaign.status == Campaign.Status.DRAFT:
        return f"{name} is a draft: set its status to Active and save it before sending."
    if campaign.status == Campaign.Status.CLOSED:
        return f"{name} is closed: it sends nothing more."
    if campaign.closes_at is not None and campaign.closes_at <= now:
        closed = utc.moment_text(campaign.closes_at)
        return f"{name} closed on {closed} UTC: its links would not work."
    if campaign.trigger == Campaign.Trigger.ONE_OFF and campaign.runs:
        return (
            f"{name} is a one-off campaign and was already sent: it sends once. To survey its "
            "audience again, create a new campaign or make this one recurring."
        )
    return ""


def campaign_send_now(
    *, campaign_id: int, round: str | None = None, now: dt.datetime | None = None
) -> RoundSummary:
    """Send the campaign's next scheduled round now ("Send now", where no beat runs): round 1
    of a one-off campaign, the next round of a recurring one, whose following send is then
    N months after the one this replaces. ``round`` is the round the page offered: if
    another send took it meanwhile (a second click), nothing is sent. Raises
    ValidationError saying why it sends nothing (``campaign_send_refusal``)."""
    now = now or timezone.now()
    campaign = Campaign.objects.select_related("survey").get(pk=campaign_id)
    refusal = campaign_send_refusal(campaign, now=now)
    if refusal:
        raise ValidationError(refusal)
    if round is not None and round != str(campaign.runs + 1):
        raise ValidationError(
            f"Round {round} of “{campaign.name}” was sent already "
            f"(it has sent {campaign.runs}): nothing sent again."
        )
    summary = _campaign_run(campaign, now=now)
    if summary is None:
        raise ValidationError(
            f"Another send of “{campaign.name}” ran at the same moment: nothing sent again."
        )
    return summary


def campaign_last_round(campaign: Campaign) -> dict | None:
    """The latest scheduled round of ``campaign`` that sent anything: its name, when it was
    sent, how many were invited and how many answered (one query), or None."""
    return (
        Invitation.objects.filter(campaign=campaign, sent_at__isnull=False)
        .values("round")
        .annotate(
            sent_at=Min("sent_at"),
            invited=Count("id"),
            answered=Count("id", filter=Q(responded_at__isnull=False)),
        )
        .order_by("-sent_at")
        .first()
    )


def event_campaigns_run(*, now: dt.datetime | None = None) -> dict[int, int]:
    """Event campaigns: tickets solved since the last sweep, and contracts ending in exactly
    ``renewal_days_before`` days, start the campaign for their account. The watermark
    (``events_checked_until``) moves in the same transaction as the sends."""
    now = now or timezone.now()
    issued: dict[int, int] = {}
    campaigns = Campaign.objects.filter(
        status=Campaign.Status.ACTIVE,
        trigger=Campaign.Trigger.EVENT,
        event__in=[Campaign.Event.TICKET_SOLVED, Campaign.Event.RENEWAL],
    ).select_related("survey")
    for campaign in campaigns:
        since = campaign.events_checked_until or campaign.created_at
        rounds: list[tuple[int, str]] = []
        if campaign.event == Campaign.Event.TICKET_SOLVED:
            rounds = [
                (account_id, f"ticket:{external_id}")
                for account_id, external_id in Ticket.objects.filter(
                    resolved_at__gte=since,
                    resolved_at__lt=now,
                    status__in=[Ticket.Status.SOLVED, Ticket.Status.CLOSED],
                ).values_list("account_id", "external_id")
            ]
        elif campaign.renewal_days_before is not None:
            lead = dt.timedelta(days=campaign.renewal_days_before)
            first, last = (since + lead).date(), (now + lead).date()
            rounds = [
                (account_id, f"renewal:{end_date.isoformat()}")
                for account_id, end_date in Contract.objects.filter(
                    end_date__gt=first, end_date__lte=last
                )
                .values_list("account_id", "end_date")
                .distinct()
            ]
        with transaction.atomic():
            claimed = Campaign.objects.filter(
                pk=campaign.pk, events_checked_until=campaign.events_checked_until
            ).update(events_checked_until=now)
            if not claimed:
                continue
            total = 0
            for account_id, round in rounds:
                total += len(
                    campaign_round_send(
                        campaign=campaign, round=round, account_ids=[account_id], now=now
                    ).issued
                )
        issued[campaign.pk] = total
    return issued


def invitation_reminders_send(*, now: dt.datetime | None = None) -> int:
    """One reminder to each invitation not answered ``reminder_after_days`` after it was
    sent, while its link works and the person has not opted out. Per campaign, a chunk
    (``SEND_CHUNK``) at a time, each in its own transaction: the due invitations are read
    and locked (``SKIP LOCKED``: a second sweeper takes others, or none), marked reminded
    in one UPDATE of ``reminders_sent``, and their emails queued together
    (``mail.invitation_emails``) under the keys ``survey-reminder:<id>:1``."""
    now = now or timezone.now()
    sent = 0
    campaigns = (
        Campaign.objects.filter(status=Campaign.Status.ACTIVE, reminder_after_days__isnull=False)
        .exclude(closes_at__lte=now)
        .select_related("survey")
    )
    for campaign in campaigns:
        due = (
            Invitation.objects.filter(
                campaign=campaign,
                sent_at__lte=now - dt.timedelta(days=campaign.reminder_after_days),
                responded_at=None,
                reminders_sent=0,
                expires_at__gt=now,
            )
            .exclude(email__in=OptOut.objects.values("email"))
            .select_related("stakeholder", "account")
            .select_for_update(of=("self",), skip_locked=True)
            .order_by("id")
        )
        while True:
            with transaction.atomic():
                invitations = list(due[:SEND_CHUNK])
                Invitation.objects.filter(pk__in=[i.pk for i in invitations]).update(
                    reminders_sent=1, last_reminded_at=now
                )
                for invitation in invitations:
                    invitation.campaign = campaign
                    invitation.reminders_sent, invitation.last_reminded_at = 1, now
                mail.invitation_emails(invitations, reminder=True)
            sent += len(invitations)
            if len(invitations) < SEND_CHUNK:
                break
    return sent


# --- answers ---------------------------------------------------------------------------------


def invitation_is_open(invitation: Invitation, now: dt.datetime) -> bool:
    campaign = invitation.campaign
    return _is_open(invitation.expires_at, campaign.status, campaign.closes_at, now)


def _is_open(
    expires_at: dt.datetime, status: str, closes_at: dt.datetime | None, now: dt.datetime
) -> bool:
    return (
        expires_at > now
        and status != Campaign.Status.CLOSED
        and (closes_at is None or closes_at > now)
    )


def _fact_title(kind: str, score: int, stakeholder_name: str) -> str:
    return f"{_fact_title_prefix(kind, score)}{stakeholder_name or 'a stakeholder'}"[:300]


def _fact_title_prefix(kind: str, score: int) -> str:
    return f"{kind.upper()} {score} from "


def _clean_comment(comment: str) -> str:
    return (comment or "").replace("\x00", "").strip()[:COMMENT_MAX]


def _fact_data(response: Response) -> dict:
    return {
        "response_id": response.pk,
        "survey_kind": response.kind,
        "score": response.score,
        "unhappy": scoring.is_unhappy(response.kind, response.score),
        "stakeholder_id": response.stakeholder_id,
        "comment": response.comment,
    }


def _fact(response: Response, stakeholder_name: str) -> TimelineEntry:
    return TimelineEntry(
        account_id=response.account_id,
        occurred_at=response.answered_at,
        kind=FACT_KIND,
        key=f"survey-response:{response.pk}",
        title=_fact_title(response.kind, response.score, stakeholder_name),
        detail=response.comment,
        data=_fact_data(response),
    )


def _invitation_row(
    cursor, *, invitation_id: int | None, token: str | None, lock: bool
) -> dict | None:
    """The invitation with this id or token, its campaign's state and its person, in one
    statement, row-locked (PostgreSQL) with ``lock``; written out because the ORM's
    compilation of the same query cost more CPU than the rest of the answer
    (bench/survey_post_cost.py)."""
    where = "i.id = %s" if token is None else "i.token = %s"
    lock_sql = " FOR UPDATE OF i" if lock and connection.features.has_select_for_update_of else ""
    cursor.execute(
        f"""
        SELECT i.id, i.campaign_id, i.account_id, i.stakeholder_id, i.expires_at,
            i.responded_at, c.status, c.closes_at, s.kind, p.name, p.email
        FROM {Invitation._meta.db_table} i
        JOIN {Campaign._meta.db_table} c ON c.id = i.campaign_id
        JOIN {Survey._meta.db_table} s ON s.id = c.survey_id
        JOIN {Stakeholder._meta.db_table} p ON p.id = i.stakeholder_id
        WHERE {where}{lock_sql}
        """,
        [invitation_id if token is None else token],
    )
    row = cursor.fetchone()
    if row is None:
        return None
    names = ("id", "campaign_id", "account_id", "stakeholder_id", "expires_at", "responded_at",
             "status", "closes_at", "kind", "name", "email")  # fmt: skip
    found = dict(zip(names, row, strict=True))
    for name in ("expires_at", "responded_at", "closes_at"):  # SQLite's cursor: naive UTC
        if found[name] is not None and timezone.is_naive(found[name]):
            found[name] = timezone.make_aware(found[name], dt.UTC)
    return found


def _new_response(row: dict, score: object, comment: str, now: dt.datetime) -> Response:
    """The answer to the invitation ``row`` (``_invitation_row``); raises InvitationClosed
    after its expiry or its campaign's close, ScoreError for a score outside the scale."""
    if not _is_open(row["expires_at"], row["status"], row["closes_at"], now):
        raise InvitationClosed(row["id"])
    kind = row["kind"]
    return Response(
        invitation_id=row["id"],
        campaign_id=row["campaign_id"],
        account_id=row["account_id"],
        stakeholder_id=row["stakeholder_id"],
        kind=kind,
        score=scoring.parse_score(kind, score),
        comment=_clean_comment(comment),
        answered_at=now,
        is_current=True,
        source=Response.Source.LINK,
    )


def response_record(
    *,
    invitation_id: int | None = None,
    token: str | None = None,
    score: object,
    comment: str = "",
    now: dt.datetime | None = None,
    announce: bool = True,
) -> Response:
    """Record an answer to the invitation with this id or token: the latest counts, earlier
    ones stay as history. Raises Invitation.DoesNotExist for an unknown one, ScoreError for a
    score outside the scale and InvitationClosed after expiry or the campaign's close; writes
    nothing then.

    The listeners (playbooks, health) hear of the answer's timeline fact through an
    ``AnswerToAnnounce`` row written with it: ``answers_announce`` reads those in batches,
    every few seconds when a worker and beat run (deployed), or right after the commit when
    tasks run in-process (embedded: ``announce_inline``). ``announce=False`` writes no such
    row and leaves the listeners to a caller recording many answers at once (the demo data:
    ``surveys.demo``).

    The public page's hot path is a person's first answer, on PostgreSQL outside any
    transaction (the page's request): ``_first_answer`` records it in one statement.
    Everything else (a changed answer, a caller's transaction, SQLite) takes
    ``_answer_locked``."""
    now = now or timezone.now()
    if token is not None and connection.vendor == "postgresql" and not connection.in_atomic_block:
        response = _first_answer(token, score, comment, now, announce=announce)
        if response is not None:
            return response
    return _answer_locked(invitation_id, token, score, comment, now, announce=announce)


def first_answers_only(answers: Sequence[tuple[str, object, str, dt.datetime]]) -> list[bool]:
    """The public page's lean path (``surveys.answer_batch``, for ``surveys.answer_wsgi``):
    a batch of answers (token, score, comment, time answered), each recorded as its link's
    first answer (and announced as ``response_record`` would) by ONE statement
    (``_first_answers``). Per answer, True when recorded, False when nothing was written
    for it (no such link, closed, a score off the scale, an answer to change) or for the
    whole batch (another first answer to one of its links committed meanwhile, the database
    away): the caller then goes the general way, ``response_record``, whose exceptions tell
    which. The tokens of a batch must be distinct."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return [False] * len(answers)
    try:
        found = _first_answers(answers, announce=True)
    except (IntegrityError, OperationalError, InterfaceError):  # Django's path: 503 if it lasts
        return [False] * len(answers)
    recorded = [written.response_id is not None or written.earlier for written in found]
    if any(recorded) and announce_inline():
        answers_announce()  # committed already: what on_commit would do
    return recorded


def _first_answer(
    token: str, score: object, comment: str, now: dt.datetime, *, announce: bool
) -> Response | None:
    """A first answer without a transaction around it (``_first_answers`` for one answer).
    The rules are then applied to the invitation's row as ``_answer_locked`` does: unknown
    token (DoesNotExist), expired or closed (InvitationClosed), score outside the survey's
    scale (ScoreError), nothing written in each case. Returns None, having written nothing,
    when the invitation already has an answer: then the answer changes one, which needs the
    row lock (``_answer_locked``).

    Two first answers at once both read "no answer yet"; the partial unique constraint (one
    current response per invitation) lets only one insert commit, and the other statement
    fails whole, so that answer goes on through ``_answer_locked`` as a change."""
    try:
        [written] = _first_answers([(token, score, comment, now)], announce=announce)
    except IntegrityError:  # another first answer committed meanwhile
        return None
    row = written.row
    if row is None:
        raise Invitation.DoesNotExist(f"no invitation {token!r}")
    if written.earlier:  # the lost connection had committed the first attempt
        response = Response.objects.filter(invitation_id=row["id"], answered_at=now).latest("id")
    elif written.response_id is None:  # closed, a bad score, or a change of answer
        _new_response(row, score, comment, now)  # raises InvitationClosed or ScoreError
        return None
    else:
        response = _new_response(row, score, comment, now)
        response.pk, response.created_at = written.response_id, written.created
        response._state.adding = False
        response._state.db = connection.alias
    if announce and announce_inline():
        answers_announce()  # committed already: what on_commit would do
    return response


class _Written(NamedTuple):
    """What ``_first_answers`` found and wrote for one answer: the invitation's row (None:
    no such token), the response's id (None: nothing written), the response's
    ``created_at``, and ``earlier``: a first attempt whose connection was lost had written
    this answer."""

    row: dict | None
    response_id: int | None
    created: dt.datetime
    earlier: bool = False


def _first_answers(
    answers: Sequence[tuple[str, object, str, dt.datetime]], *, announce: bool
) -> list[_Written]:
    """First answers (token, score, comment, time answered; distinct tokens) in ONE
    prepared statement (``config.db.prepared_cursor``, ``_first_answers_sql``), outside any
    transaction: it reads each answer's invitation and, for those that may take a first
    answer now, writes the response, ``responded_at``, the timeline fact and the row to
    announce. The answers travel as two JSON parameters whatever their number, so one plan
    serves every batch (and two strings cost psycopg less to send than a dozen arrays). The
    score is handed to it as parsed for every kind, and it writes the one that parsed for
    the invitation's kind.

    A statement whose connection was lost (``_connection_lost``) may have committed: it is
    run once more on a new connection, and an answer then found with its own time as
    ``responded_at`` was the first attempt's (``earlier``). Raises IntegrityError when
    another first answer to one of the links committed meanwhile (nothing written)."""
    created = timezone.now()
    sent, scored_rows = [], []
    for n, (token, score, comment, now) in enumerate(answers, 1):
        sent.append({"n": n, "token": token, "answered_at": now.isoformat(),
                     "comment": _clean_comment(comment)})  # fmt: skip
        scored = _scored if isinstance(score, str | int) else _scored.__wrapped__
        scored_rows += [{"n": n, **scored(kind, score)} for kind in scoring.SCALES]
    params = [json.dumps(sent), json.dumps(scored_rows), Campaign.Status.CLOSED]
    params += [Response.Source.LINK, created, FACT_KIND, created]
    for attempt in (1, 2):
        try:
            with prepared_cursor() as cursor:
                cursor.execute(_first_answers_sql(announce), params)
                rows = cursor.fetchall()
            break
        except (OperationalError, InterfaceError):
            if attempt == 2 or not _connection_lost():
                raise
            connection.close()  # the next attempt opens a new one
    found = [_Written(None, None, created)] * len(answers)
    for n, *columns, response_id in rows:
        row = dict(zip(_INVITATION_COLUMNS, columns, strict=True))
        earlier = response_id is None and attempt == 2 and row["responded_at"] == answers[n - 1][3]
        found[n - 1] = _Written(row, response_id, created, earlier)
    return found


def _connection_lost() -> bool:
    """Whether the statement that just failed lost its connection (a server restart, a
    peer gone: ``config.db.prepared_cursor`` checks a reused connection passively). Such a
    statement may or may not have committed; ``_first_answer`` tells which on its retry by
    the invitation's ``responded_at``, the request's own time when it did."""
    raw = connection.connection
    return raw is None or raw.closed or raw.broken


_INVITATION_COLUMNS = ("id", "campaign_id", "account_id", "stakeholder_id", "expires_at",
                       "responded_at", "status", "closes_at", "kind", "name", "email")  # fmt: skip


@functools.lru_cache(maxsize=256, typed=True)  # typed: True is no score, 1 is one
def _scored(kind: str, raw: object) -> dict:
    """One ``scored`` row of ``_first_answers_sql`` for a survey of ``kind`` (less the
    answer's number): the kind, the score as parsed on its scale (None outside it), the
    fact's title up to the person's name and the fact's data that depend on the score alone
    (``_fact_title``, ``_fact_data``). Cached: read it, never change it."""
    try:
        value = scoring.parse_score(kind, raw)
    except scoring.ScoreError:
        return {"kind": kind, "score": None, "title": "", "data": {}}
    data = {"survey_kind": kind, "score": value, "unhappy": scoring.is_unhappy(kind, value)}
    return {"kind": kind, "score": value, "title": _fact_title_prefix(kind, value), "data": data}


def _queued_sql(announce: bool) -> str:
    """The answer statements' last CTE: the fact's row to announce (``AnswerToAnnounce``),
    or nothing."""
    if not announce:
        return ""
    return f""", queued AS (
                INSERT INTO {AnswerToAnnounce._meta.db_table} (entry_id, account_id)
                SELECT id, account_id FROM fact
            )"""


@functools.cache
def _first_answers_sql(announce: bool) -> str:
    """The first answers' statement for a batch of answers (``_first_answers``): ``sent``,
    the answers as a JSON array, each numbered ``n`` from 1; ``scored``, a JSON array of the
    score as parsed for each answer and kind (``_scored``). Per answer whose token is known,
    it returns ``n``, the invitation's row (``_INVITATION_COLUMNS``) and the response's id,
    NULL when it wrote nothing for that answer. ``answer`` holds the invitations that may
    take a first answer now, each with the ``scored`` row of its kind; the writes are those
    of ``_answer_insert``, from it. The tokens of one batch are distinct."""
    invitation, response = Invitation._meta.db_table, Response._meta.db_table
    return f"""
        WITH sent AS (
            SELECT * FROM jsonb_to_recordset(%s::jsonb)
                AS sent (n integer, token text, answered_at timestamptz, comment text)
        ), invitation AS (
            SELECT sent.n, i.id, i.campaign_id, i.account_id, i.stakeholder_id, i.expires_at,
                i.responded_at, c.status, c.closes_at, s.kind, p.name, p.email
            FROM sent
            JOIN {invitation} i ON i.token = sent.token
            JOIN {Campaign._meta.db_table} c ON c.id = i.campaign_id
            JOIN {Survey._meta.db_table} s ON s.id = c.survey_id
            JOIN {Stakeholder._meta.db_table} p ON p.id = i.stakeholder_id
        ), answer AS (
            SELECT invitation.*, sent.answered_at, sent.comment, scored.score, scored.title,
                scored.data
            FROM invitation
            JOIN sent ON sent.n = invitation.n
            JOIN jsonb_to_recordset(%s::jsonb)
                AS scored (n integer, kind text, score integer, title text, data jsonb)
                ON scored.n = invitation.n AND scored.kind = invitation.kind
            WHERE scored.score IS NOT NULL AND invitation.responded_at IS NULL
                AND invitation.expires_at > sent.answered_at AND invitation.status <> %s
                AND (invitation.closes_at IS NULL OR invitation.closes_at > sent.answered_at)
        ), response AS (
            INSERT INTO {response} (invitation_id, campaign_id, account_id, stakeholder_id,
                kind, score, comment, answered_at, is_current, source, created_at)
            SELECT id, campaign_id, account_id, stakeholder_id, kind, score, comment,
                answered_at, true, %s, %s
            FROM answer ORDER BY n
            RETURNING id, invitation_id
        ), first_answer AS (
            UPDATE {invitation} SET responded_at = answer.answered_at
            FROM answer WHERE {invitation}.id = answer.id AND {invitation}.responded_at IS NULL
        ), fact AS (
            INSERT INTO {TimelineEntry._meta.db_table} (account_id, occurred_at, kind,
                key, title, detail, data, created_at)
            SELECT answer.account_id, answer.answered_at, %s, 'survey-response:' || response.id,
                left(answer.title || coalesce(nullif(answer.name, ''),
                    nullif(answer.email, ''), 'a stakeholder'), 300),
                answer.comment, answer.data || jsonb_build_object('response_id', response.id,
                    'stakeholder_id', answer.stakeholder_id, 'comment', answer.comment), %s
            FROM response JOIN answer ON answer.id = response.invitation_id
            ORDER BY answer.n
            RETURNING id, account_id
        ){_queued_sql(announce)}
        SELECT invitation.*, response.id
        FROM invitation LEFT JOIN response ON response.invitation_id = invitation.id
        """


@transaction.atomic
def _answer_locked(
    invitation_id: int | None,
    token: str | None,
    score: object,
    comment: str,
    now: dt.datetime,
    *,
    announce: bool,
) -> Response:
    """Any answer, in one transaction: the invitation row is read and locked (one
    statement), which serialises concurrent answers; the same score and comment as the
    current answer write nothing (its history and timeline would only repeat it); else the
    current answer is demoted and the new one written as in ``_first_answer`` (SQLite:
    statement by statement)."""
    with connection.cursor() as cursor:
        row = _invitation_row(cursor, invitation_id=invitation_id, token=token, lock=True)
    if row is None:
        raise Invitation.DoesNotExist(f"no invitation {invitation_id or token!r}")
    response = _new_response(row, score, comment, now)
    if row["responded_at"] is not None:  # under the lock: there is an answer to demote
        current = Response.objects.filter(invitation_id=row["id"], is_current=True)
        demoted = current.exclude(score=response.score, comment=response.comment).update(
            is_current=False
        )
        same = None if demoted else current.first()
        if same is not None:
            return same  # the same answer again (a reload, a second click): nothing new
    who = row["name"] or row["email"]
    if connection.vendor == "postgresql":
        with prepared_cursor() as cursor:
            _answer_insert(cursor, response, who, announce=announce)
    else:
        response.save()
        if row["responded_at"] is None:
            Invitation.objects.filter(pk=row["id"]).update(responded_at=now)
        entry = _fact(response, who)
        entry.save()
        if announce:
            AnswerToAnnounce.objects.create(entry_id=entry.pk, account_id=row["account_id"])
    if announce and announce_inline():
        transaction.on_commit(answers_announce)
    return response


def _answer_insert(cursor, response: Response, stakeholder_name: str, *, announce: bool) -> int:
    """PostgreSQL, on ``cursor``: the response, the invitation's first-answer time, the
    timeline fact (``_fact``'s fields) and, with ``announce``, its ``AnswerToAnnounce`` row
    in one statement; sets ``response.pk``, returns the fact's id."""
    data = _fact_data(response)  # its response_id is set by the statement
    created = timezone.now()
    queued = _queued_sql(announce)
    cursor.execute(
        f"""
        WITH response AS (
            INSERT INTO {Response._meta.db_table} (invitation_id, campaign_id, account_id,
                stakeholder_id, kind, score, comment, answered_at, is_current, source,
                created_at)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, true, %s, %s)
            RETURNING id
        ), first_answer AS (
            UPDATE {Invitation._meta.db_table} SET responded_at = %s
            WHERE id = %s AND responded_at IS NULL
        ), fact AS (
            INSERT INTO {TimelineEntry._meta.db_table} (account_id, occurred_at, kind,
                key, title, detail, data, created_at)
            SELECT %s, %s, %s, 'survey-response:' || response.id, %s, %s,
                %s::jsonb || jsonb_build_object('response_id', response.id), %s
            FROM response
            RETURNING id, account_id
        ){queued}
        SELECT response.id, fact.id FROM response, fact
        """,
        [
            response.invitation_id, response.campaign_id, response.account_id,
            response.stakeholder_id, response.kind, response.score, response.comment,
            response.answered_at, response.source, created,
            response.answered_at, response.invitation_id,
            response.account_id, response.answered_at, FACT_KIND,
            _fact_title(response.kind, response.score, stakeholder_name), response.comment,
            json.dumps(data), created,
        ],
    )  # fmt: skip
    response.pk, entry_id = cursor.fetchone()
    response.created_at = created
    response._state.adding = False
    response._state.db = connection.alias
    return entry_id


def announce_inline() -> bool:
    """Whether an answer is announced right after its commit rather than by the beat task:
    ``settings.SURVEY_ANNOUNCE_INLINE``, or when unset (None), whenever Celery runs tasks
    in-process (embedded mode: no broker, no beat)."""
    inline = settings.SURVEY_ANNOUNCE_INLINE
    if inline is None:
        from celery import current_app

        inline = current_app.conf.task_always_eager
    return bool(inline)


def _answers_claim(*, limit: int, now: dt.datetime) -> list[tuple[int, int]]:
    """Claim up to ``limit`` answers not yet announced (nor claimed by a live run), oldest
    first: (fact id, account id) each. One UPDATE … RETURNING; on PostgreSQL its subquery
    skips rows another run is claiming (SKIP LOCKED) and the outer condition is checked
    again on the locked row, so two concurrent runs never claim the same answer. SQLite has
    one writer at a time: the statement is the claim."""
    table = AnswerToAnnounce._meta.db_table
    skipping = connection.features.has_select_for_update_skip_locked
    skip = " FOR UPDATE SKIP LOCKED" if skipping else ""
    until = connection.ops.adapt_datetimefield_value(
        now + dt.timedelta(seconds=ANNOUNCE_CLAIM_SECONDS)
    )
    moment = connection.ops.adapt_datetimefield_value(now)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {table} SET claimed_until = %s
            WHERE entry_id IN (
                SELECT entry_id FROM {table}
                WHERE claimed_until IS NULL OR claimed_until < %s
                ORDER BY entry_id LIMIT %s{skip}
            ) AND (claimed_until IS NULL OR claimed_until < %s)
            RETURNING entry_id, account_id
            """,
            [until, moment, limit, moment],
        )
        return sorted(cursor.fetchall())


def answers_announce(*, limit: int = ANNOUNCE_BATCH, now: dt.datetime | None = None) -> int:
    """Tell the listeners of the answers written since the last run, a batch at a time:
    ``TIMELINE_FACT_HOOKS`` with the batch's fact ids (the playbooks: one task per 1,000)
    and ``ACCOUNT_DATA_CHANGED_HOOKS`` with its accounts (the health recompute, debounced
    per account), then delete the batch's rows. At least once: a run that dies after
    claiming leaves the rows to the next run once the claim expires; never by two runs at
    once. Returns how many answers were announced."""
    announced = 0
    while True:
        claimed = _answers_claim(limit=limit, now=now or timezone.now())
        if not claimed:
            break
        entry_ids = [entry_id for entry_id, _ in claimed]
        timeline_facts_recorded(entry_ids)
        account_data_changed({account_id for _, account_id in claimed})
        AnswerToAnnounce.objects.filter(entry_id__in=entry_ids).delete()
        announced += len(claimed)
        if len(claimed) < limit:
            break
    return announced


def optout_record(*, invitation: Invitation) -> OptOut:
    """Never survey this invitation's address again (idempotent)."""
    optout, _ = OptOut.objects.get_or_create(
        email=invitation.email, defaults={"invitation": invitation}
    )
    return optout


# --- editor ------------------------------------------------------------------------------------

SURVEY_FIELDS = ("kind", "question", "follow_up", "language", "strings")
CAMPAIGN_FIELDS = (
    "name",
    "status",
    "segments",
    "bands",
    "lifecycle_stages",
    "roles",
    "trigger",
    "next_run_at",
    "recurrence_months",
    "event",
    "renewal_days_before",
    "reminder_after_days",
    "expires_after_days",
    "closes_at",
)


@transaction.atomic
def campaign_save(
    *,
    data: dict,
    user,
    campaign: Campaign | None = None,
    opened_at: str = "",
    key: str = "",
) -> Campaign | None:
    """Create or update a campaign and its survey from the editor's cleaned data. The survey
    kind cannot change once answers exist (their scores are on its scale).

    A change is refused, writing nothing, when the campaign was saved (or a round sent)
    after the page was opened (``opened_at``, its ``updated_at`` then; blank: no check): the
    editor sends every field, so saving would silently undo that change, or move a send time
    back to a round already sent. A save that changes nothing is no error (a second click
    on Save). ``key``: the new campaign form's key (``accounts.once``); the same form sent
    again makes nothing and returns the campaign the first send made, its
    ``created_again`` True (None if it was removed since): not a second campaign that would
    survey the same people twice."""
    from .models import Survey

    if campaign is None:
        if not once.claim(key):
            made = once.made_by(key, Campaign)
            if made is not None:
                made.created_again = True
            return made
        survey = Survey(name=data["name"])
        made = _campaign_write(survey, Campaign(created_by=user), data=data, user=user)
        once.made(key, made)
        return made
    locked = (
        Campaign.objects.select_for_update(of=("self",))
        .select_related("survey", "updated_by")
        .get(pk=campaign.pk)
    )
    survey = locked.survey
    if _campaign_same(locked, data):
        return locked
    if changed_since(opened_at, locked.updated_at):
        raise ValidationError(
            stale_words(
                changed="This campaign was changed"
                if locked.updated_by
                else "This campaign was changed (a round was sent)",
                by=locked.updated_by,
                at=locked.updated_at,
                see="the campaign as it is now",
            )
        )
    if data["kind"] != survey.kind and Response.objects.filter(campaign=locked).exists():
        raise ValidationError({"kind": ["The kind cannot change: answers exist."]})
    return _campaign_write(survey, locked, data=data, user=user)


def _campaign_same(campaign: Campaign, data: dict) -> bool:
    """Whether saving ``data`` would leave the campaign and its survey as they are."""
    survey = campaign.survey
    same_survey = all(
        getattr(survey, n) == (data[n] if data[n] is not None else "") for n in SURVEY_FIELDS
    )
    return (
        survey.name == data["name"]
        and same_survey
        and all(getattr(campaign, n) == data.get(n) for n in CAMPAIGN_FIELDS if n != "event")
        and campaign.event == (data.get("event") or "")
    )


def _campaign_write(survey, campaign: Campaign, *, data: dict, user) -> Campaign:
    for name in SURVEY_FIELDS:
        setattr(survey, name, data[name] if data[name] is not None else "")
    survey.name = data["name"]
    survey.full_clean()
    survey.save()
    for name in CAMPAIGN_FIELDS:
        setattr(campaign, name, data.get(name))
    campaign.event = campaign.event or ""
    campaign.survey = survey
    campaign.updated_by = user
    campaign.full_clean()
    campaign.save()
    return campaign
