"""The API docs page (/api/docs/): every operation under a named group (no stray "v1"), a
page that loads nothing from outside (the CSP would refuse it: console errors) and leads back
into the app."""

from __future__ import annotations

import json
import re

import pytest

pytestmark = pytest.mark.django_db


def test_every_operation_has_a_tag_of_its_own_and_targets_are_targets(client, csm):
    client.force_login(csm)
    schema = json.loads(client.get("/api/schema/", {"format": "json"}).content)
    tags = {
        (method, path): op.get("tags")
        for path, ops in schema["paths"].items()
        for method, op in ops.items()
    }
    # drf-spectacular's fallback is the first path segment after the prefix: "v1"
    assert not [k for k, t in tags.items() if not t or "v1" in t]
    assert {t[0] for k, t in tags.items() if k[1].startswith("/api/v1/targets/")} == {"targets"}


def test_the_docs_page_loads_nothing_from_outside_and_links_back(client, csm):
    client.force_login(csm)
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    # no Google Fonts, no CDN, no http(s) URL to another site
    assert not re.findall(r'(?:src|href)="(?:https?:)?//', html)
    assert "googleapis" not in html
    # no inline script (script-src 'self'): each script is a file of ours
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, flags=re.S)
    assert scripts and all('src="/static/' in attrs and not body.strip() for attrs, body in scripts)
    assert '<script src="/static/js/api-docs.js"></script>' in html  # before Redoc
    assert html.index("api-docs.js") < html.index("redoc.standalone.js")
    # system fonts, given to Redoc as an attribute
    assert 'theme=\'{"typography": {"fontFamily": "system-ui' in html
    assert '<a href="/">← Back to the app</a>' in html
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "img-src 'self' data:" in csp
