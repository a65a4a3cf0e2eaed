"""Score every text, record today's account voice scores and north-star weeks, and (with
--themes) compute the themes now. Thin: see voice.services. For operators and ``make run``."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandParser

from accounts import utc
from accounts.days import day_option
from voice import services


class Command(BaseCommand):
    help = "Score the customers' texts, record sentiment and relationship scores, north star."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--as-of", default=None, metavar="YYYY-MM-DD", help="default: today (UTC)"
        )
        parser.add_argument("--themes", action="store_true", help="also compute the themes")

    def handle(self, *args, **opts) -> None:
        as_of = day_option(opts["as_of"], "--as-of") or utc.today()  # 1900..2999
        result = {
            "texts": services.text_sentiments_refresh(),
            "scores": services.voice_scores_record(as_of=as_of),
            "north_star": services.north_star_weeks_record(as_of=as_of),
        }
        if opts["themes"]:
            run = services.theme_run_start(as_of=as_of)
            if run is None:
                result["themes"] = "a themes run is already running"
            else:
                run = services.themes_compute(run=run)
                result["themes"] = {
                    "texts": run.texts,
                    "themes": run.themes,
                    "seconds": run.seconds,
                }
        self.stdout.write(json.dumps(result, indent=2))
