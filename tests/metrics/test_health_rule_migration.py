"""Migrations 0011-0013: each model's old scope (``applies_to_segment``,
``applies_to_lifecycle``) becomes an assignment rule of its own, the default stays the
default, and going back works while each model has one rule at most (and refuses, in words,
when not). Run through the migration executor on the test database, which is put back to
the newest state of every app afterwards."""

from __future__ import annotations

import pytest

from tests.migrating import migrate_to, to_the_latest  # noqa: F401 (a fixture)

BEFORE = [("metrics", "0010_health_model_unassigned")]
AFTER = [("metrics", "0013_health_model_scope_to_rules")]

# the schema editor cannot run inside the test's transaction on SQLite. No
# serialized_rollback: see "serialized_rollback" in tests/conftest.py
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("to_the_latest")]


@pytest.fixture
def at_0010():
    return migrate_to(BEFORE)  # to_the_latest puts the schema back afterwards


def test_each_models_scope_becomes_a_rule_and_back(at_0010):
    HealthModel = at_0010.get_model("metrics", "HealthModel")
    HealthModel.objects.create(name="Default", is_default=True)
    HealthModel.objects.create(name="Enterprise", applies_to_segment="Enterprise")
    HealthModel.objects.create(name="Onboarding", applies_to_lifecycle="onboarding")
    HealthModel.objects.create(
        name="Ent onboarding", applies_to_segment="Enterprise", applies_to_lifecycle="onboarding"
    )
    HealthModel.objects.create(name="Spare")

    apps = migrate_to(AFTER)
    Rule = apps.get_model("metrics", "HealthAssignmentRule")
    rules = sorted(Rule.objects.values_list("model__name", "segment", "lifecycle"))
    assert rules == [
        ("Ent onboarding", "Enterprise", "onboarding"),
        ("Enterprise", "Enterprise", ""),
        ("Onboarding", "", "onboarding"),
    ]
    Model = apps.get_model("metrics", "HealthModel")
    assert list(Model.objects.filter(is_default=True).values_list("name", flat=True)) == ["Default"]
    assert not {f.name for f in Model._meta.get_fields()} & {
        "applies_to_segment",
        "applies_to_lifecycle",
    }

    # back: one rule per model fits the old fields again
    apps = migrate_to(BEFORE)
    Old = apps.get_model("metrics", "HealthModel")
    scopes = dict(
        Old.objects.values_list("name", "applies_to_segment").exclude(applies_to_segment="")
    )
    assert scopes == {"Enterprise": "Enterprise", "Ent onboarding": "Enterprise"}
    assert Old.objects.get(name="Onboarding").applies_to_lifecycle == "onboarding"


def test_going_back_with_two_rules_for_a_model_is_refused_in_words(at_0010):
    HealthModel = at_0010.get_model("metrics", "HealthModel")
    HealthModel.objects.create(name="Enterprise", applies_to_segment="Enterprise")
    apps = migrate_to(AFTER)
    Rule = apps.get_model("metrics", "HealthAssignmentRule")
    model = apps.get_model("metrics", "HealthModel").objects.get(name="Enterprise")
    Rule.objects.create(model=model, segment="Strategic")
    with pytest.raises(RuntimeError, match="“Enterprise” has several rules"):
        migrate_to(BEFORE)
    # what the refusal left: the rules as they were
    apps = migrate_to(AFTER)
    Rule = apps.get_model("metrics", "HealthAssignmentRule")
    assert sorted(Rule.objects.values_list("segment", flat=True)) == ["Enterprise", "Strategic"]
