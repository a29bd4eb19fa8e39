"""Mobile push backends: Firebase Cloud Messaging (production), console, in-memory (tests).

`BIDDT_PUSH_BACKEND` names the class. A backend sends one notification to a user's device
tokens and says which tokens FCM reported dead (unregistered app, token of another sender),
so the caller can drop them.
"""

from __future__ import annotations

import logging
import threading
import warnings
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PushMessage:
    title: str
    body: str
    data: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PushResult:
    token: str
    ok: bool
    dead: bool = False
    error: str = ""


class TransientPushError(Exception):
    """The provider is unavailable; the task retries with backoff."""


class ConsoleBackend:
    def send(self, tokens: list[str], message: PushMessage) -> list[PushResult]:
        logger.info("push to %d device(s): %s", len(tokens), message.title)
        return [PushResult(token=t, ok=True) for t in tokens]


class InMemoryBackend:
    outbox: list[tuple[list[str], PushMessage]] = []
    dead_tokens: set[str] = set()
    _lock = threading.Lock()

    def send(self, tokens: list[str], message: PushMessage) -> list[PushResult]:
        with self._lock:
            type(self).outbox.append((list(tokens), message))
        return [PushResult(token=t, ok=t not in self.dead_tokens, dead=t in self.dead_tokens)
                for t in tokens]


class FCMBackend:
    """firebase-admin's HTTP v1 API. Credentials from FIREBASE_CREDENTIALS_FILE (a service
    account JSON), else Application Default Credentials."""

    APP_NAME = "biddt"

    def __init__(self, app: Any = None) -> None:
        self.app = app or self._default_app()

    @classmethod
    def _default_app(cls):
        import firebase_admin
        from firebase_admin import credentials

        try:
            return firebase_admin.get_app(cls.APP_NAME)
        except ValueError:
            cred = (credentials.Certificate(settings.FIREBASE_CREDENTIALS_FILE)
                    if settings.FIREBASE_CREDENTIALS_FILE else credentials.ApplicationDefault())
            return firebase_admin.initialize_app(cred, name=cls.APP_NAME)

    @staticmethod
    def _messages(tokens: list[str], message: PushMessage) -> list:
        from firebase_admin import messaging

        return [
            messaging.Message(
                token=token,
                notification=messaging.Notification(title=message.title, body=message.body),
                data={k: str(v) for k, v in message.data.items()},
                android=messaging.AndroidConfig(priority="high"),
                apns=messaging.APNSConfig(payload=messaging.APNSPayload(
                    aps=messaging.Aps(sound="default"))),
            )
            for token in tokens
        ]

    def send(self, tokens: list[str], message: PushMessage) -> list[PushResult]:
        from firebase_admin import exceptions, messaging

        if not tokens:
            return []
        # The apps register FCM registration tokens; firebase-admin 7 marks `token=` deprecated
        # in favour of installation ids (`fid=`), which the apps don't send yet.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Message.token is deprecated",
                                    DeprecationWarning)
            batch = self._messages(tokens, message)
        try:
            response = messaging.send_each(batch, app=self.app)
        except exceptions.FirebaseError as exc:
            raise TransientPushError(str(exc)) from exc
        results = []
        transient = 0
        for token, item in zip(tokens, response.responses, strict=True):
            if item.success:
                results.append(PushResult(token=token, ok=True))
                continue
            exc = item.exception
            dead = isinstance(exc, messaging.UnregisteredError | messaging.SenderIdMismatchError)
            if isinstance(exc, exceptions.UnavailableError | exceptions.InternalError):
                transient += 1
            results.append(PushResult(token=token, ok=False, dead=dead, error=str(exc)))
        if transient and transient == len(tokens):
            raise TransientPushError("FCM unavailable for every token")
        return results


def get_backend():
    return import_string(settings.BIDDT_PUSH_BACKEND)()
