"""Instructions per accepted outbidding bid, in-process under callgrind, beside the floor view.

Runs the app in one Python process under `valgrind --tool=callgrind` (instrumentation off
until asked, so start-up costs nothing), driven through Django's `WSGIHandler` with the real
middleware, a real `Authorization: Bearer` header, production-like settings (`DEBUG` off, JSON
request logs at INFO, throttles on with their rates raised so none refuses), the
`<db>_bench_live` PostgreSQL database and a throwaway redis-server (cache, throttles, channel
layer and Celery broker, as in production).

Two bidders take turns outbidding each other on a listing with history. After a warm-up (the
first requests import and cache), each measured request is wrapped in callgrind client
requests (zero, start instrumentation, stop, dump; a tiny helper compiled with `cc` against
`valgrind/callgrind.h`), so exactly one request is counted, every thread included (the
channel-layer sends run on the events thread). The floor is a DRF view with the same JWT
authentication, permission and default throttles that runs one SELECT. Prints the median of
`--repeat` (default 3) requests of each, the ratio (targets: ≤ 7 M per bid and ≤ 1.3 × the
floor), and, from one more request of each outside callgrind, its SQL statements and Redis
round trips. Needs valgrind and a C compiler. `python -m benchmarks bench_bid_instructions`.
"""

from __future__ import annotations

import argparse
import ctypes
import io
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path
from unittest import mock

from benchmarks._support import (
    BASE_DIR,
    Processes,
    bench_database,
    make_listing,
    make_users,
    postgres_base_url,
    server_env,
    wipe_auction_data,
)

TARGET_INSTRUCTIONS = 7_000_000
TARGET_RATIO = 1.3
WARMUP = 30

HELPER_C = r"""
#include <valgrind/callgrind.h>
void bench_start(void) { CALLGRIND_ZERO_STATS; CALLGRIND_START_INSTRUMENTATION; }
void bench_stop(const char *label) {
    CALLGRIND_DUMP_STATS_AT(label); CALLGRIND_STOP_INSTRUMENTATION;
}
"""

FLOOR_PATH = "/bench/floor"


# --- the child: runs under callgrind --------------------------------------------------------

def floor_urlpatterns():
    """The app's URLs plus the floor view (a module-level `urlpatterns` for ROOT_URLCONF)."""
    from django.urls import path
    from rest_framework.response import Response
    from rest_framework.views import APIView

    from biddt.urls import urlpatterns
    from listings.models import Listing

    class FloorView(APIView):
        """Default JWT authentication, permission and throttles, and one SELECT."""

        def get(self, request):
            row = Listing.objects.values("current_price_cents").order_by().first()
            return Response({"current_price_cents": row and row["current_price_cents"]})

    return [*urlpatterns, path(FLOOR_PATH.lstrip("/"), FloorView.as_view())]


urlpatterns: list = []  # filled in the child (ROOT_URLCONF points here)


class Driver:
    def __init__(self, helper: str | None, listing_id: str, tokens: list[str]) -> None:
        from django.core.handlers.wsgi import WSGIHandler

        self.app = WSGIHandler()
        self.lib = ctypes.CDLL(helper) if helper else None
        self.listing_id = listing_id
        self.tokens = tokens
        self.turn = 0

    def _environ(self, method: str, path: str, token: str, body: bytes = b"") -> dict:
        return {
            "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "HTTP_HOST": "127.0.0.1:8000",
            "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
            "HTTP_AUTHORIZATION": f"Bearer {token}", "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body),
            "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr, "wsgi.multithread": True,
            "wsgi.multiprocess": True, "wsgi.run_once": False, "wsgi.version": (1, 0),
        }

    def _call(self, environ: dict, label: str | None) -> tuple[str, bytes]:
        answer = {}

        def start_response(status, headers, exc_info=None):
            answer["status"] = status

        if label and self.lib:
            self.lib.bench_start()
        result = self.app(environ, start_response)
        body = b"".join(result)
        if hasattr(result, "close"):
            result.close()
        if label and self.lib:
            self.lib.bench_stop(label.encode())
        return answer["status"], body

    def next_bid(self) -> dict:
        """The environ of the next outbidding bid (the other bidder, at the minimum)."""
        from bidding import selectors
        from listings.models import Listing

        listing = Listing.objects.get(pk=self.listing_id)
        amount = selectors.listing_live(listing)["minimum_next_bid_cents"]
        token = self.tokens[self.turn % 2]
        self.turn += 1
        return self._environ("POST", f"/v1/listings/{self.listing_id}/bids", token,
                             json.dumps({"amount_cents": amount}).encode())

    def bid(self, environ: dict, label: str | None = None) -> None:
        status, body = self._call(environ, label)
        if not status.startswith("201") or not json.loads(body)["is_leading"]:
            raise SystemExit(f"the bid was not an accepted outbidding bid: {status} {body!r}")

    def floor(self, label: str | None = None) -> None:
        status, body = self._call(self._environ("GET", FLOOR_PATH, self.tokens[0]), label)
        if not status.startswith("200"):
            raise SystemExit(f"the floor view answered {status} {body!r}")


def count_round_trips(request, trace_path: Path) -> dict[str, int]:
    """SQL statements and Redis round trips of one request (outside callgrind).

    SQL: every statement the client sends (BEGIN, savepoints, COMMIT and health checks
    included), from libpq's protocol trace of the connection. Redis: one round trip is one
    `send_packed_command` (one command, or one whole pipeline), on the sync client (cache,
    throttles, Celery's broker) and the asyncio one (channel layer)."""
    from django.db import connection
    from redis.asyncio.connection import AbstractConnection as AsyncConnection
    from redis.connection import AbstractConnection

    counts = {"redis": 0}
    sync_send = AbstractConnection.send_packed_command
    async_send = AsyncConnection.send_packed_command

    def send(self, *args, **kwargs):
        counts["redis"] += 1
        return sync_send(self, *args, **kwargs)

    async def send_async(self, *args, **kwargs):
        counts["redis"] += 1
        return await async_send(self, *args, **kwargs)

    connection.ensure_connection()
    pgconn = connection.connection.pgconn
    with trace_path.open("w") as trace, ExitStack() as stack:
        pgconn.trace(trace.fileno())
        stack.callback(pgconn.untrace)
        stack.enter_context(mock.patch.object(AbstractConnection, "send_packed_command", send))
        stack.enter_context(mock.patch.object(AsyncConnection, "send_packed_command",
                                              send_async))
        request()
    messages = [line.split("\t") for line in trace_path.read_text().splitlines()]
    counts["sql"] = sum(1 for m in messages
                        if len(m) > 3 and m[1] == "F" and m[3] in ("Query", "Parse"))
    return counts


def child(args: argparse.Namespace) -> int:
    import django
    from django.conf import settings

    django.setup()
    urlpatterns.extend(floor_urlpatterns())
    settings.ROOT_URLCONF = __name__
    driver = Driver(args.helper, args.listing, args.tokens.split(","))
    for _ in range(WARMUP):
        driver.bid(driver.next_bid())
        driver.floor()
    for i in range(args.repeat):
        driver.bid(driver.next_bid(), f"bid-{i}")
        driver.floor(f"floor-{i}")
    environ = driver.next_bid()
    trace = Path(args.result).with_suffix(".trace")
    result = {"bid": count_round_trips(lambda: driver.bid(environ), trace),
              "floor": count_round_trips(driver.floor, trace)}
    Path(args.result).write_text(json.dumps(result))
    return 0


# --- the parent -----------------------------------------------------------------------------

def compile_helper(directory: Path) -> Path | None:
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        print("bench_bid_instructions needs a C compiler (cc) for the callgrind client requests")
        return None
    source, library = directory / "callgrind_helper.c", directory / "callgrind_helper.so"
    source.write_text(HELPER_C)
    done = subprocess.run([compiler, "-O1", "-shared", "-fPIC", "-o", str(library),
                           str(source)], capture_output=True, text=True)
    if done.returncode != 0:
        print(f"could not build the callgrind helper (valgrind headers missing?):\n"
              f"{done.stderr[-2000:]}")
        return None
    return library


def read_dumps(prefix: Path) -> dict[str, list[int]]:
    """Instruction totals of each labelled dump (`<prefix>.<n>`)."""
    counts: dict[str, list[int]] = {}
    for path in prefix.parent.glob(prefix.name + ".*"):
        text = path.read_text(errors="replace")
        label = re.search(r"^desc: Trigger: Client Request: (\S+)", text, re.M)
        total = re.search(r"^(?:totals|summary): (\d+)", text, re.M)
        if label and total:
            counts.setdefault(label.group(1).rsplit("-", 1)[0], []).append(int(total.group(1)))
    return counts


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench_bid_instructions")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--helper", help=argparse.SUPPRESS)
    parser.add_argument("--listing", help=argparse.SUPPRESS)
    parser.add_argument("--tokens", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args)
    if shutil.which("valgrind") is None:
        print("bench_bid_instructions needs valgrind (callgrind) on PATH")
        return 1
    base = postgres_base_url("bench_bid_instructions")
    if base is None:
        return 1
    database_url, _ = bench_database(base)
    wipe_auction_data()
    seller, *bidders = make_users(3, "776")
    listing = make_listing(seller, starting_price_cents=1000)
    with Processes("bid-instructions") as processes:
        helper = compile_helper(processes.dir)
        if helper is None:
            return 1
        redis_url = processes.redis()
        unlimited = "100000000/min"
        env = server_env(database_url=database_url, redis_url=redis_url,
                         LOG_FORMAT="json", REQUEST_LOG_LEVEL="INFO",
                         BIDDT_THROTTLE_USER=unlimited, BIDDT_THROTTLE_BID=unlimited,
                         BIDDT_THROTTLE_ANON=unlimited)
        prefix = processes.dir / "callgrind.out"
        result = processes.dir / "result.json"
        command = [
            "valgrind", "--tool=callgrind", "--instr-atstart=no",
            f"--callgrind-out-file={prefix}", sys.executable, "-m",
            "benchmarks.bench_bid_instructions", "--child", f"--helper={helper}",
            f"--listing={listing.pk}", f"--tokens={bidders[0].token},{bidders[1].token}",
            f"--result={result}", f"--repeat={args.repeat}",
        ]
        with (processes.dir / "child.log").open("wb") as log:
            done = subprocess.run(command, cwd=BASE_DIR, env=env, stdout=log,
                                  stderr=subprocess.STDOUT)
        if done.returncode != 0 or not result.exists():
            print(f"the driver failed (exit {done.returncode}):\n{processes.log('child')}")
            return 1
        counts = read_dumps(prefix)
        trips = json.loads(result.read_text())
    wipe_auction_data()
    if not counts.get("bid") or not counts.get("floor"):
        print(f"no callgrind dumps found: {counts}")
        return 1
    bid = statistics.median(counts["bid"])
    floor = statistics.median(counts["floor"])
    ratio = bid / floor
    print(f"accepted outbidding bid: {bid / 1e6:.2f} M instructions "
          f"(runs: {', '.join(f'{c / 1e6:.2f}' for c in sorted(counts['bid']))}); "
          f"{trips['bid']['sql']} SQL statements, {trips['bid']['redis']} Redis round trips")
    print(f"floor view (JWT, throttles, one SELECT): {floor / 1e6:.2f} M instructions "
          f"(runs: {', '.join(f'{c / 1e6:.2f}' for c in sorted(counts['floor']))}); "
          f"{trips['floor']['sql']} SQL statements, {trips['floor']['redis']} Redis round trips")
    print(f"ratio {ratio:.2f} (target ≤ {TARGET_RATIO}); per bid target ≤ "
          f"{TARGET_INSTRUCTIONS / 1e6:.0f} M: "
          f"{'met' if bid <= TARGET_INSTRUCTIONS and ratio <= TARGET_RATIO else 'not met'}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "biddt.settings")
    sys.exit(main(sys.argv[1:]))
