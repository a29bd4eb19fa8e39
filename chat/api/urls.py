from django.urls import path

from chat.api import views

urlpatterns = [
    path("transactions/<uuid:transaction_id>/messages", views.MessageListView.as_view(),
         name="transaction-messages"),
    path("transactions/<uuid:transaction_id>/messages/read", views.MessageReadView.as_view(),
         name="transaction-messages-read"),
]
