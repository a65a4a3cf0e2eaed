"""{% explain %}: a number with a note a tap, a click or the keyboard opens."""

from __future__ import annotations

import re

import pytest
from django.template import Context, Template, TemplateSyntaxError

from tests.explained import explanations, without_notes


def render(source: str, **context) -> str:
    return Template("{% load explain %}" + source).render(Context(context))


def test_the_value_opens_its_note_which_is_also_its_title_and_description():
    page = render(
        "{% explain %}{{ rate }}%{% because %}{{ churned }} churned / {{ n }} × 100{% endexplain %}",
        rate="50.0",
        churned=1,
        n=2,
    )
    assert explanations(page) == {"50.0%": "1 churned / 2 × 100"}
    assert page.startswith('<button type="button" class="explain" popovertarget="why-')
    assert "popover>" in page  # the native popover: no script opens or closes it


def test_what_a_note_prints_is_escaped_once_in_the_note_and_in_the_title():
    page = render(
        "{% explain %}7{% because %}{{ name }}'s <b>{{ n }}</b>{% endexplain %}",
        name="<O'Hara & Co>",
        n=7,
    )
    assert "<O'Hara" not in page and "&lt;O&#x27;Hara &amp; Co&gt;" in page
    assert "&amp;amp;" not in page and "&amp;#x27;" not in page
    assert explanations(page) == {"7": "<O'Hara & Co>'s 7"}


def test_no_note_leaves_the_value_alone():
    assert render("{% explain %} −18 {% because %}{% if no %}x{% endif %}{% endexplain %}") == "−18"


def test_each_note_has_its_own_id_also_across_renders():
    """Unique also when an htmx swap brings in a fragment rendered by another request."""
    one = render(
        "{% explain %}1{% because %}a{% endexplain %}{% explain %}2{% because %}b{% endexplain %}"
    )
    two = render("{% explain %}1{% because %}a{% endexplain %}")
    ids = re.findall(r'id="(why-[0-9a-f]+)"', one + two)
    assert len(ids) == len(set(ids)) == 3


def test_the_hint_form_is_named_by_its_label_and_its_note_may_hold_a_link():
    page = render(
        '{% explain cls="hint" label="How is "|add:kpi|add:" computed?" %}?{% because %}'
        '{{ working }} <a href="/docs/#mrr">How is {{ kpi }} computed?</a>{% endexplain %}',
        kpi="MRR",
        working="$1,500.00 over 2 customers",
    )
    assert 'class="explain hint"' in page and 'aria-label="How is MRR computed?"' in page
    assert '<a href="/docs/#mrr">' in page  # not escaped: the link works in the note
    assert explanations(page) == {"?": "$1,500.00 over 2 customers How is MRR computed?"}
    assert "computed?</a>" not in without_notes(page)  # hidden until opened


def test_an_unknown_option_says_which():
    with pytest.raises(TemplateSyntaxError, match=r"takes only cls=… and label=…, not 'title=1'"):
        render("{% explain title=1 %}1{% because %}a{% endexplain %}")
