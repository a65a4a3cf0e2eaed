"""The public page's and the email's strings, in English; a survey overrides any of them per
language (``Survey.strings = {"de": {"submit": "Absenden", ...}}``) and the page uses the
survey's ``language``. ``{company}`` is replaced by the account's name."""

from __future__ import annotations

from collections.abc import Mapping

DEFAULTS: dict[str, str] = {
    "page_title": "A quick question",
    "intro": "{company} would value your answer. It takes a few seconds.",
    "score_help": "Choose one score.",
    "comment_label": "Anything you would like to add? (optional)",
    "submit": "Send my answer",
    "change_note": "You already answered. You can change your answer below.",
    "thanks_title": "Thank you",
    "thanks_body": "Your answer was recorded. You can change it while the survey is open.",
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
    "email_subject": "A quick question",
    "email_intro": "Hello {name}, {company} would value your answer. Click a score:",
    "email_reminder_intro": "Hello {name}, a reminder: {company} would value your answer.",
    "email_footer": "Do not want survey emails? Unsubscribe:",
}


def page_strings(overrides: Mapping | None, language: str) -> dict[str, str]:
    """The defaults with the survey's overrides for ``language`` on top (unknown keys and
    non-text values are ignored; the editor rejects them)."""
    chosen = dict(DEFAULTS)
    for key, value in ((overrides or {}).get(language) or {}).items():
        if key in DEFAULTS and isinstance(value, str) and value.strip():
            chosen[key] = value
    return chosen


def strings_problems(value: object) -> list[str]:
    """What is wrong with a ``Survey.strings`` value, for the editor."""
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
    return problems


def fill(text: str, **values: str) -> str:
    """Replace ``{company}``/``{name}`` without str.format (a stray brace is not an error)."""
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text
