"""python manage.py backtest [--as-of YYYY-MM-DD] [--horizon 90] [--model-version ID] [--partial]
[--json]: the health score's predictive check (docs/metrics.md): ROC AUC of 100 − score for
logo churn within the horizon (1 to 730 days), churn per band (%), the green accounts that
churned and suggested weights. A window that ends after today is refused unless --partial,
which observes it up to today and says so (``complete``, ``observed_until``,
``observed_days``). Without --as-of: the latest day with health snapshots a whole horizon
before the latest snapshot day (``services.health_backtest_day``), named on the first line
(``day_chosen`` in the JSON); an --as-of without snapshots is refused with the nearest
days that have them."""

from __future__ import annotations

import argparse
import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from metrics import services
from metrics.management.arguments import ONCE, day_option, once
from metrics.models import HealthModelVersion


def _whole(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of days, got {raw!r}") from None


def _pct(value) -> str:
    """A percentage (the bands' churn_rate) to one decimal, as the UI rounds every rate."""
    return "n/a" if value is None else f"{value:.1f}%"


class Command(BaseCommand):
    help = "Backtest the health score: AUC for logo churn within --horizon days of --as-of."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--as-of",
            dest="as_of",
            metavar="YYYY-MM-DD",
            help="default: the latest day with health snapshots a whole horizon before the "
            "latest snapshot day",
            **ONCE,
        )
        parser.add_argument(
            "--horizon",
            type=_whole,
            help=f"days, 1 to {services.BACKTEST_MAX_HORIZON} (default 90)",
            **ONCE,
        )
        parser.add_argument(
            "--partial",
            action="store_true",
            help="for a window that ends after today: count the churn observed up to today "
            "(labelled; no weights suggested) instead of refusing",
        )
        parser.add_argument(
            "--model-version",
            type=int,
            metavar="ID",
            help="only the customers of this version's model; weights suggested for it",
            **ONCE,
        )
        parser.add_argument("--json", action="store_true", help="print the result as JSON")

    def handle(self, *args, as_of, horizon, model_version, partial, **options) -> None:
        as_of = once(as_of, "--as-of")
        as_of = None if as_of is None else day_option(as_of, "--as-of")
        horizon = once(horizon, "--horizon", default=90)
        model_version = once(model_version, "--model-version")
        version = None
        if model_version is not None:
            version = (
                HealthModelVersion.objects.select_related("model").filter(pk=model_version).first()
            )
            if version is None:
                raise CommandError(f"--model-version {model_version}: no such health model version")
        try:
            as_of, chosen = services.health_backtest_day(
                as_of=as_of, horizon=horizon, partial=partial
            )
            result = services.health_backtest(
                as_of=as_of, horizon=horizon, version=version, partial=partial
            )
        except ValidationError as exc:
            raise CommandError(
                "; ".join(
                    f"--{field.replace('_', '-')}: "
                    + ", ".join(
                        e.message + (" (--partial)" if e.code == "incomplete_window" else "")
                        for e in errors
                    )
                    for field, errors in exc.error_dict.items()
                )
            ) from None
        if options["json"]:
            self.stdout.write(json.dumps({**result, "day_chosen": chosen or None}, indent=2))
            return
        out = self.stdout.write
        if chosen:
            out(f"Default day: {chosen}")
        scope = f" ({result['model']})" if result["model"] else ""
        complete = result["complete"]
        if complete:
            out(
                f"Backtest{scope} as of {result['as_of']}, churn by {result['window_end']} "
                f"({result['horizon']} days)"
            )
        else:
            out(
                f"Backtest{scope} as of {result['as_of']}, churn observed by "
                f"{result['observed_until']} ({result['observed_days']} of {result['horizon']} "
                f"days; the window ends on {result['window_end']})"
            )
            # first, before any figure: only part of this window is known
            out(f"!! {result['messages'][0]}")
        for gap in result["data_gaps"]:
            out(f"!! {gap['message']}")
        out(
            f"customers: {result['customers']}, scored: {result['scored']}, "
            f"churned: {result['churned']}"
        )
        auc = result["auc"]
        out(f"AUC: {'n/a' if auc is None else f'{auc:.3f}'}")
        for band in result["bands"]:
            out(
                f"  {band['band']:8} {band['accounts']:6} accounts, {band['churned']:5} churned "
                f"({_pct(band['churn_rate'])})"
            )
        if result["green_churned"]:
            out(
                "Green accounts that churned:"
                if complete
                else f"Green accounts that churned by {result['observed_until']} "
                "(the window is not over):"
            )
            for row in result["green_churned"]:
                out(f"  {row['external_id']}  {row['name']}  score {row['score']}")
        suggestion = result["suggestion"]
        if suggestion:
            out(f"Suggested weights for {suggestion['model_version']}:")
            for key, weight in suggestion["weights"].items():
                out(f"  {key:20} {suggestion['current_weights'].get(key)!s:>6} -> {weight}")
            cur, new = suggestion["current_auc"], suggestion["auc"]
            # the same figure as the headline "AUC:" unless the suggestion says why not
            why = "; ".join(suggestion.get("current_differs") or ())
            out(
                f"  AUC current {'n/a' if cur is None else f'{cur:.3f}'}"
                + (f" (not the AUC above: {why})" if why else "")
                + f", suggested {'n/a' if new is None else f'{new:.3f}'}"
            )
        for message in result["messages"][0 if complete else 1 :]:
            out(f"Note: {message}")
