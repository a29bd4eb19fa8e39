"""Request-body JSON: anything the decoder can't take is the client's mistake, never a 500.

DRF's JSONParser turns `ValueError` into a 400 but not `RecursionError` (a body nested a
thousand levels deep exhausts the C decoder's recursion guard), and it lets `1e999` through
as an infinite float. One decoder, `json_loads`, is used by the REST parser and the socket
so both refuse the same frames the same way.
"""

from __future__ import annotations

import codecs
import json
import math
from typing import Any

from django.utils.translation import gettext_lazy as _
from rest_framework import parsers
from rest_framework.exceptions import ParseError

# The bound of every integer a client sends (serializer `max_value`): the largest integer a
# JSON client represents exactly, far below the 64-bit columns, far above any real amount.
MAX_INT = 2**53 - 1


class UndecodableJSON(ValueError):
    """The text is not JSON we accept: malformed, too deep, invalid UTF-8, or a non-finite
    number."""


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):  # `1e999`: no field wants it, and it isn't JSON's to give
        raise UndecodableJSON(f"number out of range: {text[:32]}")
    return value


def _no_constant(name: str):
    raise UndecodableJSON(f"{name} is not valid JSON")


def json_loads(text: str | bytes) -> Any:
    """`json.loads` with every failure as `UndecodableJSON` (a ValueError)."""
    try:
        return json.loads(text, parse_float=_finite_float, parse_constant=_no_constant)
    except UndecodableJSON:
        raise
    except RecursionError:
        raise UndecodableJSON("nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, int digit limit
        raise UndecodableJSON(str(exc)) from None


class JSONParser(parsers.JSONParser):
    """DRF's parser through `json_loads`: every undecodable body is a 400 `parse_error`."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = parsers.get_encoding(parser_context or {})
        try:
            text = codecs.getreader(encoding)(stream).read()
            return json_loads(text)
        except (UndecodableJSON, UnicodeError) as exc:
            raise ParseError(_("JSON parse error - %(error)s") % {"error": exc}) from None
