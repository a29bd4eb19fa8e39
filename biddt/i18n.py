"""Languages: the API answer's error `detail`s, and what is written for a user later.

- `ApiLanguageMiddleware`: a `/v1/` request's `Accept-Language` (`fr`, `fr-CA`, ...) picks
  the language its error `detail`s are written in; codes never change. Only the API: the
  staff console stays English.
- `for_user_language(code)`: the context in which a push, e-mail, notification or system
  chat line for a user is rendered (`translation.override`).
- `Money`: an amount shown in the active language's format, `$100.00` / `100,00 $`, when
  the string that holds it is rendered (so one lazy text serves both languages).
"""

from __future__ import annotations

from contextlib import AbstractContextManager

from babel.numbers import format_currency
from django.conf import settings
from django.utils import translation
from django.utils.cache import patch_vary_headers

# Canadian formats: `$` is the Canadian dollar in en_CA, the sign after the amount in fr_CA.
_BABEL_LOCALES = {"en": "en_CA", "fr": "fr_CA"}
SUPPORTED = {code for code, _name in settings.LANGUAGES}


class ApiLanguageMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path_info.startswith("/v1/"):
            return self.get_response(request)
        # Django's own negotiation: `fr-CA` falls back to `fr`, anything else to English.
        language = translation.get_language_from_request(request)
        with translation.override(language):
            request.LANGUAGE_CODE = language
            response = self.get_response(request)  # rendered inside, in that language
        patch_vary_headers(response, ("Accept-Language",))
        response.headers.setdefault("Content-Language", language)
        return response


def for_user_language(language: str | None) -> AbstractContextManager:
    """`with for_user_language(user.language):` renders lazy texts in that language."""
    return translation.override(language if language in SUPPORTED else settings.LANGUAGE_CODE)


class Money:
    """An amount in cents that formats itself in the active language when rendered."""

    __slots__ = ("cents", "currency")

    def __init__(self, cents: int, currency: str = "CAD") -> None:
        self.cents = int(cents)
        self.currency = currency

    def __str__(self) -> str:
        return format_money(self.cents, self.currency)

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


def format_money(cents: int, currency: str = "CAD", language: str | None = None) -> str:
    language = (language or translation.get_language() or settings.LANGUAGE_CODE)[:2]
    locale = _BABEL_LOCALES.get(language, _BABEL_LOCALES["en"])
    return format_currency(cents / 100, currency, locale=locale)
