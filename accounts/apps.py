from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Customer data"

    def ready(self) -> None:
        import config.checks  # noqa: F401 - registers the deployment checks (SITE_URL)

        from .roles import ensure_roles

        # groups need the permissions that migrate creates, hence after it
        post_migrate.connect(ensure_roles, sender=self, dispatch_uid="accounts.ensure_roles")
