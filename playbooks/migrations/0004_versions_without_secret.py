"""Playbook versions no longer keep the webhook signing secret (``services._version_config``):
the secrets copied into the versions saved before are replaced by ``webhook_secret_set``.

Going back changes nothing: the secrets removed are not brought back into the versions (no
code reads them there; each playbook keeps its own secret and goes on signing with it), and
the versions keep ``webhook_secret_set``, which the code before this migration ignores."""

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
