"""Two people editing the same thing at once: the words of a save refused because someone
else saved it after the page was opened. One sentence for every editor that checks, so a
CSM reads the same refusal on a playbook, a target, a user or a survey campaign."""

from __future__ import annotations

import datetime as dt

from . import utc


def opened_token(saved_at: dt.datetime) -> str:
    """What a page keeps of when the thing it shows was saved (its ``updated_at``), in a
    hidden field sent back with the change (``changed_since``)."""
    return saved_at.isoformat()


def changed_since(opened: str, saved_at: dt.datetime) -> bool:
    """Whether the thing was saved again after the page that sent ``opened``
    (``opened_token``) was shown; a page that sent none (a script, a page from before) is
    not checked."""
    return bool(opened) and opened != opened_token(saved_at)


def stale_words(
    *,
    changed: str,
    by: object | None,
    at: dt.datetime | None,
    opened: str = "it",
    see: str,
) -> str:
    """Why a save is refused: ``changed`` says what happened ("This target was changed",
    "v3 was saved"), ``by`` and ``at`` who and when (either may be unknown, e.g. a change
    made in the Django admin), ``opened`` what the page showed ("it", "v2") and ``see`` what
    a reload shows ("the target as it is now"). Nothing was written: the person reloads and
    makes their change again."""
    who = f" by {by}" if by else ""
    when = f" at {utc.moment_text(at)} UTC" if at else ""
    return (
        f"{changed}{who}{when}, after you opened {opened}. Your changes are not saved: "
        f"reload the page to see {see}, then make your change again."
    )
