"""The benchmark targets on a new installation (all accounts, each KPI at its tier's
cadence). Once: a target removed later stays removed; "Add the benchmark defaults" on the
targets page adds missing ones again. The values are written out here so that a later
change of reports.catalog does not change what this migration did."""

from decimal import Decimal

from django.db import migrations

DEFAULTS = [
    ("logo_churn_rate", "at_most", "2", "weekly"),
    ("nrr", "at_least", "100", "weekly"),
    ("grr", "at_least", "90", "weekly"),
    ("expansion_rate", "at_least", "1", "weekly"),
    ("renewal_rate", "at_least", "85", "weekly"),
    ("seat_utilisation", "at_least", "70", "monthly"),
    ("ttfv", "at_most", "30", "monthly"),
    ("csat", "at_least", "80", "monthly"),
    ("resolution_hours", "at_most", "24", "monthly"),
    ("nps", "at_least", "30", "monthly"),
    ("ces", "at_least", "5", "quarterly"),
    ("revenue_churn_rate", "at_most", "1", "quarterly"),
    ("dso", "at_most", "45", "quarterly"),
]


def load(apps, schema_editor):
    KpiTarget = apps.get_model("reports", "KpiTarget")
    have = set(KpiTarget.objects.filter(scope_kind="all").values_list("kpi", flat=True))
    KpiTarget.objects.bulk_create(
        [
            KpiTarget(kpi=k, direction=d, value=Decimal(v), cadence=c, scope_kind="all")
            for k, d, v, c in DEFAULTS
            if k not in have
        ]
    )


class Migration(migrations.Migration):
    dependencies = [("reports", "0001_initial")]

    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
