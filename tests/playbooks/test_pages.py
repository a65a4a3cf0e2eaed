"""Pages: admin-only playbook list and editor (403 for CSMs), field errors in the editor,
the CTA page and the queue row with its htmx actions, visible only to those who see the
account (404 otherwise); query ceilings on the lists."""

from __future__ import annotations

import pytest
from django.urls import reverse

from playbooks import services
from playbooks.models import Cta, CtaStatus, Playbook
from tests.factories import AccountFactory

from .helpers import make_playbook

pytestmark = pytest.mark.django_db


@pytest.fixture
def cta(csm):
    return services.cta_open(
        playbook=make_playbook("ticket_escalated"), account=AccountFactory(owner=csm),
        evidence="1 open escalated ticket",
    )  # fmt: skip


def test_playbook_pages_are_for_admins_only(client, csm, manager):
    for user in (csm, manager):
        client.force_login(user)
        assert client.get(reverse("playbooks:list")).status_code == 403
        assert client.get(reverse("playbooks:create")).status_code == 403


def test_playbook_list_shows_effectiveness_with_a_fixed_number_of_queries(
    client, admin_user, csm, django_assert_max_num_queries
):
    for _ in range(5):
        playbook = make_playbook("ticket_escalated")
        services.cta_open(playbook=playbook, account=AccountFactory(owner=csm), evidence="x")
    client.force_login(admin_user)
    with django_assert_max_num_queries(12):
        r = client.get(reverse("playbooks:list"))
    assert r.status_code == 200
    assert r.content.decode().count('id="playbook-') == 5


def test_the_editor_refuses_bad_input_with_field_errors(client, admin_user):
    client.force_login(admin_user)
    form = {
        "name": "Quiet", "trigger": "no_activity", "trigger_params": '{"days": -2, "weeks": 1}',
        "cta_title": "Reach out", "cta_type": "risk", "priority": "medium",
        "steps": "1 | Call\n3 | ", "owner_rule": "account_csm", "success": "touched",
        "success_params": "", "success_days": "14", "cooldown_days": "-1", "enabled": "on",
    }  # fmt: skip
    r = client.post(reverse("playbooks:create"), form)
    assert r.status_code == 200
    page = r.content.decode()
    assert "unknown parameter weeks" in page
    assert "days: must not be negative, got -2" in page
    assert "step 2: a title is required" in page
    assert "must not be negative, got -1" in page
    assert not Playbook.objects.exists()
    r = client.post(reverse("playbooks:create"), {**form, "trigger_params": "{days"})
    assert "not valid JSON" in r.content.decode()
    good = {
        **form,
        "trigger_params": '{"days": 30}',
        "steps": "1 | Call\n3 | Write",
        "cooldown_days": "7",
    }
    r = client.post(reverse("playbooks:create"), good)
    assert r.status_code == 302
    playbook = Playbook.objects.get()
    assert playbook.steps == [{"title": "Call", "due_days": 1}, {"title": "Write", "due_days": 3}]
    r = client.post(reverse("playbooks:edit", args=[playbook.pk]), {**good, "name": "Quieter"})
    assert r.status_code == 302
    playbook.refresh_from_db()
    assert playbook.name == "Quieter" and playbook.version == 2
    assert client.get(reverse("playbooks:edit", args=[playbook.pk])).status_code == 200


def test_cta_page_for_those_who_see_the_account(client, cta, csm, manager, outsider):
    url = reverse("playbooks:cta-detail", args=[cta.pk])
    for user in (csm, manager):
        client.force_login(user)
        r = client.get(url)
        assert r.status_code == 200 and "1 open escalated ticket" in r.content.decode()
    client.force_login(outsider)
    assert client.get(url).status_code == 404
    r = client.post(reverse("playbooks:cta-status", args=[cta.pk]), {"status": "done"})
    assert r.status_code == 404
    assert Cta.objects.get().status == CtaStatus.OPEN


def test_queue_row_actions_over_htmx(client, cta, csm):
    client.force_login(csm)
    htmx = {"HX-Request": "true"}
    r = client.post(reverse("playbooks:cta-complete", args=[cta.pk]), headers=htmx)
    assert r.status_code == 200
    body = r.content.decode()
    assert body.lstrip().startswith(f'<tr id="cta-{cta.pk}">') and "<html" not in body
    assert "ctaChanged" in r.headers["HX-Trigger"]
    assert cta.steps.filter(done_at__isnull=False).count() == 1
    r = client.post(
        reverse("playbooks:cta-snooze", args=[cta.pk]), {"until": "2000-01-01"}, headers=htmx
    )
    assert r.status_code == 200 and "must be a day after today" in r.content.decode()
    r = client.post(reverse("playbooks:cta-status", args=[cta.pk]), {"status": "done"})
    assert r.status_code == 302
    assert Cta.objects.get().status == CtaStatus.DONE


def test_cta_list_with_a_fixed_number_of_queries(client, csm, django_assert_max_num_queries):
    playbook = make_playbook("ticket_escalated")
    for _ in range(6):
        services.cta_open(playbook=playbook, account=AccountFactory(owner=csm), evidence="x")
    client.force_login(csm)
    with django_assert_max_num_queries(8):
        r = client.get(reverse("playbooks:cta-list"))
    assert r.content.decode().count('<tr id="cta-') == 6
