from __future__ import annotations

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from notifications import selectors, services
from notifications.api.serializers import (
    NotificationSerializer,
    NotificationSettingsSerializer,
    ReadAllResponseSerializer,
    UnreadCountSerializer,
)
from notifications.models import Notification


class NotificationListView(ListAPIView):
    serializer_class = NotificationSerializer

    @extend_schema(
        tags=["notifications"], summary="The caller's notifications, newest first",
        parameters=[OpenApiParameter("unread", OpenApiTypes.BOOL,
                                     description="`true`: only unread ones")],
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return Notification.objects.none()
        unread = self.request.query_params.get("unread", "").lower() in {"true", "1", "yes"}
        return selectors.notification_list(user=self.request.user, unread_only=unread)


class NotificationReadView(APIView):
    @extend_schema(tags=["notifications"], request=None,
                   responses={200: NotificationSerializer},
                   summary="Mark one notification read", description="Another user's: 404.")
    def patch(self, request, notification_id):
        try:
            notification = services.notification_mark_read(user=request.user,
                                                           notification_id=notification_id)
        except Notification.DoesNotExist:
            raise Http404 from None
        return Response(NotificationSerializer(notification).data)


class NotificationReadAllView(APIView):
    @extend_schema(tags=["notifications"], request=None,
                   responses={200: ReadAllResponseSerializer},
                   summary="Mark every notification read")
    def patch(self, request):
        return Response({"updated": services.notification_mark_all_read(user=request.user)})


class NotificationUnreadCountView(APIView):
    @extend_schema(tags=["notifications"], responses={200: UnreadCountSerializer},
                   summary="How many notifications are unread (for the badge)")
    def get(self, request):
        return Response({"unread": selectors.notification_unread_count(user=request.user)})


class NotificationSettingsView(APIView):
    @extend_schema(tags=["notifications"], responses={200: NotificationSettingsSerializer},
                   summary="Which notification types push and which e-mail")
    def get(self, request):
        pref = selectors.notification_preference(user_id=request.user.pk)
        return Response(NotificationSettingsSerializer(pref).data)

    @extend_schema(tags=["notifications"], request=NotificationSettingsSerializer,
                   responses={200: NotificationSettingsSerializer},
                   summary="Switch types on or off per channel (partial)",
                   description="Only won, payment_received and escrow_released can e-mail.")
    def patch(self, request):
        data = NotificationSettingsSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        pref = services.notification_preferences_update(user=request.user,
                                                        **data.validated_data)
        return Response(NotificationSettingsSerializer(pref).data)
