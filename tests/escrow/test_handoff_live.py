"""End to end over the live servers (granian REST, uvicorn sockets): an unpaid auction sold
to the runner-up by a second-chance offer, then handed over with the seller's phone offline
(the token checked with the public JWKS alone, sent later with `scanned_at`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest
from django.utils import timezone

from bidding import services as bidding_services
from escrow import services as escrow_services
from escrow.models import Transaction
from escrow.tasks import second_chance_expire_due
from listings.models import Listing
from tests.conftest import bearer
from tests.factories import ListingFactory, UserFactory

pytestmark = [pytest.mark.integration, pytest.mark.postgres,
              pytest.mark.django_db(transaction=True)]


def _client(server, user=None) -> httpx.Client:
    headers = {"Authorization": bearer(user)} if user else {}
    return httpx.Client(base_url=server.http_url, headers=headers, timeout=30)


def test_second_chance_then_offline_handoff_over_the_live_servers(live_servers):
    server = live_servers()
    seller, winner, second, third = (UserFactory() for _ in range(4))
    listing = ListingFactory(seller=seller, starting_price_cents=1000)
    # given three bidders over REST
    for user, body in ((winner, {"amount_cents": 1000, "max_amount_cents": 5000}),
                       (third, {"amount_cents": 1100, "max_amount_cents": 2500}),
                       (second, {"amount_cents": 2700, "max_amount_cents": 3000})):
        with _client(server, user) as c:
            r = c.post(f"/v1/listings/{listing.pk}/bids", json=body)
            assert r.status_code == 201, r.text
    # and the auction closed and the winner's sale cancelled unpaid (the beat's sweeps)
    Listing.objects.filter(pk=listing.pk).update(ends_at=timezone.now() - timedelta(seconds=1))
    assert bidding_services.auction_close(listing_id=listing.pk)
    first = Transaction.objects.get(listing=listing)
    Transaction.objects.filter(pk=first.pk).update(
        payment_due_at=timezone.now() - timedelta(seconds=1))
    assert escrow_services.transactions_expire_unpaid() == 1

    with _client(server, seller) as s, _client(server, second) as b, \
            _client(server, third) as t, _client(server) as anonymous:
        # when the seller offers a second chance: the runner-up gets it at their maximum
        r = s.post(f"/v1/listings/{listing.pk}/second-chance")
        assert r.status_code == 201, r.text
        offer = r.json()
        assert offer["bidder"]["id"] == str(second.pk) and offer["amount_cents"] == 3000
        notes = b.get("/v1/notifications").json()["results"]
        assert [n["data"]["offer_id"] for n in notes if n["type"] == "second_chance_offer"] == [
            offer["id"]]
        # a third bidder can't touch it
        assert t.post(f"/v1/second-chance/{offer['id']}/accept").status_code == 404
        # and accepts: a new sale, paid at once (simulated backend)
        r = b.post(f"/v1/second-chance/{offer['id']}/accept")
        assert r.status_code == 201, r.text
        txn = r.json()
        assert (txn["status"], txn["amount_cents"], txn["fee_cents"]) == (
            "pending_payment", 3000, 180)
        assert b.post(f"/v1/transactions/{txn['id']}/pay").status_code == 200
        assert b.get(f"/v1/transactions/{txn['id']}").json()["status"] == "in_escrow"
        assert second_chance_expire_due.apply().get() == 0  # nothing open to expire

        # when the buyer shows the QR code and the seller's phone scans it with no signal
        qr = b.get(f"/v1/transactions/{txn['id']}/qr").json()
        png = b.get(f"/v1/transactions/{txn['id']}/qr", params={"format": "png"})
        assert png.status_code == 200 and png.headers["content-type"] == "image/png"
        keys = anonymous.get("/v1/handoff-keys")
        assert keys.status_code == 200
        jwk_set = keys.json()
        scanned_at = datetime.now(tz=UTC)
        # (offline: PyJWT and the cached JWKS, nothing else)
        kid = jwt.get_unverified_header(qr["token"])["kid"]
        claims = jwt.decode(qr["token"], jwt.PyJWKSet.from_dict(jwk_set)[kid].key,
                            algorithms=["EdDSA"], audience="biddt-handoff",
                            options={"verify_exp": False})
        assert claims["transaction_id"] == txn["id"]
        assert claims["seller_id"] == str(seller.pk) and claims["amount_cents"] == 3000
        # then, back online, the seller sends it and the escrow is released once
        body = {"token": qr["token"], "scanned_at": scanned_at.isoformat()}
        r = s.post(f"/v1/transactions/{txn['id']}/verify", json=body)
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "released"
        again = s.post(f"/v1/transactions/{txn['id']}/verify", json=body)
        assert again.status_code == 409
        assert again.json()["errors"][0]["code"] == "code_already_used"
        # a forged token is refused with the code path's code
        head, payload, _sig = qr["token"].split(".")
        forged = s.post(f"/v1/transactions/{first.pk}/verify",
                        json={"token": f"{head}.{payload}.AAAA", "scanned_at":
                              scanned_at.isoformat()})
        assert forged.status_code == 400
        assert forged.json()["errors"][0]["code"] == "invalid_code"
        # and the schema documents the new operations and their codes
        schema = anonymous.get("/v1/schema/", params={"format": "json"}).json()
        for path in ("/v1/handoff-keys", "/v1/listings/{listing_id}/second-chance",
                     "/v1/second-chance/{offer_id}/accept",
                     "/v1/second-chance/{offer_id}/decline"):
            assert path in schema["paths"], path
        verify = schema["paths"]["/v1/transactions/{transaction_id}/verify"]["post"]
        assert "409" in verify["responses"] and "scanned_at" in str(schema["components"])
        assert "no_runner_up" in schema["paths"]["/v1/listings/{listing_id}/second-chance"][
            "post"]["description"]
