"""Reading ``{% explain %}`` (accounts/templatetags/explain.py) in rendered pages: a number
as a button whose popover note says how it was computed."""

from __future__ import annotations

import html
import re

EXPLAINED = re.compile(
    r'<button type="button" class="explain[^"]*" popovertarget="(why-[0-9a-f]{12})"'
    r' aria-describedby="\1" title="([^"]*)"(?: aria-label="([^"]*)")?>(.*?)</button>'
    r'<span class="explain-note" id="\1" popover>(.*?)</span>',
    re.S,
)


def _text(fragment: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def without_notes(page: str) -> str:
    """``page`` without the notes (hidden until their button opens them), so that its text
    reads as the screen shows it."""
    return EXPLAINED.sub(lambda m: m.group(0)[: m.start(5) - m.start(0)] + "</span>", page)


def explanations(page: str) -> dict[str, str]:
    """Each explained value's text → its note's text. The button's title (the mouse's
    tooltip) must say the same as the note, or name the button as its aria-label does."""
    found = {}
    for m in EXPLAINED.finditer(page):
        note = _text(m.group(5))
        said = m.group(3) if m.group(3) is not None else note
        assert html.unescape(m.group(2)) == said, (m.group(2), said)
        found[_text(m.group(4))] = note
    return found


def explanation(page: str, value: str) -> str:
    """The note of the value printed as ``value`` (its text); fails when none explains it."""
    found = explanations(page)
    assert value in found, (value, sorted(found))
    return found[value]
