"""python manage.py recompute --from YYYY-MM-DD --to YYYY-MM-DD [--account ID ...]
[--chunk-size N] [--wait [MINUTES]]: rescore health with the health models active now (e.g.
after a model change), as the Manage page's rescore does (``metrics.services.health_rescore``): the
daily snapshots of each day of the range, each with only the data up to that day, then
every snapshot dated after --to (the latest ones, which the queue reads), then the
standings of the accounts rescored (the queue and the account header read them). Prints a
line per day, and before the later days how many there are. --to must be a complete day
(before today, UTC, as run_pipeline's --date); the range starts no earlier than the first
day any account has data (``services.health_rescore_range``, read once, by the service).
One writer of the snapshots at a time: while the night's run or another rescore holds the
pipeline, it is refused at once, or with --wait waits for it (up to MINUTES, 60 by
default), saying so, and starts when it ends."""

from __future__ import annotations

import argparse
import datetime as dt

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts import utc
from metrics import pipeline, services
from metrics.management.arguments import ONCE, day_option, once

MAX_DAYS = 3660  # ten years of days in one call
WAIT_MINUTES = 60  # --wait without a number


def _whole(expected: str):
    """An argparse type: a whole number >= 1, else the error says what was ``expected``."""

    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            value = 0
        if value < 1:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {raw!r}")
        return value

    return parse


_positive = _whole("a whole number >= 1")
_account_id = _whole("an account id (a whole number)")


FLAGS = {"account_ids": "--account", "to": "--to"}


def _words(exc: ValidationError) -> str:
    """A service's ValidationError in words naming the flag: "--account: no account …"."""
    if not hasattr(exc, "error_dict"):
        return "; ".join(exc.messages)
    return "; ".join(
        f"{FLAGS.get(field, field)}: {message}"
        for field, messages in exc.message_dict.items()
        for message in messages
    )


class Command(BaseCommand):
    help = (
        "Rescore health with the models active now: the snapshots of every day from --from "
        "to --to (both included; --to a complete day, before today in UTC), then every "
        "snapshot dated after --to, also with the current model (each account's latest, "
        "which the queue reads: with an old --to, that is every later day of history; the "
        "command says how many before it starts them), then the standings of the accounts "
        "rescored, as the Manage page's rescore does. A range starting before the first "
        "day any account has data starts on that day; one ending before it is refused."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--from", dest="start", required=True, metavar="YYYY-MM-DD", **ONCE)
        parser.add_argument("--to", dest="end", required=True, metavar="YYYY-MM-DD", **ONCE)
        parser.add_argument(
            "--account",
            dest="accounts",
            type=_account_id,
            action="append",
            default=None,
            metavar="ID",
            help="rescore only this account (repeat for more; default: every account)",
        )
        parser.add_argument(
            "--chunk-size",
            type=_positive,
            help=f"accounts per set of queries (default {services.CHUNK_SIZE})",
            **ONCE,
        )
        parser.add_argument(
            "--wait",
            nargs="?",
            const=WAIT_MINUTES,
            type=_positive,
            metavar="MINUTES",
            help=(
                "while the night's run or another rescore holds the pipeline, wait for it to "
                f"end (up to MINUTES, default {WAIT_MINUTES}) and then start, instead of "
                "refusing at once"
            ),
            **ONCE,
        )

    def handle(
        self,
        *args,
        start: str,
        end: str,
        accounts: list[int] | None,
        chunk_size: int,
        wait: int | None,
        **options,
    ) -> None:
        start = day_option(once(start, "--from"), "--from")
        end = day_option(once(end, "--to"), "--to")
        chunk_size = once(chunk_size, "--chunk-size", default=services.CHUNK_SIZE)
        wait = once(wait, "--wait", default=0)
        if end < start:
            raise CommandError(f"--to {end} is before --from {start}")
        if why := utc.incomplete_day_words(end):  # run_pipeline's words and rule
            raise CommandError(f"--to {why}")
        if (end - start).days + 1 > MAX_DAYS:
            raise CommandError(f"at most {MAX_DAYS} days per run, got {(end - start).days + 1}")

        def starting(first: dt.date) -> None:  # the range checked by the service, once
            if first > start:
                self.stdout.write(
                    f"No account has data before {first}: recomputing from {first}, not {start}."
                )

        def report(day: dict) -> None:
            self.stdout.write(
                f"{day['day']}: {day['accounts']} accounts: {day['green']} green, "
                f"{day['yellow']} yellow, {day['red']} red, {day['no_data']} without data"
                + (f", {day['no_model']} without a model" if day["no_model"] else "")
                + f"; {day['written']} new or changed"
            )

        def starting_later(later: dict) -> None:
            self.stdout.write(
                f"Rescoring the snapshots of {later['days']} later day(s), {later['first']} "
                f"to {later['last']} ({later['snapshots']} snapshots), with the models active "
                "now."
            )

        def waiting(words: str) -> None:
            self.stdout.write(
                f"Waiting: {words}. Trying again every {pipeline.WAIT_POLL_SECONDS} s for up "
                f"to {wait} minute(s) (--wait); nothing is rescored until then."
            )

        try:
            # one writer of the snapshots at a time (the night's run, another recompute, the
            # Manage page's rescore): refused at once while one of them holds the lock, or,
            # with --wait, started when it ends
            with pipeline.exclusive_when_free(timeout=wait * 60, waiting=waiting) as superseded:
                if wait:
                    self.stdout.write("The pipeline is free: rescoring.")
                for words in superseded:  # a fanned-out run that showed no life for long
                    self.stdout.write(words)
                result = services.health_rescore(
                    start=start,
                    end=end,
                    account_ids=accounts,
                    chunk_size=chunk_size,
                    progress=report,
                    starting=starting,
                    starting_later=starting_later,
                )
        except pipeline.PipelineBusy as exc:
            if wait:
                raise CommandError(
                    f"still busy after waiting {wait} minute(s) (--wait): {exc}; nothing rescored"
                ) from None
            raise CommandError(
                f"{exc}; or run recompute with --wait to start when it ends"
            ) from None
        except ValidationError as exc:
            raise CommandError(_words(exc)) from exc
        days, later = result["days"], result["later"]
        total = sum(d["accounts"] for d in days)
        written = sum(d["written"] for d in days)
        self.stdout.write(
            f"Recomputed health for {len(days)} day(s), {result['start']} to {end}: "
            f"{total} snapshots, {written} of them new or changed."
        )
        if later:
            self.stdout.write(
                f"Rescored the snapshots of {len(later)} later day(s), {later[0]['day']} to "
                f"{later[-1]['day']}: {sum(d['accounts'] for d in later)} snapshots, "
                f"{sum(d['written'] for d in later)} of them changed."
            )
        self.stdout.write(
            f"Refreshed the standings of {result['standings']['accounts']} account(s) from "
            "their latest snapshot."
        )
