"""Real server processes for integration tests: the REST and socket servers on the test
database, a throwaway Redis.

Used through the `live_servers` (alias `daphne_server`) and `redis_server` fixtures in
tests/conftest.py. Waiting for a
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


# The production servers (README "Servers", docker-compose.yml): REST on granian's WSGI
# interface, sockets on uvicorn with the ASGI application. Neither trusts X-Forwarded-For
# (the app reads it through DRF's NUM_PROXIES only).
REST_THREADS = 4


def rest_command(host: str, port: int) -> list[str]:
    return [sys.executable, "-m", "granian", "--interface", "wsgi", "--host", host,
            "--port", str(port), "--workers", "1", "--blocking-threads", str(REST_THREADS),
            "--no-ws", "--log-level", "warning", "biddt.wsgi:application"]


def socket_command(host: str, port: int) -> list[str]:
    return [sys.executable, "-m", "uvicorn", "--host", host, "--port", str(port),
            "--no-proxy-headers", "--lifespan", "off", "--no-access-log",
            "--ws-max-size", "1048576", "biddt.asgi:application"]


class _Both:
    """The `process` of a pair: running while both servers run."""

    def __init__(self, *processes: subprocess.Popen) -> None:
        self.processes = processes
        self.pid = processes[0].pid

    def poll(self) -> int | None:
        codes = [p.poll() for p in self.processes]
        return next((code for code in codes if code is not None), None)


@dataclasses.dataclass
class LiveServers:
    """A REST server and a socket server on the test database, as deployed behind nginx.

    Without Redis (no `REDIS_URL`) the channel layer lives in one process's memory, so one
    ASGI server serves both, as `make run` does: then `http_url` and `ws_url` name the same
    process. `.rest` and `.sockets` are the processes; `.process.poll()` is None while both run.
    """

    host: str
    rest_port: int
    ws_port: int
    rest: subprocess.Popen
    sockets: subprocess.Popen
    log_paths: tuple[Path, ...]

    @property
    def port(self) -> int:
        return self.rest_port

    @property
    def process(self) -> _Both:
        return _Both(self.rest, self.sockets)

    @property
    def split(self) -> bool:
        return self.rest is not self.sockets

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.rest_port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.ws_port}"

    def log(self) -> str:
        return "".join(p.read_text(errors="replace") for p in self.log_paths if p.exists())

    def stop(self) -> None:
        for process in {id(p): p for p in (self.rest, self.sockets)}.values():
            _stop(process)


# Kept for tests written against the daphne era's name.
DaphneServer = LiveServers


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - our own server
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False


def _spawn(command: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen:
    with log_path.open("wb") as log:
        return subprocess.Popen(command, cwd=BASE_DIR, env=env, stdout=log,
                                stderr=subprocess.STDOUT)


def _wait_up(url: str, processes: list[subprocess.Popen], log_paths: list[Path]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not _http_ok(url):
        if any(p.poll() is not None for p in processes) or time.monotonic() > deadline:
            for process in processes:
                _stop(process)
            logs = "".join(p.read_text(errors="replace") for p in log_paths if p.exists())
            raise RuntimeError(f"server did not come up at {url}:\n{logs}")
        time.sleep(0.1)


def start_servers(*, log_dir: Path, env: dict[str, str] | None = None) -> LiveServers:
    """Start the REST and socket servers on free ports; wait until both answer /healthz."""
    from django.conf import settings

    host = "127.0.0.1"
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
    ws_port = free_port()
    ws_log = log_dir / f"sockets-{ws_port}.log"
    sockets = _spawn(socket_command(host, ws_port), child_env, ws_log)
    if child_env.get("REDIS_URL"):
        rest_port = free_port()
        rest_log = log_dir / f"rest-{rest_port}.log"
        rest = _spawn(rest_command(host, rest_port), child_env, rest_log)
        log_paths = (rest_log, ws_log)
        _wait_up(f"http://{host}:{rest_port}/healthz", [rest, sockets], list(log_paths))
    else:
        rest_port, rest, log_paths = ws_port, sockets, (ws_log,)
    _wait_up(f"http://{host}:{ws_port}/healthz", [rest, sockets], list(log_paths))
    return LiveServers(host=host, rest_port=rest_port, ws_port=ws_port, rest=rest,
                       sockets=sockets, log_paths=log_paths)


start_daphne = start_servers  # the daphne era's name


class ServerLauncher:
    """Starts server pairs, reusing a running one for the same extra env; stops them all."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.shared: dict[tuple, LiveServers] = {}
        self.started: list[LiveServers] = []

    def start(self, env: dict[str, str] | None = None, *, fresh: bool = False) -> LiveServers:
        key = tuple(sorted((env or {}).items()))
        running = self.shared.get(key)
        if not fresh and running is not None and running.process.poll() is None:
            return running
        server = start_servers(log_dir=self.log_dir, env=env)
        self.started.append(server)
        if not fresh:
            self.shared[key] = server
        return server

    def stop_all(self) -> None:
        for server in self.started:
            server.stop()
        self.started.clear()
        self.shared.clear()


DaphneLauncher = ServerLauncher


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

    from tests.socket_contract import assert_server_message

    async with asyncio.timeout(timeout):
        while True:
            message = json.loads(await socket.recv())
            assert_server_message(message)  # what the live server sends matches its document
            if message["type"] == wanted:
                return message
