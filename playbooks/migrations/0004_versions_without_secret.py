"""Playbook versions no longer keep the webhook signing secret (``services._version_config``):
the secrets copied into the versions saved before are replaced by ``webhook_secret_set``."""

from django.db import migrations


def forget_secrets(apps, schema_editor):
    PlaybookVersion = apps.get_model("playbooks", "PlaybookVersion")
    changed = []
    for version in PlaybookVersion.objects.filter(config__has_key="webhook_secret").iterator():
        version.config["webhook_secret_set"] = bool(version.config.pop("webhook_secret"))
        changed.append(version)
    PlaybookVersion.objects.bulk_update(changed, ["config"], batch_size=500)


class Migration(migrations.Migration):
    dependencies = [("playbooks", "0003_timeline_signal_index")]

    operations = [migrations.RunPython(forget_secrets, migrations.RunPython.noop)]
