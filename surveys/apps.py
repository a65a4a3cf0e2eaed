from django.apps import AppConfig


class SurveysConfig(AppConfig):
    name = "surveys"

    def ready(self) -> None:
        from accounts import intake

        from . import intake as responses

        # responses.csv goes through the same doors as every other file (accounts does not
        # import surveys: the kind is registered here)
        intake.register_kind("responses", responses.COLUMNS, responses.load)

        from accounts import timeline

        from .services import FACT_KIND

        timeline.kinds_register(FACT_KIND)
