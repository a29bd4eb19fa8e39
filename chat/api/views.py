from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from biddt.pagination import CursorPagination
from chat import selectors, services
from chat.api.serializers import (
    MessageCreateSerializer,
    MessageSerializer,
    ReadResponseSerializer,
)
from chat.models import Message
from escrow.models import Transaction


class ThreadPagination(CursorPagination):
    """Oldest first, like a chat: `next` walks towards the newest messages."""

    ordering = ("created_at", "id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class MessageListView(ListAPIView):
    serializer_class = MessageSerializer
    pagination_class = ThreadPagination

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return Message.objects.none()
        try:
            return selectors.message_list(user=self.request.user,
                                          transaction_id=self.kwargs["transaction_id"])
        except Transaction.DoesNotExist:
            raise Http404 from None

    @extend_schema(tags=["chat"], summary="The buyer-seller thread, oldest first",
                   description="Buyer and seller only; anyone else 404.")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        tags=["chat"], summary="Post a message",
        request={"application/json": MessageCreateSerializer,
                 "multipart/form-data": MessageCreateSerializer},
        responses={201: MessageSerializer},
        description="`content` ≤ 2000 characters (control characters are stripped), or an "
                    "`image`. 400 `blank`, `max_length`, `invalid_image`; 404 for non-parties; "
                    "429 past the per-user flood limit.",
    )
    def post(self, request, transaction_id):
        data = MessageCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            message = services.message_post(user=request.user, transaction_id=transaction_id,
                                            **data.validated_data)
        except Transaction.DoesNotExist:
            raise Http404 from None
        return Response(MessageSerializer(message, context={"request": request}).data,
                        status=status.HTTP_201_CREATED)


class MessageReadView(APIView):
    @extend_schema(tags=["chat"], request=None, responses={200: ReadResponseSerializer},
                   summary="Mark the other party's messages read",
                   description="The other party's sockets in the room get `messages_read`.")
    def post(self, request, transaction_id):
        try:
            count = services.messages_mark_read(user=request.user, transaction_id=transaction_id)
        except Transaction.DoesNotExist:
            raise Http404 from None
        return Response({"marked_read": count})
