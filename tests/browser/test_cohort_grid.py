"""The cohort retention heat map is one tab stop, not one per cell: a grid (role="grid") whose
cells the arrow keys move between (Home/End the row's ends, Ctrl+Home/End the table's), Enter
opening a cell's explanation and Escape closing it, Tab leaving the grid and Shift+Tab coming
back to the cell last visited. The focused cell shows a ring on dark and pale cells alike
(static/js/app.js, table[data-grid])."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MANAGER = "manager@demo.example"
# where the focus is: "row,cell" of its table cell (header row 0), or its tag outside the grid
WHERE = """() => { const a = document.activeElement, td = a.closest('table[data-grid] td');
  return td ? td.parentElement.rowIndex + ',' + td.cellIndex : a.tagName; }"""


@pytest.fixture
def cohort_book(demo_users):
    """A demo book with a year of first payments: a triangle of cohorts."""
    call_command(
        "seed_demo",
        "--accounts=30",
        "--days=400",
        "--seed=1",
        "--health-weeks=1",
        "--kpi-months=1",
        stdout=StringIO(),
    )


def test_the_heat_map_is_one_tab_stop_walked_with_the_arrow_keys(
    new_page, login, cohort_book, shot
):
    page = login(new_page(), MANAGER)
    page.goto("/dashboard/cohorts/")
    grid = page.locator("table[data-grid]")
    expect(grid).to_have_attribute("role", "grid")
    cells = grid.locator("tbody button.explain")
    assert cells.count() > 20
    expect(grid.locator('tbody button.explain[tabindex="0"]')).to_have_count(1)

    # Tab from the link before the table lands on the first cell; the next Tab leaves the grid
    page.get_by_role("link", name="How is this computed?").focus()
    page.keyboard.press("Tab")
    assert page.evaluate(WHERE) == "1,2"  # the first cohort's M0 (after Cohort and Size)
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowDown")
    assert page.evaluate(WHERE) == "2,4"
    page.keyboard.press("End")
    last_of_row = grid.locator("tbody tr").nth(1).locator("button.explain").last
    expect(last_of_row).to_be_focused()
    page.keyboard.press("Home")
    assert page.evaluate(WHERE) == "2,2"
    page.keyboard.press("Control+End")  # the newest cohort with a cell: its M0
    expect(cells.last).to_be_focused()
    page.keyboard.press("ArrowDown")  # nothing below: the focus stays
    expect(cells.last).to_be_focused()
    page.keyboard.press("Control+Home")
    expect(cells.first).to_be_focused()
    page.keyboard.press("ArrowRight")
    focused = cells.nth(1)
    expect(focused).to_be_focused()
    expect(focused).to_have_attribute("tabindex", "0")
    expect(grid.locator('tbody button.explain[tabindex="0"]')).to_have_count(1)

    # the focused cell is ringed: a dark outline inside a white one, on the darkest cell too
    ring = focused.evaluate(
        "b => { const s = getComputedStyle(b.closest('td')); return [s.outlineStyle, s.outlineWidth, s.boxShadow]; }"
    )
    assert ring[0] == "solid" and ring[1] == "3px" and "inset" in ring[2], ring

    # Enter opens the cell's explanation (what the button is described by), Escape closes it
    note = page.locator("#" + focused.get_attribute("aria-describedby"))
    expect(note).to_be_hidden()
    page.keyboard.press("Enter")
    expect(note).to_be_visible()
    expect(note).to_contain_text("customers; MRR")
    shot(page, "cohort-grid-note")
    page.keyboard.press("Escape")
    expect(note).to_be_hidden()
    expect(focused).to_be_focused()
    # Space too; moving on closes it
    page.keyboard.press("Space")
    expect(note).to_be_visible()
    page.keyboard.press("ArrowDown")
    expect(note).to_be_hidden()
    page.keyboard.press("ArrowUp")
    shot(page, "cohort-grid-focus")

    # out with Tab, back with Shift+Tab to the cell last visited
    page.keyboard.press("Tab")
    assert not grid.evaluate("g => g.contains(document.activeElement)"), page.evaluate(WHERE)
    page.keyboard.press("Shift+Tab")
    expect(focused).to_be_focused()
