"""docs/metrics.md rendered once per process, each heading with a GitHub-style anchor so
that every "how is this computed?" link lands on its section."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from django.conf import settings
from markdown_it import MarkdownIt

DOC = Path(settings.BASE_DIR) / "docs" / "metrics.md"


def slug(text: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


@cache
def metrics_html() -> str:
    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    tokens = md.parse(DOC.read_text(encoding="utf-8"))
    for i, token in enumerate(tokens):
        if token.type == "heading_open" and i + 1 < len(tokens):
            token.attrSet("id", slug(tokens[i + 1].content.replace("`", "")))
    return md.renderer.render(tokens, md.options, {})
