"""The public survey pages under ``/s/<token>/``: no sign-in, no JavaScript, nothing about the
account beyond its name (and that only where a string asks for ``{company}``). Every text is
the survey's, in its language (``surveys.strings``). ``GET`` never writes (mail scanners
follow every link in an email); ``POST`` records. Rate-limited per token and per IP
(``accounts.ratelimit``)."""

from __future__ import annotations

import re

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from accounts import ratelimit

from . import scoring, services
from .models import Invitation, Response
from .strings import (
    DEFAULTS,
    fill,
    filled,
    invitation_values,
    page_strings,
    scale_texts,
    shows_thanks_change_note,
)

TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{20,64}")


def _headers(response: HttpResponse) -> HttpResponse:
    # the token is in the URL: never send it to another site as a referrer, never index the
    # page. Not "no-referrer": browsers then send "Origin: null" with the form, which Django's
    # CSRF check rightly refuses.
    response["Referrer-Policy"] = "same-origin"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


def _message(
    request: HttpRequest, status: int, title: str, body: str, *, strings=None, language="en"
):
    """A page of a title and a sentence. ``strings``: the survey's, filled (``_strings``);
    without a survey to read them from (an unknown link, a refusal before the invitation is
    read), the English defaults."""
    strings = strings or filled(DEFAULTS, sender=settings.SURVEY_SENDER_NAME)
    return _headers(
        render(
            request,
            "surveys/public_message.html",
            {"title": strings[title], "body": strings[body], "language": language},
            status=status,
        )
    )


def _strings(invitation: Invitation) -> dict[str, str]:
    """The survey's strings in its language with ``{sender}`` and ``{company}`` filled."""
    survey = invitation.campaign.survey
    return filled(page_strings(survey.strings, survey.language), **invitation_values(invitation))


def rate_checks(ip: str | None, token: str) -> list[tuple[str, int, int]]:
    """The public pages' rate limits (``ratelimit.allow_all``): per IP and per link."""
    return [
        (f"s-ip:{ip or 'unknown'}", settings.SURVEY_RATE_PER_IP, 60),
        (f"s-tok:{token[:64]}", settings.SURVEY_RATE_PER_TOKEN, 60),
    ]


def _limited(request: HttpRequest, token: str) -> HttpResponse | None:
    # an answer that surveys.answer_wsgi passed on has been counted there: its verdict
    allowed = request.META.get("surveys.rate_allowed")
    if allowed is None:
        allowed = ratelimit.allow_all(rate_checks(ratelimit.client_ip(request), token))
    if not allowed:
        response = _message(request, 429, "rate_limited_title", "rate_limited_body")
        response["Retry-After"] = "60"
        return response
    return None


def _invitation(token: str) -> Invitation | None:
    if not TOKEN_RE.fullmatch(token):
        return None
    return (
        Invitation.objects.select_related("campaign__survey", "account", "stakeholder")
        .filter(token=token)
        .first()
    )


def _open_or_error(request: HttpRequest, token: str):
    """(invitation, strings, None) or (None, None, the error page)."""
    limited = _limited(request, token)
    if limited is not None:
        return None, None, limited
    invitation = _invitation(token)
    if invitation is None:
        return None, None, _message(request, 404, "not_found_title", "not_found_body")
    return invitation, _strings(invitation), None


def _score_error(invitation: Invitation, raw: str, exc: scoring.ScoreError) -> str:
    """What is wrong with the score sent, in the survey's language."""
    survey = invitation.campaign.survey
    strings = page_strings(survey.strings, survey.language)
    if not raw.strip():
        key = "score_missing"
    elif exc.value is None:
        key = "score_not_whole"
    else:
        key = "score_out_of_range"
    low, high = scoring.SCALES[survey.kind]
    return fill(strings[key], low=low, high=high, score=exc.value, **invitation_values(invitation))


def _form_context(invitation: Invitation, strings: dict, *, score, comment, error=""):
    survey = invitation.campaign.survey
    values = invitation_values(invitation)
    return {
        "invitation": invitation,
        "language": survey.language,
        "strings": strings,
        "title": strings["page_title"],
        "sender": values["sender"],
        "question": fill(survey.question, **values),
        "follow_up": fill(survey.follow_up, **values) or strings["comment_label"],
        "kind": survey.kind,
        **scale_texts(survey, strings, values),
        "selected": score,
        "comment": comment,
        "error": error,
        "answered": invitation.responded_at is not None,
    }


@login_not_required
@require_http_methods(["GET", "POST"])
def respond(request: HttpRequest, token: str) -> HttpResponse:
    """The form (GET) and the answer (POST). Every page it sends is marked never to be
    cached; the redirect after an answer is not a page, and a 302 is not cached without
    headers that allow it (so the answers' hot path skips building those headers)."""
    response = (
        _respond_post(request, token) if request.method == "POST" else _respond_get(request, token)
    )
    if response.status_code != 302:
        add_never_cache_headers(response)
    return response


def _respond_get(request: HttpRequest, token: str) -> HttpResponse:
    invitation, strings, error = _open_or_error(request, token)
    if error is not None:
        return error
    language = invitation.campaign.survey.language
    if not services.invitation_is_open(invitation, timezone.now()):
        return _message(
            request, 410, "expired_title", "expired_body", strings=strings, language=language
        )
    kind = invitation.campaign.survey.kind
    # GET: show the preselected score (from the email's link) or the current answer
    current = (
        Response.objects.filter(invitation=invitation, is_current=True)
        .only("score", "comment")
        .first()
    )
    try:
        selected = scoring.parse_score(kind, request.GET["score"])
    except (KeyError, scoring.ScoreError):
        selected = current.score if current else None
    context = _form_context(
        invitation, strings, score=selected, comment=current.comment if current else ""
    )
    return _headers(render(request, "surveys/public_respond.html", context))


def _respond_post(request: HttpRequest, token: str) -> HttpResponse:
    """The hot path: the service reads the invitation and records a first answer in one
    statement; the error pages (unknown, closed, bad score) load what they show afterwards."""
    limited = _limited(request, token)
    if limited is not None:
        return limited
    if not TOKEN_RE.fullmatch(token):
        return _message(request, 404, "not_found_title", "not_found_body")
    raw = request.POST.get("score", "")
    comment = request.POST.get("comment", "")[: services.COMMENT_MAX]
    try:
        services.response_record(token=token, score=raw, comment=comment)
    except Invitation.DoesNotExist:
        return _message(request, 404, "not_found_title", "not_found_body")
    except (scoring.ScoreError, services.InvitationClosed) as exc:
        invitation = _invitation(token)
        strings = _strings(invitation)
        if isinstance(exc, services.InvitationClosed):
            return _message(
                request, 410, "expired_title", "expired_body", strings=strings,
                language=invitation.campaign.survey.language,
            )  # fmt: skip
        message = _score_error(invitation, raw, exc)
        context = _form_context(invitation, strings, score=None, comment=comment, error=message)
        return _headers(render(request, "surveys/public_respond.html", context, status=400))
    # POST, then redirect, then GET the thank-you page: its path is this page's plus
    # "thanks/", what reverse("surveys:thanks") builds, without resolving it per answer
    return HttpResponseRedirect(request.path + "thanks/")


@never_cache
@login_not_required
@require_http_methods(["GET"])
def thanks(request: HttpRequest, token: str) -> HttpResponse:
    """The thank-you page of an answered invitation; one not answered yet (a link typed or
    shared without answering) goes to its question instead of claiming an answer."""
    invitation, strings, error = _open_or_error(request, token)
    if error is not None:
        return error
    if invitation.responded_at is None:
        return _headers(HttpResponseRedirect(reverse("surveys:respond", args=[token])))
    survey = invitation.campaign.survey
    is_open = services.invitation_is_open(invitation, timezone.now())
    return _headers(
        render(
            request,
            "surveys/public_thanks.html",
            {
                "invitation": invitation,
                "strings": strings,
                "language": survey.language,
                "title": strings["thanks_title"],
                "sender": settings.SURVEY_SENDER_NAME,
                # the answer can be changed: the link, and the sentence saying so when it
                # is in the thank-you sentence's language (shows_thanks_change_note)
                "open": is_open,
                "change_note": strings["thanks_change_note"]
                if is_open and shows_thanks_change_note(survey.strings, survey.language)
                else "",
            },
        )
    )


@csrf_exempt
@never_cache
@login_not_required
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """GET asks and never writes (mail scanners follow links); POST records. Works after
    the survey closed too.

    The POST is the page's button or a mail program's one-click unsubscribe (RFC 8058: the
    email's ``List-Unsubscribe-Post`` header; a POST of ``List-Unsubscribe=One-Click`` to
    this address, with no cookie and no CSRF token). So it is exempt from CSRF: the
    unguessable token in the address is what allows it, no session or sign-in is involved,
    and a forged cross-site POST would need the token, which would allow it anyway. Any POST
    records, whatever its body. (``surveys.answer_wsgi`` never takes this path: it answers
    ``POST /s/<token>/`` only, and this one goes on to Django.)"""
    invitation, strings, error = _open_or_error(request, token)
    if error is not None:
        return error
    language = invitation.campaign.survey.language
    if request.method == "POST":
        services.optout_record(invitation=invitation)
        return _message(
            request,
            200,
            "unsubscribed_title",
            "unsubscribed_body",
            strings=strings,
            language=language,
        )
    return _headers(
        render(
            request,
            "surveys/public_unsubscribe.html",
            {
                "invitation": invitation,
                "strings": strings,
                "language": language,
                "title": strings["unsubscribe_title"],
                "sender": settings.SURVEY_SENDER_NAME,
            },
        )
    )


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """Settings' CSRF_FAILURE_VIEW: the survey pages get a page saying what to do; every
    other page Django's own. Its text stays English: CSRF is checked before the view runs,
    so no survey (nor its language and strings) has been read; reading the invitation here
    from the path would let a refused request cost a query."""
    if request.path_info.startswith("/s/"):
        return _headers(
            render(
                request,
                "surveys/public_message.html",
                {
                    "title": "Your answer was not sent",
                    "body": (
                        "The form had expired or cookies are blocked. Open the link from the "
                        "email again, choose your score and send it once more."
                    ),
                    "language": "en",
                },
                status=403,
            )
        )
    from django.views.csrf import csrf_failure as default

    return default(request, reason=reason)
