"""Helpers for tests/chaos/test_worker_kill.py: Celery workers that can be SIGKILLed, the
broker's view of what they left behind, and providers that count what they were asked.

- `WorkerLauncher` starts real `celery -A biddt worker` processes (prefork, each in its own
  process group so a kill takes the parent and its pool children at once) on the test
  database and a private redis-server broker.
- `Broker` reads that redis-server: queue length, the messages a killed worker left
  unacknowledged (acks_late), and can hand them back as the visibility timeout would.
- `RecordingPushBackend` is the workers' push provider: it appends each notification id it
  is asked to push to a file, so the test can count pushes across processes.
- `ConnectStub` is a Stripe Connect `POST /v1/transfers` endpoint (modelled on
  tests/escrow/stripe_server.py) that honours `Idempotency-Key` like Stripe and can hold one
  response open after creating the Transfer, so a worker can be killed between the
  provider's side effect and our bookkeeping.
"""

from __future__ import annotations

import base64
import dataclasses
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl

from notifications.push import PushMessage, PushResult

PUSH_LOG_ENV = "BIDDT_CHAOS_PUSH_LOG"
WORKER_SETTINGS = "chaos_worker_settings"


def wait_until(predicate: Callable[[], bool], *, what: str, timeout: float = 60.0,
               interval: float = 0.02, on_timeout: Callable[[], str] | None = None) -> None:
    """Poll `predicate` until it holds; fail with `what` (and `on_timeout()`) at the deadline."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            extra = on_timeout() if on_timeout else ""
            raise AssertionError(f"timed out waiting for {what}\n{extra}")
        time.sleep(interval)


# --- Push provider seen from the test ---------------------------------------------------------

class RecordingPushBackend:
    """`BIDDT_PUSH_BACKEND` of the chaos workers: one line per push, the notification id.

    O_APPEND writes of one short line are atomic, so pool processes can share the file.
    """

    def send(self, tokens: list[str], message: PushMessage) -> list[PushResult]:
        line = f"{message.data.get('notification_id', '')}\n".encode()
        fd = os.open(os.environ[PUSH_LOG_ENV], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
        return [PushResult(token=t, ok=True) for t in tokens]


def pushed_ids(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


# --- Workers ---------------------------------------------------------------------------------

@dataclasses.dataclass
class Worker:
    name: str
    process: subprocess.Popen
    log_path: Path

    def kill(self) -> None:
        """SIGKILL the whole process group (the parent and every pool child), as the OOM
        killer or a lost node would: no warm shutdown, no ack, no cleanup."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=30)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class WorkerLauncher:
    """Starts `celery -A biddt worker` processes with the runner's test settings, plus
    `BIDDT_PUSH_BACKEND = RecordingPushBackend` (a generated settings module in `work_dir`)."""

    def __init__(self, *, broker_url: str, work_dir: Path, env: dict[str, str] | None = None,
                 concurrency: int = 2) -> None:
        from django.conf import settings

        from tests.biddt.processes import BASE_DIR, child_database_url

        self.work_dir = work_dir
        self.push_log = work_dir / "pushes.log"
        self.concurrency = concurrency
        self.started: list[Worker] = []
        self._names = itertools.count(1)
        (work_dir / f"{WORKER_SETTINGS}.py").write_text(
            "from biddt.settings_test import *  # noqa: F403\n"
            "BIDDT_PUSH_BACKEND = 'tests.chaos.worker_support.RecordingPushBackend'\n")
        self.base_dir = BASE_DIR
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": WORKER_SETTINGS,
            "DATABASE_URL": child_database_url(),
            "BIDDT_TEST_BROKER_URL": broker_url,
            "BIDDT_TEST_PREFIX": settings.BIDDT_TEST_PREFIX,
            PUSH_LOG_ENV: str(self.push_log),
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(work_dir), str(BASE_DIR), os.environ.get("PYTHONPATH", ""))
                if p),
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }

    def start(self) -> Worker:
        name = f"chaos{next(self._names)}"
        log_path = self.work_dir / f"{name}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "biddt", "worker", "--pool=prefork",
                 f"--concurrency={self.concurrency}", "--without-heartbeat",
                 "--without-gossip", "--without-mingle", "-n", f"{name}@%h", "-l", "INFO"],
                cwd=self.base_dir, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        worker = Worker(name=name, process=process, log_path=log_path)
        self.started.append(worker)
        return worker

    def logs(self) -> str:
        return "\n".join(f"--- {w.name} ---\n{w.log()[-4000:]}" for w in self.started)

    def kill_all(self) -> None:
        for worker in self.started:
            if worker.process.poll() is None:
                worker.kill()


# --- The broker ------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class BrokerMessage:
    task: str
    args: list
    kwargs: dict


def _decode(raw: bytes) -> BrokerMessage:
    """A kombu Redis message (`[payload, exchange, routing_key]`, body base64 JSON)."""
    payload = json.loads(raw)[0]
    body = payload["body"]
    if payload.get("properties", {}).get("body_encoding") == "base64":
        body = base64.b64decode(body)
    args, kwargs, _ = json.loads(body)
    return BrokerMessage(task=payload["headers"]["task"], args=args, kwargs=kwargs)


class Broker:
    """The private redis-server the workers consume (default queue `celery`)."""

    QUEUE = "celery"

    def __init__(self, url: str) -> None:
        import redis
        from celery import Celery

        self.url = url
        self.redis = redis.Redis.from_url(url)
        # set_as_current=False: the probe must not become the app every shared_task uses.
        self.client = Celery("chaos-probe", broker=url, set_as_current=False)

    def send(self, task: str, *args) -> None:
        """Queue a task by name, as beat or a committed request would."""
        self.client.send_task(task, args=list(args))

    def queued(self) -> int:
        return self.redis.llen(self.QUEUE)

    def unacked(self) -> list[BrokerMessage]:
        """Messages delivered to a worker and not acknowledged: running, or left by a kill."""
        return [_decode(raw) for raw in self.redis.hgetall("unacked").values()]

    def idle(self) -> bool:
        return self.queued() == 0 and self.redis.hlen("unacked") == 0

    def redeliver_unacked(self) -> int:
        """What the Redis transport does once `visibility_timeout` (an hour in settings) has
        passed for a dead worker's messages: put them back on their queue. Only call it when
        no live worker holds a message."""
        from kombu import Connection

        count = self.redis.hlen("unacked")
        with Connection(self.url, transport_options={"visibility_timeout": 0}) as conn:
            conn.default_channel.qos.restore_visible(num=10_000, interval=1)
        return count

    def close(self) -> None:
        self.client.close()
        self.redis.close()


def wait_idle(broker: Broker, *, what: str, timeout: float = 60.0,
              on_timeout: Callable[[], str] | None = None) -> None:
    """The queue and the unacked set empty on three polls in a row (a message moves from the
    list to `unacked` in two steps, so one empty look is not proof)."""
    streak = [0]

    def settled() -> bool:
        streak[0] = streak[0] + 1 if broker.idle() else 0
        return streak[0] >= 3

    wait_until(settled, what=what, timeout=timeout, interval=0.1, on_timeout=on_timeout)


# --- Stripe Connect transfers ----------------------------------------------------------------

class ConnectStub:
    """`POST /v1/transfers` as Stripe answers it: a repeated `Idempotency-Key` returns the
    first Transfer and creates nothing. Every request is recorded (key, form data).

    `hold_after=n`: the (n+1)-th Transfer is created, then its response is held until
    `release()`; `held` is set meanwhile. A worker killed during the hold has paid at the
    provider but not written it down.
    """

    def __init__(self, *, hold_after: int | None = None) -> None:
        self.hold_after = hold_after
        self.requests: list[dict] = []
        self.by_key: dict[str, dict] = {}
        self.created: list[dict] = []
        self.held = threading.Event()
        self.held_transfer: dict | None = None
        self._release = threading.Event()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path != "/v1/transfers":
                    return self._json(404, {"error": {"type": "invalid_request_error",
                                                      "message": "not stubbed"}})
                data = dict(parse_qsl(body.decode()))
                transfer, hold = stub._transfer(data, self.headers.get("Idempotency-Key"))
                if hold:
                    stub._release.wait(timeout=120)
                self._json(200, transfer)

            def _json(self, status: int, obj: dict) -> None:
                raw = json.dumps(obj).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                except OSError:
                    pass  # the caller was killed while we held the answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def _transfer(self, data: dict, key: str | None) -> tuple[dict, bool]:
        with self._lock:
            self.requests.append({"idempotency_key": key, "data": data})
            if key and key in self.by_key:
                return self.by_key[key], False
            transfer = {"id": f"tr_chaos{next(self._ids):06d}", "object": "transfer",
                        "amount": int(data["amount"]), "currency": data.get("currency"),
                        "destination": data.get("destination"),
                        "transfer_group": data.get("transfer_group"),
                        "metadata": {"transaction_id": data.get("metadata[transaction_id]")}}
            self.created.append(transfer)
            if key:
                self.by_key[key] = transfer
            hold = (self.hold_after is not None and len(self.created) == self.hold_after + 1)
            if hold:
                self.held_transfer = transfer
                self.held.set()
            return transfer, hold

    def release(self) -> None:
        self._release.set()

    def snapshot(self) -> tuple[list[dict], list[dict]]:
        with self._lock:
            return list(self.requests), list(self.created)

    def close(self) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()
