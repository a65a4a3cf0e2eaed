"""Load a believable demo book of customers (deterministic for a seed). Thin: see accounts.demo."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts import demo
from accounts.days import day_option
from accounts.models import Account, TimelineEntry

SURVEY_BOOK_MAX = 1000  # above: the benchmark books, which keep their own shape


class Command(BaseCommand):
    help = (
        "Create demo users and a deterministic demo book: accounts, contracts, stakeholders, "
        "tickets, invoices and usage events, loaded through the import path; survey campaigns "
        "with answers recorded as the survey page records them."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--accounts", type=int, default=200, help="number of accounts")
        parser.add_argument("--days", type=int, default=400, help="days of history (usage)")
        parser.add_argument("--seed", type=int, default=1, help="same seed, same book")
        parser.add_argument(
            "--if-empty", action="store_true", help="do nothing when accounts already exist"
        )
        parser.add_argument(
            "--events-per-day-scale",
            type=float,
            default=1.0,
            help="multiplies the usage event volume (1.0: ~2,300 events per account per 400 days)",
        )
        parser.add_argument(
            "--surveys",
            choices=("auto", "yes", "no"),
            default="auto",
            help="survey campaigns with answers (auto: for books of at most "
            f"{SURVEY_BOOK_MAX:,} accounts; each answer goes through the recording service)",
        )
        parser.add_argument(
            "--health-weeks",
            type=int,
            default=0,
            metavar="N",
            help="also record the health snapshots of N days a week apart before yesterday "
            "(the account page's chart, what changed in a week, the backtest); default 0",
        )
        parser.add_argument(
            "--kpi-months",
            type=int,
            default=0,
            metavar="N",
            help="also record the KPI snapshots of the N months before yesterday's (the "
            "dashboard's comparison with the month before, and earlier periods); default 0",
        )
        parser.add_argument("--today", default=None, metavar="YYYY-MM-DD", help="pin the calendar")

    def handle(self, *args, **opts) -> None:
        opts["today"] = day_option(opts["today"], "--today")
        if opts["accounts"] < 1 or opts["days"] < 30:
            raise CommandError("--accounts must be at least 1 and --days at least 30")
        if opts["events_per_day_scale"] < 0:
            raise CommandError("--events-per-day-scale must not be negative")
        if opts["health_weeks"] < 0:
            raise CommandError("--health-weeks must not be negative")
        if opts["kpi_months"] < 0:
            raise CommandError("--kpi-months must not be negative")
        if opts["if_empty"] and Account.objects.exists():
            self.stdout.write("Accounts already exist: demo data not loaded (--if-empty).")
            return
        cfg = demo.DemoConfig(
            accounts=opts["accounts"],
            days=opts["days"],
            seed=opts["seed"],
            events_scale=opts["events_per_day_scale"],
            today=opts["today"],
        )
        verbose = opts["verbosity"] >= 1
        summary = demo.seed_demo(cfg, progress=self.stdout.write if verbose else None)
        surveys = None
        if opts["surveys"] == "yes" or (
            opts["surveys"] == "auto" and cfg.accounts <= SURVEY_BOOK_MAX
        ):
            # the surveys app sits above this one: the command (an interface) composes them
            from surveys.demo import demo_surveys_seed

            surveys = demo_surveys_seed(cfg)
            summary.counts["timeline entries"] = TimelineEntry.objects.count()
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo data loaded in {summary.seconds:.1f}s: {summary.accounts:,} accounts, "
                f"{summary.contracts:,} contracts, {summary.stakeholders:,} stakeholders, "
                f"{summary.tickets:,} tickets, {summary.invoices:,} invoices, "
                f"{summary.events:,} events generated"
                + (
                    f", {surveys.invitations:,} survey invitations, {surveys.answers:,} answers."
                    if surveys
                    else "."
                )
            )
        )
        self._key_features_note()
        if opts["health_weeks"]:
            # metrics sits above this app: the command (an interface) composes them
            from metrics.services import health_weekly_history

            days = health_weekly_history(
                as_of=cfg.end - timedelta(days=1), weeks=opts["health_weeks"]
            )
            summary.counts["health snapshots"] = sum(day["accounts"] for day in days)
            self.stdout.write(
                f"Health history: snapshots of {len(days)} days a week apart, "
                f"{days[0]['day']} to {days[-1]['day']}."
            )
        if opts["kpi_months"]:
            from metrics.services import kpi_monthly_history

            months = kpi_monthly_history(
                as_of=cfg.end - timedelta(days=1), months=opts["kpi_months"]
            )
            self.stdout.write(
                f"KPI history: snapshots of the {len(months)} months before, "
                f"{months[0]['day']} to {months[-1]['day']}."
            )
        self.stdout.write("In the database now:")
        for name, count in summary.counts.items():
            self.stdout.write(f"  {name:<17} {count:>12,}")

    def _key_features_note(self) -> None:
        """Key features are a setting (``KEY_FEATURES``, read from the environment), which a
        command cannot choose for the processes after it: ``make run`` sets the demo's
        (``demo.DEMO_KEY_FEATURES``) for all of its commands; anyone else is told how."""
        chosen = list(settings.KEY_FEATURES)
        if chosen:
            self.stdout.write(f"Key features: {', '.join(chosen)} (KEY_FEATURES).")
            return
        self.stdout.write(
            self.style.WARNING(
                "No key features chosen: health's feature adoption has no data. For the demo "
                f"book set KEY_FEATURES={','.join(demo.DEMO_KEY_FEATURES)} for this command, "
                "run_pipeline and the server (make run does)."
            )
        )
