"""Admin screens: only admins (403 for anyone else), the health model editor's preview by
hand, save + backfill with progress, and users and roles."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.urls import reverse

from accounts.models import Role
from metrics.models import HealthModelVersion, HealthSnapshot
from metrics.services import health_model_ensure_default
from tests.factories import AccountFactory, ContractFactory
from workspace.health_forms import ModelDraft

from .conftest import components, snapshot, utc_today

pytestmark = pytest.mark.django_db

ADMIN_PAGES = [
    ("workspace:manage", []),
    ("workspace:health-models", []),
    ("workspace:users", []),
    ("workspace:backfill-status", []),
    ("workspace:pipeline-runs", []),
]


@pytest.mark.parametrize(("name", "args"), ADMIN_PAGES)
def test_csm_and_manager_get_403(client, csm, manager, name, args):
    for user in (csm, manager):
        client.force_login(user)
        assert client.get(reverse(name, args=args)).status_code == 403


def test_csm_cannot_post_to_admin_screens(client, csm, manager):
    model = health_model_ensure_default()
    client.force_login(csm)
    assert (
        client.post(reverse("workspace:health-model-edit", args=[model.pk]), {}).status_code == 403
    )
    assert (
        client.post(reverse("workspace:health-model-preview", args=[model.pk]), {}).status_code
        == 403
    )
    r = client.post(reverse("workspace:user-update", args=[manager.pk]), {"role": "Admin"})
    assert r.status_code == 403
    assert manager.groups.filter(name="Admin").count() == 0


@pytest.fixture
def scored():
    """Latest day: three accounts; 40 days before: one churner and one that stayed."""
    today = utc_today()
    day = today - dt.timedelta(days=1)
    a, b, c = (AccountFactory() for _ in range(3))
    snapshot(a, day, 58, "yellow", components=components(40, 100))
    snapshot(b, day, 93, "green", components=components(90, 100))
    snapshot(c, day, 20, "red", components=components(None, 20))
    earlier = day - dt.timedelta(days=40)
    churner, stayer = AccountFactory(), AccountFactory()
    ContractFactory(
        account=churner,
        start_date=dt.date(2020, 1, 1),
        end_date=earlier + dt.timedelta(days=10),
        mrr=Decimal(100),
    )
    ContractFactory(account=stayer, start_date=dt.date(2020, 1, 1), mrr=Decimal(100))
    snapshot(churner, earlier, 37, "red", components=components(10, 100))
    snapshot(stayer, earlier, 66, "yellow", components=components(90, 10))
    return {"day": day, "earlier": earlier}


def _weights(usage, support, **extra):
    """The editor's form for the default model's active version with the usage and support
    weights changed (``extra``: other fields as posted)."""
    version = health_model_ensure_default().versions.get(active=True)
    data = ModelDraft.from_version(version).as_data()
    keys = [c["key"] for c in version.components]
    data[f"c-{keys.index('usage')}-weight"] = usage
    data[f"c-{keys.index('support')}-weight"] = support
    data.update({"green_min": 80, "yellow_min": 50})
    data.update(extra)
    return data


def _preview(client, model, data) -> tuple[str, dict[str, str]]:
    """The preview of ``data`` (the editor's form) as htmx asks for it: its text and the
    draft's accounts per band."""
    r = client.post(
        reverse("workspace:health-model-preview", args=[model.pk]),
        data,
        headers={"HX-Request": "true"},
    )
    text = r.content.decode()
    return text, dict(re.findall(r'data-band="(\w+)">(\d+) ', text))


def test_preview_band_distribution_and_auc_by_hand(client, admin_user, scored):
    model = health_model_ensure_default()
    client.force_login(admin_user)
    text, cells = _preview(client, model, _weights(0, 50))
    # current (usage 35, support 15): (35*40 + 15*100)/50 = 58 yellow; (35*90+15*100)/50 = 93
    # green; support only 20 -> red.  Draft (support only): 100 green, 100 green, 20 red.
    assert cells == {"green": "2", "yellow": "0", "red": "1", "none": "0"}
    assert "3 current customers scored" in text
    # one account changes band: the 58 (yellow) becomes 100 (green)
    assert "1 of 3 accounts would change band" in text
    assert re.findall(r'band-(\w+)">\w+</span> → <span class="band band-(\w+)', text) == [
        ("yellow", "green")
    ]
    # backtest 40 days back: current scores churner 37, stayer 66 -> churner ranked first,
    # AUC 1.0; draft (support only) churner 100, stayer 10 -> AUC 0.0
    assert re.search(r'id="auc-current">1\.0<', text)
    assert re.search(r'id="auc-draft">0\.0<', text)
    assert HealthModelVersion.objects.filter(model=model).count() == 1  # nothing saved


def test_preview_counts_each_accounts_latest_score_not_just_todays(client, admin_user, scored):
    """The nightly run scores the book as of yesterday; an account rescored since midnight
    (a survey answer, a ticket) has a snapshot for today. The preview still covers the whole
    book, with that account at its newer score."""
    model = health_model_ensure_default()
    rescored = HealthSnapshot.objects.get(day=scored["day"], score=20).account
    snapshot(rescored, utc_today(), 93, "green", components=components(90, 100))
    client.force_login(admin_user)
    text, cells = _preview(client, model, _weights(0, 50))
    assert "3 current customers scored" in text
    # draft (support only): 100, 100 and the rescored account's 100 (was 20 yesterday)
    assert cells == {"green": "3", "yellow": "0", "red": "0", "none": "0"}


def test_preview_shows_field_errors(client, admin_user, scored):
    model = health_model_ensure_default()
    client.force_login(admin_user)
    r = client.post(
        reverse("workspace:health-model-preview", args=[model.pk]),
        _weights("lots", 150, yellow_min=90),
    )
    text = r.content.decode()
    assert r.status_code == 200
    # in words, naming the component; a weight above 100 is fine (weights are relative)
    assert "component 1 (Usage): the weight must be a number, got “lots”" in text
    assert "150" not in text
    assert "yellow must start at or below green, both between 0 and 100" in text


def test_save_with_errors_re_renders_the_form(client, admin_user):
    model = health_model_ensure_default()
    client.force_login(admin_user)
    r = client.post(reverse("workspace:health-model-edit", args=[model.pk]), _weights(-1, 10))
    assert r.status_code == 200
    assert "component 1 (Usage): the weight must be 0 or more, got -1" in r.content.decode()
    assert model.versions.count() == 1


def test_save_makes_a_version_and_the_backfill_rescores(client, admin_user, celery_eager):
    model = health_model_ensure_default()
    today = utc_today()
    account = AccountFactory()
    ContractFactory(account=account, start_date=dt.date(2020, 1, 1), mrr=Decimal(100))
    from metrics.services import health_snapshots_record

    day = today - dt.timedelta(days=1)
    health_snapshots_record(as_of=day)
    old = HealthSnapshot.objects.get(account=account, day=day)
    client.force_login(admin_user)
    r = client.post(
        reverse("workspace:health-model-edit", args=[model.pk]),
        _weights(0, 50, backfill_days=2, notes="support only"),
    )
    assert r.status_code == 302
    new = model.versions.get(active=True)
    assert new.version == 2 and new.notes == "support only" and new.created_by == admin_user
    progress = client.get(r["Location"])
    assert progress.status_code == 200
    assert "2 of 2 days rescored" in progress.content.decode()
    # the days before keep whichever versions made them, not only v1 (or "the one before")
    assert (
        "Saved as Default v2. Days not rescored keep the scores of the versions that made "
        "them." in progress.content.decode()
    )
    rescored = HealthSnapshot.objects.get(account=account, day=day)
    assert rescored.model_version == new and old.model_version != new
    assert {c["key"]: c["weight"] for c in rescored.components}["usage"] == 0
    assert account.standing.day == day


def test_users_and_roles(client, admin_user, csm, manager):
    client.force_login(admin_user)
    r = client.get(reverse("workspace:users"))
    assert r.status_code == 200 and b"csm@example.com" in r.content
    r = client.post(
        reverse("workspace:user-update", args=[csm.pk]),
        {"role": "Manager", "manager": "", "is_active": "on"},
        headers={"HX-Request": "true"},
    )
    assert r.status_code == 200 and b"Saved." in r.content
    csm.refresh_from_db()
    assert csm.role == Role.MANAGER and csm.manager is None
    r = client.post(
        reverse("workspace:user-update", args=[csm.pk]), {"role": "CSM", "manager": str(manager.pk)}
    )
    assert r.status_code == 302
    csm = type(csm).objects.get(pk=csm.pk)
    assert csm.role == Role.CSM and csm.manager == manager and not csm.is_active


def test_users_bad_input_and_self_lockout(client, admin_user, csm):
    client.force_login(admin_user)
    h = {"HX-Request": "true"}
    r = client.post(
        reverse("workspace:user-update", args=[csm.pk]),
        {"role": "Wizard", "is_active": "on"},
        headers=h,
    )
    assert "Unknown role “Wizard”." in r.content.decode()
    r = client.post(
        reverse("workspace:user-update", args=[csm.pk]),
        {"role": "CSM", "manager": "99999", "is_active": "on"},
        headers=h,
    )
    assert "Unknown manager “99999”." in r.content.decode()
    r = client.post(
        reverse("workspace:user-update", args=[admin_user.pk]),
        {"role": "CSM", "is_active": "on"},
        headers=h,
    )
    assert "you cannot remove your own admin access" in r.content.decode()
    admin_user.refresh_from_db()
    assert type(admin_user).objects.get(pk=admin_user.pk).role == Role.ADMIN


def test_preview_leaves_churned_accounts_out(client, admin_user, scored):
    """A churned account keeps being scored (red 10 yesterday) but is no part of the book a
    draft is judged on: the three current customers only, as before."""
    from accounts.models import AccountLifecycle

    model = health_model_ensure_default()
    gone = AccountFactory(lifecycle_stage=AccountLifecycle.CHURNED)
    snapshot(gone, scored["day"], 10, "red", components=components(10, 10))
    client.force_login(admin_user)
    text, cells = _preview(client, model, _weights(0, 50))
    assert "3 current customers scored by this model (churned accounts left out)" in text
    # draft (support only): 100, 100, 20 as in the by-hand test; the churned 10 not counted
    assert cells == {"green": "2", "yellow": "0", "red": "1", "none": "0"}


def test_models_list_prints_the_band_lines_unrounded(client, admin_user):
    """A line of 79.5 is not "green ≥ 80": a score of 79.7 is green under it."""
    from metrics.models import HealthModelVersion
    from metrics.services import health_model_ensure_default

    model = health_model_ensure_default()
    HealthModelVersion.objects.filter(model=model, active=True).update(
        green_min=79.5, yellow_min=50
    )
    client.force_login(admin_user)
    page = client.get(reverse("workspace:health-models")).content.decode()
    assert "green ≥ 79.50, yellow ≥ 50" in page  # as the versions page prints them
    # a new model is made on the assignments page (a copy of another): the list leads there
    new = reverse("workspace:health-assignments") + "#model-copy"
    assert f'id="new-model" href="{new}"' in page


def _nav_current(html: str) -> list[str]:
    """The main navigation's items marked as the current page."""
    nav = html.split('<nav class="mainnav"')[1].split("</nav>")[0]
    return re.findall(r'<a href="[^"]*" aria-current="page">([^<]+)</a>', nav)


@pytest.mark.parametrize(
    "name",
    [
        "workspace:manage",
        "workspace:pipeline-runs",
        "workspace:health-models",
        "workspace:health-assignments",
        "workspace:backfill-status",
        "workspace:api-tokens",
        "workspace:users",
    ],
)
def test_every_manage_page_marks_manage_in_the_nav(client, admin_user, name):
    """Every page under /manage/ (the pipeline runs too) is Manage's in the top nav."""
    client.force_login(admin_user)
    r = client.get(reverse(name))
    assert r.status_code == 200
    assert _nav_current(r.content.decode()) == ["Manage"]


def test_manage_is_not_marked_elsewhere(client, admin_user):
    client.force_login(admin_user)
    assert _nav_current(client.get(reverse("home")).content.decode()) == ["Queue"]
