from django.urls import path

from . import views

app_name = "reports"

urlpatterns = [
    path("targets/", views.targets, name="targets"),
    path("targets/<int:pk>/", views.target_edit, name="target-edit"),
    path("targets/off-track/", views.off_track, name="off-track"),
    path("reports/scheduled/", views.scheduled_reports, name="scheduled"),
    path("digest/", views.digest, name="digest"),
    path("settings/emails/", views.notifications, name="notifications"),
    path("digest/unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
]
