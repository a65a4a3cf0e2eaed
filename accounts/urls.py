from django.urls import path

from . import views

app_name = "accounts"

urlpatterns = [
    path("imports/", views.import_list, name="import-list"),
    path("imports/format/", views.import_format, name="import-format"),
    path("imports/<uuid:uuid>/", views.import_detail, name="import-detail"),
]
