"""Chat on `/ws/`: `join_chat` {transactionId} and `message` {transactionId, content, requestId}.

Thin: checks go through chat services (parties only); `requestId` makes a retried message
a no-op that answers the first ack again.
"""

from __future__ import annotations

import uuid
from typing import Any

from rest_framework.exceptions import APIException

from biddt.consumers import BiddtConsumer, WSError, db_sync_to_async, ws_handler
from biddt.idempotency import fingerprint, run_once
from biddt.socket_messages import ACK
from chat import services
from escrow.models import Transaction
from escrow.selectors import transaction_for


def _transaction_id(content: dict[str, Any]) -> str:
    try:
        return str(uuid.UUID(str(content.get("transactionId"))))
    except ValueError:
        raise WSError("invalid_message", "'transactionId' must be a UUID.") from None


@db_sync_to_async
def _check_party(user, transaction_id: str) -> None:
    try:
        transaction_for(user=user, transaction_id=transaction_id)
    except Transaction.DoesNotExist:
        raise WSError("not_found", "No such transaction.") from None


@db_sync_to_async
def _post(user, transaction_id: str, content: str, request_id) -> dict:
    def work():
        message = services.message_post(user=user, transaction_id=transaction_id,
                                        content=content)
        return 201, services.message_item(message)

    try:
        if request_id is None:
            return work()[1]
        answer = run_once(user=user, scope="ws-message", key=str(request_id)[:255],
                          request_fingerprint=fingerprint(transaction_id, content), work=work)
        return answer.body
    except Transaction.DoesNotExist:
        raise WSError("not_found", "No such transaction.") from None
    except APIException as exc:
        raise WSError.from_api_exception(exc) from None


@ws_handler("join_chat", auth=True)
async def join_chat(consumer: BiddtConsumer, content: dict[str, Any]) -> None:
    transaction_id = _transaction_id(content)
    await _check_party(consumer.user, transaction_id)
    await consumer.group_join(services.transaction_group(transaction_id))
    await consumer.send_json(ACK.build(requestId=content.get("requestId"),
                                       transactionId=transaction_id))


@ws_handler("message", auth=True)
async def message(consumer: BiddtConsumer, content: dict[str, Any]) -> None:
    transaction_id = _transaction_id(content)
    text = content.get("content")
    if not isinstance(text, str):
        raise WSError("invalid_message", "'content' must be a string.")
    item = await _post(consumer.user, transaction_id, text, content.get("requestId"))
    await consumer.send_json(ACK.build(requestId=content.get("requestId"), message=item))
