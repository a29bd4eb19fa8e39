from django.urls import path

from privacy.api import views

# Included before accounts' URLs: `users/me` here is accounts' view plus DELETE.
urlpatterns = [
    path("users/me", views.MeView.as_view(), name="users-me"),
    path("users/me/export", views.ExportView.as_view(), name="users-me-export"),
]
