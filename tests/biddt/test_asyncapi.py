"""`GET /v1/asyncapi.json`: the AsyncAPI 3.0 document of `/ws/`, generated from the registry."""

from __future__ import annotations

import pytest
from jsonschema import Draft7Validator

from biddt.socket_messages import REGISTRY, discover
from tests.socket_contract import server_message_errors

pytestmark = pytest.mark.django_db

CLIENT = {"subscribe", "unsubscribe", "bid", "join_chat", "message", "ping"}
SERVER = {"subscribed", "bid_placed", "outbid", "auction_extended", "ending_soon",
          "auction_ended", "listing_updated", "new_message", "messages_read",
          "transaction_update", "notification", "ack", "error", "pong"}


def messages_of(document, operation):
    names = [ref["$ref"].rsplit("/", 1)[-1]
             for ref in document["operations"][operation]["messages"]]
    return {document["components"]["messages"][name]["name"]: document["components"][
        "messages"][name] for name in names}


def test_the_document_is_public_and_declares_every_message_with_its_schema(api):
    response = api.get("/v1/asyncapi.json")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    document = response.json()
    assert document["asyncapi"] == "3.0.0"
    assert document["channels"]["ws"]["address"] == "/ws/"
    assert document["servers"]["api"] == {"host": "testserver", "protocol": "ws"}
    client, server = messages_of(document, "clientSends"), messages_of(document, "serverSends")
    assert document["operations"]["clientSends"]["action"] == "receive"
    assert document["operations"]["serverSends"]["action"] == "send"
    assert set(client) == CLIENT and set(server) == SERVER
    for message in [*client.values(), *server.values()]:
        Draft7Validator.check_schema(message["payload"])
        assert message["payload"]["properties"]["type"] == {"const": message["name"]}
    updated = server["listing_updated"]["payload"]
    assert updated["properties"]["reason"]["enum"] == [
        "retraction", "edit", "opened", "paused", "reinstated"]
    assert set(updated["required"]) == {"type", "listingId", "seq", "reason", "listing"}
    for name in ("bid_placed", "auction_extended", "auction_ended", "listing_updated"):
        assert "seq" in server[name]["payload"]["required"], name


def test_every_message_has_one_declaration():
    assert {m.type for m in discover().values()} == CLIENT | SERVER
    assert len(REGISTRY) == len(CLIENT) + len(SERVER)


def test_the_check_refuses_a_payload_that_drifted():
    listing_id = "5f0c6c1e-8a8e-4a3a-9d3c-0a4c1c6f1b2a"
    good = {"type": "auction_ended", "listingId": listing_id, "seq": 3, "status": "sold",
            "finalPrice": 1000}
    assert server_message_errors(good) == []
    assert server_message_errors({**good, "seq": None})
    assert server_message_errors({k: v for k, v in good.items() if k != "seq"})
    assert server_message_errors({**good, "status": "active"})
    assert server_message_errors({**good, "extra": 1})
    assert server_message_errors({"type": "teleported"})
