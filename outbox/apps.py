from django.apps import AppConfig


class OutboxConfig(AppConfig):
    name = "outbox"
    verbose_name = "Outbox (email and webhooks)"
    default_auto_field = "django.db.models.BigAutoField"
