"""The day-taking commands of issue 3 (recompute, backtest, run_pipeline) refuse an option
given twice, as the kpis command and the API do: argparse alone keeps the last value
without a word, so ``recompute --from A --from B`` rescored from B."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from metrics.models import HealthSnapshot, PipelineRun
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("command", "args", "message"),
    [
        (
            "recompute",
            ["--from", "2026-01-01", "--from", "2026-01-02", "--to", "2026-01-03"],
            "--from: given 2 times (“2026-01-01”, “2026-01-02”): give it once",
        ),
        (
            "recompute",
            ["--from", "2026-01-01", "--to", "2026-01-02", "--to", "2026-01-03"],
            "--to: given 2 times (“2026-01-02”, “2026-01-03”): give it once",
        ),
        (
            "recompute",
            ["--from", "2026-01-01", "--to", "2026-01-02", "--chunk-size", "5"]
            + ["--chunk-size", "7"],
            "--chunk-size: given 2 times (“5”, “7”): give it once",
        ),
        (
            "backtest",
            ["--as-of", "2026-01-01", "--as-of", "2026-02-01"],
            "--as-of: given 2 times (“2026-01-01”, “2026-02-01”): give it once",
        ),
        (
            "backtest",
            ["--as-of", "2026-01-01", "--horizon", "30", "--horizon", "90"],
            "--horizon: given 2 times (“30”, “90”): give it once",
        ),
        (
            "backtest",
            ["--as-of", "2026-01-01", "--model-version", "1", "--model-version", "2"],
            "--model-version: given 2 times (“1”, “2”): give it once",
        ),
        (
            "run_pipeline",
            ["--as-of", "2026-01-01", "--date", "2026-01-02"],
            "--as-of/--date: given 2 times (“2026-01-01”, “2026-01-02”): give it once",
        ),
    ],
)
def test_an_option_given_twice_is_refused_and_nothing_runs(command, args, message):
    AccountFactory()
    with pytest.raises(CommandError) as caught:
        call_command(command, *args, stdout=io.StringIO())
    assert str(caught.value) == message
    assert not HealthSnapshot.objects.exists()  # nothing scored
    assert not PipelineRun.objects.exists()  # nothing run


def test_options_given_once_or_by_keyword_still_work():
    """One value on the command line, or a keyword value (call_command's, not a list)."""
    AccountFactory()
    out = io.StringIO()
    call_command("recompute", "--from", "2026-01-05", "--to", "2026-01-05", stdout=out)
    call_command("recompute", start="2026-01-06", end="2026-01-06", chunk_size=10, stdout=out)
    # one account, one snapshot per day: the 5th and the 6th
    assert HealthSnapshot.objects.count() == 2
    call_command("backtest", as_of="2026-01-06", horizon=30, stdout=out)
    call_command("backtest", "--as-of", "2026-01-06", "--horizon", "30", stdout=out)
    assert "AUC" in out.getvalue()
