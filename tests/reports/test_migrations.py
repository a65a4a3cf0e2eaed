"""Reports 0003-0004 on a database that has data, forwards and back (an operator upgrading
and rolling back): rows made before them keep their meaning, going back drops only the send
bookkeeping, and a team scope, which the code before 0003 does not know, stops the way back
in words naming what uses it. Run through the migration executor on the test database,
which is put back to the newest state of every app afterwards."""

from __future__ import annotations

import pytest

from tests.migrating import migrate_to, to_the_latest  # noqa: F401 (a fixture)

BEFORE = [("reports", "0002_default_targets")]
AFTER = [("reports", "0004_scheduled_report_last_sent_waiting")]

# the schema editor cannot run inside the test's transaction on SQLite (as in
# tests/metrics/test_health_rule_migration.py)
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("to_the_latest")]


@pytest.fixture
def at_0002():
    return migrate_to(BEFORE)  # to_the_latest puts the schema back afterwards


def _user(apps, email):
    return apps.get_model("accounts", "User").objects.create(email=email)


def test_reports_made_before_keep_their_scope_and_have_nothing_sent_or_skipped(at_0002):
    Report = at_0002.get_model("reports", "ScheduledReport")
    user = _user(at_0002, "lead@example.com")
    report = Report.objects.create(
        name="SMB weekly", scope_kind="segment", scope_key="SMB", cadence="weekly"
    )
    report.recipients.add(user)

    apps = migrate_to(AFTER)
    after = apps.get_model("reports", "ScheduledReport").objects.get(pk=report.pk)
    assert (after.scope_kind, after.scope_key, after.cadence) == ("segment", "SMB", "weekly")
    assert list(after.recipients.values_list("email", flat=True)) == ["lead@example.com"]
    assert (after.skipped, after.skipped_period) == ([], "")
    assert after.last_sent_day is None and after.waiting_for is None


def test_going_back_drops_the_send_bookkeeping_and_keeps_the_reports(at_0002):
    apps = migrate_to(AFTER)
    Report = apps.get_model("reports", "ScheduledReport")
    Report.objects.create(
        name="Owner weekly",
        scope_kind="owner",
        scope_key="7",
        cadence="weekly",
        skipped=[{"email": "gone@example.com", "reason": "deactivated"}],
        skipped_period="2026-W47",
        last_sent_day="2026-11-22",
    )

    apps = migrate_to(BEFORE)
    Old = apps.get_model("reports", "ScheduledReport")
    assert list(Old.objects.values_list("name", "scope_kind", "scope_key")) == [
        ("Owner weekly", "owner", "7")
    ]
    assert not {f.name for f in Old._meta.get_fields()} & {"skipped", "last_sent_day"}


def test_going_back_with_team_scopes_is_refused_in_words_and_undoes_nothing_of_0003(at_0002):
    apps = migrate_to(AFTER)
    Target = apps.get_model("reports", "KpiTarget")
    Report = apps.get_model("reports", "ScheduledReport")
    team_target = Target.objects.create(
        kpi="nrr", direction="at_least", value=100, cadence="weekly", scope_kind="team",
        scope_key="5",
    )  # fmt: skip
    Report.objects.create(name="Team weekly", scope_kind="team", scope_key="5", cadence="weekly")

    with pytest.raises(RuntimeError) as refused:
        migrate_to(BEFORE)
    words = str(refused.value)
    assert words.startswith("cannot go back before reports 0003")
    assert f"target {team_target.pk} (nrr, team 5)" in words
    assert "“Team weekly” (team 5)" in words
    # 0003 is still applied: the team rows and the skipped lists are there
    apps = migrate_to([("reports", "0003_scope_team_and_skipped")])
    Report = apps.get_model("reports", "ScheduledReport")
    assert Report.objects.get(name="Team weekly").skipped == []

    # given another scope, the way back is open
    Target = apps.get_model("reports", "KpiTarget")
    Target.objects.filter(scope_kind="team").update(scope_kind="owner")
    Report.objects.filter(scope_kind="team").update(scope_kind="owner")
    apps = migrate_to(BEFORE)
    Old = apps.get_model("reports", "ScheduledReport")
    assert list(Old.objects.values_list("scope_kind", "scope_key")) == [("owner", "5")]
