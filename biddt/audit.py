"""The staff audit log: one helper, `audit_record`, called by every staff action.

Services that staff run (suspend, remove, refund, ...) call it inside their own transaction,
so the entry commits or rolls back with the change. `before`/`after` are small JSON dicts of
the fields the action touched (`snapshot` picks them from a model instance).
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterable
from typing import Any

from django.db import models


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def snapshot(obj: models.Model | None, fields: Iterable[str]) -> dict[str, Any] | None:
    """`{field: value}` of a model instance, JSON-ready (foreign keys as their ids)."""
    if obj is None:
        return None
    out = {}
    for name in fields:
        field = obj._meta.get_field(name)
        out[name] = _jsonable(getattr(obj, field.attname))
    return out


def audit_record(*, actor, action: str, obj: models.Model | None = None,
                 object_type: str | None = None, object_id: Any = None,
                 before: dict[str, Any] | None = None, after: dict[str, Any] | None = None,
                 reason: str = ""):
    """Write one audit entry (who, what, which object, before/after, why) and return it."""
    from biddt.core.models import AuditEntry

    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = obj.pk if object_id is None else object_id
    return AuditEntry.objects.create(
        actor=actor if getattr(actor, "pk", None) else None,
        action=action,
        object_type=object_type or "",
        object_id=str(object_id or ""),
        object_repr=str(obj)[:255] if obj is not None else "",
        before=_jsonable(before), after=_jsonable(after),
        reason=(reason or "")[:2000],
    )
