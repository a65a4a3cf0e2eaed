from django.apps import AppConfig


class ReportsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "reports"
    verbose_name = "KPI targets, alerts, digests and scheduled reports"

    def ready(self) -> None:
        from django.core import checks

        from .checks import alert_destinations_check

        # not a deploy-only check: runserver and migrate stop on a bad address too
        checks.register(alert_destinations_check, "deployment")
