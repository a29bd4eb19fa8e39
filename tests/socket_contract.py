"""What the server sends on `/ws/` must validate against `GET /v1/asyncapi.json` (the document
generated from biddt.socket_messages). The event fixtures call `server_message_errors` on every
message they capture, so a payload that drifts from its declaration fails the test that sent it.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from jsonschema import Draft7Validator, FormatChecker


@cache
def _validators() -> dict[str, Draft7Validator]:
    from biddt.socket_messages import asyncapi_document

    document = asyncapi_document()
    validators = {}
    for ref in document["operations"]["serverSends"]["messages"]:
        name = ref["$ref"].rsplit("/", 1)[-1]
        message = document["components"]["messages"][name]
        Draft7Validator.check_schema(message["payload"])
        validators[message["name"]] = Draft7Validator(message["payload"],
                                                      format_checker=FormatChecker())
    return validators


def server_message_errors(payload: Any) -> list[str]:
    """Why `payload` is not a server → client message of the document ([] when it is)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
        return [f"not a message: {payload!r}"]
    validator = _validators().get(payload["type"])
    if validator is None:
        return [f"undeclared server message type {payload['type']!r}"]
    return [f"{payload['type']}: {'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(payload)]


def assert_server_message(payload: Any) -> None:
    errors = server_message_errors(payload)
    assert not errors, errors
