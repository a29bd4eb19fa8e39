"""Query-parameter serializers whose fields are built once per thread, not once per request.

A DRF serializer deep-copies every declared field on each instance (`get_fields`), so that
one instance may change its fields without touching the others. A serializer that only
validates a request's query parameters never changes its fields, and for `GET /v1/listings`
the copy (twelve fields, their choices and validators) cost more CPU than the rest of the
validation. `SharedFieldsSerializer` binds one copy per thread and class and lends it to
every instance: the same fields, errors, codes and defaults; nothing per request is stored
on a field (the values and errors live on the serializer instance).

Only for serializers used with `data=` alone: no field reads `context`, nothing changes a
field after creation (a subclass that does must not inherit this; `partial=True` gets its
own copy).
"""

from __future__ import annotations

import threading

from django.utils.functional import cached_property
from rest_framework import serializers

_local = threading.local()


class SharedFieldsSerializer(serializers.Serializer):
    @cached_property
    def fields(self):
        if self.partial:  # a partial serializer's fields read `partial` from their parent
            return serializers.Serializer.fields.func(self)
        cache = getattr(_local, "fields", None)
        if cache is None:
            cache = _local.fields = {}
        fields = cache.get(type(self))
        if fields is None:
            # Bound to a blank instance of the class: a field reads its parent only for
            # `partial` (False) and `context` (empty), which that instance answers as a
            # fresh one would.
            fields = cache[type(self)] = type(self)._fresh_fields()
        return fields

    @classmethod
    def _fresh_fields(cls):
        blank = cls()
        return serializers.Serializer.fields.func(blank)
