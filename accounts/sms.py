"""SMS backends: console (development), Twilio (production), in-memory (tests).

`BIDDT_SMS_BACKEND` names the class. Backends receive the plain number only at send time; it
is never logged (the console backend prints it to stdout for the developer, not to logs).
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass

from django.conf import settings
from django.utils.module_loading import import_string


@dataclass(frozen=True)
class SentSMS:
    to: str
    body: str


class BaseBackend:
    def send(self, *, to: str, body: str) -> None:  # pragma: no cover - interface
        raise NotImplementedError


class ConsoleBackend(BaseBackend):
    def send(self, *, to: str, body: str) -> None:
        sys.stdout.write(f"[sms to {to}] {body}\n")
        sys.stdout.flush()


class InMemoryBackend(BaseBackend):
    """Keeps messages in `outbox` for tests."""

    outbox: list[SentSMS] = []
    _lock = threading.Lock()

    def send(self, *, to: str, body: str) -> None:
        with self._lock:
            type(self).outbox.append(SentSMS(to=to, body=body))


class TwilioBackend(BaseBackend):
    def __init__(self) -> None:
        from twilio.rest import Client

        if not (settings.TWILIO_ACCOUNT_SID and settings.TWILIO_AUTH_TOKEN):
            raise RuntimeError("TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are required")
        self.client = Client(settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN)

    def send(self, *, to: str, body: str) -> None:
        kwargs = {"to": to, "body": body}
        if settings.TWILIO_MESSAGING_SERVICE_SID:
            kwargs["messaging_service_sid"] = settings.TWILIO_MESSAGING_SERVICE_SID
        else:
            kwargs["from_"] = settings.TWILIO_FROM_NUMBER
        self.client.messages.create(**kwargs)


def get_backend() -> BaseBackend:
    return import_string(settings.BIDDT_SMS_BACKEND)()
