"""Shared plumbing for the live-auction benchmarks (bench_hot_listing, bench_fanout,
bench_closing, bench_channel_layer, bench_servers): a dedicated database, a throwaway Redis,
REST and socket server processes.

Everything listens on 127.0.0.1 only; every process started here is stopped by the caller
(`Processes` is a context manager); every wait has a deadline.
"""

from __future__ import annotations

import math
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import suppress
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

BASE_DIR = Path(__file__).resolve().parents[1]
UNLIMITED = "100000000/min"
START_TIMEOUT = 30.0
# Threads that run the application per WSGI process (as in deploy: GRANIAN_BLOCKING_THREADS).
REST_THREADS = 8
# What production runs (docker-compose.yml, README "Servers"), chosen with bench_servers.
REST_SERVER = "granian-wsgi"
SOCKET_SERVER = "uvicorn"


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def raise_nofile(wanted: int) -> int:
    """Raise this process's open-file limit (children inherit it); returns the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# --- database ---------------------------------------------------------------------------------

def postgres_base_url(prog: str) -> str | None:
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith(("postgres://", "postgresql://")):
        print(f"{prog} needs PostgreSQL: set DATABASE_URL=postgres://... "
              "(the benchmark uses its own <name>_bench_live database)")
        return None
    return base


def bench_database(base: str) -> tuple[str, str]:
    """Create (once) and migrate `<name>_bench_live`; point this process's Django at it.

    A database of its own, apart from bench_browse's `<name>_bench` (whose 200,000 listings
    these benchmarks would disturb). Returns (url, libpq conninfo URL for psycopg/pgbench).
    """
    import psycopg
    from psycopg import sql

    parts = urlsplit(base)
    # `make bench` runs several benchmarks in one process, and this one sets DATABASE_URL.
    name = parts.path.lstrip("/").removesuffix("_bench_live") + "_bench_live"
    url = urlunsplit(parts._replace(path="/" + name))
    maintenance = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(maintenance, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            print(f"created database {name}")
    _setup_django(url)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return url, url.replace("postgres://", "postgresql://", 1)


def _setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "biddt.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django
    import environ
    from django.conf import settings

    django.setup()
    from django.db import connections

    # Another benchmark in this process may have set Django up on its own database.
    settings.DATABASES["default"]["NAME"] = environ.Env.db_url_config(url)["NAME"]
    connections.close_all()
    import logging

    for name in ("django_structlog", "django.request", "biddt", "channels_redis"):
        logging.getLogger(name).setLevel(logging.WARNING)


def wipe_auction_data() -> None:
    """Empty the tables the live benchmarks fill (their own database only)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE bidding_bid, listings_listing, notifications_notification "
                       "CASCADE")


# --- processes --------------------------------------------------------------------------------

class Processes:
    """Start redis-server / servers / any worker; stop every one of them on exit."""

    def __init__(self, prog: str) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix=f"biddt-{prog}-"))
        self.started: list[subprocess.Popen] = []

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *exc) -> None:
        for process in reversed(self.started):
            stop(process)
        for path in sorted(self.dir.glob("*.log")):
            text = path.read_text(errors="replace")
            if "Traceback" in text:  # a server error is part of the result: show it
                print(f"-- {path.name} had errors; its first traceback:")
                start = text.index("Traceback")
                print(text[start:start + 3000])
        shutil.rmtree(self.dir, ignore_errors=True)

    def redis(self) -> str:
        """A throwaway redis-server (no persistence); falls back to REDIS_URL without one."""
        binary = shutil.which("redis-server")
        if binary is None:
            url = os.environ.get("REDIS_URL", "")
            if not url:
                raise RuntimeError("needs redis-server on PATH or REDIS_URL")
            print(f"redis-server not found; using REDIS_URL {url}")
            return url
        port = free_port()
        process = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.started.append(process)
        deadline = time.monotonic() + START_TIMEOUT
        while not _redis_ping(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("redis-server did not come up")
            time.sleep(0.05)
        return f"redis://127.0.0.1:{port}/0"

    def spawn(self, args: list[str], env: dict[str, str], name: str,
              cwd: Path = BASE_DIR) -> subprocess.Popen:
        log = (self.dir / f"{name}.log").open("wb")
        process = subprocess.Popen(args, cwd=cwd, env=env, stdout=log,
                                   stderr=subprocess.STDOUT)
        self.started.append(process)
        return process

    def stop_last(self) -> None:
        """Stop the process started last (a variant measured, before the next starts)."""
        stop(self.started.pop())

    def log(self, name: str) -> str:
        path = self.dir / f"{name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def server(self, variant: str, env: dict[str, str], name: str | None = None,
               *, threads: int = REST_THREADS) -> str:
        """One server process of `variant` (see server_command) on a free port; returns its
        http URL once /healthz answers."""
        port = free_port()
        name = name or variant
        process = self.spawn(server_command(variant, "127.0.0.1", port, threads=threads),
                             env, name)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + START_TIMEOUT
        while not _http_ok(f"{url}/healthz"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{variant} did not come up:\n{self.log(name)}")
            time.sleep(0.1)
        return url

    def rest(self, env: dict[str, str], name: str = "rest") -> str:
        """The production REST server (granian, WSGI)."""
        return self.server(REST_SERVER, env, name)

    def sockets(self, env: dict[str, str], name: str = "sockets") -> str:
        """The production socket server (see SOCKET_SERVER)."""
        return self.server(SOCKET_SERVER, env, name)


# --- servers ------------------------------------------------------------------------------------



def server_command(variant: str, host: str, port: int, *,
                   threads: int = REST_THREADS) -> list[str]:
    """The command line of one server process. No variant trusts X-Forwarded-For (the app
    reads it through DRF's NUM_PROXIES only), and none writes an access log (Django's
    request log line is the one kept)."""
    py = sys.executable
    commands = {
        # The baseline: daphne (Twisted) with Django's own ASGI handler.
        "daphne": [py, "-m", "daphne", "-b", host, "-p", str(port), "biddt.asgi:application"],
        "granian-wsgi": [py, "-m", "granian", "--interface", "wsgi", "--host", host,
                         "--port", str(port), "--workers", "1", "--blocking-threads",
                         str(threads), "--no-ws", "--log-level", "warning",
                         "biddt.wsgi:application"],
        "granian-asgi": [py, "-m", "granian", "--interface", "asgi", "--host", host,
                         "--port", str(port), "--workers", "1", "--log-level", "warning",
                         "biddt.asgi:application"],
        "uvicorn": [py, "-m", "uvicorn", "--host", host, "--port", str(port),
                    "--no-proxy-headers", "--lifespan", "off", "--no-access-log",
                    "--log-level", "warning", "biddt.asgi:application"],
        "gunicorn-gthread": [py, "-m", "gunicorn", "-k", "gthread", "--threads", str(threads),
                             "-w", "1", "-b", f"{host}:{port}", "--log-level", "warning",
                             "biddt.wsgi:application"],
        "gunicorn-uvicorn": [py, "-m", "gunicorn", "-k", "uvicorn_worker.UvicornWorker",
                             "-w", "1", "-b", f"{host}:{port}", "--log-level", "warning",
                             "biddt.asgi:application"],
    }
    return commands[variant]


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of a process and all its descendants (granian and gunicorn serve from
    child processes); processes that already exited are not counted."""
    import psutil

    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for process in processes:
        with suppress(psutil.NoSuchProcess):
            times = process.cpu_times()
            total += times.user + times.system
    return total


def server_env(*, database_url: str, redis_url: str | None, **extra: str) -> dict[str, str]:
    """Environment of a server process: production-like settings (biddt.settings), the bench
    database, Redis for cache and channel layer, throttles off (the engine is measured), logs at
    WARNING except the per-request lines (`REQUEST_LOG_LEVEL`, INFO as in production unless
    the caller passes it), jobs queued to a broker nobody consumes during the run."""
    env = dict(os.environ)
    env.update({
        "DJANGO_SETTINGS_MODULE": "biddt.settings",
        "DATABASE_URL": database_url,
        "LOG_LEVEL": "WARNING",
        "DEBUG": "false",
        "PYTHONUNBUFFERED": "1",
        "BIDDT_THROTTLE_USER": UNLIMITED, "BIDDT_THROTTLE_BID": UNLIMITED,
        "BIDDT_THROTTLE_ANON": UNLIMITED,
        "BIDDT_EMBEDDED_JOBS": "false", "CELERY_TASK_ALWAYS_EAGER": "false",
        "PYTHONPATH": os.pathsep.join(p for p in (str(BASE_DIR),
                                                  os.environ.get("PYTHONPATH", "")) if p),
    })
    if redis_url:
        env["REDIS_URL"] = redis_url
        env["CELERY_BROKER_URL"] = redis_url.rsplit("/", 1)[0] + "/1"
    else:
        env.pop("REDIS_URL", None)
        env["CELERY_BROKER_URL"] = "memory://"
    env.update(extra)
    return env


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            with suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (/proc; 0 where unavailable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _redis_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - 127.0.0.1
            return response.status == 200
    except OSError:
        return False


def make_users(count: int, prefix: str) -> list:
    """`count` committed users with access tokens (`.token`)."""
    from rest_framework_simplejwt.tokens import AccessToken

    from accounts.models import User

    users = []
    for i in range(count):
        phone = f"+1555{prefix}{i:04d}"
        user = (User.objects.filter(display_name=f"bench {prefix} {i}").first()
                or User.objects.create_user(phone, display_name=f"bench {prefix} {i}"))
        user.token = str(AccessToken.for_user(user))
        users.append(user)
    return users


def make_listing(seller, *, starting_price_cents: int = 1000, hours: float = 24):
    from datetime import timedelta

    from django.utils import timezone

    from listings.models import Listing

    now = timezone.now()
    return Listing.objects.create(
        seller=seller, title="Bench hot item", auction_type="auction", status="active",
        starting_price_cents=starting_price_cents, current_price_cents=starting_price_cents,
        starts_at=now - timedelta(minutes=5), ends_at=now + timedelta(hours=hours))


def bid_rows(listing, next_bid, count: int) -> list:
    """The one fixture builder of bids for the benchmarks: up to `count` bids through the
    auction rules (`listings.rules.apply_bid`, what `bid_place` applies), as unsaved `Bid`
    rows exactly as `bid_place` stores them (the proxy's automatic answers included), and
    the listing's auction state set to match (unsaved: the caller bulk-inserts both).

    `next_bid(state)` gives the next `rules.BidInput` for the current state, or None to skip;
    a bid the rules refuse is skipped, like a refused bid.
    """
    from bidding.models import Bid
    from listings import rules

    state = rules.AuctionState.initial(starting_price_cents=listing.starting_price_cents,
                                       reserve_price_cents=listing.reserve_price_cents)
    rows, seq = [], 0
    for _ in range(count):
        bid = next_bid(state)
        if bid is None:
            continue
        try:
            outcome = rules.apply_bid(state, bid)
        except rules.BidRuleError:
            continue
        seq += 1
        rows.extend(Bid(listing=listing, bidder_id=r.bidder_id, amount_cents=r.amount_cents,
                        max_amount_cents=r.max_amount_cents,
                        requested_amount_cents=r.requested_amount_cents,
                        is_auto_bid=r.is_auto_bid, is_max_raise=r.is_max_raise, seq=seq)
                    for r in outcome.records)
        state = outcome.state
    listing.current_price_cents = state.current_price_cents
    listing.bid_count = state.bid_count
    listing.leader_id = state.leader_id
    listing.leader_max_cents = state.leader_max_cents
    listing.seq = seq
    return rows


class PgBackendCpu:
    """CPU of the PostgreSQL backends serving one database, from pg_stat_activity and /proc.

    A thread lists the database's backends every `every` seconds and reads each one's CPU;
    `stop()` returns the CPU seconds they used since `start()` (a backend that was there at
    the start counts from then, a new one from its birth). Only backends of this database:
    other databases on the same server are not counted. A backend that exits loses at most
    its last `every` seconds. Needs PostgreSQL on this machine (/proc of its processes).
    """

    def __init__(self, conninfo: str, every: float = 0.2) -> None:
        import threading

        self.conninfo, self.every = conninfo, every
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _pids(self, conn) -> list[int]:
        return [row[0] for row in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND backend_type = 'client backend'")]

    def _sample(self, conn, *, initial: bool = False) -> None:
        for pid in self._pids(conn):
            cpu = cpu_seconds(pid)
            if pid not in self.first:
                self.first[pid] = cpu if initial else 0.0
            self.last[pid] = max(cpu, self.last.get(pid, 0.0))

    def _run(self) -> None:
        import psycopg

        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            while not self._stop.wait(self.every):
                self._sample(conn)
            self._sample(conn)

    def start(self) -> PgBackendCpu:
        import psycopg

        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            self._sample(conn, initial=True)
        self._thread.start()
        return self

    def stop(self) -> float:
        self._stop.set()
        self._thread.join(timeout=30)
        return sum(self.last[pid] - self.first[pid] for pid in self.last)
