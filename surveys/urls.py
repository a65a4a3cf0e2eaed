"""Public link pages under ``/s/<token>/`` (no sign-in) and staff pages under ``/surveys/``."""

from django.urls import path

from . import public, views

app_name = "surveys"

urlpatterns = [
    path("s/<str:token>/", public.respond, name="respond"),
    path("s/<str:token>/thanks/", public.thanks, name="thanks"),
    path("s/<str:token>/unsubscribe/", public.unsubscribe, name="unsubscribe"),
    path("surveys/", views.campaign_list, name="campaign-list"),
    path("surveys/new/", views.campaign_edit, name="campaign-new"),
    path("surveys/<int:pk>/edit/", views.campaign_edit, name="campaign-edit"),
    path("surveys/<int:pk>/send/", views.campaign_send, name="campaign-send"),
    path("surveys/results/", views.results, name="results"),
    path("surveys/results.csv", views.results_csv, name="results-csv"),
]
