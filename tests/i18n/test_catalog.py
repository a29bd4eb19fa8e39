"""The French catalog covers every string the apps mark for translation, and the apps mark
every string a user reads.

- Every message marked in the apps' code (`gettext_lazy`, `ngettext`, ...) is in
  `locale/fr/LC_MESSAGES/django.po` with a translation (both plural forms for a plural), so
  a new English text can't reach a French user untranslated: this test names it.
- An error raised with a plain English literal (or an f-string, which can't be translated)
  instead of a marked text fails, except in the staff console's modules (English only, see
  docs/decisions/0004) and in what only operators read.
"""

from __future__ import annotations

import ast
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from django.conf import settings

ROOT = Path(settings.BASE_DIR)
APPS = ["accounts", "biddt", "bidding", "chat", "discovery", "escrow", "listings",
        "notifications", "privacy", "safezones"]
# Django's markers, as `makemessages` reads them (Babel's defaults lack the *_lazy ones).
KEYWORDS = {
    "_": None, "gettext": None, "gettext_lazy": None, "gettext_noop": None,
    "ngettext": (1, 2), "ngettext_lazy": (1, 2),
    "pgettext": ((1, "c"), 2), "pgettext_lazy": ((1, "c"), 2),
    "npgettext": ((1, "c"), 2, 3), "npgettext_lazy": ((1, "c"), 2, 3),
}
# Modules whose texts only staff (the console, English by decision 0004) or operators read.
NOT_FOR_APP_USERS = {
    "biddt/health.py",  # health checks: operators
    "biddt/staff.py",  # console forms
    "escrow/services/dispute.py",  # the split decision: console only
    "escrow/api/views.py",  # the Stripe webhook's answers: read by Stripe
}
# The exceptions whose first argument is an error `detail` shown to the app's user.
ERRORS = {"NotFound", "PermissionDenied", "Conflict", "ValidationError", "invalid",
          "Throttled", "ServiceUnavailable", "AuthenticationFailed", "ParseError",
          "InvalidVideo", "APIException", "NotAuthenticated", "Refused"}


def _marked_messages() -> set[str | tuple[str, str]]:
    found = set()
    for app in APPS:
        for filename, _lineno, message, _comments, _context in extract_from_dir(
                ROOT / app, method_map=[("**/migrations/**", "ignore"), ("**.py", "python")],
                keywords=KEYWORDS, comment_tags=()):
            if message and message != ("", ""):
                found.add(message if isinstance(message, str) else tuple(message[:2]))
    return found


def test_every_marked_message_has_a_french_translation():
    with (ROOT / "locale/fr/LC_MESSAGES/django.po").open("rb") as po:
        catalog = read_po(po, locale="fr")
    missing = []
    for message in sorted(_marked_messages(), key=str):
        key = message[0] if isinstance(message, tuple) else message
        entry = catalog.get(key)
        if entry is None:
            missing.append(message)
            continue
        strings = entry.string if isinstance(entry.string, tuple) else (entry.string,)
        if isinstance(message, tuple) and not isinstance(entry.id, tuple):
            missing.append(("plural forms missing", message))
        elif not all(strings):
            missing.append(("empty translation", message))
    assert not missing, "Not translated into French:\n" + "\n".join(map(repr, missing))


def _is_plain_text(node: ast.expr) -> bool:
    if isinstance(node, ast.JoinedStr):  # an f-string can't be looked up in a catalog
        return True
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and " " in node.value


def test_no_error_detail_is_an_unmarked_english_literal():
    offenders = []
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            relative = path.relative_to(ROOT).as_posix()
            if ("migrations" in path.parts or "management" in path.parts
                    or path.name == "admin.py" or relative in NOT_FOR_APP_USERS):
                continue
            for node in ast.walk(ast.parse(path.read_text(), filename=relative)):
                if not isinstance(node, ast.Call):
                    continue
                name = getattr(node.func, "attr", None) or getattr(node.func, "id", None)
                if name not in ERRORS:
                    continue
                texts = [*node.args[:2], *(k.value for k in node.keywords
                                           if k.arg in ("detail", "message"))]
                offenders += [f"{relative}:{node.lineno}: {ast.unparse(t)[:60]}"
                              for t in texts if _is_plain_text(t)]
    assert not offenders, "Mark these for translation:\n" + "\n".join(offenders)
