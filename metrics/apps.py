from django.apps import AppConfig


class MetricsConfig(AppConfig):
    name = "metrics"

    def ready(self) -> None:
        from accounts import timeline

        from .services import BAND_CHANGED_KIND

        timeline.kinds_register(BAND_CHANGED_KIND)
