"""Escrow socket messages, declared once (biddt.socket_messages)."""

from __future__ import annotations

from biddt.socket_messages import UUID, declare
from escrow.models import Transaction

TRANSACTION_UPDATE = declare(
    "transaction_update", "server", "A transaction of the socket's user changed status.",
    fields={"transactionId": UUID, "status": {"enum": list(Transaction.Status.values)}},
    required=("transactionId", "status"))
