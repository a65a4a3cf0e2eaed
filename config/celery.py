"""Celery app. Schedules live here in code; cross-app orchestration lives in tasks."""

from __future__ import annotations

import os

from celery import Celery
from celery.schedules import crontab

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

# Every queue some worker must consume (settings.CELERY_TASK_ROUTES sends tasks to them);
# docker-compose.yml splits them over two workers: celery,ingest and recompute,notifications
QUEUES = ("celery", "ingest", "recompute", "notifications")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

app.conf.beat_schedule = {
    "run-nightly-pipeline": {  # 02:15 UTC, after overnight imports; skip if a day late
        "task": "metrics.tasks.run_nightly_pipeline",
        "schedule": crontab(hour=2, minute=15),
        "options": {"expires": 20 * 60 * 60},
    },
    "refresh-all-voice": {  # 02:00 UTC: texts imported overnight scored before the health step
        "task": "voice.tasks.refresh_all_voice",
        "schedule": crontab(hour=2, minute=0),
        "options": {"expires": 20 * 60 * 60},
    },
    "compute-all-themes": {  # 03:30 UTC, after the pipeline; bounded to 50k texts
        "task": "voice.tasks.compute_all_themes",
        "schedule": crontab(hour=3, minute=30),
        "options": {"expires": 20 * 60 * 60},
    },
    "sweep-stale-health": {  # every minute: a health recompute lost with a killed worker
        "task": "metrics.tasks.sweep_stale_health",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    "deliver-due-outbox": {  # every minute: outbox retries and anything never enqueued
        "task": "outbox.tasks.deliver_due_messages",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    "escalate-overdue-ctas": {  # every 15 minutes: a CTA due today escalates the same day
        "task": "playbooks.tasks.escalate_overdue_ctas",
        "schedule": crontab(minute="*/15"),
        "options": {"expires": 10 * 60},
    },
    "send-due-survey-campaigns": {  # every minute: scheduled sends and event campaigns
        "task": "surveys.tasks.send_due_campaigns",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    "announce-survey-answers": {  # every 5 s: new answers to the playbooks and health, batched
        "task": "surveys.tasks.announce_answers",
        "schedule": 5.0,
        "options": {"expires": 5},
    },
    "send-survey-reminders": {  # hourly: reminders N days after the invitation
        "task": "surveys.tasks.send_survey_reminders",
        "schedule": crontab(minute=20),
        "options": {"expires": 50 * 60},
    },
    "send-weekly-digests": {  # Monday 06:00 UTC, after the nightly pipeline
        "task": "reports.tasks.send_weekly_digests",
        "schedule": crontab(minute=0, hour=6, day_of_week=1),
        "options": {"expires": 6 * 3600},
    },
    "clear-old-form-keys": {  # daily 04:40 UTC: forms' keys older than two days
        "task": "accounts.tasks.clear_old_form_keys",
        "schedule": crontab(minute=40, hour=4),
        "options": {"expires": 20 * 60 * 60},
    },
    "send-scheduled-reports": {  # daily 06:30 UTC: the reports whose period ended yesterday
        "task": "reports.tasks.send_scheduled_reports",
        "schedule": crontab(minute=30, hour=6),
        "options": {"expires": 6 * 3600},
    },
}
