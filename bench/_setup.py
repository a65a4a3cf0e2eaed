"""Shared by the bench scripts: run from the repository root with the project's venv.

Every script reads the same environment as ``manage.py`` (``DATABASE_URL``,
``DJANGO_SECRET_KEY``); the numbers in docs/benchmarks.md were taken on PostgreSQL."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / "data"  # generated files, git-ignored
OUT = ROOT / "bench" / "out"  # logs and results, git-ignored


def django_setup() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
