"""Chat: only the two parties read or post (REST and socket); events after commit; limits."""

from __future__ import annotations

import io

import pytest
from channels.testing import WebsocketCommunicator
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import TestCase
from PIL import Image
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from biddt.asgi import application
from chat.models import Message
from chat.services import content_clean, message_system_post
from escrow.services import transaction_create_for_sale
from notifications.models import Notification
from tests.conftest import bearer
from tests.factories import ListingFactory, UserFactory


def make_sale():
    listing = ListingFactory(status="sold")
    buyer = UserFactory()
    txn = transaction_create_for_sale(listing=listing, buyer=buyer, amount_cents=10000,
                                      source="auction")
    return txn, buyer, listing.seller


def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=bearer(user))
    return client


def post(client, txn, **data):
    with TestCase.captureOnCommitCallbacks(execute=True):
        return client.post(f"/v1/transactions/{txn.pk}/messages", data,
                           format="multipart" if "image" in data else "json")


@pytest.mark.django_db
def test_parties_post_and_read_the_thread_oldest_first(sent_events):
    # given
    txn, buyer, seller = make_sale()
    # when both sides write
    first = post(client_for(buyer), txn, content="Hi! Tomorrow at 5?")
    post(client_for(seller), txn, content="Works for me.")
    # then
    assert first.status_code == 201
    assert set(first.json()) == {"id", "transaction_id", "sender_id", "message_type", "content",
                                 "image_url", "read_at", "created_at"}
    thread = client_for(seller).get(f"/v1/transactions/{txn.pk}/messages").json()
    assert [m["content"] for m in thread["results"]] == ["Hi! Tomorrow at 5?", "Works for me."]
    # and each message went to the room once, and notified the other party
    rooms = [e for g, e in sent_events if g == f"txn.{txn.pk}"]
    assert [e["type"] for e in rooms] == ["new_message", "new_message"]
    assert Notification.objects.filter(user=seller, type="new_message").count() == 1
    assert Notification.objects.filter(user=buyer, type="new_message").count() == 1


@pytest.mark.django_db
def test_others_get_404_and_nothing_is_written():
    txn, _buyer, _seller = make_sale()
    stranger = client_for(UserFactory())
    assert stranger.get(f"/v1/transactions/{txn.pk}/messages").status_code == 404
    assert post(stranger, txn, content="hello").status_code == 404
    assert Message.objects.count() == 0
    assert APIClient().get(f"/v1/transactions/{txn.pk}/messages").status_code == 401


@pytest.mark.django_db
def test_length_and_blank_and_control_characters():
    txn, buyer, _ = make_sale()
    client = client_for(buyer)
    too_long = post(client, txn, content="x" * 2001)
    assert too_long.status_code == 400
    assert too_long.json()["errors"][0]["attr"] == "content"
    assert post(client, txn, content=" \x07\x1b ").json()["errors"][0]["code"] == "blank"
    assert post(client, txn, content="a\x00b").json()["errors"][0]["code"] == \
        "null_characters_not_allowed"
    ok = post(client, txn, content="a\x07b\u202ec\nd")
    assert ok.json()["content"] == "abc\nd"
    assert post(client, txn, content="x" * 2000).status_code == 201


def test_content_clean_keeps_text_and_emoji():
    assert content_clean("  Hé 👋🏽\tok\r\n ") == "Hé 👋🏽\tok"
    assert content_clean("👨\u200d👩\u200d👧") == "👨\u200d👩\u200d👧"


@pytest.mark.django_db
def test_flood_limit_per_user(settings):
    settings.BIDDT_CHAT_MESSAGES_PER_MINUTE = 3
    txn, buyer, _ = make_sale()
    client = client_for(buyer)
    statuses = [post(client, txn, content=f"m{i}").status_code for i in range(4)]
    assert statuses == [201, 201, 201, 429]


@pytest.mark.django_db
def test_image_message_is_reencoded():
    txn, buyer, _ = make_sale()
    buf = io.BytesIO()
    Image.new("RGB", (2400, 1200), "blue").save(buf, "JPEG")
    upload = SimpleUploadedFile("p.jpg", buf.getvalue(), content_type="image/jpeg")
    response = post(client_for(buyer), txn, image=upload)
    assert response.status_code == 201
    assert response.json()["message_type"] == "image"
    stored = Message.objects.get()
    with stored.image.open("rb") as fh:
        assert max(Image.open(fh).size) == 1600
    bad = SimpleUploadedFile("p.jpg", b"not an image", content_type="image/jpeg")
    assert post(client_for(buyer), txn, image=bad).json()["errors"][0]["code"] == "invalid_image"


@pytest.mark.django_db
def test_read_receipts(sent_events):
    txn, buyer, seller = make_sale()
    post(client_for(buyer), txn, content="one")
    post(client_for(buyer), txn, content="two")
    post(client_for(seller), txn, content="reply")
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = client_for(seller).post(f"/v1/transactions/{txn.pk}/messages/read")
    assert response.json() == {"marked_read": 2}
    assert Message.objects.filter(sender=seller, read_at__isnull=True).count() == 1
    read_events = [e for _g, e in sent_events if e["type"] == "messages_read"]
    assert read_events and read_events[0]["readerId"] == str(seller.pk)


@pytest.mark.django_db
def test_system_messages_have_no_sender(sent_events):
    txn, _buyer, _seller = make_sale()
    with TestCase.captureOnCommitCallbacks(execute=True):
        message = message_system_post(transaction_id=txn.pk, content="Payment received.")
    assert message.sender is None and message.message_type == "system"
    assert Notification.objects.count() == 0  # no one is notified of a system line


async def connect(user):
    from channels.db import database_sync_to_async

    token = await database_sync_to_async(lambda: RefreshToken.for_user(user).access_token)()
    comm = WebsocketCommunicator(application, f"/ws/?token={token}")
    connected, _ = await comm.connect()
    assert connected
    return comm


@pytest.mark.django_db(transaction=True)
async def test_socket_message_reaches_both_parties_and_retry_is_a_no_op():
    from channels.db import database_sync_to_async

    txn, buyer, seller = await database_sync_to_async(make_sale)()
    buyer_ws, seller_ws = await connect(buyer), await connect(seller)
    try:
        for ws in (buyer_ws, seller_ws):
            await ws.send_json_to({"type": "join_chat", "transactionId": str(txn.pk),
                                   "requestId": "j"})
            assert (await ws.receive_json_from())["type"] == "ack"
        # when the buyer sends a message with a requestId
        frame = {"type": "message", "transactionId": str(txn.pk), "content": "On my way",
                 "requestId": "r-1"}
        await buyer_ws.send_json_to(frame)
        got = [await buyer_ws.receive_json_from() for _ in range(2)]
        ack = next(e for e in got if e["type"] == "ack")
        assert ack["requestId"] == "r-1" and ack["message"]["content"] == "On my way"
        # then the seller's socket gets new_message (and a notification)
        seen = [await seller_ws.receive_json_from() for _ in range(2)]
        new = next(e for e in seen if e["type"] == "new_message")
        assert new["transactionId"] == str(txn.pk)
        assert new["message"]["id"] == ack["message"]["id"]
        # and a retry answers the same ack without a second message
        await buyer_ws.send_json_to(frame)
        again = await buyer_ws.receive_json_from()
        assert again == ack
        assert await database_sync_to_async(Message.objects.count)() == 1
    finally:
        await buyer_ws.disconnect()
        await seller_ws.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_socket_join_refused_for_strangers():
    from channels.db import database_sync_to_async

    txn, _b, _s = await database_sync_to_async(make_sale)()
    stranger = await database_sync_to_async(UserFactory)()
    ws = await connect(stranger)
    try:
        await ws.send_json_to({"type": "join_chat", "transactionId": str(txn.pk),
                               "requestId": 7})
        assert await ws.receive_json_from() == {
            "type": "error", "code": "not_found", "detail": "No such transaction.",
            "requestId": 7}
        await ws.send_json_to({"type": "message", "transactionId": str(txn.pk),
                               "content": "hi"})
        assert (await ws.receive_json_from())["code"] == "not_found"
    finally:
        await ws.disconnect()
