"""The CSM workspace's main journeys in a real browser (Playwright + Debian Chromium against
the live server). Each journey saves screenshots under test-results/browser/."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.sync_api import expect

from accounts.models import Activity, UsageEvent, User
from metrics.models import AccountStanding, HealthSnapshot
from metrics.services import health_snapshots_record, kpi_snapshots_record
from metrics.standings import account_standings_refresh
from tests.factories import AccountFactory, ContractFactory, InvoiceFactory
from tests.workspace.conftest import customer, utc_today

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ADMIN = "admin@demo.example"
CSM = "csm1@demo.example"
OUTPUT = Path(__file__).resolve().parents[2] / "test-results" / "browser"


@pytest.fixture
def journey_shot():
    """Full-page screenshots of a journey, kept in the test output folder."""

    def take(page, name: str) -> Path:
        OUTPUT.mkdir(parents=True, exist_ok=True)
        path = OUTPUT / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 1000
        return path

    return take


def test_csm_queue_filter_account_note_timeline(page, login, demo_users, journey_shot):
    csm = demo_users[CSM]
    burning = customer(
        csm,
        name="Burning Co",
        mrr="7000",
        ends_in=41,
        scores=[(58, "red"), (76, "yellow"), (80, "green")],
    )
    cta = _open_cta(burning)  # None until the playbooks app is there
    customer(csm, name="Slipping Ltd", mrr="1000", ends_in=200, scores=[(65, "yellow")])
    customer(csm, name="Calm Inc", mrr="500", ends_in=None, scores=[(90, "green")])
    account_standings_refresh()

    login(page, CSM)
    rows = page.locator("#queue-results table.queue-table > tbody > tr:not(.cta-subrow)")
    expect(rows).to_have_count(3)
    expect(rows.first).to_contain_text("red, \u221218 in 7 days, renews in 41 days, $84k ARR")
    journey_shot(page, "journey1-queue")

    page.get_by_label("Band").select_option("red")
    expect(page).to_have_url(re.compile(r"band=red"))  # shareable URL, swapped in place
    expect(rows).to_have_count(1)
    journey_shot(page, "journey1-queue-filtered")

    rows.first.get_by_role("link", name="Burning Co").click()  # the row's, not its CTA's
    expect(page.get_by_role("heading", name="Burning Co", level=1)).to_be_visible()
    expect(page.get_by_text("score fell from 76 to 58")).to_be_visible()

    # what changed between two chosen days, swapped in place: 80 green (day − 30) → 76
    # yellow (day − 7)
    day = utc_today() - dt.timedelta(days=1)
    changes = page.locator("#health-changes")
    changes.get_by_text("Compare two other days").click()
    changes.get_by_label("From").fill((day - dt.timedelta(days=30)).isoformat())
    changes.get_by_label("To", exact=True).fill((day - dt.timedelta(days=7)).isoformat())
    changes.get_by_role("button", name="Compare").click()
    expect(page.locator("#health-changes")).to_contain_text(
        "score fell from 80 to 76 (green → yellow)"
    )
    expect(page).to_have_url(re.compile(r"changes_from=.*changes_to="))  # a link to share
    journey_shot(page, "journey1-what-changed-between-days")

    if cta is not None:  # complete a step of the open CTA in place
        row = page.locator(f"#cta-{cta.pk}")
        expect(row).to_contain_text("0/2")
        row.get_by_role("button", name="Complete next step").click()
        expect(page.locator(f"#cta-{cta.pk}")).to_contain_text("1/2")
        assert cta.steps.filter(done_at__isnull=False).count() == 1
        journey_shot(page, "journey1-step-completed")

    page.get_by_label("Kind").select_option("call")
    page.get_by_label("Subject").fill("Called the champion about the renewal")
    page.get_by_role("button", name="Log it").click()
    expect(page.get_by_text("Logged: it is on the timeline.")).to_be_visible()
    timeline = page.locator("#timeline")
    expect(timeline).to_contain_text("Call by Cleo Carter: Called the champion about the renewal")
    journey_shot(page, "journey1-account-note")
    assert Activity.objects.get().author == csm

    page.get_by_role("button", name="Log it").click()  # empty subject: the field error
    expect(page.get_by_label("Subject")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#id_subject_error")).to_have_text("This field is required.")
    expect(page.locator("#activity-form [data-error-summary]")).to_be_focused()  # the summary


def _open_cta(account):
    """An open CTA with two steps on ``account``, through the playbooks app's own services."""
    try:
        from playbooks import services as playbooks_services
        from tests.playbooks.helpers import make_playbook
    except ImportError:
        return None
    return playbooks_services.cta_open(
        playbook=make_playbook("ticket_escalated"), account=account, evidence="escalated ticket"
    )


def _busy_account(name: str) -> None:
    """A customer with 50 seats and 2 active users (a low usage score) who pays on time
    (a high payments score)."""
    today = utc_today()
    account = AccountFactory(name=name, owner=User.objects.get(email=CSM))
    ContractFactory(
        account=account, start_date=dt.date(2023, 1, 1), mrr=Decimal("2000"), quantity=50
    )
    issued = today - dt.timedelta(days=20)
    InvoiceFactory(
        account=account,
        issued_on=issued,
        due_on=issued + dt.timedelta(days=30),
        paid_on=issued + dt.timedelta(days=2),
        status="paid",
    )
    when = dt.datetime.combine(today - dt.timedelta(days=3), dt.time(10), tzinfo=dt.UTC)
    import uuid

    for user in ("u1", "u2"):
        UsageEvent.objects.create(
            account=account, user_id=user, event="login", occurred_at=when, dedup_key=uuid.uuid4()
        )


def test_admin_changes_weights_previews_saves_and_backfills(page, login, demo_users, journey_shot):
    _busy_account("Quiet Corp")
    yesterday = utc_today() - dt.timedelta(days=1)
    health_snapshots_record(as_of=yesterday)
    account_standings_refresh()
    before = HealthSnapshot.objects.get(account__name="Quiet Corp", day=yesterday)

    login(page, ADMIN)
    page.get_by_role("link", name="Manage").click()
    page.get_by_role("link", name="Health models").click()
    page.get_by_role("link", name="Edit", exact=True).click()
    page.get_by_label("Weight of Usage").fill("0")
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#preview-bands")).to_be_visible()
    expect(page.locator("#preview")).to_contain_text("1 current customer scored by this model")
    journey_shot(page, "journey2-preview")

    page.get_by_label("Rescore the last … days after saving").fill("1")
    page.get_by_role("button", name="Save as v2").click()
    expect(page.get_by_role("heading", name="Rescoring health")).to_be_visible()
    expect(page.get_by_text("1 of 1 day rescored")).to_be_visible()
    journey_shot(page, "journey2-backfill-done")

    after = HealthSnapshot.objects.get(account__name="Quiet Corp", day=yesterday)
    assert after.model_version.version == 2
    assert after.score != before.score  # usage no longer weighs it down
    page.get_by_role("link", name="Open the queue").click()
    row = page.locator("#queue-results tbody tr", has_text="Quiet Corp")
    expect(row).to_contain_text(f"{after.score:.0f}")
    assert AccountStanding.objects.get(account__name="Quiet Corp").score == after.score


def test_dashboard_drilldown(page, login, demo_users, journey_shot):
    today = utc_today()
    csm = demo_users[CSM]
    old = AccountFactory(owner=csm, name="Old Co")
    ContractFactory(account=old, start_date=dt.date(2020, 1, 1), mrr=Decimal("1000"))
    gone = AccountFactory(owner=csm, name="Gone Co")
    ContractFactory(
        account=gone,
        start_date=dt.date(2020, 1, 1),
        end_date=today - dt.timedelta(days=20),
        mrr=Decimal("300"),
    )
    kpi_snapshots_record(as_of=today - dt.timedelta(days=1))
    account_standings_refresh()

    login(page, ADMIN)
    page.get_by_role("link", name="Dashboard").click()
    expect(page.get_by_role("heading", name="Portfolio")).to_be_visible()
    expect(page.locator(".tile", has_text="Logo churn")).to_contain_text("50.0%")
    journey_shot(page, "journey3-dashboard")
    page.locator(".tile", has_text="Logo churn").locator("a.tile-value").click()
    expect(page.get_by_role("heading", name="Churn MRR")).to_be_visible()
    expect(page.locator("tbody tr")).to_have_count(1)
    expect(page.locator("tbody tr")).to_contain_text("Gone Co")
    journey_shot(page, "journey3-drilldown")
    page.get_by_role("link", name="Gone Co").click()
    expect(page.get_by_role("heading", name="Gone Co", level=1)).to_be_visible()


def test_pages_at_phone_width(new_page, login, demo_users, journey_shot):
    csm = demo_users[CSM]
    account = customer(
        csm, name="Burning Co", mrr="7000", ends_in=41, scores=[(58, "red"), (76, "yellow")]
    )
    account_standings_refresh()
    page = new_page(width=390, height=844)
    login(page, CSM)
    expect(page.locator("#queue-results")).to_contain_text("Burning Co")
    journey_shot(page, "phone-queue")
    page.goto(f"/accounts/{account.pk}/")
    expect(page.get_by_role("heading", name="Burning Co", level=1)).to_be_visible()
    journey_shot(page, "phone-account")
    # no horizontal scrolling of the page itself
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def test_csm_overrides_a_score_and_sees_who_when_and_why(
    page, login, demo_users, journey_shot, settings, celery_eager
):
    """The override form says which components the model locks (not offered), and the
    override made shows on the account page with who made it, when (UTC) and why."""
    from django.core.cache import cache

    from accounts import utc
    from metrics.models import HealthOverride

    settings.ACCOUNT_DATA_CHANGED_HOOKS = ["metrics.tasks.account_changed"]  # as deployed
    cache.clear()  # no recompute debounce left by another test
    csm = demo_users[CSM]
    customer(csm, name="Burning Co", mrr="7000", ends_in=41, scores=[(58, "red")])
    account_standings_refresh()

    login(page, CSM)
    page.get_by_role("link", name="Burning Co").first.click()
    page.get_by_text("Override this health score").click()
    form = page.locator("#override-form")
    # the default model locks payments: left out of the choices, and the form says so
    expect(form).to_contain_text("Locked by the health model, so not offered: Payments")
    expect(form.locator("#id_component option[value=payments]")).to_have_count(0)
    form.get_by_label("Score").fill("90")
    form.get_by_label("Reason").fill("Renewal signed on paper; billing not imported yet")
    form.get_by_role("button", name="Override").click()
    shown = page.locator("#health-overrides")
    expect(shown).to_be_visible()
    made = HealthOverride.objects.get().created_at
    expect(shown).to_contain_text(
        f"“Renewal signed on paper; billing not imported yet” by {csm.get_full_name()} "
        f"on {utc.moment_text(made)}, until"
    )
    journey_shot(page, "journey-override-audited")
