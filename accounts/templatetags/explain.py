"""``{% explain %}``: a number that can say how it was computed, by mouse, tap or keyboard.

    {% load explain %}
    {% explain %}{{ rate }}%{% because %}{{ churned }} churned / {{ n }} × 100{% endexplain %}

renders the number as a plain-looking button (a dotted underline) that opens the explanation
in a native popover (``popovertarget``): a tap, a click, Enter or Space open and close it,
Escape or a tap elsewhere closes it, and nothing needs wiring after an htmx swap. The
explanation is also the button's ``aria-describedby`` (read with the number, once) and its
``title`` (the hover tooltip mouse users had before). static/js/app.js only places the
popover next to its button; without script it opens in the middle of the screen.

``{% explain cls="hint" label="How is MRR computed?" %}?{% because %}…{% endexplain %}``
styles the button as the small "?" hint and names it (aria-label and title), for a note
that carries more than a sentence (the working and a link to the docs).
"""

from __future__ import annotations

import html
import uuid

from django import template
from django.template.base import TextNode
from django.utils.html import format_html, strip_tags

register = template.Library()


class ExplainNode(template.Node):
    def __init__(self, value, note, options):
        self.value, self.note, self.options = value, note, options

    def render(self, context) -> str:
        # rendered template output (autoescaped, safe as it is): its text's outer white space
        # was trimmed when the tag was parsed (``_trimmed``)
        value = self.value.render(context)
        note = self.note.render(context)
        options = {name: expr.resolve(context) for name, expr in self.options.items()}
        if not note.strip():  # nothing to explain: the number alone, as before
            return value
        # unique on the page also when a fragment is swapped in later by htmx
        note_id = f"why-{uuid.uuid4().hex[:12]}"
        label = options.get("label") or ""
        cls = " ".join(filter(None, ("explain", options.get("cls") or "")))
        named = format_html(' aria-label="{}"', label) if label else ""
        return format_html(
            '<button type="button" class="{}" popovertarget="{}" aria-describedby="{}"'
            ' title="{}"{}>{}</button><span class="explain-note" id="{}" popover>{}</span>',
            cls,
            note_id,
            note_id,
            # the note's text, unescaped once here because format_html escapes it again
            label or " ".join(html.unescape(strip_tags(note)).split()),
            named,
            value,
            note_id,
            note,
        )


def _trimmed(nodelist: template.NodeList) -> template.NodeList:
    """The nodes without the white space at the start of the first text and the end of the
    last, as the tag is laid out over several lines in a template."""
    if nodelist and isinstance(nodelist[0], TextNode):
        nodelist[0].s = nodelist[0].s.lstrip()
    if nodelist and isinstance(nodelist[-1], TextNode):
        nodelist[-1].s = nodelist[-1].s.rstrip()
    return nodelist


@register.tag("explain")
def do_explain(parser, token):
    bits = token.split_contents()
    options = {}
    for bit in bits[1:]:
        name, sep, expr = bit.partition("=")
        if not sep or name not in ("cls", "label"):
            raise template.TemplateSyntaxError(
                f"{{% explain %}} takes only cls=… and label=…, not {bit!r}"
            )
        options[name] = parser.compile_filter(expr)
    value = _trimmed(parser.parse(("because",)))
    parser.delete_first_token()
    note = _trimmed(parser.parse(("endexplain",)))
    parser.delete_first_token()
    return ExplainNode(value, note, options)
