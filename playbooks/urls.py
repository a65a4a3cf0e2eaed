from django.urls import path

from . import views

app_name = "playbooks"

urlpatterns = [
    path("playbooks/", views.playbook_list, name="list"),
    path("playbooks/new/", views.playbook_edit, name="create"),
    path("playbooks/<int:pk>/", views.playbook_edit, name="edit"),
    path("ctas/", views.cta_list, name="cta-list"),
    path("ctas/<int:pk>/", views.cta_detail, name="cta-detail"),
    path("ctas/<int:pk>/complete", views.cta_step_complete, name="cta-complete"),
    path(
        "ctas/<int:pk>/steps/<int:step_pk>/complete",
        views.cta_step_complete,
        name="cta-step-complete",
    ),
    path("ctas/<int:pk>/snooze", views.cta_snooze, name="cta-snooze"),
    path("ctas/<int:pk>/status", views.cta_status, name="cta-status"),
    path("ctas/<int:pk>/reassign", views.cta_reassign, name="cta-reassign"),
    path("ctas/<int:pk>/comments", views.cta_comment, name="cta-comment"),
    path(
        "ctas/emails/unsubscribe/<str:token>/",
        views.cta_email_unsubscribe,
        name="cta-email-unsubscribe",
    ),
]
