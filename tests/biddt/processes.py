"""Real server processes for integration tests: daphne on the test database, a throwaway Redis.

Used through the `daphne_server` and `redis_server` fixtures in tests/conftest.py. Waiting for a
process to come up uses a deadline, but no test asserts on how long anything took.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote

BASE_DIR = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30.0


def free_port() -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def child_database_url() -> str:
    """`DATABASE_URL` naming the test database pytest-django created, for another process.

    Call it once the test database exists (any test using `db`/`transactional_db`, or a
    fixture depending on `django_db_setup`).
    """
    from django.db import connection

    s = connection.settings_dict
    if connection.vendor == "sqlite":
        if connection.is_in_memory_db():
            raise RuntimeError(
                "the SQLite test database is in memory; another process can't open it "
                "(biddt.settings_test gives it a file name)"
            )
        return f"sqlite:///{Path(s['NAME']).resolve()}"
    if connection.vendor == "postgresql":
        auth = ""
        if s.get("USER"):
            auth = quote(s["USER"], safe="")
            if s.get("PASSWORD"):
                auth += ":" + quote(s["PASSWORD"], safe="")
            auth += "@"
        host = s.get("HOST") or "localhost"
        port = f":{s['PORT']}" if s.get("PORT") else ""
        return f"postgres://{auth}{host}{port}/{quote(s['NAME'], safe='')}"
    raise RuntimeError(f"no DATABASE_URL recipe for {connection.vendor}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@dataclasses.dataclass
class DaphneServer:
    host: str
    port: int
    process: subprocess.Popen
    log_path: Path

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        _stop(self.process)


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - our own server
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False


def start_daphne(*, log_dir: Path, env: dict[str, str] | None = None) -> DaphneServer:
    """Start `daphne biddt.asgi:application` on a free port and wait until /healthz answers."""
    from django.conf import settings

    host, port = "127.0.0.1", free_port()
    child_env = dict(os.environ)
    child_env.update(
        {
            "DJANGO_SETTINGS_MODULE": "biddt.settings_test",
            "DATABASE_URL": child_database_url(),
            # Same cache and channel-layer prefix as this process: events the test sends
            # through the layer reach the server's sockets (with REDIS_URL).
            "BIDDT_TEST_PREFIX": settings.BIDDT_TEST_PREFIX,
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(BASE_DIR), os.environ.get("PYTHONPATH", "")) if p
            ),
            "PYTHONUNBUFFERED": "1",
        }
    )
    child_env.update(env or {})
    log_path = log_dir / f"daphne-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", host, "-p", str(port),
             "biddt.asgi:application"],
            cwd=BASE_DIR, env=child_env, stdout=log, stderr=subprocess.STDOUT,
        )
    server = DaphneServer(host=host, port=port, process=process, log_path=log_path)
    deadline = time.monotonic() + START_TIMEOUT
    while not _http_ok(f"{server.http_url}/healthz"):
        if process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"daphne did not come up on port {port}:\n{server.log()}")
        time.sleep(0.1)
    return server


class DaphneLauncher:
    """Starts daphne servers, reusing a running one for the same extra env; stops them all."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.shared: dict[tuple, DaphneServer] = {}
        self.started: list[DaphneServer] = []

    def start(self, env: dict[str, str] | None = None, *, fresh: bool = False) -> DaphneServer:
        key = tuple(sorted((env or {}).items()))
        running = self.shared.get(key)
        if not fresh and running is not None and running.process.poll() is None:
            return running
        server = start_daphne(log_dir=self.log_dir, env=env)
        self.started.append(server)
        if not fresh:
            self.shared[key] = server
        return server

    def stop_all(self) -> None:
        for server in self.started:
            server.stop()
        self.started.clear()
        self.shared.clear()


# --- A throwaway redis-server -------------------------------------------------------------


def _redis_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@dataclasses.dataclass
class RedisServer:
    port: int
    process: subprocess.Popen

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        _stop(self.process)

    def is_up(self) -> bool:
        return _redis_ping(self.port)


def start_redis(*, work_dir: Path) -> RedisServer:
    """`redis-server` on a free port, no persistence; raises if the binary is missing."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise FileNotFoundError("redis-server is not on PATH")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(work_dir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    server = RedisServer(port=port, process=process)
    deadline = time.monotonic() + START_TIMEOUT
    while not server.is_up():
        if process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"redis-server did not come up on port {port}")
        time.sleep(0.05)
    return server


# --- Socket clients ------------------------------------------------------------------------

async def recv_type(socket, wanted: str, *, timeout: float = 15.0) -> dict:
    """The next message of type `wanted` on a `websockets` client socket (others, e.g.
    `outbid`, are skipped), waiting at most `timeout` seconds."""
    import asyncio
    import json

    async with asyncio.timeout(timeout):
        while True:
            message = json.loads(await socket.recv())
            if message["type"] == wanted:
                return message
