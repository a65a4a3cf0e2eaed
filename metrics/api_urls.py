"""``/api/v1/kpis/``: see ``metrics/api.py``."""

from django.urls import path

from . import api

app_name = "kpis"

urlpatterns = [
    path("", api.KpiReportApi.as_view(), name="report"),
    path("movements/", api.MovementsApi.as_view(), name="movements"),
    path("cohorts/", api.CohortsApi.as_view(), name="cohorts"),
]
