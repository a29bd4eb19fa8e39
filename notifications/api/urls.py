from django.urls import path

from notifications.api import views

urlpatterns = [
    path("users/me/notification-settings", views.NotificationSettingsView.as_view(),
         name="notification-settings"),
    path("notifications", views.NotificationListView.as_view(), name="notifications"),
    path("notifications/read-all", views.NotificationReadAllView.as_view(),
         name="notifications-read-all"),
    path("notifications/unread-count", views.NotificationUnreadCountView.as_view(),
         name="notifications-unread-count"),
    path("notifications/<uuid:notification_id>/read", views.NotificationReadView.as_view(),
         name="notifications-read"),
]
