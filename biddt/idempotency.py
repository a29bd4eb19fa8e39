"""`Idempotency-Key` for POSTs that create bids or money, and `requestId` for socket bids.

The first answer to (user, scope, key) is stored in `IdempotencyRecord` and replayed for 24
hours; a retry creates nothing new. The record is inserted *before* the work and in the same
transaction, so of two concurrent first tries the second blocks on the unique index until the
first commits, then replays its answer (or, if the first rolled back, does the work itself).

Only successful answers are stored: a refused request (409, 400) rolls back with its record,
so its retry is evaluated afresh against the current state. The same key with a different
request body is refused with 422 `idempotency_key_reused` (as the IETF
Idempotency-Key draft recommends for a reused key with another payload).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import status
from rest_framework.exceptions import APIException
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from biddt.core.models import IdempotencyRecord
from biddt.errors import invalid

HEADER = "Idempotency-Key"
TTL = timedelta(hours=24)
MAX_KEY_LENGTH = 255


class IdempotencyKeyReused(APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = _("This Idempotency-Key was already used with a different request.")
    default_code = "idempotency_key_reused"


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    status: int
    body: Any
    replayed: bool


def fingerprint(*parts: Any) -> str:
    """A stable hash of what identifies the request (method, path, body)."""
    raw = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(raw.encode()).hexdigest()


def _claim(*, user, scope: str, key: str, request_fingerprint: str
           ) -> tuple[IdempotencyRecord, bool]:
    """Insert the record, or lock and return the existing one (`fresh` False)."""
    try:
        with transaction.atomic():
            record = IdempotencyRecord.objects.create(
                user=user, scope=scope, key=key, request_fingerprint=request_fingerprint)
        return record, True
    except IntegrityError:
        pass
    record = (IdempotencyRecord.objects.select_for_update(of=("self",), no_key=True)
              .get(user=user, scope=scope, key=key))
    if record.created_at <= timezone.now() - TTL or record.response_status is None:
        # Expired: the key may be used again as if new.
        record.request_fingerprint = request_fingerprint
        record.response_status = record.response_body = None
        record.created_at = timezone.now()
        record.save(update_fields=["request_fingerprint", "response_status", "response_body",
                                   "created_at"])
        return record, True
    return record, False


def _is_plain_json(value: Any) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_plain_json(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_is_plain_json(v) for v in value)
    return value is None or type(value) in (str, int, bool)


def as_json(body: Any) -> Any:
    """The body as a client reads it once rendered (what a replay returns).

    `work` runs in this transaction, so everything done here happens while its row locks
    are held (a bid: the listing's, that every other bid waits for). A body made of JSON's
    own types (the bid's 201 body) is kept as it is; only others (serializer data with
    dates, decimals, UUIDs) are rendered and read back."""
    if _is_plain_json(body):
        return body
    return json.loads(JSONRenderer().render(body) or b"null")


def run_once(*, user, scope: str, key: str, request_fingerprint: str,
             work: Callable[[], tuple[int, Any]]) -> StoredAnswer:
    """Run `work` once per (user, scope, key) and return its `(status, body)`, or the stored one.

    Opens the transaction that `work` runs in (its own `atomic` blocks become savepoints and
    its after-commit side effects wait for the record to commit with it). `body` must be
    JSON-renderable (serializer data). Raises `IdempotencyKeyReused` on a different request.
    """
    with transaction.atomic():
        record, fresh = _claim(user=user, scope=scope, key=key,
                               request_fingerprint=request_fingerprint)
        if not fresh:
            if record.request_fingerprint != request_fingerprint:
                raise IdempotencyKeyReused()
            return StoredAnswer(record.response_status, record.response_body, True)
        answer_status, body = work()
        body = as_json(body)
        IdempotencyRecord.objects.filter(pk=record.pk).update(
            response_status=answer_status, response_body=body)
        return StoredAnswer(answer_status, body, False)


def idempotent_response(request: Request, *, scope: str,
                        work: Callable[[], tuple[int, Any]]) -> Response:
    """The view side: honour an `Idempotency-Key` header if the client sent one."""
    key = request.headers.get(HEADER)
    if key is None:
        answer_status, body = work()
        return Response(body, status=answer_status)
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH:
        raise invalid("invalid_idempotency_key",
                      _("%(header)s must be 1 to %(max)d characters.")
                      % {"header": HEADER, "max": MAX_KEY_LENGTH})
    answer = run_once(user=request.user, scope=scope, key=key,
                      request_fingerprint=fingerprint(request.method, request.path, request.data),
                      work=work)
    response = Response(answer.body, status=answer.status)
    if answer.replayed:
        response["Idempotent-Replayed"] = "true"
    return response


def purge_expired() -> int:
    """Delete records past their 24 h (idempotent; for a periodic job)."""
    deleted, _by_model = IdempotencyRecord.objects.filter(
        created_at__lt=timezone.now() - TTL).delete()
    return deleted
