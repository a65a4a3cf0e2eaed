"""A dashboard tile on target and one off target (KPI targets, reports app)."""

from __future__ import annotations

import datetime as dt

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_dashboard_tiles_on_and_off_target(page, login, shot):
    from metrics.models import KpiSnapshot
    from reports.models import KpiTarget

    KpiTarget.objects.all().delete()
    day = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    for back, nrr in ((14, "101"), (7, "98"), (0, "95.5")):
        d = day - dt.timedelta(days=back)
        KpiSnapshot.objects.create(
            day=d,
            scope_kind="all",
            scope_key="",
            period_start=d - dt.timedelta(days=29),
            period_end=d + dt.timedelta(days=1),
            report={
                "period": {
                    "start": (d - dt.timedelta(days=29)).isoformat(),
                    "end": (d + dt.timedelta(days=1)).isoformat(),
                },
                "retention": {
                    "nrr": {"value": nrr, "unit": "%"},
                    "grr": {"value": "92", "unit": "%"},
                },
            },
        )
    # NRR 95.5 % against >= 100 %: off target; GRR 92 % against >= 90 %: on target
    KpiTarget.objects.create(kpi="nrr", direction="at_least", value=100, cadence="weekly")
    KpiTarget.objects.create(kpi="grr", direction="at_least", value=90, cadence="weekly")

    login(page, "admin@demo.example")
    page.goto("/dashboard/")
    nrr = page.locator("li.tile", has=page.locator(".tile-label", has_text="NRR"))
    grr = page.locator("li.tile", has=page.locator(".tile-label", has_text="GRR"))
    expect(nrr.locator(".tile-target")).to_have_attribute("data-on-track", "no")
    expect(nrr).to_contain_text("off track")
    expect(nrr).to_contain_text("target ≥ 100.0%")
    expect(grr.locator(".tile-target")).to_have_attribute("data-on-track", "yes")
    expect(grr).to_contain_text("on track")
    expect(nrr.locator("svg.spark")).to_be_visible()
    shot(page, "kpi-targets-dashboard")

    page.goto("/targets/off-track/")
    expect(page.get_by_role("heading", name="Off track")).to_be_visible()
    expect(page.locator("table").first).to_contain_text("NRR")
    shot(page, "kpi-targets-off-track")


def _scheduled_with_a_skip():
    """Max's team report; Cleo was skipped last week, with why."""
    from accounts.models import User
    from reports.models import ScheduledReport

    max_ = User.objects.get(email="manager@demo.example")
    report = ScheduledReport.objects.create(
        name="Team weekly",
        scope_kind="team",
        scope_key=str(max_.pk),
        cadence="weekly",
        created_by=max_,
        skipped=[{"email": "csm1@demo.example", "reason": "a CSM sees their own book only"}],
        skipped_period="2026-W47",
    )
    report.recipients.set(
        User.objects.filter(email__in=["manager@demo.example", "csm1@demo.example"])
    )
    return report


# the page's width beside the window's, and how far right the given element reaches
WIDTHS = """(sel) => ({page: document.documentElement.scrollWidth, window: window.innerWidth,
  right: Math.max(...[...document.querySelectorAll(sel)].map(e => e.getBoundingClientRect().right))})"""


@pytest.mark.parametrize("width", [375, 1280])
def test_the_recipients_and_their_reasons_read_whole_at_any_width(new_page, login, shot, width):
    """On a phone the reports' list stacks its columns and the recipients are one box
    each: the reason beside a greyed-out person wraps instead of being cut at the list's
    edge, and nothing pushes the page wider than the window. On a laptop the list keeps
    its columns."""
    report = _scheduled_with_a_skip()
    page = login(new_page(width=width, height=900), "manager@demo.example")
    page.goto("/reports/scheduled/")
    skipped = page.locator(f"#report-{report.pk}-skipped")
    expect(skipped).to_contain_text("csm1@demo.example (a CSM sees their own book only)")
    expect(skipped).to_contain_text("Skipped in the week of 16–22 Nov 2026, as they")
    greyed = page.locator("#id_recipients label", has_text="csm1@demo.example")
    expect(greyed).to_contain_text("cannot see it (a CSM sees their own book only)")
    expect(greyed.locator("input")).to_be_disabled()
    sizes = page.evaluate(WIDTHS, "#id_recipients label, .reports-table td")
    assert sizes["page"] <= sizes["window"] == width
    assert sizes["right"] <= width
    header = page.locator(".reports-table thead")
    if width == 375:
        expect(header).to_be_hidden()
    else:
        expect(header).to_be_visible()
    shot(page, f"scheduled-reports-{width}")


def test_the_target_owner_picker_follows_the_scope(page, login, shot):
    """Max's new target starts at his team: Cleo (a CSM) is greyed out as its owner; for
    the scope of her own book, the picker comes back by htmx with her choosable."""
    from accounts.models import User
    from tests.factories import AccountFactory

    AccountFactory(owner=User.objects.get(email="csm1@demo.example"))
    login(page, "manager@demo.example")
    page.goto("/targets/")
    cleo = page.locator("#id_owner option", has_text="csm1@demo.example")
    expect(cleo).to_contain_text("cannot see it (a CSM sees their own book only)")
    expect(cleo).to_be_disabled()
    page.select_option("#id_scope_kind", "owner")
    page.locator("#id_book_owner").select_option(label="Cleo Carter (csm1@demo.example)")
    expect(page.locator("#target-owner .help")).to_contain_text("can see owner's book: Cleo")
    expect(cleo).to_be_enabled()
    expect(cleo).not_to_contain_text("cannot see it")
    shot(page, "kpi-targets-owner-picker")


@pytest.mark.parametrize("width", [375, 1280])
def test_the_targets_list_fits_a_phone_and_says_once_why_rows_are_read_only(
    new_page, login, shot, width
):
    """Max sees the whole book's targets read-only. Why is said once above the list (it
    was said on every row, making each four lines tall on a laptop); on a phone the list
    stacks its columns (it pushed the page to twice the window's width)."""
    from reports.models import KpiTarget

    KpiTarget.objects.all().delete()
    for kpi in ("nrr", "grr", "renewal_rate"):
        KpiTarget.objects.create(kpi=kpi, direction="at_least", value=90, cadence="weekly")
    page = login(new_page(width=width, height=900), "manager@demo.example")
    page.goto("/targets/")
    expect(page.locator("#targets-read-only")).to_have_text(
        "Read-only for you: only an admin can change 3 of these targets (the whole book is "
        "for admins; a manager sees their team's accounts only)."
    )
    rows = page.locator(".targets-table tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.first).to_contain_text("View read-only")
    expect(rows.first).not_to_contain_text("the whole book")
    sizes = page.evaluate(WIDTHS, ".targets-table td")
    assert sizes["page"] <= sizes["window"] == width
    assert sizes["right"] <= width
    header = page.locator(".targets-table thead")
    if width == 375:
        expect(header).to_be_hidden()
        expect(rows.first.locator("td[data-label=Target]")).to_have_text("≥ 90.0%")
    else:
        expect(header).to_be_visible()
        # one line a row: no cell wraps on a laptop
        assert rows.first.evaluate("r => r.getBoundingClientRect().height") < 60
    shot(page, f"kpi-targets-list-{width}")


def test_remove_asks_first_on_a_target_and_on_a_scheduled_report(page, login, shot):
    """Remove (a target's page, a scheduled report's row) asks before it removes, as the
    CTA page asks before closing with open steps: a modal question with the focus on its
    heading; Escape keeps the row and gives the focus back to Remove; confirmed, it goes.
    All from the keyboard."""
    from reports.models import KpiTarget, ScheduledReport

    KpiTarget.objects.all().delete()
    target = KpiTarget.objects.create(kpi="nrr", direction="at_least", value=100, cadence="weekly")
    report = _scheduled_with_a_skip()
    login(page, "admin@demo.example")

    page.goto(f"/targets/{target.pk}/")
    remove = page.get_by_role("button", name="Remove this target…")
    remove.focus()
    page.keyboard.press("Enter")
    page.wait_for_load_state("load")
    dialog = page.get_by_role("alertdialog", name="Remove this target?")
    expect(dialog).to_be_visible()
    assert dialog.evaluate("d => d.matches(':modal')")
    expect(page.get_by_role("heading", name="Remove this target?")).to_be_focused()
    shot(page, "kpi-target-remove-question")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(remove).to_be_focused()
    assert KpiTarget.objects.filter(pk=target.pk).exists()
    page.keyboard.press("Enter")
    page.wait_for_load_state("load")
    expect(page.get_by_role("heading", name="Remove this target?")).to_be_focused()
    page.keyboard.press("Tab")
    expect(dialog.get_by_role("button", name="Remove target")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_text("Target removed.")).to_be_visible()
    assert not KpiTarget.objects.filter(pk=target.pk).exists()

    page.goto("/reports/scheduled/")
    remove = page.get_by_role("button", name="Remove… Team weekly")
    remove.focus()
    page.keyboard.press("Enter")
    page.wait_for_load_state("load")
    dialog = page.get_by_role("alertdialog", name="Remove this scheduled report?")
    expect(dialog).to_have_accessible_description(
        "“Team weekly” is no longer emailed to its 2 recipients."
    )
    expect(page.get_by_role("heading", name="Remove this scheduled report?")).to_be_focused()
    shot(page, "scheduled-report-remove-question")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    expect(dialog.get_by_role("link", name="Keep it")).to_be_focused()
    page.keyboard.press("Enter")
    expect(dialog).to_be_hidden()
    expect(remove).to_be_focused()
    assert ScheduledReport.objects.filter(pk=report.pk).exists()
    page.keyboard.press("Enter")
    page.wait_for_load_state("load")
    page.get_by_role("button", name="Remove report").click()
    expect(page.get_by_text("Scheduled report removed.")).to_be_visible()
    assert not ScheduledReport.objects.filter(pk=report.pk).exists()
