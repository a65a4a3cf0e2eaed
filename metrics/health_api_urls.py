"""``/api/v1/accounts/<account_id>/health/…``: an account's health (``metrics/api.py``).

Under the accounts' paths, but routed from the metrics app: ``accounts`` sits below
``metrics`` and does not import it."""

from django.urls import path

from . import api

app_name = "health-api"

urlpatterns = [
    path("accounts/<int:account_id>/health/", api.AccountHealthApi.as_view(), name="latest"),
    path(
        "accounts/<int:account_id>/health/history/",
        api.AccountHealthHistoryApi.as_view(),
        name="history",
    ),
    path(
        "accounts/<int:account_id>/health/changes/",
        api.AccountHealthChangesApi.as_view(),
        name="changes",
    ),
]
