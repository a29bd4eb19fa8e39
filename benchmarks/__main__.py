"""`make bench`: run every benchmark module in this folder (or those named on the command line).

Each module has a `main(argv) -> int` that prints its figure next to the baseline it is
compared with in the same run. Benchmarks need PostgreSQL (`DATABASE_URL`) and most need
Redis (`REDIS_URL`); they never run in `make test`.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def discover() -> list[str]:
    here = Path(__file__).parent
    return sorted(m.name for m in pkgutil.iter_modules([str(here)])
                  if m.name.startswith("bench_"))


def main(argv: list[str]) -> int:
    names = [a for a in argv if not a.startswith("-")] or discover()
    if not names:
        print("no benchmarks found in benchmarks/ (modules named bench_*.py)")
        return 0
    failed = 0
    for name in names:
        module = importlib.import_module(f"benchmarks.{name}")
        print(f"== {name}: {(module.__doc__ or '').strip().splitlines()[0]}")
        code = module.main([a for a in argv if a.startswith("-")])
        failed += code != 0
        print(f"== {name}: {'ok' if code == 0 else f'exit {code}'}\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
