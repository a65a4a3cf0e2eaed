"""The invitation and reminder emails: the first question is in the email itself, each
score a link to the response page with that score preselected (the page records nothing until
the person presses the button: mail scanners follow links). Every text is the survey's, in its
language (``surveys.strings``); the unsubscribe page's address is also the ``List-Unsubscribe``
header, with ``List-Unsubscribe-Post`` for the mail program's own one-click button."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from django.conf import settings
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import formats, translation

from accounts import utc
from config.site import absolute_url
from outbox import services as outbox

from .strings import DEFAULTS, fill, filled, invitation_values, page_strings, scale_texts


def day_words(day: dt.date, language: str) -> str:
    """A day as a respondent reads it in ``language``: the product's "1 Apr 2026" in English
    (and in a language Django has no words for), else the language's own long date, its
    month in words, from Django's locale formats ("1. April 2026", "1 avril 2026",
    "1 de abril de 2026")."""
    if language.split("-")[0].lower() == "en" or not translation.check_for_language(language):
        return utc.day_text(day)
    with translation.override(language):
        return formats.date_format(day, "DATE_FORMAT")


def expires_text(
    moment,
    *,
    language: str = "en",
    strings: Mapping[str, str] | None = None,
    values: Mapping[str, str] | None = None,
) -> str:
    """Until when an invitation's link works, as the email says it: "1 Apr 2026, 09:00 UTC",
    or "the end of 31 Mar 2026 (UTC)" for a link that closes at 00:00 UTC of the next day
    (``accounts.utc.deadline_day``, the rule of a CTA's "due by"). The day is in the
    survey's ``language`` (``day_words``), and the end-of-day sentence is the survey's
    ``email_expiry_day_end`` string (``strings``, unfilled, its ``{sender}`` and ``{company}``
    from ``values``; the English default without)."""
    day, whole = utc.deadline_day(moment)
    words = day_words(day, language)
    if whole:
        return fill((strings or DEFAULTS)["email_expiry_day_end"], day=words, **(values or {}))
    return f"{words}, {moment.astimezone(dt.UTC):%H:%M} UTC"


def invitation_context(invitation, *, reminder: bool) -> dict:
    survey = invitation.campaign.survey
    raw = page_strings(survey.strings, survey.language)
    values = invitation_values(invitation)
    text = filled(raw, **values)
    name = (invitation.stakeholder.name or "").strip()
    respond = absolute_url(reverse("surveys:respond", args=[invitation.token]))
    scale = scale_texts(survey, text, values)
    intro_key = "email_reminder_intro" if reminder else "email_intro"
    return {
        "survey": survey,
        "language": survey.language,
        "subject": fill(raw["email_subject"], name=name or values["company"], **values),
        "intro": fill(raw[intro_key], name=name or text["email_no_name"], **values),
        "question": fill(survey.question, **values),
        **scale,
        "scores": [(s, f"{respond}?score={s}") for s in scale["scores"]],
        "respond_url": respond,
        "unsubscribe_url": absolute_url(reverse("surveys:unsubscribe", args=[invitation.token])),
        "footer": text["email_footer"],
        "expiry": fill(
            raw["email_expiry"],
            expires=expires_text(
                invitation.expires_at, language=survey.language, strings=raw, values=values
            ),
            **values,
        ),
        "reason": text["email_reason"],
    }


def _invitation_fields(invitation, *, reminder: bool) -> dict:
    """What the outbox needs for the invitation (or its one reminder): the key that makes it
    once (``survey-invite:<id>``, ``survey-reminder:<id>:<n>``), the rendered texts and the
    unsubscribe headers: ``List-Unsubscribe-Post`` (RFC 8058) tells the mail program it may
    unsubscribe with one POST of ``List-Unsubscribe=One-Click`` to the ``List-Unsubscribe``
    address, which ``public.unsubscribe`` takes without a CSRF token."""
    context = invitation_context(invitation, reminder=reminder)
    key = (
        f"survey-reminder:{invitation.pk}:{invitation.reminders_sent}"
        if reminder
        else f"survey-invite:{invitation.pk}"
    )
    return {
        "key": key,
        "to": [invitation.email],
        "subject": context["subject"],
        "text": render_to_string("surveys/email_invitation.txt", context),
        "html": render_to_string("surveys/email_invitation.html", context),
        "source": f"survey-campaign:{invitation.campaign_id}",
        # from the organisation asking, at the product's address: "Acme <cs@acme.example>"
        "from_name": settings.SURVEY_SENDER_NAME,
        "headers": outbox.unsubscribe_headers(context["unsubscribe_url"]),
    }


def invitation_email(invitation, *, reminder: bool):
    """Enqueue the invitation (or its one reminder) in the outbox; idempotent on the key."""
    return outbox.email_enqueue(**_invitation_fields(invitation, reminder=reminder))


def invitation_message(invitation, *, reminder: bool):
    """The same email as ``invitation_email``, unsaved, for ``outbox.messages_enqueue`` to
    queue with the rest of its round."""
    return outbox.email_message(**_invitation_fields(invitation, reminder=reminder))


def invitation_emails(invitations, *, reminder: bool) -> None:
    """Queue the emails of many invitations (or their reminders) with one
    ``outbox.messages_enqueue``: two queries and one delivery task per 50 emails, whatever
    their number; each still idempotent on its key. The invitations come with their
    campaign (and its survey), stakeholder and account loaded."""
    outbox.messages_enqueue([invitation_message(i, reminder=reminder) for i in invitations])
