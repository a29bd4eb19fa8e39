"""Notification delivery jobs: push (FCM) and e-mail, after commit, retried with backoff.

Each job claims its channel on the row with a conditional update before sending, so a task
delivered twice (Celery is at-least-once) pushes or mails once.
"""

from __future__ import annotations

import json
import logging

from celery import shared_task
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Device
from biddt.i18n import for_user_language
from notifications import services
from notifications.models import EMAIL_TYPES, Notification
from notifications.push import PushMessage, TransientPushError, get_backend
from notifications.selectors import notification_preference

logger = logging.getLogger(__name__)
RETRY = {"max_retries": 6}


def _backoff(retries: int) -> int:
    return min(5 * 2**retries, 600)


@shared_task(acks_late=True)
def notifications_deliver(notification_ids: list[str]) -> dict[str, str]:
    """Push and e-mail a batch of new notifications (one task per change, not per channel).

    A channel that fails for a transient reason is handed to its own retrying task
    (`notification_push` / `notification_email`, with backoff); the claims make a repeat
    harmless. The rows handled are marked (`delivery_handled_at`); a row this task never
    reached (the process died) is handed over again by `notifications_redeliver`."""
    outcomes = {}
    types = {str(pk): kind for pk, kind in
             Notification.objects.filter(pk__in=notification_ids).values_list("pk", "type")}
    for notification_id in notification_ids:
        if notification_id not in types:
            outcomes[notification_id] = "missing"
            continue
        try:
            push = _push_once(notification_id)
        except TransientPushError:
            notification_push.apply_async(args=[notification_id], countdown=_backoff(0))
            push = "retrying"
        email = "not_emailed"
        if types[notification_id] in EMAIL_TYPES:
            try:
                email = _email_once(notification_id)
            except Exception:  # noqa: BLE001 - provider error: the retrying task takes over
                logger.warning("e-mail of notification %s failed; retrying", notification_id,
                               exc_info=True)
                notification_email.apply_async(args=[notification_id],
                                               countdown=_backoff(0))
                email = "retrying"
        outcomes[notification_id] = f"push {push}, email {email}"
    Notification.objects.filter(pk__in=list(types), delivery_handled_at__isnull=True) \
        .update(delivery_handled_at=timezone.now())
    return outcomes


@shared_task(acks_late=True)
def notifications_redeliver() -> int:
    """Hand notifications whose delivery task was lost back to delivery (beat, every minute);
    returns how many."""
    return services.notifications_requeue_unhandled()


@shared_task(bind=True, acks_late=True, **RETRY)
def notification_push(self, notification_id: str) -> str:
    try:
        return _push_once(notification_id)
    except TransientPushError as exc:
        raise self.retry(exc=exc, countdown=_backoff(self.request.retries)) from exc


def _push_once(notification_id: str) -> str:
    """Push one notification unless done or unwanted; TransientPushError: nothing sent,
    the claim is released, so a retry can send."""
    notification = Notification.objects.filter(pk=notification_id).first()
    if notification is None:
        return "missing"
    if not notification_preference(user_id=notification.user_id).wants_push(notification.type):
        return "disabled"
    tokens = list(Device.objects.filter(user_id=notification.user_id)
                  .values_list("token", flat=True))
    if not tokens:
        return "no_devices"
    claimed = Notification.objects.filter(pk=notification.pk, push_claimed_at__isnull=True) \
        .update(push_claimed_at=timezone.now())
    if not claimed:
        return "already_sent"
    data = {"type": notification.type, "notification_id": str(notification.pk)}
    data.update({k: v if isinstance(v, str) else json.dumps(v)
                 for k, v in notification.data.items()})
    try:
        results = get_backend().send(tokens, PushMessage(notification.title, notification.body,
                                                         data))
    except TransientPushError:
        # Nothing was delivered: release the claim so the retry can send.
        Notification.objects.filter(pk=notification.pk).update(push_claimed_at=None)
        raise
    dead = [r.token for r in results if r.dead]
    if dead:
        Device.objects.filter(user_id=notification.user_id, token__in=dead).delete()
        logger.info("dropped %d dead push token(s)", len(dead))
    return f"sent {sum(r.ok for r in results)}/{len(results)}"


@shared_task(bind=True, acks_late=True, **RETRY)
def notification_email(self, notification_id: str) -> str:
    try:
        return _email_once(notification_id)
    except Exception as exc:  # noqa: BLE001 - provider errors are retried with backoff
        raise self.retry(exc=exc, countdown=_backoff(self.request.retries)) from exc


def _email_once(notification_id: str) -> str:
    """Mail one notification unless done or unwanted; a provider error releases the claim
    and is raised."""
    notification = Notification.objects.select_related("user").filter(pk=notification_id).first()
    if notification is None:
        return "missing"
    user = notification.user
    if not user.email:
        return "no_email"
    if not notification_preference(user_id=user.pk).wants_email(notification.type):
        return "disabled"
    claimed = Notification.objects.filter(pk=notification.pk, email_claimed_at__isnull=True) \
        .update(email_claimed_at=timezone.now())
    if not claimed:
        return "already_sent"
    context = {"notification": notification, "user": user}
    with for_user_language(user.language):  # the recipient's language, not the worker's
        mail = EmailMultiAlternatives(
            subject=_("Biddt: %(title)s") % {"title": notification.title},
            body=render_to_string("email/notification.txt", context),
            from_email=settings.DEFAULT_FROM_EMAIL, to=[user.email],
        )
        mail.attach_alternative(render_to_string("email/notification.html", context),
                                "text/html")
    try:
        mail.send()
    except Exception:
        Notification.objects.filter(pk=notification.pk).update(email_claimed_at=None)
        raise
    return "sent"
