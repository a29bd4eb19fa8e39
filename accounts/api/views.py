from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors, services
from accounts.api import serializers as s
from accounts.throttles import AuthIPThrottle, AuthPhoneThrottle
from biddt.client_ip import client_ip
from biddt.throttles import AnonThrottle, UserThrottle


class _AuthView(APIView):
    """Login endpoints: no JWT needed (a stale header must not block a login)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    def get_authenticate_header(self, request):
        # Keeps a refused refresh token a 401 (DRF turns 401 into 403 without this header).
        return 'Bearer realm="api"'


class SendCodeView(_AuthView):
    throttle_classes = [AuthPhoneThrottle, AuthIPThrottle]

    @extend_schema(
        tags=["auth"], request=s.SendCodeSerializer,
        responses={202: s.SendCodeResponseSerializer},
        summary="Text a 6-digit login code",
        description="400 `invalid_phone_number`; 429 past 5/min per number or 20/min per IP "
                    "(and 10/hour per number), with `Retry-After`.",
    )
    def post(self, request):
        data = s.SendCodeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        ttl = services.otp_send(phone_number=data.validated_data["phone_number"],
                                ip=client_ip(request))
        return Response({"expires_in": ttl}, status=status.HTTP_202_ACCEPTED)


class VerifyView(_AuthView):
    throttle_classes = [AuthPhoneThrottle, AuthIPThrottle]

    @extend_schema(
        tags=["auth"], request=s.VerifySerializer, responses={200: s.LoginResponseSerializer},
        summary="Exchange the code for tokens",
        description="400 `invalid_code` / `code_expired` / `too_many_attempts` (after 5 wrong "
                    "tries the code is dead), `invalid_phone_number`; 403 "
                    "`account_suspended`.",
    )
    def post(self, request):
        data = s.VerifySerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = services.otp_verify(**data.validated_data)
        return Response({
            "access": result.access,
            "refresh": result.refresh,
            "user": s.MeSerializer(result.user, context={"request": request}).data,
            "is_new_user": result.is_new_user,
        })


class RefreshView(_AuthView):
    throttle_classes = [AnonThrottle]

    @extend_schema(
        tags=["auth"], request=s.RefreshSerializer, responses={200: s.TokenPairSerializer},
        summary="Rotate the refresh token",
        description="The old refresh token is dead afterwards; of two concurrent refreshes of "
                    "one token exactly one succeeds. 401 `token_not_valid`.",
    )
    def post(self, request):
        data = s.RefreshSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        access, refresh = services.token_refresh(refresh=data.validated_data["refresh"])
        return Response({"access": access, "refresh": refresh})


def _logout_schema(description: str):
    return extend_schema(
        tags=["auth"], request=s.RefreshSerializer,
        responses={204: OpenApiResponse(description="The refresh token can't be used again.")},
        summary="Log out (blacklist the refresh token)",
        description="401 `token_not_valid` for an invalid or already-dead token. " + description,
    )


class LogoutView(_AuthView):
    """`POST` and `DELETE` do the same: generated clients can't send a body with `DELETE`."""

    throttle_classes = [AnonThrottle]

    @_logout_schema("The same as `DELETE /v1/auth/logout`, for clients that can't send a body "
                    "with DELETE.")
    def post(self, request):
        data = s.RefreshSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.token_logout(refresh=data.validated_data["refresh"])
        return Response(status=status.HTTP_204_NO_CONTENT)

    @_logout_schema("Takes the same body as `POST /v1/auth/logout`.")
    def delete(self, request):
        return self.post(request)


class MeView(APIView):
    @extend_schema(tags=["users"], responses={200: s.MeSerializer}, summary="The caller")
    def get(self, request):
        return Response(s.MeSerializer(request.user, context={"request": request}).data)

    @extend_schema(
        tags=["users"],
        request={"application/json": s.MeUpdateSerializer,
                 "multipart/form-data": s.MeUpdateSerializer},
        responses={200: s.MeSerializer},
        summary="Update display name, e-mail, avatar or language",
        description="400 `email_taken`, `invalid_image`, `invalid_choice` (a `language` other "
                    "than `en` or `fr`); 403 `account_suspended`.",
    )
    def patch(self, request):
        data = s.MeUpdateSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        user = services.user_update_profile(
            user=request.user, display_name=v.get("display_name"), email=v.get("email"),
            email_given="email" in v, avatar=v.get("avatar"), language=v.get("language"),
        )
        return Response(s.MeSerializer(user, context={"request": request}).data)


class ProfileView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(tags=["users"], responses={200: s.PublicProfileSerializer},
                   summary="A user's public profile (never the phone number or e-mail)")
    def get(self, request, user_id):
        user = get_object_or_404(selectors.user_public_queryset(), pk=user_id)
        return Response(s.PublicProfileSerializer(user, context={"request": request}).data)


class DeviceView(APIView):
    throttle_classes = [UserThrottle]

    @extend_schema(tags=["users"], request=s.DeviceSerializer,
                   responses={201: s.DeviceSerializer, 200: s.DeviceSerializer},
                   summary="Register a push token",
                   description="201 when new, 200 when the token was already registered "
                               "(it moves to the caller).")
    def post(self, request):
        data = s.DeviceSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        device, created = services.device_register(user=request.user, **data.validated_data)
        return Response(s.DeviceSerializer(device).data,
                        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)
