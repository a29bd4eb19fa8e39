"""Compile locale/*/LC_MESSAGES/django.po into the .mo files Django reads.

Babel's compiler (pure Python, pinned in requirements.txt) instead of Django's
`compilemessages`, which needs GNU gettext's `msgfmt`: the image and a fresh machine then
need nothing beyond Python (docs/decisions/0004-i18n-babel.md). Run by `make run`,
`make test`, the Dockerfile and the test suite's start: `python -m biddt.locale_build`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"


def compile_all(locale_dir: Path = LOCALE_DIR, *, only_stale: bool = False) -> list[Path]:
    """Write each catalog's .mo beside its .po; returns the files written. A fuzzy or
    broken catalog raises (a build must not ship half a language)."""
    written = []
    for po_path in sorted(locale_dir.glob("*/LC_MESSAGES/*.po")):
        mo_path = po_path.with_suffix(".mo")
        if only_stale and mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        with po_path.open("rb") as po:
            catalog = read_po(po, locale=po_path.parent.parent.name)
        errors = [(message.id, err) for message, errs in catalog.check() for err in errs]
        if errors:
            raise ValueError(f"{po_path}: {errors[:3]}")
        with mo_path.open("wb") as mo:
            write_mo(mo, catalog)
        written.append(mo_path)
    return written


if __name__ == "__main__":
    for path in compile_all(only_stale="--stale" in sys.argv):
        print(f"compiled {path.relative_to(LOCALE_DIR.parent)}")
