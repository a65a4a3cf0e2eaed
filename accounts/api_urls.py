"""``/api/v1/``: see ``accounts/api.py``. Lists end with a slash; write operations
(``<kind>/bulk``, ``events/batch``, ``track``, ``identify``, ``group``, ``batch``) don't, like
Segment's endpoints."""

from django.urls import path

from . import api

app_name = "api"

urlpatterns = [
    path("accounts/", api.AccountListApi.as_view(), name="account-list"),
    path("accounts/bulk", api.AccountBulkApi.as_view(), name="account-bulk"),
    path("accounts/<int:pk>/", api.AccountDetailApi.as_view(), name="account-detail"),
    path(
        "accounts/<int:account_id>/timeline/", api.TimelineListApi.as_view(), name="timeline-list"
    ),
    path("accounts/<int:account_id>/usage/", api.UsageDailyListApi.as_view(), name="usage-list"),
    path(
        "accounts/<int:account_id>/milestones/",
        api.MilestoneListApi.as_view(),
        name="milestone-list",
    ),
    path(
        "accounts/<int:account_id>/milestones/<str:kind>/",
        api.MilestoneDetailApi.as_view(),
        name="milestone-detail",
    ),
    path("contracts/", api.ContractListApi.as_view(), name="contract-list"),
    path("contracts/bulk", api.ContractBulkApi.as_view(), name="contract-bulk"),
    path("contracts/<int:pk>/", api.ContractDetailApi.as_view(), name="contract-detail"),
    path("stakeholders/", api.StakeholderListApi.as_view(), name="stakeholder-list"),
    path("stakeholders/bulk", api.StakeholderBulkApi.as_view(), name="stakeholder-bulk"),
    path("stakeholders/<int:pk>/", api.StakeholderDetailApi.as_view(), name="stakeholder-detail"),
    path("tickets/", api.TicketListApi.as_view(), name="ticket-list"),
    path("tickets/bulk", api.TicketBulkApi.as_view(), name="ticket-bulk"),
    path("tickets/<int:pk>/", api.TicketDetailApi.as_view(), name="ticket-detail"),
    path("invoices/", api.InvoiceListApi.as_view(), name="invoice-list"),
    path("invoices/bulk", api.InvoiceBulkApi.as_view(), name="invoice-bulk"),
    path("invoices/<int:pk>/", api.InvoiceDetailApi.as_view(), name="invoice-detail"),
    path("activities/", api.ActivityListApi.as_view(), name="activity-list"),
    path("activities/<int:pk>/", api.ActivityDetailApi.as_view(), name="activity-detail"),
    path("imports/", api.ImportRecordListApi.as_view(), name="import-list"),
    path("imports/<uuid:uuid>/", api.ImportRecordDetailApi.as_view(), name="import-detail"),
    path("events/batch", api.EventBatchApi.as_view(), name="event-batch"),
    path("track", api.TrackApi.as_view(), name="track"),
    path("identify", api.IdentifyApi.as_view(), name="identify"),
    path("group", api.GroupApi.as_view(), name="group"),
    path("batch", api.SegmentBatchApi.as_view(), name="batch"),
]
