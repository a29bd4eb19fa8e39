from django.urls import path

from safezones.api import views

urlpatterns = [path("safe-zones", views.SafeZoneListView.as_view(), name="safe-zones")]
