"""voice tasks: the incremental hook, the nightly sweep, on-demand themes."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.factories import AccountFactory, TicketFactory
from voice import tasks
from voice.models import AccountVoiceScore, TextSentiment, ThemeRun

pytestmark = pytest.mark.django_db


def test_account_changed_hook_scores_that_accounts_texts_once_debounced(
    celery_eager, django_capture_on_commit_callbacks, monkeypatch
):
    a, b = AccountFactory(), AccountFactory()
    TicketFactory(account=a, subject="Billing is a mess")
    TicketFactory(account=b, subject="All good")
    with django_capture_on_commit_callbacks(execute=True):
        tasks.account_texts_changed([a.pk])
    assert list(TextSentiment.objects.values_list("account_id", flat=True)) == [a.pk]
    sent = []
    monkeypatch.setattr(tasks.score_account_texts, "apply_async", lambda *x, **k: sent.append(x))
    with django_capture_on_commit_callbacks(execute=True):
        tasks.account_texts_changed([a.pk])  # the task cleared its key: scheduled again
        tasks.account_texts_changed([a.pk])  # within the debounce: not again
    assert len(sent) == 1


def test_bulk_changes_are_left_to_the_nightly_run(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        tasks.account_texts_changed(range(1, 1002))
    assert callbacks == []


def test_nightly_refresh_records_every_account(celery_eager):
    account = AccountFactory()
    TicketFactory(account=account, subject="Love it", opened_at=dt.datetime.now(dt.UTC))
    result = tasks.refresh_all_voice.apply(kwargs={"rescore_all": True}).get()
    yesterday = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    assert result["texts"]["scored"] == 1 and result["as_of"] == yesterday.isoformat()
    assert AccountVoiceScore.objects.get(account=account, day=yesterday)


def test_compute_all_themes_starts_one_run(celery_eager):
    tasks.compute_all_themes.apply()
    run = ThemeRun.objects.get()
    assert run.status == "succeeded" and run.themes == 0  # no texts: no themes, no error
