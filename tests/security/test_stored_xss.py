"""Stored XSS: customer-supplied text holding markup (an account name, a stakeholder name, a
note, a ticket subject, a survey comment) shows escaped on every page that shows it.

Walks every HTML page of the permission matrix as the admin and as the CSM, with a world
whose every text field carries a payload, and checks that no payload reaches a page raw."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import Account, Activity, Stakeholder, Ticket, TimelineEntry
from tests.security.test_permission_matrix import OK, RULES, _kwargs, _outcome, url_names

pytestmark = pytest.mark.django_db

PAYLOAD = '<script>alert("x")</script><img src=x onerror=alert(1)>'
RAW = (b"<script>alert(", b"<img src=x onerror")


@pytest.fixture
def poisoned_world(world):
    objects, users = world
    account = objects["account"]
    Account.objects.filter(pk=account.pk).update(name=f"Acme {PAYLOAD}", segment=PAYLOAD)
    Stakeholder.objects.filter(pk=objects["stakeholder"].pk).update(name=PAYLOAD, title=PAYLOAD)
    Activity.objects.filter(pk=objects["activity"].pk).update(subject=PAYLOAD, body=PAYLOAD)
    Ticket.objects.filter(pk=objects["ticket"].pk).update(subject=PAYLOAD)
    TimelineEntry.objects.create(
        account=account,
        occurred_at=objects["activity"].occurred_at,
        kind="survey_answer",
        key="xss:1",
        title=f"NPS 2 from {PAYLOAD}",
        detail=PAYLOAD,
        data={"comment": PAYLOAD, "score": 2},
    )
    return objects, users


@pytest.mark.parametrize("persona", ["admin", "csm"])
def test_no_page_shows_customer_markup_raw(client, poisoned_world, persona):
    objects, users = poisoned_world
    client.force_login(users[persona])
    pages = 0
    for name, pattern in url_names():
        rule = RULES[name]
        if rule.expect[persona] != OK:
            continue
        response = client.get(reverse(name, kwargs=_kwargs(rule, pattern, objects)), rule.query)
        if _outcome(response) != OK or "text/html" not in response.get("Content-Type", ""):
            continue
        if getattr(response, "streaming", False):
            continue
        pages += 1
        for raw in RAW:
            assert raw not in response.content, f"{name}: customer markup shown raw"
    assert pages >= 2  # the walk really looked at pages
