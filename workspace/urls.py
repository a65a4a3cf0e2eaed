from django.urls import path

from . import manage, views

app_name = "workspace"

urlpatterns = [
    path("accounts/<int:pk>/", views.account_detail, name="account"),
    path("accounts/<int:pk>/activities/", views.activity_create, name="activity-create"),
    path("accounts/<int:pk>/first-value/", views.first_value_update, name="first-value"),
    path("accounts/<int:pk>/standing/", views.standing_refresh, name="standing-refresh"),
    path(
        "accounts/<int:pk>/health-override/",
        views.health_override_create,
        name="health-override-create",
    ),
    path("renewals/", views.renewals, name="renewals"),
    path("dashboard/", views.dashboard, name="dashboard"),
    path("dashboard/accounts/", views.drilldown, name="drilldown"),
    path("dashboard/cohorts/", views.cohorts, name="cohorts"),
    path("docs/metrics/", views.metrics_doc, name="metrics-doc"),
    path("manage/", manage.index, name="manage"),
    path("manage/health/", manage.health_models, name="health-models"),
    path("manage/health/<int:pk>/", manage.health_model_edit, name="health-model-edit"),
    path(
        "manage/health/<int:pk>/preview/", manage.health_model_preview, name="health-model-preview"
    ),
    path(
        "manage/health/<int:pk>/versions/",
        manage.health_model_versions,
        name="health-model-versions",
    ),
    path(
        "manage/health/<int:pk>/restore/", manage.health_model_restore, name="health-model-restore"
    ),
    path("manage/health/assignments/", manage.health_assignments, name="health-assignments"),
    path("manage/health/assignments/save/", manage.health_rule_save, name="health-rule-save"),
    path(
        # a rule's id (it was a model's when the rules lived on the models: a new path, so
        # a page open from before cannot remove the wrong rule)
        "manage/health/assignments/rules/<int:pk>/remove/",
        manage.health_rule_remove,
        name="health-rule-remove",
    ),
    path(
        "manage/health/assignments/default/",
        manage.health_default_save,
        name="health-default-save",
    ),
    path("manage/health/new/", manage.health_model_copy, name="health-model-copy"),
    path("manage/health/rescore/", manage.health_rescore, name="health-rescore"),
    path("manage/backfill/", manage.backfill_status, name="backfill-status"),
    path("manage/backfill/start/", manage.backfill_start, name="backfill-start"),
    path("manage/pipeline/", manage.pipeline_runs, name="pipeline-runs"),
    path("manage/api-tokens/", manage.api_tokens, name="api-tokens"),
    path("manage/api-tokens/new/", manage.api_token_create, name="api-token-create"),
    path(
        "manage/api-tokens/<int:pk>/revoke/",
        manage.api_token_revoke,
        name="api-token-revoke",
    ),
    path("manage/users/", manage.users, name="users"),
    path("manage/users/<int:pk>/", manage.user_update, name="user-update"),
]
