from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.views import MeView as AccountsMeView
from biddt.throttles import UserThrottle
from privacy import selectors, services


# `/v1/users/me`: the accounts app's GET and PATCH, plus the account's closure.
class MeView(AccountsMeView):

    @extend_schema(
        tags=["users"], request=None,
        responses={204: OpenApiResponse(description="The account is closed.")},
        summary="Close the caller's account",
        description="At once: phone, e-mail, name and avatar erased; devices and refresh "
                    "tokens revoked; draft and active listings without bids cancelled; saved "
                    "searches deleted. Transactions, ledger and messages stay, shown as "
                    "\"Deleted user\". The phone number can sign up again as a new user. "
                    "409 `account_has_open_obligations` while the caller leads or has a bid "
                    "in an active auction, sells an active listing with bids, or is party to "
                    "a transaction not `released`, `refunded` or `cancelled`.",
    )
    def delete(self, request):
        services.account_delete(user_id=request.user.pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ExportView(APIView):
    throttle_classes = [UserThrottle]

    @extend_schema(
        tags=["users"], responses={200: OpenApiTypes.OBJECT},
        summary="Everything stored about the caller (JSON)",
        description="Sections: `profile`, `wallet`, `devices`, `listings` (with `images`), "
                    "`watchlist`, `listing_reports`, `bids` (with the caller's own maxima), "
                    "`transactions`, `disputes`, `ledger_entries`, `messages`, "
                    "`notifications`, `notification_preferences`, `ratings_given`, "
                    "`ratings_received`, `saved_searches`, and `exported_at`.",
    )
    def get(self, request):
        response = Response(selectors.account_export(user=request.user))
        response["Content-Disposition"] = 'attachment; filename="biddt-export.json"'
        response["Cache-Control"] = "no-store"
        return response
