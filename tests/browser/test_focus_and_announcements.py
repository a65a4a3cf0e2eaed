"""Where the focus goes and what the page's live region (#announcer) says, as a keyboard and
screen reader user meets them: the health model editor's add and remove buttons, the account
page's note form sent with an error, and the CTA page's "Close this CTA with open steps?"
question (a modal dialog: focus in, Escape or "Keep it open" back to the button that asked)."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from accounts.models import Account, Activity, User
from metrics.services import health_model_ensure_default
from playbooks import services
from playbooks.models import Cta, CtaStatus, Playbook

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ADMIN = "admin@demo.example"
CSM = "csm1@demo.example"
FOCUSED_ID = "() => document.activeElement.id"


def _press(page, button) -> None:
    """Focus ``button`` and press Enter, as a keyboard user does, then wait for the swap."""
    button.focus()
    page.keyboard.press("Enter")
    page.wait_for_load_state("networkidle")


def test_the_health_editor_announces_added_and_removed_components_and_moves_the_focus(
    new_page, login, shot
):
    """The default model's 6 components: Usage, Feature adoption, Support, Payments,
    Sentiment, Relationship (ids c-0 … c-5)."""
    model = health_model_ensure_default()
    page = login(new_page(), ADMIN)
    page.goto(reverse("workspace:health-model-edit", args=[model.pk]))
    page.wait_for_load_state("networkidle")
    announcer = page.locator("#announcer")
    expect(announcer).to_have_attribute("aria-live", "polite")
    requests = []
    page.on("request", lambda r: requests.append(r.post_data or "") if r.method == "POST" else 0)

    # added: the new component's name field has the focus (and takes what is typed)
    _press(page, page.get_by_role("button", name="Add a component"))
    expect(announcer).to_have_text("Component 7 added.")  # 6 + 1
    expect(page.locator("#c-6-label")).to_be_focused()
    page.keyboard.type("Onboarding")
    shot(page, "health-editor-component-added")

    # removed: the focus goes to the component that took its place (Payments, now third)
    _press(page, page.get_by_role("button", name="Remove component 3 (Support)"))
    expect(announcer).to_have_text("Component “Support” removed; 6 left.")  # 7 - 1
    expect(page.locator("#c-2-label")).to_be_focused()
    expect(page.locator("#c-2-label")).to_have_value("Payments")

    # the last one removed: nothing follows it, so "Add a component" has the focus
    _press(page, page.get_by_role("button", name="Remove component 6 (Onboarding)"))
    expect(announcer).to_have_text("Component “Onboarding” removed; 5 left.")
    expect(page.get_by_role("button", name="Add a component")).to_be_focused()
    shot(page, "health-editor-component-removed")
    # the preview that follows the change is not sent as the focused button (its op):
    # one op per key press, nothing added back
    page.wait_for_timeout(800)
    page.wait_for_load_state("networkidle")
    ops = [p.rsplit("op=", 1)[1] for p in requests if "op=" in p]
    assert ops == ["add-c", "remove-c-2", "remove-c-5"]
    expect(page.locator("fieldset.component")).to_have_count(5)
    assert model.versions.count() == 1  # nothing saved


def test_a_preview_due_while_a_remove_button_has_the_focus_removes_nothing(new_page, login):
    """Typing a weight, then Tab to "Remove component" before the preview's 600 ms: the
    preview is sent as a preview, not as the focused button."""
    model = health_model_ensure_default()
    page = login(new_page(), ADMIN)
    page.goto(reverse("workspace:health-model-edit", args=[model.pk]))
    page.wait_for_load_state("networkidle")
    page.locator("#c-0-weight").focus()
    page.keyboard.type("5")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.keyboard.press("Tab")  # Locked
        page.keyboard.press("Tab")  # Remove component
        expect(page.get_by_role("button", name="Remove component 1 (Usage)")).to_be_focused()
    assert answer.value.url.endswith(reverse("workspace:health-model-preview", args=[model.pk])), (
        answer.value.url
    )
    assert "op=" not in (answer.value.request.post_data or "")
    page.wait_for_load_state("networkidle")
    expect(page.locator("fieldset.component")).to_have_count(6)
    expect(page.get_by_role("button", name="Remove component 1 (Usage)")).to_be_focused()


def test_a_note_sent_with_an_error_focuses_the_summary_linked_to_the_field(new_page, login):
    page = login(new_page(), CSM)
    csm = User.objects.get(email=CSM)
    account = Account.objects.create(external_id="N-1", name="Notes Ltd", owner=csm)
    page.goto(reverse("workspace:account", args=[account.pk]))
    subject = page.get_by_label("Subject")
    expect(subject).to_have_accessible_description("One line: what happened")
    subject.press("Enter")  # left blank: the form's error summary, not the browser's bubble
    summary = page.locator("#activity-form [data-error-summary]")
    expect(summary).to_be_focused()
    expect(summary).to_contain_text("Not logged:")
    expect(subject).to_have_attribute("aria-invalid", "true")
    expect(subject).to_have_accessible_description(
        "One line: what happened This field is required."
    )
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # the summary's link to the field
    expect(subject).to_be_focused()
    page.keyboard.type("Called about renewal")
    page.keyboard.press("Enter")
    expect(page.locator("#announcer")).to_have_text("Logged: it is on the timeline.")
    expect(page.locator("#activity-form [data-error-summary]")).to_have_count(0)
    assert Activity.objects.get(account=account).subject == "Called about renewal"


@pytest.fixture
def cta(demo_users):
    """An open CTA of the CSM's with every one of its steps open."""
    Playbook.objects.all().delete()
    services.starter_playbooks_load()
    csm = User.objects.get(email=CSM)
    account = Account.objects.create(external_id="C-1", name="Confirm Co", owner=csm)
    playbook = Playbook.objects.get(starter="red-turnaround")
    return services.cta_open(playbook=playbook, account=account, evidence="health fell")


def _ask(page, cta: Cta) -> None:
    """ "Close CTA as done…" with a note, from the keyboard: the server asks first."""
    page.goto(reverse("playbooks:cta-detail", args=[cta.pk]))
    page.get_by_label("Note").fill("spoke to them")
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Close CTA as done…")).to_be_focused()
    page.keyboard.press("Enter")
    page.wait_for_load_state("load")


def test_the_close_with_open_steps_question_takes_the_focus_and_gives_it_back(
    new_page, login, cta, shot
):
    steps = cta.steps.count()
    page = login(new_page(), CSM)
    _ask(page, cta)
    dialog = page.get_by_role("alertdialog", name="Close this CTA with open steps?")
    expect(dialog).to_be_visible()
    # named by its heading, described by what it asks about
    expect(dialog).to_have_accessible_description(
        re.compile(rf"^{steps} of {steps} steps are still open: .+ marks them skipped\.$")
    )
    assert dialog.evaluate("d => d.matches(':modal')")  # the page behind it is inert
    heading = page.get_by_role("heading", name="Close this CTA with open steps?")
    expect(heading).to_be_focused()
    shot(page, "cta-close-question")
    # Tab walks the dialog's buttons, not the page behind it
    page.keyboard.press("Tab")
    expect(
        dialog.get_by_role("button", name=f"Close CTA and skip {steps} open steps")
    ).to_be_focused()
    page.keyboard.press("Tab")
    expect(dialog.get_by_role("link", name="Keep it open")).to_be_focused()

    # Escape: the question goes, the focus is back on the button that asked, the note kept
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    close = page.get_by_role("button", name="Close CTA as done…")
    expect(close).to_be_focused()
    expect(page.get_by_label("Note")).to_have_value("spoke to them")
    assert page.url.endswith(reverse("playbooks:cta-detail", args=[cta.pk]))  # reload: no resend

    # asked again, then "Keep it open" (Enter on the link): the same
    page.keyboard.press("Enter")
    page.wait_for_load_state("load")
    expect(page.get_by_role("heading", name="Close this CTA with open steps?")).to_be_focused()
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(page.locator("dialog[data-confirm]")).to_be_hidden()
    expect(close).to_be_focused()
    assert Cta.objects.get(pk=cta.pk).status == CtaStatus.OPEN

    # asked a third time and confirmed: closed, the open steps skipped
    page.keyboard.press("Enter")
    page.wait_for_load_state("load")
    expect(page.get_by_role("heading", name="Close this CTA with open steps?")).to_be_focused()
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(page.locator(".badge-cta-done")).to_have_text("Done")
    closed = Cta.objects.get(pk=cta.pk)
    assert (closed.status, closed.close_note) == (CtaStatus.DONE, "spoke to them")


def test_without_script_the_question_sits_in_the_page_with_its_heading_focused(
    new_page, login, cta
):
    page = new_page(java_script_enabled=False)
    login(page, CSM)
    page.goto(reverse("playbooks:cta-detail", args=[cta.pk]))
    page.get_by_label("Note").fill("spoke to them")
    page.get_by_role("button", name="Close CTA as done…").click()
    dialog = page.get_by_role("alertdialog", name="Close this CTA with open steps?")
    expect(dialog).to_be_visible()
    assert not dialog.evaluate("d => d.matches(':modal')")
    expect(page.get_by_role("heading", name="Close this CTA with open steps?")).to_be_focused()
    dialog.get_by_role("link", name="Keep it open").click()
    expect(page.get_by_role("alertdialog")).to_have_count(0)
    assert Cta.objects.get(pk=cta.pk).status == CtaStatus.OPEN
