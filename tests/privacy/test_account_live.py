"""End to end over the real servers (granian REST, uvicorn sockets): language, export, a
French refusal, the closure, its socket close (4403) and the dead tokens."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from rest_framework_simplejwt.tokens import RefreshToken
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from accounts.models import DELETED_USER_NAME, User
from bidding.services import bid_place
from listings.models import Listing
from tests.factories import ListingFactory, UserFactory

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_close_an_account_over_the_live_servers(live_servers):
    server = live_servers()
    user = UserFactory(display_name="Morgan")
    own = ListingFactory(seller=user)
    elsewhere = ListingFactory()
    bid_place(listing_id=elsewhere.pk, bidder=user, amount_cents=1000)
    refresh = RefreshToken.for_user(user)
    access = str(refresh.access_token)
    auth = {"Authorization": f"Bearer {access}"}

    with httpx.Client(base_url=server.http_url, timeout=None) as http:
        patched = http.patch("/v1/users/me", json={"language": "fr"}, headers=auth)
        assert patched.status_code == 200 and patched.json()["language"] == "fr"

        export = http.get("/v1/users/me/export", headers=auth)
        assert export.status_code == 200
        body = export.json()
        assert body["profile"]["display_name"] == "Morgan"
        assert {b["listing_id"] for b in body["bids"]} == {str(elsewhere.pk)}

        refused = http.delete("/v1/users/me", headers={**auth, "Accept-Language": "fr-CA"})
        assert refused.status_code == 409
        item = refused.json()["errors"][0]
        assert item["code"] == "account_has_open_obligations"
        assert item["detail"].startswith("Vous avez une offre dans une enchère en cours.")

        Listing.objects.filter(pk=elsewhere.pk).update(status="unsold")  # the auction ended

        async def scenario():
            async with connect(f"{server.ws_url}/ws/", additional_headers=auth,
                               open_timeout=None) as socket:
                await socket.send(json.dumps({"type": "ping"}))
                assert json.loads(await socket.recv()) == {"type": "pong"}
                closed = await asyncio.to_thread(http.delete, "/v1/users/me", headers=auth)
                try:
                    while True:  # the server closes this user's sockets after the commit
                        await socket.recv()
                except ConnectionClosed:
                    pass
                return closed, socket.close_code

        closed, close_code = asyncio.run(scenario())
        assert closed.status_code == 204
        assert close_code == 4403

        assert http.get("/v1/users/me", headers=auth).status_code == 401
        again = http.post("/v1/auth/refresh", json={"refresh": str(refresh)})
        assert again.status_code == 401
        profile = http.get(f"/v1/users/{user.pk}/profile").json()
        assert profile["display_name"] == DELETED_USER_NAME

    assert Listing.objects.get(pk=own.pk).status == "cancelled"
    assert User.objects.get(pk=user.pk).phone_number == ""
