"""Chat over real sockets: a daphne process, the `websockets` client, both parties connected."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import websockets
from rest_framework_simplejwt.tokens import RefreshToken

from chat.models import Message
from escrow.services import transaction_create_for_sale
from tests.factories import ListingFactory, UserFactory

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def token_for(user) -> str:
    return str(RefreshToken.for_user(user).access_token)


async def recv_until(socket, wanted, timeout=10.0):
    """Frames until one with `type == wanted`; returns (that frame, every frame seen)."""
    seen = []
    while True:
        frame = json.loads(await asyncio.wait_for(socket.recv(), timeout))
        seen.append(frame)
        if frame["type"] == wanted:
            return frame, seen


def test_new_message_reaches_both_parties_over_a_live_server(daphne_server):
    # given a sale, its two parties and a stranger, and a running server
    listing = ListingFactory(status="sold")
    buyer, stranger = UserFactory(), UserFactory()
    seller = listing.seller
    txn = transaction_create_for_sale(listing=listing, buyer=buyer, amount_cents=10000,
                                      source="auction")
    tokens = {u: token_for(u) for u in (buyer, seller, stranger)}
    server = daphne_server()

    async def scenario():
        url = f"{server.ws_url}/ws/?token="
        async with websockets.connect(url + tokens[buyer]) as b, \
                websockets.connect(url + tokens[seller]) as s, \
                websockets.connect(url + tokens[stranger]) as x:
            for socket in (b, s):
                await socket.send(json.dumps({"type": "join_chat", "requestId": "j",
                                              "transactionId": str(txn.pk)}))
                await recv_until(socket, "ack")
            await x.send(json.dumps({"type": "join_chat", "transactionId": str(txn.pk)}))
            refused, _ = await recv_until(x, "error")
            # when the buyer writes over the socket
            await b.send(json.dumps({"type": "message", "transactionId": str(txn.pk),
                                     "content": "At the library, 5pm?", "requestId": "m1"}))
            ack, buyer_frames = await recv_until(b, "ack")
            delivered, _ = await recv_until(s, "new_message")
            # and the seller answers over REST
            async with httpx.AsyncClient(base_url=server.http_url) as http:
                reply = await http.post(
                    f"/v1/transactions/{txn.pk}/messages", json={"content": "Deal."},
                    headers={"Authorization": f"Bearer {tokens[seller]}"})
            echoed, _ = await recv_until(b, "new_message")
            while echoed["message"]["content"] != "Deal.":
                echoed, _ = await recv_until(b, "new_message")
            return refused, ack, delivered, reply, echoed

    refused, ack, delivered, reply, echoed = asyncio.run(scenario())
    # then the stranger was refused, and each message reached the other party live
    assert refused["code"] == "not_found"
    assert ack["requestId"] == "m1" and ack["message"]["content"] == "At the library, 5pm?"
    assert delivered["transactionId"] == str(txn.pk)
    assert delivered["message"]["id"] == ack["message"]["id"]
    assert reply.status_code == 201
    assert echoed["message"]["sender_id"] == str(seller.pk)
    assert list(Message.objects.order_by("created_at").values_list("content", flat=True)) == [
        "At the library, 5pm?", "Deal."]
