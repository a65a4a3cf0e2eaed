from django.urls import path

from . import views

app_name = "voice"

urlpatterns = [
    path("themes/", views.theme_list, name="themes"),
    path("themes/recompute/", views.theme_recompute, name="themes-recompute"),
    path("themes/<int:pk>/", views.theme_detail, name="theme-detail"),
    path("accounts/<int:pk>/", views.account_voice, name="account"),
    path("north-star/", views.north_star_edit, name="north-star"),
]
