"""``/api/v1/playbooks/`` and ``/api/v1/ctas/``: see ``playbooks/api.py``."""

from django.urls import path

from . import api

app_name = "playbooks-api"

urlpatterns = [
    path("playbooks/", api.PlaybookListApi.as_view(), name="playbook-list"),
    path("playbooks/<int:pk>/", api.PlaybookDetailApi.as_view(), name="playbook-detail"),
    path("ctas/", api.CtaListApi.as_view(), name="cta-list"),
    path("ctas/<int:pk>/", api.CtaDetailApi.as_view(), name="cta-detail"),
]
