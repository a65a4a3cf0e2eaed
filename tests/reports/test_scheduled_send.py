"""A scheduled report carries the KPI figures of its period's last day, never a later or an
earlier day's: when the night has not recorded them by the reports' hour, the report waits
and a later run (up to a week on) sends it; a new report starts with the period that just
ended."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
from django.core import mail

from metrics.models import KpiSnapshot
from outbox.models import Message
from reports import services
from reports.models import ScheduledReport

pytestmark = pytest.mark.django_db

# ISO week 47 of 2026 runs from Monday 16 to Sunday 22 November; week 48 ends Sunday 29th
WEEK_47_END = dt.date(2026, 11, 22)
WEEK_48_END = dt.date(2026, 11, 29)


def _snapshot(day: dt.date, nrr: str) -> KpiSnapshot:
    # the trailing month ending ``day``: [day − 30, day + 1)
    start, end = day - dt.timedelta(days=30), day + dt.timedelta(days=1)
    return KpiSnapshot.objects.create(
        day=day,
        scope_kind="all",
        scope_key="",
        period_start=start,
        period_end=end,
        report={
            "period": {"start": start.isoformat(), "end": end.isoformat()},
            "retention": {"nrr": {"value": nrr, "unit": "%"}},
        },
    )


def _report(admin_user, *, made: dt.date) -> ScheduledReport:
    report = ScheduledReport.objects.create(
        name="Book weekly",
        cadence="weekly",
        created_at=dt.datetime.combine(made, dt.time(9), tzinfo=dt.UTC),
    )
    report.recipients.set([admin_user])
    return report


def _nrr(message) -> str:
    _, content, _ = message.attachments[0]
    rows = {r[0]: r for r in csv.reader(io.StringIO(content))}
    return rows["NRR"][1]


def _send(as_of: dt.date, capture) -> int:
    with capture(execute=True):
        return services.scheduled_reports_send(as_of=as_of)


def test_a_report_waits_for_its_days_figures_then_a_later_run_sends_them(
    client, admin_user, no_default_targets, celery_eager, django_capture_on_commit_callbacks, caplog
):
    report = _report(admin_user, made=dt.date(2026, 11, 2))
    # the night of Saturday 21 Nov ran; the one of Sunday 22 Nov had not by Monday 06:30
    _snapshot(dt.date(2026, 11, 21), "97")
    with caplog.at_level("WARNING", logger="reports.services"):
        assert _send(WEEK_47_END, django_capture_on_commit_callbacks) == 0
    assert mail.outbox == []  # not Saturday's figures under week 47's name
    report.refresh_from_db()
    assert (report.waiting_for, report.last_sent_day) == (WEEK_47_END, None)
    assert "waiting, no KPI figures recorded for all: on 2026-11-22" in caplog.text
    client.force_login(admin_user)
    page = client.get("/reports/scheduled/").content.decode()
    assert (
        f'id="report-{report.pk}-waiting">Waiting for the KPI figures of 22 Nov 2026, the '
        "last day of its period"
    ) in page

    # the night of the 22nd is re-run later on Monday; Tuesday's run (for Monday 23rd,
    # which ends no week) catches week 47 up, with the figures of the 22nd
    _snapshot(WEEK_47_END, "95.5")
    _snapshot(dt.date(2026, 11, 23), "94")  # a later day's figures are not taken either
    assert _send(dt.date(2026, 11, 23), django_capture_on_commit_callbacks) == 1
    (message,) = mail.outbox
    assert message.subject == "Report “Book weekly”, the week of 16–22 Nov 2026"  # ISO week 47
    assert _nrr(message) == "95.5"
    report.refresh_from_db()
    assert (report.waiting_for, report.last_sent_day) == (None, WEEK_47_END)
    page = client.get("/reports/scheduled/").content.decode()
    assert "Waiting for the KPI figures" not in page
    assert "Last sent with the figures of 22 Nov 2026." in page

    # later runs of the week send nothing more
    assert _send(dt.date(2026, 11, 24), django_capture_on_commit_callbacks) == 0
    assert len(mail.outbox) == 1


def test_a_new_report_starts_with_the_period_that_just_ended(
    admin_user, no_default_targets, celery_eager, django_capture_on_commit_callbacks
):
    _snapshot(WEEK_47_END, "95.5")
    _snapshot(WEEK_48_END, "96")
    # made on Wednesday 25 Nov: week 47 ended on the 22nd, before the day before (24th)
    report = _report(admin_user, made=dt.date(2026, 11, 25))
    assert services.report_periods_due(report, as_of=dt.date(2026, 11, 25)) == []
    assert _send(dt.date(2026, 11, 25), django_capture_on_commit_callbacks) == 0
    assert services.report_periods_due(report, as_of=WEEK_48_END) == [(WEEK_48_END, "2026-W48")]
    assert _send(WEEK_48_END, django_capture_on_commit_callbacks) == 1
    assert _nrr(mail.outbox[0]) == "96"
    # made on Monday 30 Nov before the 06:30 run: the week that ended on Sunday is its first
    monday = _report(admin_user, made=dt.date(2026, 11, 30))
    assert services.report_periods_due(monday, as_of=WEEK_48_END) == [(WEEK_48_END, "2026-W48")]


def test_figures_missing_for_over_a_week_let_the_next_period_go(
    admin_user, no_default_targets, celery_eager, django_capture_on_commit_callbacks, caplog
):
    report = _report(admin_user, made=dt.date(2026, 11, 2))
    assert _send(WEEK_47_END, django_capture_on_commit_callbacks) == 0  # nothing recorded
    report.refresh_from_db()
    assert report.waiting_for == WEEK_47_END
    # a week on, the 22nd is still missing: the catch-up window (the 7 days 23..29 Nov)
    # holds week 48 only, which goes out; week 47 is logged as never sent
    _snapshot(WEEK_48_END, "96")
    assert services.report_periods_due(report, as_of=WEEK_48_END) == [(WEEK_48_END, "2026-W48")]
    with caplog.at_level("WARNING", logger="reports.services"):
        assert _send(WEEK_48_END, django_capture_on_commit_callbacks) == 1
    assert "the period ending 2026-11-22 was not sent" in caplog.text
    assert mail.outbox[0].subject.endswith("the week of 23–29 Nov 2026")  # ISO week 48
    report.refresh_from_db()
    assert (report.waiting_for, report.last_sent_day) == (None, WEEK_48_END)


def test_a_monthly_report_waits_behind_its_missing_month(
    admin_user, no_default_targets, celery_eager, django_capture_on_commit_callbacks
):
    """Periods go out in order: a later one never overtakes one still waiting."""
    report = ScheduledReport.objects.create(
        name="Monthly",
        cadence="monthly",
        created_at=dt.datetime(2026, 10, 1, tzinfo=dt.UTC),
    )
    report.recipients.set([admin_user])
    # 30 Nov ends November; by the run for 6 Dec (window 30 Nov..6 Dec) no figures of it
    _snapshot(dt.date(2026, 12, 6), "90")
    assert services.report_periods_due(report, as_of=dt.date(2026, 12, 6)) == [
        (dt.date(2026, 11, 30), "2026-11")
    ]
    assert _send(dt.date(2026, 12, 6), django_capture_on_commit_callbacks) == 0
    _snapshot(dt.date(2026, 11, 30), "93")
    assert _send(dt.date(2026, 12, 6), django_capture_on_commit_callbacks) == 1
    assert _nrr(mail.outbox[0]) == "93"


def test_after_an_upgrade_a_period_the_older_code_sent_sends_no_email_twice(
    admin_user, no_default_targets, celery_eager, django_capture_on_commit_callbacks
):
    """A report made before reports 0004 has no last period sent. The older code sent week
    47 on the night of the 22nd (the same outbox key per recipient); the first run after the
    upgrade finds week 47 in its catch-up week, queues nothing new and counts it as sent."""
    report = _report(admin_user, made=dt.date(2026, 9, 1))
    _snapshot(WEEK_47_END, "101")
    key = f"report:{report.pk}:2026-W47:{admin_user.pk}"
    sent = dt.datetime(2026, 11, 23, 6, 30, tzinfo=dt.UTC)
    Message.objects.create(
        key=key, kind="email", payload={"to": [admin_user.email]}, status="sent",
        next_attempt_at=sent, sent_at=sent,
    )  # fmt: skip
    _send(dt.date(2026, 11, 24), django_capture_on_commit_callbacks)
    assert mail.outbox == []
    assert list(
        Message.objects.filter(key__startswith="report:").values_list("key", flat=True)
    ) == [key]
    report.refresh_from_db()
    assert (report.last_sent_day, report.waiting_for) == (WEEK_47_END, None)


def test_the_report_email_names_its_scope_and_period_in_words(
    admin_user, manager, settings, celery_eager, django_capture_on_commit_callbacks
):
    """A team report's email said "Team 7" (the manager's id) and "2026-W47"; it names the
    team by its manager and the week by its days, as the pages do."""
    settings.SITE_URL = "https://cs.example.com"
    report = ScheduledReport.objects.create(
        name="Team weekly",
        cadence="weekly",
        scope_kind="team",
        scope_key=str(manager.pk),
        created_at=dt.datetime.combine(WEEK_47_END, dt.time(9), tzinfo=dt.UTC),
        created_by=manager,
    )
    report.recipients.set([admin_user])
    with django_capture_on_commit_callbacks(execute=True):
        assert services.scheduled_report_send(report, period="2026-W47", day=WEEK_47_END) == 1
    (email,) = mail.outbox
    assert email.subject == "Report “Team weekly”, the week of 16–22 Nov 2026"
    assert "The figures of Team weekly (the team of Max (manager@example.com)), " in email.body
    assert f"Team {manager.pk}" not in email.body and "2026-W47" not in email.body
    assert "as of 22 Nov 2026, are attached as CSV." in email.body
    # why: who put them on it (the reports page is for leaders; a CSM recipient cannot open it)
    assert "You get this report because Max (manager@example.com) added you to it." in email.body
    assert "Dashboard: https://cs.example.com/dashboard/" in email.body


def test_checking_which_reports_have_their_figures_is_one_query_for_all(
    admin_user, no_default_targets, django_assert_num_queries
):
    """Reports already waiting for the figures of the 22nd (none recorded): a run reads the
    reports, their recipients and the recipients' groups (the prefetch) and, once for all of
    them, which scopes have figures on the days due; nothing is written. As many queries
    for three reports as for one."""
    for count in (1, 3):
        ScheduledReport.objects.all().delete()
        for _ in range(count):
            report = _report(admin_user, made=dt.date(2026, 11, 2))
            ScheduledReport.objects.filter(pk=report.pk).update(waiting_for=WEEK_47_END)
        with django_assert_num_queries(4):
            assert services.scheduled_reports_send(as_of=WEEK_47_END) == 0


def test_the_attachments_figures_are_read_as_the_dashboard_prints_them(
    admin_user, no_default_targets
):
    """A ratio the engine divided to 28 digits is four places in the file, a number."""
    # NRR 100 × 1 301 / 1 300 = 100.076923…%
    _snapshot(WEEK_47_END, str(Decimal(100) * 1301 / 1300))
    report = _report(admin_user, made=dt.date(2026, 11, 2))
    rows = {r[0]: r for r in services.report_rows(report, day=WEEK_47_END)}
    assert rows["NRR"][1:3] == [Decimal("100.0769"), "%"]
