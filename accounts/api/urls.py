from django.urls import path

from accounts.api import views

urlpatterns = [
    path("auth/phone/send-code", views.SendCodeView.as_view(), name="auth-send-code"),
    path("auth/phone/verify", views.VerifyView.as_view(), name="auth-verify"),
    path("auth/refresh", views.RefreshView.as_view(), name="auth-refresh"),
    path("auth/logout", views.LogoutView.as_view(), name="auth-logout"),
    path("users/me", views.MeView.as_view(), name="users-me"),
    path("users/me/devices", views.DeviceView.as_view(), name="users-devices"),
    path("users/<uuid:user_id>/profile", views.ProfileView.as_view(), name="users-profile"),
]
