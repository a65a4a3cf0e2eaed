"""First answers recorded together: the public page's lean path (``surveys.answer_wsgi``)
hands each answer, with its rate limits, to ``answers.record`` and waits; a thread of the
process (one per gunicorn worker) takes every answer waiting, counts their rate limits in
one round trip to Redis (``ratelimit.allow_each``) and records those allowed with ONE
statement and one commit (``services.first_answers_only``), then wakes each request with
its own outcome.

When answers arrive one at a time, each is a batch of one, recorded as soon as it arrives.
When a campaign's answers arrive by the hundred a second, those that came while a batch was
being written make the next batch: the statement's planning, execution start and commit,
and psycopg's work, are paid once per batch instead of once per answer
(bench/survey_post_cost.py: about a third of the database's CPU and a quarter of the
worker's per answer in batches of eight). Nothing waits on a timer.

A request gets its redirect only after its batch committed, as it would after its own
statement: an answer is never acknowledged before it is durable. Anything the batch did not
record (not a first answer, a link closed, two answers to one link, the batch failing whole
because another first answer to one of its links committed meanwhile, the database away)
comes back False and that request goes Django's way (``services.response_record``), which
records a changed answer or renders the error, exactly as without batching. Two answers to
the same link never share a batch: the second waits for the next one.

The thread has its own database connection, kept across batches and checked before each as
a request's is (``close_if_unusable_or_obsolete``); ``answers.stop()`` ends the thread and
closes it (the tests do, before the test database is dropped)."""

from __future__ import annotations

import logging
import os
import threading
import time

from django.db import connection
from django.utils import timezone

from accounts import ratelimit

from . import services

logger = logging.getLogger(__name__)

LIMIT = 64  # answers per statement at most; the rest wait for the next batch


class _Answer:
    __slots__ = ("answer", "checks", "done", "allowed", "recorded")

    def __init__(self, answer: tuple, checks: list):
        self.answer, self.checks = answer, checks
        self.done = threading.Event()
        self.allowed: bool | None = None  # None: not counted
        self.recorded = False


class Batcher:
    """Answers waiting for the batch thread, and that thread (started by the first answer
    in each process, so a forked worker starts its own)."""

    def __init__(self, limit: int = LIMIT):
        self.limit = limit
        self._reset()

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._waiting: list[_Answer] = []
        self._thread: threading.Thread | None = None
        self._stopping = False

    def record(
        self, token: str, score: str, comment: str, checks: list[tuple[str, int, int]]
    ) -> tuple[bool | None, bool]:
        """Count the hit on the rate limits ``checks`` (``ratelimit.allow_all``'s) and, if
        they allow it, record this first answer, answered now, in the next batch. Returns
        the rate limits' verdict (None: not counted) and whether the answer was recorded,
        once committed (False: go Django's way)."""
        answer = _Answer((token, score, comment, timezone.now()), checks)
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="survey-answer-batches", daemon=True
                )
                self._thread.start()
            self._waiting.append(answer)
            self._arrived.notify()
        answer.done.wait()
        return answer.allowed, answer.recorded

    def stop(self, timeout: float = 30) -> None:
        """End the thread after the answers waiting now, and close its connection."""
        with self._lock:
            thread, self._stopping = self._thread, True
            self._arrived.notify()
        if thread is not None:
            thread.join(timeout)
        with self._lock:
            self._stopping = False
            if self._thread is thread:
                self._thread = None

    def _run(self) -> None:
        try:
            while True:
                with self._lock:
                    while not self._waiting and not self._stopping:
                        self._arrived.wait()
                    if not self._waiting:
                        return
                    batch = self._take()
                self._record(batch)
        finally:
            connection.close()  # this thread's own

    def _take(self) -> list[_Answer]:
        """Up to ``limit`` waiting answers, in arrival order, no two to the same link."""
        batch, later, tokens = [], [], set()
        for answer in self._waiting:
            token = answer.answer[0]
            if len(batch) < self.limit and token not in tokens:
                tokens.add(token)
                batch.append(answer)
            else:
                later.append(answer)
        self._waiting = later
        return batch

    def _record(self, batch: list[_Answer]) -> None:
        try:
            verdicts = ratelimit.allow_each([answer.checks for answer in batch])
            for answer, allowed in zip(batch, verdicts, strict=True):
                answer.allowed = allowed
            allowed = [answer for answer in batch if answer.allowed]
            connection.close_if_unusable_or_obsolete()  # as at a request's start
            recorded = services.first_answers_only([answer.answer for answer in allowed])
            for answer, done in zip(allowed, recorded, strict=True):
                answer.recorded = done
        except Exception:  # each request then goes Django's way, which reports its own error
            logger.exception("%d survey answers not recorded in a batch", len(batch))
            time.sleep(0.01)  # a failing database: not a busy loop over the next batches
        finally:
            for answer in batch:
                answer.done.set()


answers = Batcher()

# a process forked while a batch ran has the lock and waiting answers of a thread it does
# not have: it starts afresh
os.register_at_fork(after_in_child=answers._reset)
