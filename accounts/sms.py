"""SMS backends: console (development), Twilio (production), in-memory (tests).

`BIDDT_SMS_BACKEND` names the class. Backends receive the plain number only at send time;
neither the number nor the code is ever logged or printed. In development, log in with the
numbers of `BIDDT_TEST_PHONE_NUMBERS` (`make run` sets the demo list): they get a fixed code
and no SMS at all.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from django.conf import settings
from django.utils.module_loading import import_string

from biddt.crypto import log_hash
from biddt.logging import redact_codes

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SentSMS:
    to: str
    body: str


class BaseBackend:
    def send(self, *, to: str, body: str) -> None:  # pragma: no cover - interface
        raise NotImplementedError


class ConsoleBackend(BaseBackend):
    """Says that an SMS would have gone out, without its number or code: the worker's output
    is a log like any other (and in a Celery worker, stdout is redirected into logging)."""

    def send(self, *, to: str, body: str) -> None:
        logger.info("sms (console backend, not sent) to phone#%s: %s", log_hash(to),
                    redact_codes(body))


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
