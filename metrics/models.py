"""Models of the metrics app: for now the record of each nightly pipeline run."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class PipelineRun(models.Model):
    """One run of the nightly pipeline for one ``as_of`` day: when it ran, how it ended, and
    what each step did (``steps`` is a list of ``{"name", "seconds", ...counts}`` dicts)."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    as_of = models.DateField(help_text="last complete UTC day the run is about")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    steps = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [
            # "when did the pipeline last run for this day" (admin, status page)
            models.Index(fields=["as_of", "-started_at"], name="pipeline_run_as_of_idx"),
        ]

    def __str__(self) -> str:
        return f"pipeline {self.as_of} ({self.status})"

    @property
    def duration(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()
