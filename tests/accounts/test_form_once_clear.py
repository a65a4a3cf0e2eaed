"""Form keys are not kept for ever: each day, those claimed more than two days ago are
cleared (a form left open that long and sent twice is not a double click), deployed by a
beat task, in embedded mode (no beat) by the nightly ``run_pipeline`` its cron runs; newer
ones still make the second send of their form make nothing."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from celery.schedules import crontab
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from accounts import once, tasks
from accounts.models import Activity, FormOnce
from config.celery import app
from metrics.models import PipelineRun
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 11, 25, 4, 40, tzinfo=dt.UTC)


def test_keys_older_than_two_days_are_cleared_newer_ones_kept():
    second = dt.timedelta(seconds=1)
    for key, at in {
        "a-week-old": NOW - dt.timedelta(days=7),
        "just-over-two-days": NOW - once.KEEP - second,
        "just-under-two-days": NOW - once.KEEP + second,
        "an-hour-old": NOW - dt.timedelta(hours=1),
    }.items():
        FormOnce.objects.create(key=key, at=at)
    assert once.keys_clear(now=NOW) == 2
    assert sorted(FormOnce.objects.values_list("key", flat=True)) == [
        "an-hour-old",
        "just-under-two-days",
    ]
    assert once.keys_clear(now=NOW) == 0  # run again: nothing more


def test_the_daily_task_clears_and_a_kept_key_still_guards_its_form(client, csm):
    account = AccountFactory(owner=csm)
    client.force_login(csm)
    url = reverse("workspace:activity-create", args=[account.pk])
    form = {"kind": "note", "subject": "Called Dana", "body": "", "form_key": "kept"}
    client.post(url, form)
    FormOnce.objects.create(key="old", at=timezone.now() - dt.timedelta(days=3))

    assert tasks.clear_old_form_keys() == 1
    assert list(FormOnce.objects.values_list("key", flat=True)) == ["kept"]
    client.post(url, form)  # sent again: still one note
    assert Activity.objects.filter(account=account, subject="Called Dana").count() == 1


def test_the_beat_schedule_clears_once_a_day_outside_the_night():
    entry = app.conf.beat_schedule["clear-old-form-keys"]
    assert entry["task"] == tasks.clear_old_form_keys.name
    assert entry["schedule"] == crontab(minute=40, hour=4)  # after the pipeline and themes


def _old_and_new_keys() -> None:
    now = timezone.now()
    FormOnce.objects.create(key="three-days-old", at=now - dt.timedelta(days=3))
    FormOnce.objects.create(key="an-hour-old", at=now - dt.timedelta(hours=1))


def test_the_nightly_run_pipeline_clears_them_in_embedded_mode():
    """Embedded mode has no beat: the command its cron runs each night clears them too,
    and says how many."""
    _old_and_new_keys()
    out = StringIO()
    call_command("run_pipeline", stdout=out)
    assert PipelineRun.objects.get().status == PipelineRun.Status.SUCCEEDED
    assert list(FormOnce.objects.values_list("key", flat=True)) == ["an-hour-old"]
    assert out.getvalue().splitlines()[-1] == "Cleared 1 form key(s) older than 2 days."


def test_a_refused_run_pipeline_clears_them_too(lock_held_elsewhere):
    """Cleared before the run, outside its steps: a night whose run is refused (another
    holds the pipeline lock) still clears them."""
    _old_and_new_keys()
    with pytest.raises(CommandError, match="another pipeline run or health rescore"):
        call_command("run_pipeline", stdout=StringIO())
    assert not PipelineRun.objects.exists()
    assert list(FormOnce.objects.values_list("key", flat=True)) == ["an-hour-old"]
