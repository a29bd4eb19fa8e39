"""The one definition of every `/ws/` message (STYLE.md rule 14).

Each app declares its message types in its own `messages.py` with `declare(...)`: the type,
its direction (`client` → server or `server` → client), a summary and a JSON schema of each
field. The payloads the server sends are built from those declarations (`Message.build`), the
AsyncAPI 3.0 document of `/ws/` (`GET /v1/asyncapi.json`) is generated from them
(`asyncapi_document`), and the tests validate every message the server sends against that
document. This core module declares the envelope messages it owns (`ping`, `pong`, `ack`,
`error`); it imports no app: `discover()` imports each installed app's `messages` module.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Literal

from django.utils.module_loading import autodiscover_modules

Direction = Literal["client", "server"]
Schema = dict[str, Any]

UUID: Schema = {"type": "string", "format": "uuid"}
DATETIME: Schema = {"type": "string", "format": "date-time"}
INT: Schema = {"type": "integer"}
NULLABLE_INT: Schema = {"type": ["integer", "null"]}
STRING: Schema = {"type": "string"}
REQUEST_ID: Schema = {"type": ["string", "integer", "null"],
                      "description": "The client's id of the request, echoed in the answer."}


@dataclass(frozen=True)
class Message:
    type: str
    direction: Direction
    summary: str
    fields: dict[str, Schema]
    required: tuple[str, ...]
    # False for messages whose extra keys are documented elsewhere (`error` carries a
    # code-specific field such as `minimumNextBidCents`; `ack` answers each request type).
    closed: bool = True
    description: str = ""
    tags: tuple[str, ...] = field(default=())

    @property
    def name(self) -> str:
        return f"{self.direction}.{self.type}"

    def schema(self) -> Schema:
        return {
            "type": "object",
            "properties": {"type": {"const": self.type}, **copy.deepcopy(self.fields)},
            "required": ["type", *self.required],
            "additionalProperties": not self.closed,
        }

    def build(self, **values: Any) -> dict[str, Any]:
        """The payload `{type, **values}`: only declared fields, every required one."""
        unknown = set(values) - set(self.fields)
        if unknown and self.closed:
            raise TypeError(f"{self.type}: undeclared fields {sorted(unknown)}")
        missing = set(self.required) - set(values)
        if missing:
            raise TypeError(f"{self.type}: missing fields {sorted(missing)}")
        return {"type": self.type, **values}


REGISTRY: dict[str, Message] = {}


def declare(type: str, direction: Direction, summary: str, *,  # noqa: A002 - the wire name
            fields: dict[str, Schema] | None = None, required: tuple[str, ...] = (),
            closed: bool = True, description: str = "") -> Message:
    message = Message(type=type, direction=direction, summary=summary, fields=fields or {},
                      required=required, closed=closed, description=description)
    existing = REGISTRY.get(message.name)
    if existing is not None and existing != message:
        raise ValueError(f"socket message {message.name} declared twice, differently")
    REGISTRY[message.name] = message
    return message


def nullable(schema: Schema) -> Schema:
    return {"oneOf": [{"type": "null"}, schema]}


def obj(properties: dict[str, Schema], *, required: tuple[str, ...] | None = None,
        closed: bool = False, description: str = "") -> Schema:
    """An embedded object (a REST representation): the keys clients rely on, all required
    unless told; more keys may come (the REST representation is the reference)."""
    schema: Schema = {"type": "object", "properties": properties,
                      "required": list(properties if required is None else required),
                      "additionalProperties": not closed}
    if description:
        schema["description"] = description
    return schema


def discover() -> dict[str, Message]:
    """Every declared message: imports each installed app's `messages` module (once)."""
    autodiscover_modules("messages")
    return REGISTRY


# --- The envelope's own messages -----------------------------------------------------------

PING = declare("ping", "client", "Keep-alive; answered with `pong`.")
PONG = declare("pong", "server", "The answer to `ping`.")
ERROR = declare(
    "error", "server", "A refused message: the REST error code and detail.",
    fields={"code": STRING, "detail": STRING, "requestId": REQUEST_ID,
            "minimumNextBidCents": {"type": "integer",
                                    "description": "With `bid_too_low`: the lowest amount "
                                                   "accepted now."},
            "retryAfter": {"type": "integer", "description": "With `throttled`: seconds."}},
    required=("code", "detail"), closed=False,
    description="`code` is the REST error code of the same refusal; a code may add a "
                "field of its own, as `bid_too_low` adds `minimumNextBidCents`.")
ACK = declare(
    "ack", "server", "The answer to a `bid`, `message`, `join_chat` or `unsubscribe`.",
    fields={"requestId": REQUEST_ID,
            "bid": {"type": "object", "description": "With `bid`: the 201 body of "
                    "`POST /v1/listings/{id}/bids`."},
            "message": {"type": "object", "description": "With `message`: the chat message."},
            "listingId": UUID, "transactionId": UUID},
    required=("requestId",))


# --- The AsyncAPI document -----------------------------------------------------------------

def asyncapi_document(*, server_url: str = "") -> dict[str, Any]:
    """AsyncAPI 3.0 of `/ws/`, generated from the registry: one channel, a `receive`
    operation for the client's messages and a `send` operation for the server's."""
    messages = discover()
    components = {}
    for name, message in sorted(messages.items()):
        entry: dict[str, Any] = {"name": message.type, "title": message.type,
                                 "summary": message.summary, "payload": message.schema()}
        if message.description:
            entry["description"] = message.description
        components[_component(name)] = entry
    channel_messages = {_component(name): {"$ref": f"#/components/messages/{_component(name)}"}
                        for name in sorted(messages)}

    def refs(direction: str) -> list[dict[str, str]]:
        return [{"$ref": f"#/channels/ws/messages/{_component(name)}"}
                for name, message in sorted(messages.items()) if message.direction == direction]

    document: dict[str, Any] = {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Biddt live socket",
            "version": "1",
            "description": (
                "`/ws/`: JSON text frames. Authenticate with `Authorization: Bearer <access>` "
                "or `?token=<access>`; anonymous sockets may only `subscribe`. Room events "
                "that move a listing's `seq` carry the new `seq`: a gap means a lost event, "
                "so the client re-reads `GET /v1/listings/{id}` and drops buffered events "
                "whose `seq` is not above the listing's."),
        },
        "channels": {"ws": {"address": "/ws/", "messages": channel_messages}},
        "operations": {
            "clientSends": {"action": "receive", "channel": {"$ref": "#/channels/ws"},
                            "summary": "Messages the client sends to the server.",
                            "messages": refs("client")},
            "serverSends": {"action": "send", "channel": {"$ref": "#/channels/ws"},
                            "summary": "Messages the server sends to the client.",
                            "messages": refs("server")},
        },
        "components": {"messages": components},
    }
    if server_url:
        scheme, _, host = server_url.partition("://")
        document["servers"] = {"api": {"host": host, "protocol": scheme}}
    return document


def _component(name: str) -> str:
    direction, _, type_ = name.partition(".")
    return f"{direction}_{type_}"
