"""Chat socket messages, declared once (biddt.socket_messages)."""

from __future__ import annotations

from biddt.socket_messages import DATETIME, REQUEST_ID, STRING, UUID, declare, nullable, obj

MESSAGE_ITEM = obj({
    "id": UUID,
    "transaction_id": UUID,
    "sender_id": nullable(UUID),
    "message_type": STRING,
    "content": STRING,
    "image_url": {"type": ["string", "null"]},
    "read_at": nullable(DATETIME),
    "created_at": DATETIME,
}, description="A chat message as `GET /v1/transactions/{id}/messages` lists it.")

# client -> server
JOIN_CHAT = declare("join_chat", "client", "Join a transaction's chat (buyer or seller).",
                    fields={"transactionId": UUID, "requestId": REQUEST_ID},
                    required=("transactionId",))
MESSAGE = declare("message", "client", "Post a chat message (≤ 2000 characters).",
                  fields={"transactionId": UUID, "content": STRING, "requestId": REQUEST_ID},
                  required=("transactionId", "content"))

# server -> client
NEW_MESSAGE = declare("new_message", "server", "A message in a chat the socket joined.",
                      fields={"transactionId": UUID, "message": MESSAGE_ITEM},
                      required=("transactionId", "message"))
MESSAGES_READ = declare("messages_read", "server", "The other party read the messages.",
                        fields={"transactionId": UUID, "readerId": UUID, "readAt": DATETIME},
                        required=("transactionId", "readerId", "readAt"))
