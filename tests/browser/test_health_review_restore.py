"""The health model's review-then-restore journey in a real browser: an admin opens the
backtest of the default model, reviews the weights it suggests in the editor, saves them as a
new version, then restores the version before it from the versions page, after its
confirmation and preview. And the versions page on a phone: no sideways scrolling."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from metrics import services
from metrics.models import HealthModelVersion
from tests.metrics import test_backtest

# the backtest tests' book: customers on D with known bands and churn, whose backtest
# suggests weights other than the default model's
book = test_backtest.book
D = test_backtest.D

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ADMIN = "admin@demo.example"
PHONE = {"width": 390, "height": 844}


def _versions(version: HealthModelVersion) -> list[tuple[int, bool, int | None]]:
    return list(
        HealthModelVersion.objects.filter(model=version.model_id)
        .order_by("version")
        .values_list("version", "active", "restored_from__version")
    )


def test_admin_reviews_the_backtest_weights_then_restores_the_version_before(
    page, login, book, shot
):
    v1 = book["version"]
    login(page, ADMIN)

    # the backtest over the book's window suggests weights; the admin reviews them
    backtest = reverse("admin:metrics_healthmodelversion_backtest", args=[v1.pk])
    page.goto(f"{backtest}?as_of={D.isoformat()}&horizon=90")
    expect(page.locator("#backtest-suggestion")).to_be_visible()
    page.get_by_role("link", name="Review these weights").click()

    banner = page.locator("#review-banner")
    expect(banner).to_contain_text("Reviewing the weights the backtest suggested.")
    expect(banner).to_contain_text(re.compile(r"Changed from v1: .+ → .+"))
    expect(page.locator("#preview #preview-bands")).to_be_visible()  # the draft's preview
    page.get_by_label(re.compile(r"Rescore the last")).fill("0")  # no rescoring
    page.get_by_role("button", name="Save as v2").click()

    # saved as v2, active; the versions page says so
    expect(page.get_by_role("heading", name="Default: versions", level=1)).to_be_visible()
    expect(page.locator("#version-changed")).to_contain_text("v2 now scores")
    assert _versions(v1) == [(1, False, None), (2, True, None)]
    v2 = HealthModelVersion.objects.get(model=v1.model_id, version=2)
    assert v2.components != v1.components  # the suggested weights, not a copy of v1

    # restore v1: the confirmation first, with what would change and its preview
    page.get_by_role("link", name="Restore v1…").click()
    confirm = page.locator("#restore")
    expect(confirm.get_by_role("heading", name="Restore v1?")).to_be_visible()
    expect(confirm.locator("#restore-diff tr.row-changed").first).to_be_visible()
    expect(confirm.locator("#preview #preview-bands")).to_be_visible()
    assert _versions(v1) == [(1, False, None), (2, True, None)]  # nothing written yet
    shot(page, "health-restore-confirm")
    confirm.get_by_label(re.compile(r"Why restore")).fill("the suggestion moved too many")
    confirm.get_by_role("button", name="Restore v1 as v3").click()

    # v3, a copy of v1, scores now
    v3_row = page.locator("#versions tbody.version-active")
    expect(v3_row).to_contain_text("v3")
    expect(v3_row).to_contain_text("active")
    expect(v3_row).to_contain_text("copy of v1")
    expect(v3_row).to_contain_text("the suggestion moved too many")
    assert _versions(v1) == [(1, False, None), (2, False, None), (3, True, 1)]
    v3 = HealthModelVersion.objects.get(model=v1.model_id, version=3)
    assert v3.same_rules(v1)
    shot(page, "health-restored")


def test_versions_page_fits_a_phone(new_page, login, book, shot):
    """At 390 px neither the page nor the versions table scrolls sideways (the table's
    wrapper scrolls on its own, so the page alone would not tell), and each version's
    weights are labelled."""
    v1 = book["version"]
    for usage in (50, 10):  # three versions, with weights and bands that differ
        services.health_model_version_create(
            model=v1.model,
            components=[
                {**c, "weight": usage if c["key"] == "usage" else c["weight"]}
                for c in v1.components
            ],
            green_min=75,
            yellow_min=45,
            notes=f"usage weighs {usage}, with a note long enough to wrap on a phone's screen",
        )
    page = new_page(**PHONE)
    login(page, ADMIN)
    page.goto(reverse("workspace:health-model-versions", args=[v1.model_id]))
    table = page.locator("#versions")
    expect(table.locator("tbody")).to_have_count(3)
    widths = page.evaluate(
        """() => {
            const table = document.querySelector('#versions');
            return {
                page: document.documentElement.scrollWidth,
                window: window.innerWidth,
                table: table.scrollWidth,
                wrap: table.parentElement.clientWidth,
            };
        }"""
    )
    assert widths["page"] <= widths["window"], widths
    assert widths["table"] <= widths["wrap"], widths
    usage = table.locator('tbody.version-active td[data-label="Usage"]')
    expect(usage).to_be_visible()
    assert "Usage" in page.evaluate(
        "e => getComputedStyle(e, '::before').content", usage.element_handle()
    )
    shot(page, "health-versions-phone")
