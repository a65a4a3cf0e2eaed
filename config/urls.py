from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required, login_required
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView

from accounts import views as account_views
from surveys.api import SurveyResponseBatchApi
from workspace import views as workspace_views

# a path under /api/ that matches no pattern is a JSON 404, like the API's own 404s (with
# DEBUG on too, where Django skips handler404: accounts.middleware.ApiNotFound)
handler404 = "accounts.api_errors.not_found"

urlpatterns = [
    # first: the public survey pages (/s/<token>/) are the busiest URLs, resolved before the
    # twenty-odd patterns of the staff pages are tried
    path("", include("surveys.urls")),
    path("", workspace_views.queue, name="home"),
    path("healthz", account_views.healthz, name="healthz"),
    path(
        "login/",
        login_not_required(auth_views.LoginView.as_view(redirect_authenticated_user=True)),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password-reset/", account_views.PasswordResetView.as_view(), name="password_reset"),
    path(
        "password-reset/sent/",
        login_not_required(auth_views.PasswordResetDoneView.as_view()),
        name="password_reset_done",
    ),
    path(
        "password-reset/<uidb64>/<token>/",
        login_not_required(auth_views.PasswordResetConfirmView.as_view()),
        name="password_reset_confirm",
    ),
    path(
        "password-reset/done/",
        login_not_required(auth_views.PasswordResetCompleteView.as_view()),
        name="password_reset_complete",
    ),
    path("", include("accounts.urls")),
    path("", include("playbooks.urls")),
    path("", include("workspace.urls")),
    path("", include("reports.urls")),
    path("admin/", admin.site.urls),
    path("voice/", include("voice.urls")),
    path("api/v1/kpis/", include("metrics.api_urls")),
    path("api/v1/survey-responses/", SurveyResponseBatchApi.as_view(), name="survey-responses"),
    path("api/v1/", include("accounts.api_urls")),
    path("api/v1/", include("metrics.health_api_urls")),
    path("api/v1/", include("playbooks.api_urls")),
    path("api/v1/", include("reports.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # /api/ skips the login middleware (the API answers 401 itself); the docs page is for
    # people, so it sends them to the login page instead. Our template: a way back into the
    # app, and nothing loaded from outside (the CSP would refuse it).
    path(
        "api/docs/",
        login_required(
            SpectacularRedocView.as_view(url_name="api-schema", template_name="api/docs.html")
        ),
        name="api-docs",
    ),
]
