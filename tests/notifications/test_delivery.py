"""Push (FCM over a fake HTTP transport), e-mail, preferences, once per event."""

from __future__ import annotations

import json
from datetime import timedelta

import firebase_admin
import pytest
import requests
from django.core import mail
from django.test import TestCase
from django.utils import timezone
from firebase_admin import credentials, messaging
from google.auth.credentials import Credentials as GoogleCredentials

from accounts.models import Device
from notifications import tasks
from notifications.models import Notification
from notifications.push import FCMBackend, InMemoryBackend
from notifications.services import notify
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _outbox():
    InMemoryBackend.outbox.clear()
    InMemoryBackend.dead_tokens.clear()
    yield
    InMemoryBackend.dead_tokens.clear()


def deliver(**kwargs) -> Notification | None:
    """notify() and run its after-commit tasks (Celery is eager in tests)."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        return notify(**kwargs)


def device(user, token, platform="android"):
    return Device.objects.create(user=user, token=token, token_index=f"idx-{token}",
                                 platform=platform)


def test_push_goes_to_every_device_with_the_payload(user):
    device(user, "tok-a")
    device(user, "tok-b", "ios")
    n = deliver(user_id=user.pk, type="outbid", title="You were outbid", body="Road bike",
                data={"listing_id": "L1", "current_price_cents": 2500})
    (tokens, message), = InMemoryBackend.outbox
    assert sorted(tokens) == ["tok-a", "tok-b"]
    assert message.title == "You were outbid" and message.body == "Road bike"
    assert message.data == {"type": "outbid", "notification_id": str(n.pk),
                            "listing_id": "L1", "current_price_cents": "2500"}


def test_a_task_run_twice_pushes_once(user):
    device(user, "tok-a")
    n = deliver(user_id=user.pk, type="won", title="You won")
    assert tasks.notification_push.apply(args=[str(n.pk)]).get() == "already_sent"
    assert len(InMemoryBackend.outbox) == 1


def test_same_event_notified_twice_is_one_notification(user):
    device(user, "tok-a")
    deliver(user_id=user.pk, type="won", title="You won", dedupe_key="won:L1")
    deliver(user_id=user.pk, type="won", title="You won", dedupe_key="won:L1")
    assert Notification.objects.count() == 1
    assert len(InMemoryBackend.outbox) == 1


def test_dead_tokens_are_dropped(user):
    device(user, "alive")
    device(user, "dead")
    InMemoryBackend.dead_tokens.add("dead")
    deliver(user_id=user.pk, type="outbid", title="x")
    assert list(Device.objects.values_list("token", flat=True)) == ["alive"]


def test_preferences_switch_push_and_email(auth_api, user):
    device(user, "tok")
    user.set_email("me@example.com")
    user.save()
    # when the user turns outbid pushes and won e-mails off
    response = auth_api.patch("/v1/users/me/notification-settings",
                              {"push": {"outbid": False}, "email": {"won": False}},
                              format="json")
    assert response.status_code == 200
    assert response.json()["push"]["outbid"] is False
    assert response.json()["push"]["won"] is True
    assert set(response.json()["email"]) == {"won", "payment_received", "escrow_released"}
    # then those channels stay quiet, the others still deliver
    deliver(user_id=user.pk, type="outbid", title="Outbid")
    deliver(user_id=user.pk, type="won", title="Won")
    deliver(user_id=user.pk, type="escrow_released", title="Money released")
    assert [m.title for _t, m in InMemoryBackend.outbox] == ["Won", "Money released"]
    assert [m.subject for m in mail.outbox] == ["Biddt: Money released"]
    assert auth_api.get("/v1/users/me/notification-settings").json() == response.json()


def test_settings_refuse_unknown_values(auth_api):
    response = auth_api.patch("/v1/users/me/notification-settings",
                              {"push": {"outbid": "maybe"}}, format="json")
    assert response.status_code == 400


def test_email_only_for_mail_types_and_users_with_an_address(user):
    deliver(user_id=user.pk, type="payment_received", title="Paid")
    assert mail.outbox == []  # no address
    user.set_email("me@example.com")
    user.save()
    deliver(user_id=user.pk, type="new_message", title="Hi")
    deliver(user_id=user.pk, type="payment_received", title="Paid")
    assert [(m.to, m.subject) for m in mail.outbox] == [(["me@example.com"], "Biddt: Paid")]
    assert "Paid" in mail.outbox[0].alternatives[0][0]


# --- FCM through firebase-admin, with the HTTP transport faked --------------------------------

class _StaticCredentials(GoogleCredentials):
    def __init__(self):
        super().__init__()
        self.token = "test-token"

    def refresh(self, request):
        self.token = "test-token"

    @property
    def expired(self):
        return False

    @property
    def valid(self):
        return True


class _MockCredential(credentials.Base):
    def get_credential(self):
        return _StaticCredentials()


class FakeFCM(requests.adapters.BaseAdapter):
    """Answers FCM v1 `messages:send` calls; tokens in `dead` get UNREGISTERED (404)."""

    def __init__(self, dead=()):
        super().__init__()
        self.dead = set(dead)
        self.requests: list[dict] = []

    def send(self, request, **kwargs):
        body = json.loads(request.body)
        self.requests.append({"url": request.url, "body": body,
                              "auth": request.headers.get("Authorization")})
        response = requests.Response()
        response.request = request
        response.url = request.url
        token = body["message"]["token"]
        if token in self.dead:
            response.status_code = 404
            payload = {"error": {"code": 404, "status": "NOT_FOUND",
                                 "message": "Requested entity was not found.",
                                 "details": [{"@type": "type.googleapis.com/"
                                              "google.firebase.fcm.v1.FcmError",
                                              "errorCode": "UNREGISTERED"}]}}
        else:
            response.status_code = 200
            payload = {"name": f"projects/biddt-test/messages/{len(self.requests)}"}
        response._content = json.dumps(payload).encode()
        response.headers["Content-Type"] = "application/json"
        return response

    def close(self):
        pass


@pytest.fixture
def fcm():
    app = firebase_admin.initialize_app(_MockCredential(), {"projectId": "biddt-test"},
                                        name=f"test-{id(object())}")
    fake = FakeFCM(dead={"gone-token"})
    service = messaging._get_messaging_service(app)
    service._client.session.mount("https://fcm.googleapis.com", fake)
    yield app, fake
    firebase_admin.delete_app(app)


def test_fcm_request_payload_and_dead_token_removal(fcm, user, monkeypatch):
    app, fake = fcm
    monkeypatch.setattr("notifications.tasks.get_backend", lambda: FCMBackend(app=app))
    device(user, "good-token")
    device(user, "gone-token", "ios")
    n = deliver(user_id=user.pk, type="won", title="You won!", body="Road bike",
                data={"listing_id": "L9"})
    # then FCM got one v1 message per token, authenticated, with the notification and data
    assert len(fake.requests) == 2
    sent = {r["body"]["message"]["token"]: r for r in fake.requests}
    good = sent["good-token"]
    assert good["url"] == "https://fcm.googleapis.com/v1/projects/biddt-test/messages:send"
    assert good["auth"] == "Bearer test-token"
    assert good["body"]["message"]["notification"] == {"title": "You won!", "body": "Road bike"}
    assert good["body"]["message"]["data"] == {"type": "won", "notification_id": str(n.pk),
                                               "listing_id": "L9"}
    assert good["body"]["message"]["android"] == {"priority": "high"}
    # and the token FCM called unregistered is gone
    assert list(Device.objects.values_list("token", flat=True)) == ["good-token"]


def test_notify_many_is_one_insert_and_one_delivery_task(user, django_assert_num_queries,
                                                         monkeypatch):
    from notifications.services import Note, notify_many

    other = UserFactory(email="other@example.com")
    device(user, "tok-a")
    device(other, "tok-b")
    queued = []
    monkeypatch.setattr(tasks.notifications_deliver, "apply_async",
                        lambda args=(), kwargs=None, **kw: queued.append(args))
    # when three events are recorded together (an auction's close)
    with TestCase.captureOnCommitCallbacks(execute=True):
        with django_assert_num_queries(1):
            rows = notify_many([
                Note(user_id=user.pk, type="lost", title="Auction ended", dedupe_key="lost:L9"),
                Note(user_id=other.pk, type="won", title="You won", dedupe_key="won:L9"),
                Note(user_id=other.pk, type="outbid", title="Outbid"),
            ])
    # then they are stored, and one task carries all their ids
    assert Notification.objects.count() == 3
    assert queued == [([str(r.pk) for r in rows],)]


def test_notify_many_skips_an_event_already_recorded(user):
    from notifications.services import Note, notify_many

    deliver(user_id=user.pk, type="won", title="You won", dedupe_key="won:L1")
    with TestCase.captureOnCommitCallbacks(execute=True):
        notify_many([Note(user_id=user.pk, type="won", title="You won", dedupe_key="won:L1"),
                     Note(user_id=user.pk, type="lost", title="x", dedupe_key="lost:L2")])
    assert sorted(Notification.objects.values_list("dedupe_key", flat=True)) == [
        "lost:L2", "won:L1"]


def test_batch_delivery_pushes_and_mails_each_once_and_hands_failures_to_retries(
        user, monkeypatch):
    user.email = "me@example.com"
    user.save()
    device(user, "tok-a")
    won = Notification.objects.create(user=user, type="won", title="You won")
    outbid = Notification.objects.create(user=user, type="outbid", title="Outbid")
    retried = []
    monkeypatch.setattr(tasks.notification_push, "apply_async",
                        lambda args=(), **kw: retried.append(("push", args)))
    # when the provider is down for the first push only
    calls = {"n": 0}
    real_send = InMemoryBackend.send

    def flaky(self, tokens, message):
        calls["n"] += 1
        if calls["n"] == 1:
            raise tasks.TransientPushError("unavailable")
        return real_send(self, tokens, message)

    monkeypatch.setattr(InMemoryBackend, "send", flaky)
    ids = [str(won.pk), str(outbid.pk), "00000000-0000-0000-0000-000000000000"]
    outcome = tasks.notifications_deliver.apply(args=[ids]).get()
    # then the failed push went to its own retrying task with its claim released, the rest
    # was sent, `won` was mailed, and an unknown id is reported missing
    assert outcome[str(won.pk)] == "push retrying, email sent"
    assert outcome[str(outbid.pk)].startswith("push sent 1/1, email not_emailed")
    assert outcome[ids[2]] == "missing"
    assert retried == [("push", [str(won.pk)])]
    won.refresh_from_db()
    assert won.push_claimed_at is None and won.email_claimed_at is not None
    assert len(mail.outbox) == 1
    # and a second run of the same batch sends nothing twice
    again = tasks.notifications_deliver.apply(args=[ids]).get()
    assert again[str(outbid.pk)] == "push already_sent, email not_emailed"
    assert len(mail.outbox) == 1


# --- Lost hand-offs: notifications_redeliver ------------------------------------------------

def _unhandled(user, *, age: timedelta, key: str) -> Notification:
    row = Notification.objects.create(user=user, type="won", title="You won", dedupe_key=key)
    Notification.objects.filter(pk=row.pk).update(created_at=timezone.now() - age)
    return row


def test_delivery_marks_every_row_it_handled_whatever_the_outcome(user):
    other = UserFactory()  # no device: nothing to push, still handled
    device(user, "tok-a")
    rows = [Notification.objects.create(user=u, type="won", title="t") for u in (user, other)]
    assert Notification.objects.filter(delivery_handled_at__isnull=False).count() == 0
    outcomes = tasks.notifications_deliver([str(r.pk) for r in rows] + [
        "00000000-0000-0000-0000-000000000000"])
    assert outcomes[str(rows[0].pk)].startswith("push sent")
    assert outcomes[str(rows[1].pk)].startswith("push no_devices")
    assert outcomes["00000000-0000-0000-0000-000000000000"] == "missing"
    assert Notification.objects.filter(delivery_handled_at__isnull=True).count() == 0


def test_redeliver_pushes_what_a_lost_task_left_once_and_gives_up_on_stale_rows(
        user, settings, caplog):
    settings.BIDDT_NOTIFY_REDELIVER_AFTER_SECONDS = 300
    settings.BIDDT_NOTIFY_REDELIVER_HOURS = 24
    device(user, "tok-a")
    # given rows whose delivery task was lost: one past the grace period, one still within
    # it (its task may yet run), one a day old, and one already handled
    lost = _unhandled(user, age=timedelta(minutes=10), key="won:lost")
    recent = _unhandled(user, age=timedelta(minutes=1), key="won:recent")
    stale = _unhandled(user, age=timedelta(hours=25), key="won:stale")
    handled = _unhandled(user, age=timedelta(minutes=10), key="won:handled")
    Notification.objects.filter(pk=handled.pk).update(delivery_handled_at=timezone.now())

    # when the sweep runs (eager Celery: the delivery runs at once)
    with caplog.at_level("WARNING", logger="notifications.services"):
        assert tasks.notifications_redeliver() == 1
    # then the lost one is pushed and handled; the recent one waits; the stale one is given
    # up (handled, logged, not pushed)
    assert [m.data["notification_id"] for _, m in InMemoryBackend.outbox] == [str(lost.pk)]
    states = dict(Notification.objects.values_list("pk", "delivery_handled_at"))
    assert states[lost.pk] is not None and states[stale.pk] is not None
    assert states[recent.pk] is None
    assert "1 notifications were never delivered" in caplog.text

    # and a second sweep, or a duplicate task, sends nothing again
    assert tasks.notifications_redeliver() == 0
    tasks.notifications_deliver([str(lost.pk)])
    assert len(InMemoryBackend.outbox) == 1


def test_redeliver_queues_in_chunks(user, settings, monkeypatch):
    from notifications import services

    settings.BIDDT_NOTIFY_REDELIVER_AFTER_SECONDS = 0
    rows = Notification.objects.bulk_create(
        [Notification(user=user, type="lost", title="t") for _ in range(250)])
    queued = []
    monkeypatch.setattr(tasks.notifications_deliver, "delay", queued.append)
    assert services.notifications_requeue_unhandled() == 250
    assert [len(chunk) for chunk in queued] == [100, 100, 50]
    assert sorted(sum(queued, [])) == sorted(str(r.pk) for r in rows)


def test_the_redeliver_sweep_is_scheduled(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["notifications-redeliver"]
    assert entry["task"] == "notifications.tasks.notifications_redeliver"


def test_the_migration_marks_rows_from_before_the_marker_handled(user):
    import importlib

    from django.apps import apps

    migration = importlib.import_module("notifications.migrations.0003_delivery_handled_at")
    old = _unhandled(user, age=timedelta(days=3), key="won:old")
    migration.mark_existing_delivered(apps, None)
    old.refresh_from_db()
    assert old.delivery_handled_at == old.created_at
    # so the sweep leaves them alone
    assert tasks.notifications_redeliver() == 0
