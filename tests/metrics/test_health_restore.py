"""Restoring an earlier health model version (``services.health_model_version_restore``): a
new version copying it becomes the one active version; the rows before stay as they were,
with their snapshots; bad input writes nothing."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from metrics import services
from metrics.models import HealthModel, HealthModelVersion, HealthSnapshot
from tests.factories import AccountFactory, health_model_with_rule

pytestmark = pytest.mark.django_db


def _reweighted(version: HealthModelVersion, **weights) -> list[dict]:
    return [{**c, "weight": weights.get(c["key"], c["weight"])} for c in version.components]


@pytest.fixture
def three(admin_user):
    """Default v1 (as seeded), v2 (usage 50, bands 70/40) and v3 (usage 10), v3 active."""
    model = services.health_model_ensure_default()
    v1 = model.versions.get(version=1)
    v2 = services.health_model_version_create(
        model=model,
        components=_reweighted(v1, usage=50),
        green_min=70,
        yellow_min=40,
        created_by=admin_user,
        notes="usage matters more",
    )
    v3 = services.health_model_version_create(
        model=model, components=_reweighted(v1, usage=10), created_by=admin_user, notes="less"
    )
    return model, v1, v2, v3


def _state(model: HealthModel) -> list[tuple]:
    return list(
        model.versions.order_by("version").values_list(
            "version", "active", "notes", "green_min", "yellow_min", "restored_from"
        )
    )


def test_restore_copies_the_version_and_moves_the_active_flag(three, manager):
    model, v1, v2, v3 = three
    new = services.health_model_version_restore(
        model=model, version_id=v2.pk, restored_by=manager, notes="  v3 flagged too few  "
    )
    assert new.version == 4 and new.active
    assert new.restored_from == v2 and new.created_by == manager
    assert new.notes == "restored from v2: v3 flagged too few"
    assert new.components == v2.components
    assert (new.green_min, new.yellow_min) == (70, 40)
    # exactly one active version, the new one; the earlier rows are as they were
    assert list(model.versions.filter(active=True)) == [new]
    assert _state(model)[:3] == [
        (1, False, "the default model of docs/metrics.md", 80, 50, None),
        (2, False, "usage matters more", 70, 40, None),
        (3, False, "less", 80, 50, None),
    ]
    v2.refresh_from_db()
    assert v2.created_by is not None and v2.created_by != manager  # its author is kept
    # the scoring picks the restored rules up
    account = AccountFactory()
    assert services.health_model_for(account) == new


def test_snapshots_keep_the_version_that_made_them(three):
    model, v1, v2, v3 = three
    account = AccountFactory()
    day = dt.date(2024, 5, 1)
    services.health_snapshots_record(as_of=day)
    before = HealthSnapshot.objects.get(account=account, day=day)
    assert before.model_version == v3
    new = services.health_model_version_restore(model=model, version_id=v1.pk)
    assert HealthSnapshot.objects.get(account=account, day=day).model_version == v3
    # rescoring the day is what moves it to the restored version
    services.health_recompute(start=day, end=day)
    assert HealthSnapshot.objects.get(account=account, day=day).model_version == new


def test_restoring_the_same_rules_again_is_refused(three):
    """A second click on Restore makes no second copy: v4 already has v1's rules. Another
    version in between, and v1 can be restored again (v6, a copy of v1 like v4)."""
    model, v1, v2, _v3 = three
    first = services.health_model_version_restore(model=model, version_id=v1.pk)
    with pytest.raises(ValidationError, match="same components, weights and bands as Default v4"):
        services.health_model_version_restore(model=model, version_id=v1.pk)
    assert model.versions.count() == 4 and model.versions.get(active=True) == first
    services.health_model_version_restore(model=model, version_id=v2.pk)
    again = services.health_model_version_restore(model=model, version_id=v1.pk)
    assert again.version == 6 and again.restored_from == v1 and again.components == v1.components


@pytest.mark.parametrize(
    ("which", "message"),
    [
        ("none", "No version chosen: nothing restored."),
        ("unknown", "No version has id 999999: nothing restored."),
        ("other_model", "Enterprise v1 is a version of Enterprise, not of Default: nothing"),
        ("active", "Default v3 is already the active version: nothing to restore."),
    ],
)
def test_bad_input_is_refused_and_writes_nothing(three, which, message):
    model, v1, _v2, v3 = three
    other = services.health_model_version_create(
        model=health_model_with_rule("Enterprise", segment="ENT"),
        components=v1.components,
    )
    version_id = {"none": None, "unknown": 999999, "other_model": other.pk, "active": v3.pk}
    before = _state(model), _state(other.model)
    with pytest.raises(ValidationError) as exc:
        services.health_model_version_restore(model=model, version_id=version_id[which])
    assert list(exc.value.message_dict) == ["version"]
    assert message in exc.value.messages[0]
    assert (_state(model), _state(other.model)) == before
    assert HealthModelVersion.objects.filter(active=True).count() == 2  # one per model


def _stored_with_twin_names(model: HealthModel) -> HealthModelVersion:
    """A version row written straight to the table, as one stored before the rule of one name
    per component: v1's components with support labelled "usage" (v1's usage is "Usage")
    and relationship labelled "Payments " (a trailing space), like payments."""
    v1 = model.versions.get(version=1)
    labels = {"support": "usage", "relationship": "Payments "}
    components = [{**c, "label": labels.get(c["key"], c["label"])} for c in v1.components]
    return HealthModelVersion.objects.create(
        model=model, version=9, components=components, active=False, notes="before the rule"
    )


def test_a_stored_version_with_two_components_of_one_name_is_not_restored(three):
    model, v1, _v2, _v3 = three
    old = _stored_with_twin_names(model)
    labels = [c["label"] for c in old.components]
    # the default model's order: usage, feature adoption, support, payments, sentiment,
    # relationship: support is component 3, relationship component 6
    assert labels[0] == "Usage" and labels[2] == "usage"
    assert labels[3] == "Payments" and labels[5] == "Payments "
    before = _state(model)
    with pytest.raises(ValidationError) as exc:
        services.health_model_version_restore(model=model, version_id=old.pk)
    assert exc.value.message_dict == {
        "version": [
            "Default v9 breaks today's rules for a model, so it cannot be restored: "
            "component 3 is named “usage” like component 1: give each its own name; "
            "component 6 is named “Payments” like component 4: give each its own name. "
            "Nothing restored."
        ]
    }
    assert _state(model) == before  # nothing written, v3 still active
    # the confirmation step refuses it the same way, before anything is offered
    with pytest.raises(ValidationError, match="component 3 is named “usage” like component 1"):
        services.health_model_version_restorable(model=model, version_id=old.pk)
    # saving such components as a new version is refused with the same words
    with pytest.raises(ValidationError) as exc:
        services.health_model_version_create(model=model, components=old.components)
    assert exc.value.message_dict["components"][0] == (
        "component 3 is named “usage” like component 1: give each its own name"
    )
    assert _state(model) == before
