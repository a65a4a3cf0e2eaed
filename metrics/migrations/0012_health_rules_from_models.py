"""Moves each model's scope (``applies_to_segment``, ``applies_to_lifecycle``) into a
``HealthAssignmentRule`` of its own; 0013 then drops those fields. The default model keeps
``is_default``. Backwards works while each model has at most one rule and the default none
(the old fields hold one scope per model); otherwise it stops and says which model."""

from django.db import migrations


def rules_from_models(apps, schema_editor):
    HealthModel = apps.get_model("metrics", "HealthModel")
    HealthAssignmentRule = apps.get_model("metrics", "HealthAssignmentRule")
    scoped = (
        HealthModel.objects.filter(is_default=False)
        .exclude(applies_to_segment="", applies_to_lifecycle="")
        .order_by("pk")
    )
    HealthAssignmentRule.objects.bulk_create(
        HealthAssignmentRule(
            model_id=m.pk,
            segment=m.applies_to_segment,
            lifecycle=m.applies_to_lifecycle,
            created_at=m.created_at,
        )
        for m in scoped
    )


def models_from_rules(apps, schema_editor):
    HealthModel = apps.get_model("metrics", "HealthModel")
    HealthAssignmentRule = apps.get_model("metrics", "HealthAssignmentRule")
    rules = list(HealthAssignmentRule.objects.select_related("model").order_by("model_id", "pk"))
    seen: set[int] = set()
    for rule in rules:
        if rule.model_id in seen or rule.model.is_default:
            raise RuntimeError(
                f"cannot go back before metrics 0012: health model “{rule.model.name}” "
                f"{'is the default and has rules' if rule.model.is_default else 'has several rules'}, "
                "and the old fields hold one scope per model; remove rules until each "
                "model has at most one (and the default none), then migrate back"
            )
        seen.add(rule.model_id)
    for rule in rules:
        HealthModel.objects.filter(pk=rule.model_id).update(
            applies_to_segment=rule.segment, applies_to_lifecycle=rule.lifecycle
        )
    HealthAssignmentRule.objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [
        ("metrics", "0011_health_assignment_rules"),
    ]

    operations = [
        migrations.RunPython(rules_from_models, models_from_rules),
    ]
