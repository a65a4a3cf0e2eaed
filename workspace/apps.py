from django.apps import AppConfig


class WorkspaceConfig(AppConfig):
    """The CSM workspace and admin screens: the top of the import chain (it reads every
    other app and no app imports it). No models of its own."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "workspace"
