"""Signals the escrow app sends; higher layers connect to them in their AppConfig.ready()."""

from django.dispatch import Signal

# Sent inside the transaction of a state change that the parties' chat thread records as a
# system line (paid, released, refunded, dispute opened...), so the line commits, and is
# announced, with the change. The chat app writes it (chat.apps). kwargs: transaction_id,
# content.
transaction_system_line = Signal()
