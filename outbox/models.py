"""The outbox: every email and webhook call that leaves the machine is a row here first.

Why a table and not a direct send: the code that decides to send (a playbook opening a CTA,
a survey campaign) runs in Celery tasks that may run twice (``acks_late``) or die halfway.
Writing the message under a natural ``key`` in the same transaction as the fact that caused
it makes the decision idempotent; delivery claims the row by a conditional UPDATE, so two
workers never send the same row, and failures are retried a bounded number of times with
backoff, then left visible as ``failed``."""

from __future__ import annotations

from django.db import models


class Message(models.Model):
    """One email or webhook call, from the decision to send until it is sent or given up."""

    class Kind(models.TextChoices):
        EMAIL = "email", "Email"
        WEBHOOK = "webhook", "Webhook"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"  # waiting for its (next) attempt at next_attempt_at
        SENDING = "sending", "Sending"  # claimed by a worker until claimed_until
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"  # gave up after max_attempts; last_error says why

    key = models.CharField(
        max_length=200, unique=True, help_text="Names the fact that caused the message."
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    source = models.CharField(
        max_length=100, blank=True, help_text='Who asked for it, e.g. "playbook:7".'
    )
    payload = models.JSONField(help_text="email: to, subject, text, html; webhook: url, body.")
    secret = models.CharField(max_length=200, blank=True, help_text="Webhook signing secret.")
    attempts = models.PositiveSmallIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField(default=5)
    next_attempt_at = models.DateTimeField()
    claimed_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind__in=["email", "webhook"]), name="outbox_kind_known"
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=["pending", "sending", "sent", "failed"]),
                name="outbox_status_known",
            ),
        ]
        indexes = [
            # the sweeper: messages due for an attempt, or whose claim ran out
            models.Index(fields=["status", "next_attempt_at"], name="outbox_due_idx"),
            # a page showing one source's failures ("playbook:7")
            models.Index(fields=["source", "status"], name="outbox_source_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.key} ({self.status})"


class DeferredTask(models.Model):
    """A Celery task call that could not reach the broker (Redis down): kept here, in the
    database the request could still write, and sent by the sweeper once the broker is back.
    Nothing a user did is lost because the queue was away."""

    name = models.CharField(max_length=200, help_text="The task's registered name.")
    args = models.JSONField(default=list)
    kwargs = models.JSONField(default=dict)
    attempts = models.PositiveSmallIntegerField(default=1)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.name}{tuple(self.args)}"
