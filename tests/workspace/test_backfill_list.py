"""/manage/backfill/ without an id lists the rescorings of the last day with their state;
the three ways of starting one (the editor's save, the versions page, the assignments page)
go through one helper and show up there; the long submit buttons carry their busy words."""

from __future__ import annotations

from unittest import mock

import pytest
from django.core.cache import cache
from django.urls import reverse

from metrics.services import health_model_ensure_default
from workspace import services
from workspace.services import BACKFILL_KEY

pytestmark = pytest.mark.django_db

LIST = "workspace:backfill-status"


def _start(admin_user, days: int) -> str:
    with mock.patch("workspace.tasks.health_backfill.delay"):  # queued, not run
        return services.backfill_start(days=days, user=admin_user)


def test_without_an_id_the_page_lists_recent_rescorings_newest_first(client, admin_user):
    first = _start(admin_user, 3)
    second = _start(admin_user, 10)
    state = cache.get(BACKFILL_KEY.format(first))
    cache.set(BACKFILL_KEY.format(first), {**state, "status": "done", "done": state["total"]})
    client.force_login(admin_user)
    r = client.get(reverse(LIST))
    assert r.status_code == 200
    html = r.content.decode()
    assert "No rescoring with this id" not in html
    assert html.index(f'id="backfill-{second}"') < html.index(f'id="backfill-{first}"')
    assert f"?job={first}" in html and f"?job={second}" in html
    rows = html.split('<tr id="backfill-')[1:]
    assert "Queued" in rows[0] and "admin@example.com" in rows[0]
    assert "Done" in rows[1]


def test_an_expired_rescoring_leaves_the_list_and_an_empty_list_says_so(client, admin_user):
    client.force_login(admin_user)
    assert "No rescoring in the last day." in client.get(reverse(LIST)).content.decode()
    job = _start(admin_user, 2)
    cache.delete(BACKFILL_KEY.format(job))
    assert f"backfill-{job}" not in client.get(reverse(LIST)).content.decode()
    # an unknown id still says so, and leads to the list
    html = client.get(reverse(LIST), {"job": "nope"}).content.decode()
    assert "No rescoring with this id" in html and f'href="{reverse(LIST)}"' in html


def test_each_way_of_starting_a_rescoring_lands_in_the_list(client, admin_user, celery_eager):
    model = health_model_ensure_default()
    client.force_login(admin_user)
    with mock.patch("workspace.tasks.health_backfill.delay") as delay:
        r1 = client.post(reverse("workspace:backfill-start"), {"days": "2", "model": model.pk})
        r2 = client.post(reverse("workspace:health-rescore"), {"backfill_days": "3"})
    assert delay.call_count == 2
    jobs = [r["Location"].split("?job=")[1] for r in (r1, r2)]
    assert [j["job"] for j in services.backfill_recent()] == jobs[::-1]
    # refused days start nothing
    with mock.patch("workspace.tasks.health_backfill.delay") as delay:
        client.post(reverse("workspace:health-rescore"), {"backfill_days": "0"})
        client.post(reverse("workspace:backfill-start"), {"days": "x", "model": model.pk})
    assert delay.call_count == 0 and len(services.backfill_recent()) == 2


def test_the_long_submits_carry_their_busy_words(client, admin_user):
    model = health_model_ensure_default()
    client.force_login(admin_user)
    editor = client.get(reverse("workspace:health-model-edit", args=[model.pk])).content.decode()
    assert 'data-busy-rescore="Saving and rescoring {n} days…"' in editor
    assert 'data-busy-days="#backfill_days"' in editor
    rules = client.get(reverse("workspace:health-assignments")).content.decode()
    assert 'data-busy-days="#rescore-days"' in rules


def test_a_rescoring_says_its_days_and_the_later_days_it_rescored_too(client, admin_user):
    """3 days asked (the 3 days up to yesterday) while one account has a snapshot of today
    (recomputed since the night): the row says the 3 days, then the 1 later day, instead
    of "4 days in all" beside a range of 3."""
    import datetime as dt

    from accounts import utc
    from metrics.models import HealthSnapshot
    from tests.factories import AccountFactory

    model = health_model_ensure_default()
    HealthSnapshot.objects.create(
        account=AccountFactory(), day=utc.today(), model_version=model.versions.get()
    )
    job = _start(admin_user, 3)
    assert cache.get(BACKFILL_KEY.format(job))["total"] == 4  # 3 + 1
    client.force_login(admin_user)
    row = client.get(reverse(LIST)).content.decode().split(f'<tr id="backfill-{job}"')[1]
    first = utc.today() - dt.timedelta(days=3)
    last = utc.today() - dt.timedelta(days=1)
    assert f"{utc.day_text(first)} to {utc.day_text(last)}: 3 days" in row
    assert "and the snapshots of 1 later day (accounts rescored since the night)" in row
    # the job's own page says the same: 3 asked for, and 1 later day
    page = client.get(reverse(LIST), {"job": job}).content.decode()
    said = page.split('id="backfill-days">')[1].split("</p>")[0]
    assert said.startswith(f"The 3 days asked for ({utc.day_text(first)} to {utc.day_text(last)})")
    assert "and the snapshots of 1 later day" in said
