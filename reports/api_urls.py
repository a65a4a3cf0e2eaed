"""``/api/v1/targets/``: see ``reports/api.py``."""

from django.urls import path

from . import api

app_name = "reports-api"

urlpatterns = [
    path("targets/", api.TargetListApi.as_view(), name="target-list"),
    path("targets/<int:pk>/", api.TargetDetailApi.as_view(), name="target-detail"),
]
