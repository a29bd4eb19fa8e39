from django.contrib import admin

from biddt.staff import ReadOnlyAdminMixin, ReadOnlyInline
from chat.models import Message
from escrow.admin import TransactionAdmin
from escrow.console import transaction_chat_rows


@admin.register(Message)
class MessageAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Messages are the parties' record (and a dispute's evidence): read-only."""

    list_display = ["transaction", "sender", "message_type", "created_at", "read_at"]
    list_filter = ["message_type", "created_at"]
    search_fields = ["transaction__id", "content"]
    raw_id_fields = ["transaction", "sender"]
    readonly_fields = ["transaction", "sender", "message_type", "content", "image", "read_at",
                       "created_at"]


# The escrow console's dispute views show the thread; escrow (a lower layer) declares where.

class MessageThreadInline(ReadOnlyInline):
    """The buyer-seller thread, read-only; shown only while a dispute is open (staff read
    private messages only when they have to judge a dispute)."""

    model = Message
    ordering = ["created_at"]
    fields = ["created_at", "sender", "message_type", "content", "image"]
    verbose_name_plural = "message thread (visible while a dispute is open)"


TransactionAdmin.open_dispute_inlines.append(MessageThreadInline)


def _console_chat_rows(*, transaction, **_signal) -> list:
    """escrow.console.transaction_chat_rows: the chat of a sale for the console's timeline."""
    rows = (Message.objects.filter(transaction=transaction).select_related("sender")
            .order_by("created_at"))
    return [(m.created_at, m.sender, m.content, m.image) for m in rows]


transaction_chat_rows.connect(_console_chat_rows, dispatch_uid="chat-console-rows")
