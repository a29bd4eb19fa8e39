"""Money as people read it: `$100.00 CAD` from integer cents (the data stays in cents)."""

from __future__ import annotations

SYMBOLS = {"CAD": "$", "USD": "$", "EUR": "€", "GBP": "£"}


def money_text(cents: int | None, currency: str = "CAD") -> str:
    """`$1,234.50 CAD`; negative amounts as `−$5.00 CAD`; None as an empty string."""
    if cents is None:
        return ""
    code = (currency or "CAD").upper()
    sign = "−" if cents < 0 else ""
    whole, part = divmod(abs(int(cents)), 100)
    return f"{sign}{SYMBOLS.get(code, '')}{whole:,}.{part:02d} {code}"
