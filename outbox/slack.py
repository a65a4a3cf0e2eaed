"""Slack message text: the one place data is put into it.

Slack reads ``<…>`` in a message's text as markup: ``<!channel>`` notifies everyone in the
channel, ``<https://a|b>`` is a link labelled b, ``<@U123>`` mentions a user. Text that comes
from customer data (an account's name, a CTA title, a ticket subject quoted in evidence, a
survey comment) must therefore not reach it raw. Slack's documented rule is to escape three
characters, ``&`` ``<`` ``>``, as HTML entities; Slack shows them as typed.

Build every Slack text with ``text``: the template (ours) keeps its markup, every value is
escaped::

    slack.text("New CTA: {title}\\n<{url}|Open it>", title=cta.title, url=link)
"""

from __future__ import annotations

from typing import Any

# order matters: "&" first, or the "&" of "&lt;" would be escaped again
_ESCAPES = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"))


def escape(value: Any) -> str:
    """``value`` as text Slack shows as it is (no mention, no link, no channel ping)."""
    out = str(value)
    for char, entity in _ESCAPES:
        out = out.replace(char, entity)
    return out


def text(template: str, /, **values: Any) -> str:
    """``template`` (``str.format`` fields, written by us, markup kept) with each value
    escaped. A value's own braces are not read as fields: ``format`` reads the template only."""
    return template.format(**{name: escape(value) for name, value in values.items()})
