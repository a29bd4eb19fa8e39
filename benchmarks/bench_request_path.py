"""Request path: server CPU per anonymous `GET /v1/listings`, this tree beside a baseline.

What a browse request costs the REST process around its SQL (issue 22: the API took 2.5-12 x
its SQL). Serves the code of this tree and, with `--baseline=<git revision>`, the code of
that revision (exported with `git archive` into a temporary folder), each from its own
granian WSGI process as in production (Redis throttle counters, the per-request log line at
INFO), over bench_browse's database (`DATABASE_URL` + `_bench`; loaded with `--listings`
when empty, else reused as it is). The variants alternate, `--rounds` times (default 3), each
serving `--requests` (default 200) sequential keep-alive requests per URL: the 400 "floor"
(`ordering=nope`: middleware, authentication, throttles, parameter validation, the error
rendered, no query) and each of bench_browse's five pages. Prints, per URL, the server
process's CPU per request (best and median round; the figure to read on a loaded machine)
and the client's median latency, then the in-process CPU of the same requests through the
Django test client (`time.process_time`, this tree only) next to the page's SQL replayed.

`python -m benchmarks.bench_request_path --baseline=HEAD~3` (both trees need the same
migrations).
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

from benchmarks._support import (
    BASE_DIR,
    REST_SERVER,
    Processes,
    free_port,
    server_command,
    server_env,
    tree_cpu_seconds,
)

FLOOR = ("floor: a 400 before any query", "/v1/listings?ordering=nope")


def _urls() -> list[tuple[str, str]]:
    from benchmarks.bench_browse import QUERIES

    return [FLOOR] + [(label, "/v1/listings?" + urlencode({**params, "page_size": 20}))
                      for label, params in QUERIES]


def _export(revision: str, into: Path) -> Path:
    """The tree of `revision` in a folder of its own (`git archive`, no .git)."""
    archive = subprocess.run(["git", "archive", "--format=tar", revision], cwd=BASE_DIR,
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def _serve(processes: Processes, tree: Path, env: dict[str, str], name: str):
    """A granian WSGI process (production's command line) serving `tree`'s code:
    (its pid, port)."""
    port = free_port()
    process = processes.spawn(server_command(REST_SERVER, "127.0.0.1", port),
                              {**env, "PYTHONPATH": str(tree)}, name, cwd=tree)
    _wait_up(port, time.monotonic() + 60, process, lambda: processes.log(name))
    return process.pid, port


def _wait_up(port: int, deadline: float, process, log) -> None:
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                conn.close()
                return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"server on {port} did not come up:\n{log()}")
        time.sleep(0.1)


def _run(port: int, pid: int, path: str, expected: int, count: int) -> tuple[float, float]:
    """(server CPU ms per request, client median ms) over `count` keep-alive requests."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for _ in range(5):  # warm the thread's connection and caches
        conn.request("GET", path)
        conn.getresponse().read()
    latencies = []
    before = tree_cpu_seconds(pid)
    for _ in range(count):
        started = time.perf_counter()
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        latencies.append((time.perf_counter() - started) * 1000)
        if response.status != expected:
            raise RuntimeError(f"{path}: {response.status}")
    cpu = (tree_cpu_seconds(pid) - before) * 1000 / count
    conn.close()
    return cpu, statistics.median(latencies)


def _in_process(urls: list[tuple[str, str]], count: int) -> list[tuple[float, float | None]]:
    """(CPU ms per request through the test client, CPU ms of the page's SQL replayed)."""
    from django.db import connection
    from django.test import Client

    from benchmarks.bench_browse import _page_sql

    client = Client()
    out = []
    for _label, url in urls:
        for _ in range(5):
            client.get(url)
        started = time.process_time()
        for _ in range(count):
            client.get(url)
        api = (time.process_time() - started) * 1000 / count
        statements = _page_sql(client, url)
        sql = None
        if statements:
            with connection.cursor() as cursor:
                started = time.process_time()
                for _ in range(count):
                    for statement in statements:
                        cursor.execute(statement)
                        cursor.fetchall()
                sql = (time.process_time() - started) * 1000 / count
        out.append((api, sql))
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench_request_path", description=__doc__)
    parser.add_argument("--baseline", default="", help="git revision to compare with")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=200, help="per URL and round")
    parser.add_argument("--listings", type=int, default=20_000,
                        help="loaded only when the bench database is empty")
    args, _unknown = parser.parse_known_args(argv)

    from benchmarks import bench_browse

    base = os.environ.get("DATABASE_URL", "")
    redis_url = os.environ.get("REDIS_URL", "")
    if not base.startswith(("postgres://", "postgresql://")) or not redis_url:
        print("bench_request_path needs PostgreSQL (DATABASE_URL=postgres://...) and REDIS_URL")
        return 2
    bench_url, name, maintenance = bench_browse._bench_url(base)
    bench_browse._create_database(maintenance, name)
    bench_browse._setup_django(bench_url)
    from django.core.management import call_command

    from listings.models import Listing

    call_command("migrate", verbosity=0)
    if not Listing.objects.exists():
        bench_browse._load(args.listings, random.Random(42))
    print(f"{Listing.objects.count():,} listings in {name}")
    urls = _urls()

    with Processes("request_path") as processes, tempfile.TemporaryDirectory() as tmp:
        env = server_env(database_url=bench_url, redis_url=redis_url)
        variants = [("this tree", BASE_DIR)]
        if args.baseline:
            variants.append((f"baseline {args.baseline}", _export(args.baseline, Path(tmp))))
        servers = [_serve(processes, tree, env, f"rest{i}")
                   for i, (_label, tree) in enumerate(variants)]
        cpu = {(v, u): [] for v in range(len(variants)) for u in range(len(urls))}
        latency = {key: [] for key in cpu}
        for _round in range(args.rounds):
            for v, (pid, port) in enumerate(servers):
                for u, (_label, path) in enumerate(urls):
                    expected = 400 if (_label, path) == FLOOR else 200
                    spent, median = _run(port, pid, path, expected, args.requests)
                    cpu[v, u].append(spent)
                    latency[v, u].append(median)

    print(f"\nserver CPU per request, ms (best / median of {args.rounds} rounds of "
          f"{args.requests}), and the client's median latency, ms; granian WSGI, one client:")
    head = f"{'request':34}"
    for label, _tree in variants:
        head += f" | {label[:24]:>24}"
    if len(variants) == 2:
        head += " | CPU ×"
    print(head)
    for u, (label, _path) in enumerate(urls):
        line = f"{label[:34]:34}"
        for v in range(len(variants)):
            line += (f" | {min(cpu[v, u]):5.2f} / {statistics.median(cpu[v, u]):5.2f}"
                     f"  {statistics.median(latency[v, u]):5.2f} ms")
        if len(variants) == 2:
            line += f" | {statistics.median(cpu[0, u]) / statistics.median(cpu[1, u]):5.2f}"
        print(line)

    print(f"\nin process (Django test client, this tree, {args.requests} requests): CPU per "
          "request and the CPU of the page's SQL replayed (psycopg), ms")
    for (label, _path), (api, sql) in zip(urls, _in_process(urls, args.requests), strict=True):
        replay = "-" if sql is None else f"{sql:5.2f}"
        print(f"{label[:34]:34} | API {api:5.2f} | SQL {replay:>5}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
