"""Every text a respondent reads on the public pages and in the survey emails, in English; a
survey overrides any of them per language (``Survey.strings = {"de": {"submit": "Absenden",
...}}``) and its pages and emails use the survey's ``language``.

Placeholders (``PLACEHOLDERS`` says which string takes which): ``{sender}`` is the
organisation asking (``settings.SURVEY_SENDER_NAME``), ``{company}`` the respondent's account's
name (the one detail of the account a page may show), ``{name}`` the person's name (emails
only), ``{low}``/``{high}`` the ends of the scale, ``{score}`` the number sent, and
``{low_label}``/``{high_label}`` the scale's end labels (``<kind>_low_label`` …), ``{expires}``
until when the email's link works (in English: "1 Apr 2026, 09:00 UTC"; the day in the survey's
language, "1. April 2026, 09:00 UTC" in German) and ``{day}`` the last day of a link that works to
its end."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from django.conf import settings

from . import scoring

DEFAULTS: dict[str, str] = {
    "page_title": "A quick question",
    "intro": "{sender} would value your answer. It takes a few seconds.",
    "score_help": "Choose one score.",
    "scale_legend": "{low} = {low_label}, {high} = {high_label}.",
    "nps_low_label": "Not at all likely",
    "nps_high_label": "Extremely likely",
    "csat_low_label": "Very dissatisfied",
    "csat_high_label": "Very satisfied",
    "ces_low_label": "Very difficult",
    "ces_high_label": "Very easy",
    "comment_label": "Anything you would like to add? (optional)",
    "submit": "Send my answer",
    "change_note": "You already answered. You can change your answer below.",
    "thanks_title": "Thank you",
    "thanks_body": "Your answer was recorded.",
    "thanks_change_note": "You can change it while the survey is open.",
    "change_link": "Change my answer",
    "unsubscribe_link": "Do not send me surveys",
    "unsubscribe_title": "Stop survey emails",
    "unsubscribe_body": "We will not send you survey emails again.",
    "unsubscribe_button": "Stop survey emails",
    "unsubscribed_title": "You will not get survey emails",
    "unsubscribed_body": "Your address was removed from every future survey.",
    "expired_title": "This survey has closed",
    "expired_body": "The link has expired. Thank you for your time.",
    "not_found_title": "Survey not found",
    "not_found_body": "This link is not valid. Check that it was copied completely.",
    "rate_limited_title": "Too many attempts",
    "rate_limited_body": "Please wait a minute and try again.",
    "error_title": "Please check your answer",
    "score_missing": "Choose a score before sending.",
    "score_not_whole": "The score must be a whole number from {low} to {high}.",
    "score_out_of_range": "The score must be from {low} to {high}, got {score}.",
    "email_subject": "A quick question from {sender}",
    "email_intro": "Hello {name}, {sender} would value your answer. Click a score:",
    "email_reminder_intro": "Hello {name}, a reminder: {sender} would value your answer.",
    "email_no_name": "there",  # {name} of a person without one: "Hello there, …"
    "email_footer": "Do not want survey emails? Unsubscribe:",
    # until when the score links work: {expires} is "1 Apr 2026, 09:00 UTC", or "the end of
    # 31 Mar 2026 (UTC)" when the link closes at midnight
    "email_expiry": "This link works until {expires}.",
    # {expires} of a link that works to the end of a day: {day} is "31 Mar 2026" in English,
    # in the survey's language otherwise ("31. März 2026")
    "email_expiry_day_end": "the end of {day} (UTC)",
    "email_reason": "You get this email because your company works with {sender}.",
}

_EVERYWHERE = frozenset({"sender", "company"})
_SCALE = frozenset({"low", "high"})
# the placeholders each string may use beyond {sender} and {company}
_EXTRA: dict[str, frozenset[str]] = {
    "scale_legend": _SCALE | {"low_label", "high_label"},
    "score_not_whole": _SCALE,
    "score_out_of_range": _SCALE | {"score"},
    "email_subject": frozenset({"name"}),
    "email_intro": frozenset({"name"}),
    "email_reminder_intro": frozenset({"name"}),
    "email_expiry": frozenset({"expires"}),
    "email_expiry_day_end": frozenset({"day"}),
}
PLACEHOLDERS: dict[str, frozenset[str]] = {
    key: _EVERYWHERE | _EXTRA.get(key, frozenset()) for key in DEFAULTS
}
_PLACEHOLDER_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _own(overrides: Mapping | None, language: str) -> dict[str, str]:
    """The survey's usable overrides for ``language``: known strings with some text (unknown
    keys and non-text values are ignored; the editor rejects them)."""
    table = (overrides or {}).get(language)
    if not isinstance(table, Mapping):
        return {}
    return {
        key: value
        for key, value in table.items()
        if key in DEFAULTS and isinstance(value, str) and value.strip()
    }


def page_strings(overrides: Mapping | None, language: str) -> dict[str, str]:
    """The defaults with the survey's overrides for ``language`` on top, placeholders not yet
    filled."""
    return {**DEFAULTS, **_own(overrides, language)}


def shows_thanks_change_note(overrides: Mapping | None, language: str) -> bool:
    """Whether the thank-you page may follow ``thanks_body`` with ``thanks_change_note`` (the
    answer can still be changed). Only when both sentences come from the same table: both
    are the survey's own for ``language``, or neither is (both the English defaults). So the
    two are never in two languages, and a body written before the note was a string of its
    own (when ``thanks_body`` held both sentences) is not followed by a second, English
    copy of its last sentence. An overridden body without its own note shows no note; a
    note of its own after the default body is not shown either (it would follow English)."""
    own = _own(overrides, language)
    return ("thanks_body" in own) == ("thanks_change_note" in own)


def strings_problems(value: object) -> list[str]:
    """What is wrong with a ``Survey.strings`` value, for the editor: unknown strings, values
    that are not text, and placeholders the string cannot fill."""
    if not isinstance(value, dict):
        return ['must be an object of languages, e.g. {"de": {"submit": "Absenden"}}']
    problems = []
    for language, table in value.items():
        if not isinstance(table, dict):
            problems.append(f"{language}: must be an object of strings")
            continue
        for key, text in table.items():
            if key not in DEFAULTS:
                problems.append(f"{language}.{key}: unknown string (known: {', '.join(DEFAULTS)})")
            elif not isinstance(text, str):
                problems.append(f"{language}.{key}: must be text")
            else:
                allowed = PLACEHOLDERS[key]
                for name in dict.fromkeys(_PLACEHOLDER_RE.findall(text)):
                    if name not in allowed:
                        known = ", ".join("{" + p + "}" for p in sorted(allowed))
                        problems.append(
                            f"{language}.{key}: unknown placeholder {{{name}}} (this string "
                            f"can use {known})"
                        )
    return problems


def fill(text: str, **values: object) -> str:
    """Replace ``{sender}``, ``{company}``, ``{name}`` … in one pass, without str.format: a
    stray brace or a placeholder not given stays as it is, and a value is never read for
    placeholders itself (an account named "{name}" stays "{name}")."""
    return _PLACEHOLDER_RE.sub(lambda m: str(values.get(m[1], m[0])), text)


def filled(strings: Mapping[str, str], **values: object) -> dict[str, str]:
    """Every string of ``strings`` (``page_strings``) with ``values`` filled in."""
    return {key: fill(text, **values) for key, text in strings.items()}


def scale_labels(strings: Mapping[str, str], kind: str) -> tuple[str, str]:
    """The (low, high) end labels of a ``kind`` scale from ``strings``."""
    return strings[f"{kind}_low_label"], strings[f"{kind}_high_label"]


def invitation_values(invitation) -> dict[str, str]:
    """What every string may name: who asks (``SURVEY_SENDER_NAME``) and the account's name."""
    return {"sender": settings.SURVEY_SENDER_NAME, "company": invitation.account.name}


def scale_texts(survey, text: Mapping[str, str], values: Mapping[str, str]) -> dict[str, Any]:
    """The answer scale as the page and the email show it, in the survey's language: the
    scores, the end labels (from ``text``, the survey's strings filled with ``values``) and
    the legend ("0 = …, 10 = …")."""
    scores = list(scoring.scale(survey.kind))
    low_label, high_label = scale_labels(text, survey.kind)
    legend = page_strings(survey.strings, survey.language)["scale_legend"]
    return {
        "scores": scores,
        "low_label": low_label,
        "high_label": high_label,
        "scale_legend": fill(
            legend,
            low=scores[0],
            high=scores[-1],
            low_label=low_label,
            high_label=high_label,
            **values,
        ),
    }
