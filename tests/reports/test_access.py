"""Targets, scheduled reports and their recipients stay within what each person may see
(``reports.services.scope_check``, the dashboard's scope rule): a manager sets them for
their team or one of its owners' books, an admin for any scope; every recipient must see
the scope, and one who lost access since is skipped at send time, on the report's page."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Group
from django.core import mail

from accounts.models import Role
from metrics.models import KpiSnapshot
from reports import services
from reports.models import KpiTarget, ScheduledReport
from tests.conftest import _user
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db

DAY = dt.date(2026, 11, 22)  # a Sunday: week 47 ends


@pytest.fixture
def teams(manager, csm):
    """Max manages Cleo (csm); Olga manages Otto. Each CSM owns an SMB account."""
    olga = _user("olga@example.com", Role.MANAGER, first_name="Olga")
    otto = _user("otto@example.com", Role.CSM, first_name="Otto", manager=olga)
    AccountFactory(owner=csm, segment="SMB")
    AccountFactory(owner=otto, segment="SMB")
    return {"olga": olga, "otto": otto}


def _report(**fields):
    return {"name": "Weekly", "cadence": "weekly", "scope_key": "", **fields}


def _target(**fields):
    return {
        "kpi": "nrr",
        "direction": "at_least",
        "value": "95",
        "cadence": "weekly",
        "scope_key": "",
        **fields,
    }


# --- the form views --------------------------------------------------------------------------


def test_a_manager_cannot_schedule_a_report_outside_their_team(
    client, manager, csm, outsider, teams
):
    client.force_login(manager)
    cases = [
        (
            _report(scope_kind="all", recipients=[manager.pk]),
            "scope_kind",
            "You cannot choose all accounts: the whole book is for admins; a manager sees "
            "their team's accounts only.",
        ),
        (
            _report(scope_kind="segment", scope_key="SMB", recipients=[manager.pk]),
            "scope_key",
            "You cannot choose segment SMB: segments are for admins; a manager sees their "
            "team's accounts only.",
        ),
        (
            _report(scope_kind="owner", book_owner=teams["otto"].pk, recipients=[manager.pk]),
            "book_owner",
            "You cannot choose owner's book: Otto (otto@example.com): a manager sees their "
            "team's accounts only.",
        ),
        (
            _report(scope_kind="team", scope_key="olga@example.com", recipients=[manager.pk]),
            "scope_key",
            "You cannot choose the team of Olga (olga@example.com): a manager sees their "
            "team's accounts only.",
        ),
    ]
    for data, field, message in cases:
        response = client.post("/reports/scheduled/", data)
        assert response.status_code == 400, data
        assert response.context["form"].errors == {field: [message]}, data
        assert message.replace("'", "&#x27;") in response.content.decode()
    assert not ScheduledReport.objects.exists()


def test_every_recipient_must_see_the_reports_scope(client, manager, csm, outsider, teams):
    """The team's report: the manager and an admin may have it; Cleo (a CSM: her own book
    only), Olga (another team) and someone with no role may not, and are named."""
    client.force_login(manager)
    response = client.post(
        "/reports/scheduled/",
        _report(
            scope_kind="team",
            recipients=[manager.pk, csm.pk, teams["olga"].pk, outsider.pk],
        ),
    )
    assert response.status_code == 400
    assert response.context["form"].errors == {
        "recipients": [
            "csm@example.com cannot see the team of Max (manager@example.com) (a CSM sees "
            "their own book only); olga@example.com cannot see the team of Max "
            "(manager@example.com) (a manager sees their team's accounts only); "
            "outsider@example.com cannot see the team of Max (manager@example.com) (has no "
            "role, so sees no accounts)."
        ]
    }
    assert not ScheduledReport.objects.exists()
    # the team left empty is the manager's own; Cleo may have her own book's report
    ok = client.post("/reports/scheduled/", _report(scope_kind="team", recipients=[manager.pk]))
    assert ok.status_code == 302
    assert ScheduledReport.objects.get().scope_key == str(manager.pk)
    own = client.post(
        "/reports/scheduled/",
        _report(name="Cleo", scope_kind="owner", book_owner=csm.pk, recipients=[csm.pk]),
    )
    assert own.status_code == 302


def test_a_manager_cannot_set_a_target_outside_their_team(client, manager, csm, teams):
    client.force_login(manager)
    other = client.post("/targets/", _target(scope_kind="owner", scope_key="otto@example.com"))
    assert other.status_code == 400
    assert other.context["form"].errors == {
        "scope_key": [
            "You cannot choose owner's book: Otto (otto@example.com): a manager sees their "
            "team's accounts only."
        ]
    }
    whole = client.post("/targets/", _target(scope_kind="all"))
    assert list(whole.context["form"].errors) == ["scope_kind"]
    # the alert owner must see the scope too
    owner = client.post(
        "/targets/", _target(scope_kind="owner", book_owner=csm.pk, owner=teams["olga"].pk)
    )
    assert owner.context["form"].errors == {
        "owner": [
            "olga@example.com cannot see owner's book: Cleo (csm@example.com) (a manager sees "
            "their team's accounts only)."
        ]
    }
    before = KpiTarget.objects.count()
    assert not KpiTarget.objects.exclude(scope_kind="all").exists()
    # the benchmark defaults are the whole book's: an admin's to add
    assert client.post("/targets/", {"action": "defaults"}).status_code == 403
    ok = client.post("/targets/", _target(scope_kind="owner", book_owner=csm.pk, owner=csm.pk))
    assert ok.status_code == 302
    assert KpiTarget.objects.count() == before + 1


# --- the API ---------------------------------------------------------------------------------


def test_the_api_refuses_a_managers_scope_outside_their_team(
    client, manager, csm, teams, no_default_targets
):
    KpiTarget.objects.create(kpi="grr", direction="at_least", value=90, cadence="weekly")
    client.force_login(manager)
    url = "/api/v1/targets/"
    refused = {
        "scope_kind": _target(scope_kind="all"),
        "scope_key": _target(scope_kind="segment", scope_key="SMB"),
    }
    for field, data in refused.items():
        response = client.post(url, data, content_type="application/json")
        assert response.status_code == 400 and list(response.json()) == [field], data
    other = client.post(
        url,
        _target(scope_kind="owner", scope_key=str(teams["otto"].pk)),
        content_type="application/json",
    )
    assert other.json() == {
        "scope_key": [
            "You cannot choose owner's book: Otto (otto@example.com): a manager sees their "
            "team's accounts only."
        ]
    }
    owner = client.post(
        url,
        _target(scope_kind="team", scope_key=str(manager.pk), owner=teams["otto"].pk),
        content_type="application/json",
    )
    assert owner.status_code == 400 and "otto@example.com cannot see" in owner.json()["owner"][0]
    assert not KpiTarget.objects.exclude(scope_kind="all").exists()
    # a whole-book target (the migration's defaults) is read-only for the manager
    book = KpiTarget.objects.filter(scope_kind="all").first()
    patch = client.patch(f"{url}{book.pk}/", {"value": "1"}, content_type="application/json")
    assert patch.status_code == 403
    assert "Only an admin can change a target of this scope" in patch.json()["detail"]
    assert client.delete(f"{url}{book.pk}/").status_code == 403
    assert KpiTarget.objects.get(pk=book.pk).value == book.value
    assert client.get(f"{url}{book.pk}/").status_code == 200  # reading the definition is fine
    # moving the team's own target to another scope is refused too
    mine = client.post(
        url, _target(scope_kind="team", scope_key=str(manager.pk)), content_type="application/json"
    )
    assert mine.status_code == 201
    moved = client.patch(
        f"{url}{mine.json()['id']}/", {"scope_kind": "all", "scope_key": ""},
        content_type="application/json",
    )  # fmt: skip
    assert moved.status_code == 400 and "scope_kind" in moved.json()


def test_an_admin_sets_any_scope(client, admin_user, manager, teams):
    client.force_login(admin_user)
    response = client.post(
        "/api/v1/targets/",
        _target(scope_kind="segment", scope_key="smb", owner=admin_user.pk),
        content_type="application/json",
    )
    assert response.status_code == 201, response.json()
    # but not with a manager as the alert owner of a segment
    response = client.post(
        "/api/v1/targets/",
        _target(kpi="grr", scope_kind="segment", scope_key="SMB", owner=manager.pk),
        content_type="application/json",
    )
    assert response.status_code == 400 and list(response.json()) == ["owner"]


# --- rows made before the rule ----------------------------------------------------------------


def test_rows_outside_a_managers_team_are_read_only_for_them(client, manager, admin_user, teams):
    report = ScheduledReport.objects.create(name="Book", scope_kind="all", cadence="weekly")
    report.recipients.set([admin_user])
    book = KpiTarget.objects.filter(scope_kind="all").first()
    client.force_login(manager)
    page = client.get("/reports/scheduled/").content.decode()
    assert "read-only: only an admin can remove it" in page
    gone = client.post("/reports/scheduled/", {"action": "delete", "pk": report.pk})
    assert gone.status_code == 403 and ScheduledReport.objects.filter(pk=report.pk).exists()
    targets = client.get("/targets/").content.decode()
    assert "Read-only for you: only an admin can change " in targets
    assert "Add the benchmark defaults" not in targets
    edit = client.get(f"/targets/{book.pk}/")
    assert (
        edit.status_code == 200 and "Read-only: only an admin can change" in edit.content.decode()
    )
    assert "Save target" not in edit.content.decode()
    assert client.post(f"/targets/{book.pk}/", {"action": "delete"}).status_code == 403
    assert client.post(f"/targets/{book.pk}/", _target(scope_kind="all")).status_code == 403
    assert KpiTarget.objects.filter(pk=book.pk).exists()
    # an admin still changes and removes them
    client.force_login(admin_user)
    assert "read-only" not in client.get("/reports/scheduled/").content.decode()
    assert (
        client.post(
            "/reports/scheduled/", {"action": "delete", "pk": report.pk, "confirm": "1"}
        ).status_code
        == 302
    )


# --- sending ---------------------------------------------------------------------------------


def test_a_recipient_who_lost_access_is_skipped_and_the_page_says_so(
    client, manager, csm, admin_user, teams, celery_eager, django_capture_on_commit_callbacks,
    caplog,
):  # fmt: skip
    """Cleo's book, for her manager, an admin and Cleo. Then Cleo moves to Olga's team (Max
    no longer sees her book) and the admin is deactivated: only Cleo gets the CSV."""
    KpiSnapshot.objects.create(
        day=DAY, scope_kind="owner", scope_key=str(csm.pk), period_start=DAY,
        period_end=DAY + dt.timedelta(days=1), report={"retention": {"nrr": {"value": "99"}}},
    )  # fmt: skip
    client.force_login(manager)
    response = client.post(
        "/reports/scheduled/",
        _report(
            name="Cleo's book",
            scope_kind="owner",
            book_owner=csm.pk,
            recipients=[manager.pk, admin_user.pk, csm.pk],
        ),
    )
    assert response.status_code == 302
    report = ScheduledReport.objects.get()
    # made before week 47 ended (a report made later starts with a later week)
    ScheduledReport.objects.filter(pk=report.pk).update(
        created_at=dt.datetime(2026, 11, 2, tzinfo=dt.UTC)
    )
    csm.manager = teams["olga"]
    csm.save()
    admin_user.is_active = False
    admin_user.save()
    with (
        django_capture_on_commit_callbacks(execute=True),
        caplog.at_level("WARNING", logger="reports.services"),
    ):
        assert services.scheduled_reports_send(as_of=DAY) == 1
    assert [m.to for m in mail.outbox] == [[csm.email]]
    report.refresh_from_db()
    assert report.skipped_period == "2026-W47"
    assert report.skipped == [
        {"email": admin_user.email, "reason": "deactivated"},
        {"email": manager.email, "reason": "a manager sees their team's accounts only"},
    ]
    assert f"{manager.email} skipped: cannot see owner:{csm.pk}" in caplog.text
    # the report's page (Olga now sees Cleo's book; she is a manager) names who was skipped
    client.force_login(teams["olga"])
    page = client.get("/reports/scheduled/").content.decode()
    assert f'id="report-{report.pk}-skipped"' in page
    assert (
        "Skipped in the week of 16–22 Nov 2026" in page
        and "manager@example.com (a manager sees" in page
    )
    # a role taken away: skipped as well
    Group.objects.get(name=Role.CSM).user_set.remove(csm)
    allowed, skipped = services.report_recipients_split(
        ScheduledReport.objects.prefetch_related("recipients__groups").get()
    )
    assert allowed == [] and csm.email in [s["email"] for s in skipped]


# --- many recipients: a fixed number of queries ----------------------------------------------


@pytest.fixture
def crowd(manager, csm, admin_user, outsider, teams):
    """Ten people for Max's team report: Nina (a manager nobody reports to) first, then an
    admin, Max, Cleo, Olga, Otto, someone with no role, a deactivated CSM and two more of
    Max's CSMs."""
    nina = _user("nina@example.com", Role.MANAGER, first_name="Nina")
    gone = _user("gone@example.com", Role.CSM, manager=manager, is_active=False)
    more = [_user(f"csm{i}@example.com", Role.CSM, manager=manager) for i in (2, 3)]
    people = [nina, admin_user, manager, csm, teams["olga"], teams["otto"], outsider, gone]
    return people + more


def _team_report(manager, recipients) -> ScheduledReport:
    report = ScheduledReport.objects.create(
        name="Team", scope_kind="team", scope_key=str(manager.pk), cadence="weekly"
    )
    report.recipients.set(recipients)
    return ScheduledReport.objects.get(pk=report.pk)  # nothing loaded yet


def test_checking_recipients_takes_the_same_queries_for_one_or_ten(
    manager, crowd, django_assert_num_queries
):
    """Nina alone needs every read the rule makes (she is a manager, and her check falls
    back to her own book), so one recipient and ten cost the same: the recipients, their
    groups, the managers' teams, and who among them owns accounts. 4 queries."""
    for recipients in (crowd[:1], crowd):
        report = _team_report(manager, recipients)
        with django_assert_num_queries(4) as captured:
            allowed, skipped = services.report_recipients_split(report)
        report.delete()
        # who owns accounts: one row per owner (no ordering column joining the DISTINCT)
        (owns,) = [q["sql"] for q in captured.captured_queries if "accounts_account" in q["sql"]]
        head, ids = owns.rstrip(")").split(" IN (")
        assert head == (
            'SELECT DISTINCT "accounts_account"."owner_id" AS "owner_id" FROM '
            '"accounts_account" WHERE "accounts_account"."owner_id"'
        )
        # asked of the active managers and CSMs only
        assert set(ids.split(", ")) == {
            str(u.pk) for u in recipients if u.is_active and u.role in (Role.MANAGER, Role.CSM)
        }
    # only the admin and Max himself see Max's team
    assert [u.email for u in allowed] == ["admin@example.com", "manager@example.com"]
    assert {s["email"]: s["reason"] for s in skipped} == {
        "nina@example.com": "a manager sees their team's accounts only",
        "csm@example.com": "a CSM sees their own book only",
        "olga@example.com": "a manager sees their team's accounts only",
        "otto@example.com": "a CSM sees their own book only",
        "outsider@example.com": "has no role, so sees no accounts",
        "gone@example.com": "deactivated",
        "csm2@example.com": "a CSM sees their own book only",
        "csm3@example.com": "a CSM sees their own book only",
    }


def test_refusing_recipients_on_save_takes_the_same_queries_for_one_or_ten(
    manager, crowd, teams, django_assert_num_queries
):
    """The form's and the API's check: Max saves his team's report. The team's name (1),
    the groups of Max and the recipients (1), the managers' teams (1), who owns accounts (1):
    4 queries whether Otto alone or ten people are named."""
    from accounts.models import User

    for recipients in ([teams["otto"]], crowd):
        fresh_max = User.objects.get(pk=manager.pk)
        fresh = list(User.objects.filter(pk__in=[u.pk for u in recipients]).order_by("email"))
        with django_assert_num_queries(4):
            errors = services.scope_errors(fresh_max, "team", str(manager.pk), recipients=fresh)
    refused = errors["recipients"][0]
    # eight of the ten are named (not the admin, not Max), in the order given (by email)
    assert refused.count(" cannot see the team of Max (manager@example.com)") == 8
    assert refused.startswith("csm2@example.com cannot see")


# --- the recipients' picker ------------------------------------------------------------------


def _options(html: str, select: str = "id_recipients") -> dict[str, str]:
    """email → "on", "off" (disabled) or "chosen" of a picker of people: the recipients'
    boxes unless a select is named (the target owner's); a select's empty choice, naming
    nobody, is left out."""
    import re

    picker = html[html.index(f'id="{select}"') :]
    if select == "id_recipients":  # one checkbox each, its label after it
        picker = picker[: picker.index("</fieldset>")]
        found = re.findall(r"<input (type=\"checkbox\"[^>]*)>([^<]*)</label>", picker)
        chosen = "checked"
    else:
        picker = picker[: picker.index("</select>")]
        found = re.findall(r"<option ([^>]*)>([^<]*)</option>", picker)
        chosen = "selected"
    out = {}
    for attrs, label in found:
        if 'value=""' in attrs:
            continue
        email = re.search(r"([\w.]+@[\w.]+)", label).group(1)  # the first email of it
        out[email] = "chosen" if chosen in attrs else "off" if "disabled" in attrs else "on"
    assert out, "no person in the picker"
    return out


def test_the_picker_greys_out_whoever_cannot_see_the_managers_team(
    client, manager, csm, admin_user, outsider, teams
):
    """A manager's form starts at their team (the whole book is for admins): only Max and
    the admin may receive it; the others are listed, disabled, with why."""
    client.force_login(manager)
    page = client.get("/reports/scheduled/").content.decode()
    assert '<option value="team" selected>' in page
    assert _options(page) == {
        "admin@example.com": "on",
        "csm@example.com": "off",
        "manager@example.com": "on",
        "olga@example.com": "off",
        "otto@example.com": "off",
        "outsider@example.com": "off",
    }
    assert "Cleo (csm@example.com): cannot see it (a CSM sees their own book only)</label>" in page
    assert "2 of 6 people can see the team of Max (manager@example.com)" in page
    # an admin's form starts at the whole book, which only admins see
    client.force_login(admin_user)
    page = client.get("/reports/scheduled/").content.decode()
    assert '<option value="all" selected>' in page
    assert [e for e, state in _options(page).items() if state == "on"] == ["admin@example.com"]


def test_changing_the_scope_refreshes_the_picker_and_keeps_who_was_chosen(
    client, manager, csm, admin_user, outsider, teams, django_assert_max_num_queries
):
    """The htmx request of the scope fields: the recipients' field alone, judged for Cleo's
    book. Otto was chosen before: he stays chosen, saying he cannot see it (a disabled
    option would not be sent, dropping him silently); the save then refuses him by name."""
    client.force_login(manager)
    query = {"scope_kind": "owner", "book_owner": csm.pk, "recipients": [teams["otto"].pk]}
    # the session and user (2), Max's groups (1), the segments offered (1), the book
    # owners (1), the people and their groups (2), the managers' teams (1), who owns
    # accounts (1), the owner's name (1)
    with django_assert_max_num_queries(10):
        fragment = client.get("/reports/scheduled/", query, headers={"HX-Request": "true"})
    html = fragment.content.decode()
    assert "<html" not in html and html.lstrip().startswith('<div id="report-recipients"')
    assert _options(html) == {
        "admin@example.com": "on",
        "csm@example.com": "on",  # her own book
        "manager@example.com": "on",  # his team's
        "olga@example.com": "off",
        "otto@example.com": "chosen",
        "outsider@example.com": "off",
    }
    assert "Otto (otto@example.com): cannot see it (a CSM sees their own book only)" in html
    assert "3 of 6 people can see owner&#x27;s book: Cleo (csm@example.com)" in html
    refused = client.post(
        "/reports/scheduled/",
        _report(scope_kind="owner", book_owner=csm.pk, recipients=[teams["otto"].pk]),
    )
    assert refused.status_code == 400
    assert (
        refused.context["form"]
        .errors["recipients"][0]
        .startswith("otto@example.com cannot see owner's book: Cleo (csm@example.com)")
    )
    # the form shown again judges the list as well, Otto still chosen
    again = refused.content.decode()
    assert _options(again)["otto@example.com"] == "chosen"
    assert "3 of 6 people can see owner&#x27;s book: Cleo (csm@example.com)" in again
    # an owner's book with no owner chosen yet: nobody is judged
    pending = client.get(
        "/reports/scheduled/", {"scope_kind": "owner"}, headers={"HX-Request": "true"}
    ).content.decode()
    assert set(_options(pending).values()) == {"on"}
    assert "Choose the scope first" in pending


# --- the target owner's picker ---------------------------------------------------------------


def test_the_owner_picker_greys_out_whoever_cannot_see_the_targets_scope(
    client, manager, csm, admin_user, outsider, teams
):
    """A target's owner gets its alerts and sees it in their digest, so they must see its
    scope: the same rule and look as the recipients' picker. Max's new target starts at his
    team; of the five people with a role (the outsider has none, so is not offered), the
    admin and Max may own it."""
    client.force_login(manager)
    page = client.get("/targets/").content.decode()
    assert '<option value="team" selected>' in page
    assert _options(page, "id_owner") == {
        "admin@example.com": "on",
        "csm@example.com": "off",
        "manager@example.com": "on",
        "olga@example.com": "off",
        "otto@example.com": "off",
    }
    assert "Cleo (csm@example.com): cannot see it (a CSM sees their own book only)</option>" in page
    assert "2 of 5 people can see the team of Max (manager@example.com)" in page
    assert '<option value="" selected>— nobody: the admins get its alerts —</option>' in page


def test_changing_a_targets_scope_refreshes_the_owner_picker_in_a_fixed_number_of_queries(
    client, manager, csm, admin_user, outsider, teams, crowd, django_assert_num_queries
):
    """The htmx request of the scope fields: the owner's field alone, judged for Cleo's
    book. Otto was chosen before: he stays chosen, saying he cannot see it. The crowd adds
    four people with a role (Nina and two more of Max's CSMs offered, one deactivated CSM
    not): the same queries for them all."""
    client.force_login(manager)
    query = {"scope_kind": "owner", "book_owner": csm.pk, "owner": teams["otto"].pk}
    # the session and the user (2), Max's groups (1), the segments offered (1), the book
    # owners (1), the people and their groups (2), the managers' teams (1), who owns
    # accounts (1), the owner's name (1): 10
    with django_assert_num_queries(10):
        fragment = client.get("/targets/", query, headers={"HX-Request": "true"})
    html = fragment.content.decode()
    assert "<html" not in html and html.lstrip().startswith('<div id="target-owner"')
    assert 'hx-get="/targets/"' in html
    assert _options(html, "id_owner") == {
        "admin@example.com": "on",
        "csm@example.com": "on",  # her own book
        "csm2@example.com": "off",  # not hers: a CSM sees their own book only
        "csm3@example.com": "off",
        "manager@example.com": "on",  # his team's
        "nina@example.com": "off",
        "olga@example.com": "off",
        "otto@example.com": "chosen",
    }
    assert "Otto (otto@example.com): cannot see it (a CSM sees their own book only)" in html
    assert "3 of 8 people can see owner&#x27;s book: Cleo (csm@example.com)" in html
    # the save still refuses him, by name
    refused = client.post(
        "/targets/", _target(scope_kind="owner", book_owner=csm.pk, owner=teams["otto"].pk)
    )
    assert refused.status_code == 400
    assert (
        refused.context["form"]
        .errors["owner"][0]
        .startswith("otto@example.com cannot see owner's book: Cleo (csm@example.com)")
    )
    assert _options(refused.content.decode(), "id_owner")["otto@example.com"] == "chosen"
    # an owner's book with no owner chosen yet: nobody is judged
    pending = client.get(
        "/targets/", {"scope_kind": "owner"}, headers={"HX-Request": "true"}
    ).content.decode()
    assert set(_options(pending, "id_owner").values()) == {"on"}
    assert "Choose the scope first" in pending


def test_a_targets_edit_page_judges_its_owner_and_asks_its_own_url(
    client, manager, csm, admin_user, teams
):
    """A target of Cleo's book owned by Olga (set before the rule): the edit page shows
    Olga chosen, with why she cannot see it, and the refreshes ask the edit page itself."""
    target = KpiTarget.objects.create(
        kpi="nrr",
        scope_kind="owner",
        scope_key=str(csm.pk),
        direction="at_least",
        value=95,
        cadence="weekly",
        owner=teams["olga"],
    )
    client.force_login(manager)
    page = client.get(f"/targets/{target.pk}/").content.decode()
    assert f'hx-get="/targets/{target.pk}/"' in page
    options = _options(page, "id_owner")
    assert options["olga@example.com"] == "chosen" and options["csm@example.com"] == "on"
    assert (
        "Olga (olga@example.com): cannot see it (a manager sees their team&#x27;s accounts "
        "only)</option>" in page
    )
    # moved to Max's team, the list is judged for the team
    fragment = client.get(
        f"/targets/{target.pk}/",
        {"scope_kind": "team", "scope_key": "", "owner": teams["olga"].pk},
        headers={"HX-Request": "true"},
    ).content.decode()
    assert "2 of 5 people can see the team of Max (manager@example.com)" in fragment
    assert _options(fragment, "id_owner")["csm@example.com"] == "off"
