"""The API docs page in a browser: Redoc renders the endpoints under their groups and the
console shows no Content Security Policy error (no Google Fonts, no CDN logo)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_api_docs_load_nothing_from_outside(page, login, live_server, shot):
    login(page, "admin@demo.example")
    messages: list[str] = []
    outside: list[str] = []
    page.on("console", lambda m: messages.append(f"{m.type}: {m.text}"))
    page.on(
        "request",
        lambda r: (
            outside.append(r.url)
            if r.url.startswith("http") and not r.url.startswith(live_server.url)
            else None
        ),
    )
    page.goto("/api/docs/")
    # Redoc rendered (the schema is built on the first request: slow in tests)
    expect(page.get_by_role("heading", name="List KPI targets")).to_be_attached(timeout=90_000)
    expect(page.locator(".menu-content").get_by_text("targets", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="← Back to the app")).to_have_attribute("href", "/")
    page.wait_for_load_state("networkidle")
    assert not outside, outside
    assert not [m for m in messages if "Content Security Policy" in m or m.startswith("error")]
    shot(page, "api-docs")
