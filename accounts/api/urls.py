from django.urls import path

from accounts.api import views

# `users/me` is served by privacy.api.urls (this view plus DELETE).
urlpatterns = [
    path("auth/phone/send-code", views.SendCodeView.as_view(), name="auth-send-code"),
    path("auth/phone/verify", views.VerifyView.as_view(), name="auth-verify"),
    path("auth/refresh", views.RefreshView.as_view(), name="auth-refresh"),
    path("auth/logout", views.LogoutView.as_view(), name="auth-logout"),
    path("users/me/devices", views.DeviceView.as_view(), name="users-devices"),
    path("users/<uuid:user_id>/profile", views.ProfileView.as_view(), name="users-profile"),
]
