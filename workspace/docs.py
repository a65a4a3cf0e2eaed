"""docs/metrics.md as the page every "how is this computed?" link lands on
(``config.docs``: each heading with its GitHub-style anchor)."""

from __future__ import annotations

from config.docs import doc_html


def metrics_html() -> str:
    return doc_html("metrics.md")[0]
