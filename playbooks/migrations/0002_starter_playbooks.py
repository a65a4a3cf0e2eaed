"""Load the starter playbooks on a new installation (``playbooks.starters``), once: rows are
written with the historical models (a later model change cannot break this migration), and
a starter already present (by its key) is left as it is. Editable afterwards."""

from django.db import migrations
from django.utils import timezone

FIELDS = (
    "name", "description", "trigger", "trigger_params", "cta_title", "cta_type", "priority",
    "steps", "owner_rule", "success", "success_params", "success_days", "cooldown_days",
)  # fmt: skip


def load(apps, schema_editor):
    from playbooks.starters import STARTERS

    Playbook = apps.get_model("playbooks", "Playbook")
    PlaybookVersion = apps.get_model("playbooks", "PlaybookVersion")
    have = set(Playbook.objects.exclude(starter="").values_list("starter", flat=True))
    for key, config in STARTERS.items():
        if key in have or Playbook.objects.filter(name=config["name"]).exists():
            continue
        values = {name: config[name] for name in FIELDS if name in config}
        values.setdefault("success_params", {})
        playbook = Playbook.objects.create(starter=key, version=1, enabled=True, **values)
        snapshot = {name: getattr(playbook, name) for name in FIELDS}
        PlaybookVersion.objects.create(
            playbook=playbook, version=1, config=snapshot, created_at=timezone.now()
        )


class Migration(migrations.Migration):
    dependencies = [("playbooks", "0001_initial")]

    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
