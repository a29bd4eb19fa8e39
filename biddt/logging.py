"""Logging filter that replaces phone numbers with a keyed hash wherever they would be logged."""

from __future__ import annotations

import logging
import re

# International numbers with a leading "+" (E.164 or spaced/dashed: +1 416-555-0100) and bare
# runs of 10-15 digits (4165550100). Dates, times, amounts and UUIDs don't match.
PHONE_RE = re.compile(
    r"(?<![\w+])\+\d[\d\s().-]{6,20}\d(?![\w])|(?<![\w.-])\d{10,15}(?![\w.-])"
)


def _redact_match(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    if not 8 <= len(digits) <= 15:
        return match.group(0)
    from biddt.crypto import log_hash

    try:
        return f"phone#{log_hash('+' + digits)}"
    except Exception:  # noqa: BLE001 - settings not ready: never let logging leak the number
        return "phone#redacted"


def redact_phone_numbers(text: str) -> str:
    return PHONE_RE.sub(_redact_match, text)


class PhoneNumberRedactingFilter(logging.Filter):
    """Rewrites the formatted message so no handler ever sees a plain phone number."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken record is the handler's to report
            return True
        redacted = redact_phone_numbers(message)
        if redacted != message or record.args:
            record.msg = redacted
            record.args = None
        return True
