"""The "Health score dropped ≥ N points in D days" trigger through the real data path: it
compares the computed scores of one model version, as the queue's trends do, so neither a
model change nor an override sets it off, and an override does not hide a real drop."""

from __future__ import annotations

import datetime as dt

import pytest

from metrics import pipeline
from metrics.models import HealthModel, HealthSnapshot
from metrics.services import health_model_ensure_default, health_model_version_create
from playbooks.models import Cta
from playbooks.services import playbooks_evaluate
from tests.factories import AccountFactory, UserFactory

from .helpers import make_playbook, red_data, snapshot

pytestmark = pytest.mark.django_db
DAYS = dt.timedelta


def _new_version() -> None:
    """v2 of the default model (the first weight + 5) becomes the active version."""
    model = health_model_ensure_default()
    components = [dict(c) for c in model.versions.get(active=True).components]
    components[0]["weight"] += 5
    health_model_version_create(model=model, components=components)


def test_a_model_change_sets_nothing_off_a_drop_within_a_version_does(day, playbook_step):
    """Both accounts were green (85) a week ago and score red today, by v2: the one whose
    week-old snapshot is v1's gets no CTA (the new weights may be the whole difference),
    the one whose week-old snapshot v2 scored already gets its CTA."""
    csm = UserFactory()
    moved, dropped = AccountFactory(owner=csm), AccountFactory(owner=csm)
    snapshot(moved, day - DAYS(7), score=85, band="green")  # v1
    _new_version()
    snapshot(dropped, day - DAYS(7), score=85, band="green")  # v2
    for account in (moved, dropped):
        red_data(account, day)
    make_playbook("score_dropped", {"points": 30, "days": 7})
    run = pipeline.run_nightly(day)
    assert run["status"] == "succeeded"
    today = HealthSnapshot.objects.get(account=dropped, day=day)
    assert today.model_version.version == 2 and today.computed_score < 55  # 85 - 30
    assert list(Cta.objects.values_list("account_id", flat=True)) == [dropped.pk]
    assert HealthModel.objects.get(is_default=True).versions.count() == 2


def _override(snap: HealthSnapshot, score: float) -> None:
    """``snap`` as an override of the whole score to ``score`` left it (computed kept)."""
    snap.score = score
    snap.band = "green" if score >= 80 else "red"
    snap.overrides = [{"id": 1, "component": "", "score": score, "band": "", "reason": "QBR"}]
    snap.save()


def test_an_override_neither_sets_it_off_nor_hides_a_drop(day):
    """``hidden``: computed 85 a week ago, red data now, overridden to 90 today: the data fell
    (85 → computed today), the CTA opens and says it is the computed score. ``expired``:
    overridden to 90 a week ago on the computed score it has today, no override now: the
    score shown fell by far more than 30, the computed one by 0, no CTA."""
    csm = UserFactory()
    hidden, expired = AccountFactory(owner=csm), AccountFactory(owner=csm)
    snapshot(hidden, day - DAYS(7), score=85, band="green")
    for account in (hidden, expired):
        red_data(account, day)
    pipeline.run_nightly(day)  # today's snapshots, no playbook yet
    now = HealthSnapshot.objects.get(account=expired, day=day).computed_score
    assert now < 60  # 90 - 30: the score shown dropped by at least 30
    back = snapshot(expired, day - DAYS(7), score=now, band="red")
    _override(back, 90.0)
    _override(HealthSnapshot.objects.get(account=hidden, day=day), 90.0)
    make_playbook("score_dropped", {"points": 30, "days": 7})
    playbooks_evaluate(as_of=day)
    cta = Cta.objects.get()
    computed = HealthSnapshot.objects.get(account=hidden, day=day).computed_score
    assert cta.account == hidden and computed <= 55  # 85 - 30
    assert f"computed health 85 → {computed:.0f} between" in cta.evidence, cta.evidence
