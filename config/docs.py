"""The project's Markdown documents (docs/*.md) as HTML pages, each heading with a
GitHub-style anchor so that links from the app land on their section: docs/metrics.md
(workspace: "how is this computed?") and docs/data-import.md (the import page's files).
Rendered once per process."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from django.conf import settings
from markdown_it import MarkdownIt

DOCS = Path(settings.BASE_DIR) / "docs"


def slug(text: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


@cache
def doc_html(name: str) -> tuple[str, dict[str, str]]:
    """docs/<name> as HTML with an id on each heading, and each heading's text (code marks
    dropped) → its id."""
    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    tokens = md.parse((DOCS / name).read_text(encoding="utf-8"))
    headings = {}
    for i, token in enumerate(tokens):
        if token.type == "heading_open" and i + 1 < len(tokens):
            text = tokens[i + 1].content.replace("`", "")
            headings[text] = slug(text)
            token.attrSet("id", headings[text])
    return md.renderer.render(tokens, md.options, {}), headings
