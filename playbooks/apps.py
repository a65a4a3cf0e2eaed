from django.apps import AppConfig


class PlaybooksConfig(AppConfig):
    name = "playbooks"

    def ready(self) -> None:
        from accounts import timeline

        from .services import FACT_KINDS

        timeline.kinds_register(*FACT_KINDS)
