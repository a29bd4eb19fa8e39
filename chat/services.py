"""Chat writes: buyer-seller messages on a transaction, read receipts, system messages.

Messages are rows first, socket events second (after commit): `new_message` to the
transaction's room `txn.<id>`, and a `new_message` notification to the other party.
"""

from __future__ import annotations

import unicodedata
import uuid

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework.exceptions import Throttled

from accounts.policies import ensure_active
from accounts.selectors import user_languages
from biddt.errors import invalid
from biddt.events import send_to_group_on_commit
from biddt.i18n import for_user_language
from biddt.images import InvalidImage, image_clean
from chat.messages import MESSAGES_READ, NEW_MESSAGE
from chat.models import Message
from chat.payloads import MessageSerializer
from escrow.models import Transaction
from escrow.selectors import transaction_for
from notifications.services import notify

MAX_LENGTH = 2000


def transaction_group(transaction_id) -> str:
    """The channel-layer group of a transaction's chat thread (both parties' sockets)."""
    return f"txn.{transaction_id}"


txn_group = transaction_group  # the old name, for code written against it


def content_clean(raw: str) -> str:
    """Drop control characters (keeping newlines and tabs) and surrounding blanks."""
    text = "".join(ch for ch in raw if ch in "\n\t" or unicodedata.category(ch) != "Cc")
    text = "".join(ch for ch in text if unicodedata.category(ch) not in {"Cf", "Co", "Cs"}
                   or ch in "\u200d")  # keep the emoji joiner
    return text.strip()


def message_flood_check(*, user_id) -> None:
    """At most `BIDDT_CHAT_MESSAGES_PER_MINUTE` messages a minute per user, REST and socket."""
    limit = settings.BIDDT_CHAT_MESSAGES_PER_MINUTE
    key = f"chat-flood:{user_id}:{int(timezone.now().timestamp() // 60)}"
    cache.add(key, 0, timeout=120)
    try:
        count = cache.incr(key)
    except ValueError:  # evicted between add and incr
        cache.set(key, 1, timeout=120)
        count = 1
    if count is None:  # the cache is down: fail open rather than refuse every message
        return
    if count > limit:
        raise Throttled(wait=60 - int(timezone.now().timestamp()) % 60,
                        detail=str(_("You are sending messages too fast.")))


def message_item(message: Message) -> dict:
    return MessageSerializer(message).data


def _announce(message: Message, txn: Transaction) -> None:
    item = message_item(message)
    send_to_group_on_commit(transaction_group(txn.pk), {
        "type": "ws.event",
        "payload": NEW_MESSAGE.build(transactionId=str(txn.pk), message=item),
    })
    if message.sender_id is not None:
        recipient = txn.seller_id if message.sender_id == txn.buyer_id else txn.buyer_id
        preview = (message.content[:120] if message.message_type == Message.Type.TEXT
                   else _("Photo"))
        notify(user_id=recipient, type="new_message", title=_("New message"), body=preview,
               data={"transaction_id": str(txn.pk), "message_id": str(message.pk)},
               dedupe_key=f"message:{message.pk}")


def message_post(*, user, transaction_id, content: str = "", image=None) -> Message:
    """Post a text (≤ 2000 characters) or image message as the buyer or seller.

    Raises Transaction.DoesNotExist for anyone else (the API answers 404).
    """
    ensure_active(user)
    txn = transaction_for(user=user, transaction_id=transaction_id)
    text = content_clean(content or "")
    if len(text) > MAX_LENGTH:
        raise invalid("max_length", _("Messages are at most %(max)d characters.")
                      % {"max": MAX_LENGTH},
                      attr="content")
    if image is None and not text:
        raise invalid("blank", _("Write something or attach an image."), attr="content")
    message_flood_check(user_id=user.pk)
    message = Message(id=uuid.uuid4(), transaction=txn, sender=user, content=text,
                      message_type=Message.Type.IMAGE if image is not None else Message.Type.TEXT)
    if image is not None:
        try:
            clean = image_clean(image, max_bytes=10 * 1024 * 1024, max_side=1600,
                                name=message.id.hex)
        except InvalidImage as exc:
            raise invalid("invalid_image", str(exc), attr="image") from None
    with transaction.atomic():
        if image is not None:
            message.image.save(clean.content.name, clean.content, save=False)
        try:
            message.save()
        except Exception:
            if image is not None:  # a failed insert leaves no orphan file
                message.image.storage.delete(message.image.name)
            raise
        _announce(message, txn)
    return message


def message_system_post(*, transaction_id, content: str) -> Message:
    """A system line in the thread (paid, released, dispute opened); call inside the change's
    transaction so it commits, and is announced, with it.

    `content` may be a lazy text: it is written in the language of the thread's two parties,
    or in both (the seller's first) when they differ, since both read the same line."""
    txn = Transaction.objects.get(pk=transaction_id)
    languages = user_languages([txn.seller_id, txn.buyer_id])
    lines = []
    for language in dict.fromkeys([languages.get(txn.seller_id), languages.get(txn.buyer_id)]):
        with for_user_language(language):
            lines.append(str(content))
    content = "\n".join(dict.fromkeys(lines))
    message = Message.objects.create(transaction=txn, sender=None, content=content[:MAX_LENGTH],
                                     message_type=Message.Type.SYSTEM)
    _announce(message, txn)
    return message


def transaction_system_line_post(*, transaction_id, content: str, **_signal) -> Message:
    """`escrow.signals.transaction_system_line` (connected in chat.apps)."""
    return message_system_post(transaction_id=transaction_id, content=content)


def messages_mark_read(*, user, transaction_id) -> int:
    """Mark the other party's messages read; the other side sees `messages_read` live."""
    ensure_active(user)
    txn = transaction_for(user=user, transaction_id=transaction_id)
    now = timezone.now()
    with transaction.atomic():
        count = (Message.objects.filter(transaction=txn, read_at__isnull=True)
                 .exclude(sender=user).update(read_at=now))
        if count:
            send_to_group_on_commit(transaction_group(txn.pk), {
                "type": "ws.event",
                "payload": MESSAGES_READ.build(
                    transactionId=str(txn.pk), readerId=str(user.pk),
                    readAt=now.isoformat()),
            })
    return count
