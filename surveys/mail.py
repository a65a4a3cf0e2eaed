"""The invitation and reminder emails: the first question is in the email itself, each
score a link to the response page with that score preselected (the page records nothing until
the person presses the button: mail scanners follow links)."""

from __future__ import annotations

from django.conf import settings
from django.template.loader import render_to_string
from django.urls import reverse

from outbox import services as outbox

from . import scoring
from .strings import fill, page_strings


def public_url(path: str) -> str:
    return settings.SITE_URL.rstrip("/") + path


def invitation_context(invitation, *, reminder: bool) -> dict:
    survey = invitation.campaign.survey
    text = page_strings(survey.strings, survey.language)
    company = invitation.account.name
    name = invitation.stakeholder.name or ""
    respond = public_url(reverse("surveys:respond", args=[invitation.token]))
    low, high = scoring.LABELS[survey.kind]
    intro_key = "email_reminder_intro" if reminder else "email_intro"
    return {
        "survey": survey,
        "language": survey.language,
        "subject": fill(text["email_subject"], company=company, name=name or company),
        "intro": fill(text[intro_key], company=company, name=name or "there").replace(
            "Hello , ", "Hello, "
        ),
        "question": fill(survey.question, company=company),
        "scores": [(s, f"{respond}?score={s}") for s in scoring.scale(survey.kind)],
        "low_label": low,
        "high_label": high,
        "respond_url": respond,
        "unsubscribe_url": public_url(reverse("surveys:unsubscribe", args=[invitation.token])),
        "footer": text["email_footer"],
    }


def invitation_email(invitation, *, reminder: bool):
    """Enqueue the invitation (or its one reminder) in the outbox; idempotent on the key."""
    context = invitation_context(invitation, reminder=reminder)
    key = (
        f"survey-reminder:{invitation.pk}:{invitation.reminders_sent}"
        if reminder
        else f"survey-invite:{invitation.pk}"
    )
    return outbox.email_enqueue(
        key=key,
        to=[invitation.email],
        subject=context["subject"],
        text=render_to_string("surveys/email_invitation.txt", context),
        html=render_to_string("surveys/email_invitation.html", context),
        source=f"survey-campaign:{invitation.campaign_id}",
    )
