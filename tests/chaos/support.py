"""Helpers for the fault-injection tests: waiting on conditions, restarting a redis-server on
its port, an app-like live-room client, and a fault-injecting HTTP proxy for Stripe.

Nothing here sleeps for a fixed time to let something happen: every wait is a poll on a
condition with a deadline, so a slow machine makes the tests slower, not red.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import json
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.biddt.processes import START_TIMEOUT, RedisServer

DEADLINE = 30.0


def wait_until(predicate: Callable[[], Any], *, what: str, timeout: float = DEADLINE,
               interval: float = 0.05) -> Any:
    """Poll `predicate` until it returns something truthy (returned); fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


async def async_wait_until(predicate: Callable[[], Any], *, what: str,
                           timeout: float = DEADLINE, interval: float = 0.05) -> Any:
    """`wait_until` for a coroutine; `predicate` may return an awaitable."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(interval)


# --- redis-server on a fixed port (a restart after an outage) -------------------------------

def start_redis_on(port: int, *, work_dir: Path) -> RedisServer:
    """A fresh, empty `redis-server` on `port` (the one a stopped server used)."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise FileNotFoundError("redis-server is not on PATH")
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        process = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(work_dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        server = RedisServer(port=port, process=process)
        while not server.is_up() and process.poll() is None:
            if time.monotonic() > deadline:
                server.stop()
                raise RuntimeError(f"redis-server did not come back on port {port}")
            time.sleep(0.05)
        if server.is_up():
            return server
        # It exited (the port still held by a dying socket?): try again until the deadline.
        if time.monotonic() > deadline:
            raise RuntimeError(f"redis-server did not come back on port {port}")
        time.sleep(0.1)


# --- The live-room client, as the mobile app runs it -----------------------------------------

LIVE_FIELDS = ("current_price_cents", "bid_count", "minimum_next_bid_cents", "ends_at",
               "reserve_met")


class LiveRoomClient:
    """A listing screen's socket, written the way API.md tells an app to write it.

    - connects to `/ws/`, sends `subscribe` and takes the `subscribed` snapshot (retrying
      with a back-off while the server answers an error or drops the socket);
    - applies `bid_placed` when its `seq` is the next one; a `seq` gap (on an event or on a
      newer snapshot) means events were lost, so it re-reads the listing and its bid history
      over REST (`GET /v1/listings/{id}`, `GET /v1/listings/{id}/bids`);
    - keeps the socket honest: `ping` every `heartbeat` seconds (no `pong` within
      `answer_timeout`: the socket is stuck), and every `check_every` seconds `subscribe`
      again, which answers a fresh snapshot (a socket that is alive but lost its room sees the
      seq gap there); a socket that closes, stops answering, or answers the check with an
      error is given up: it reconnects and re-subscribes.
    """

    def __init__(self, *, ws_url: str, http_url: str, listing_id: str,
                 heartbeat: float = 0.5, check_every: float = 2.0,
                 answer_timeout: float = 3.0) -> None:
        self.ws_url, self.http_url, self.listing_id = ws_url, http_url, listing_id
        self.heartbeat, self.check_every = heartbeat, check_every
        self.answer_timeout = answer_timeout
        self.seq: int | None = None
        self.live: dict[str, Any] = {}
        self.status: str | None = None
        self.bids: dict[str, dict[str, Any]] = {}
        self.received: list[dict[str, Any]] = []  # every message, in order
        self.snapshots: list[dict[str, Any]] = []  # every `subscribed` listing
        self.live_events: list[dict[str, Any]] = []  # `bid_placed` applied in order
        self.gaps: list[tuple[int, int]] = []  # (seq held, seq seen)
        self.resyncs = 0
        self.connections = 0  # sockets that reached `subscribed`
        self.disconnects: list[str] = []  # why each socket was given up
        self.subscribe_errors: list[dict[str, Any]] = []
        self._task: asyncio.Task | None = None

    # lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        backoff = 0.1
        while True:
            try:
                async with connect(f"{self.ws_url}/ws/", open_timeout=5,
                                   close_timeout=1, ping_interval=None) as socket:
                    await socket.send(json.dumps({"type": "subscribe",
                                                  "listingId": self.listing_id}))
                    subscribed = await self._first_snapshot(socket)
                    backoff = 0.1
                    await self._on_snapshot(subscribed["listing"])
                    self.connections += 1
                    await self._serve(socket)
            except (_Dead, ConnectionClosed, OSError, TimeoutError, httpx.HTTPError) as exc:
                self.disconnects.append(f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 1.0)

    async def _first_snapshot(self, socket) -> dict[str, Any]:
        async with asyncio.timeout(self.answer_timeout):
            while True:
                message = json.loads(await socket.recv())
                self.received.append(message)
                if message["type"] == "subscribed":
                    return message
                if message["type"] == "error":
                    self.subscribe_errors.append(message)
                    raise _Dead(f"subscribe refused: {message.get('code')}")

    async def _serve(self, socket) -> None:
        """Read events; ping and re-check the room on a heartbeat; give up a bad socket."""
        now = time.monotonic()
        next_ping, next_check = now, now + self.check_every
        awaiting_pong: float | None = None  # when the unanswered ping was sent
        awaiting_check: float | None = None
        while True:
            now = time.monotonic()
            for sent, what in ((awaiting_pong, "pong"), (awaiting_check, "snapshot")):
                if sent is not None and now - sent > self.answer_timeout:
                    raise _Dead(f"no {what}: the socket is stuck")
            if now >= next_ping:
                await socket.send(json.dumps({"type": "ping"}))
                awaiting_pong = awaiting_pong or now
                next_ping = now + self.heartbeat
            if now >= next_check and awaiting_check is None:
                await socket.send(json.dumps({"type": "subscribe",
                                              "listingId": self.listing_id}))
                awaiting_check = now
                next_check = now + self.check_every
            try:
                async with asyncio.timeout(max(0.01, next_ping - time.monotonic())):
                    raw = await socket.recv()
            except TimeoutError:
                continue
            message = json.loads(raw)
            self.received.append(message)
            kind = message["type"]
            if kind == "pong":
                awaiting_pong = None
            elif kind == "subscribed" and message["listingId"] == self.listing_id:
                awaiting_check = None
                await self._on_snapshot(message["listing"])
            elif kind == "error" and awaiting_check is not None:
                self.subscribe_errors.append(message)
                raise _Dead(f"room check refused: {message.get('code')}")
            elif kind == "bid_placed" and message["listingId"] == self.listing_id:
                await self._on_bid_placed(message)

    # state ------------------------------------------------------------------------------
    async def _on_snapshot(self, listing: dict[str, Any]) -> None:
        self.snapshots.append(listing)
        if self.seq is not None and listing["seq"] <= self.seq:
            return  # nothing new (an event may already have brought us past it)
        if self.seq is not None:
            self.gaps.append((self.seq, listing["seq"]))
        if self.seq is not None or listing["seq"]:
            # Missed events, or bids placed before we arrived. Should the REST read fail,
            # `seq` stays behind and the next snapshot tries again.
            await self._resync()
        else:
            self.status = listing["status"]
            self.live = {k: listing[k] for k in LIVE_FIELDS}
        self.seq = listing["seq"]

    async def _on_bid_placed(self, event: dict[str, Any]) -> None:
        if self.seq is not None and event["seq"] <= self.seq:
            return  # already known (snapshot or REST read was newer)
        if self.seq is not None and event["seq"] != self.seq + 1:
            self.gaps.append((self.seq, event["seq"]))
            await self._resync()
            self.seq = event["seq"]
            return
        self.seq = event["seq"]
        self.live = {k: event["listing"][k] for k in LIVE_FIELDS}
        for bid in (event["bid"], event.get("autoBid")):
            if bid:
                self.bids[bid["id"]] = bid
        self.live_events.append(event)

    async def _resync(self) -> None:
        async with httpx.AsyncClient(base_url=self.http_url, timeout=10) as client:
            detail = (await client.get(f"/v1/listings/{self.listing_id}")).raise_for_status()
            listing = detail.json()
            bids: dict[str, dict[str, Any]] = {}
            url: str | None = f"/v1/listings/{self.listing_id}/bids?page_size=100"
            while url:
                page = (await client.get(url)).raise_for_status().json()
                bids.update({b["id"]: b for b in page["results"]})
                url = page["next"]
        self.live = {k: listing[k] for k in LIVE_FIELDS}
        self.status = listing["status"]
        self.bids = bids
        self.resyncs += 1


class _Dead(Exception):
    pass


# --- A fault-injecting proxy in front of the (local) Stripe API -----------------------------

@dataclasses.dataclass
class Fault:
    """What the proxy does to the next `times` requests matching `method` + `path`.

    `mode`:
    - `"500"`: answer 500 without forwarding (the provider never saw the call);
    - `"500_after_forward"`: the provider handles the call, its answer is lost: a 500;
    - `"slow_after_forward"`: the provider handles the call, its answer is held `delay`
      seconds (past the client's timeout).
    """

    method: str
    path: str
    times: int
    mode: str = "500"
    delay: float = 0.0
    used: int = 0


@dataclasses.dataclass
class ProxiedRequest:
    method: str
    path: str
    idempotency_key: str | None
    fault: str | None  # the fault applied, or None when passed through
    replayed: bool = False  # answered from the idempotency store, not sent to the provider
    upstream_status: int | None = None  # what the provider answered (None: not sent)
    upstream_body: dict | None = None

    @property
    def created(self) -> bool:
        """The provider created an object for this request."""
        return not self.replayed and self.upstream_status == 200


class FaultProxy:
    """A threaded HTTP proxy (127.0.0.1, free port) in front of a local Stripe API.

    It applies the faults queued with `fail()` and records every request with its
    Idempotency-Key. It also keeps Stripe's idempotency promise, which localstripe lacks for
    PaymentIntents: a POST whose key was already handled gets the first answer again, without
    reaching the provider (Stripe stores the result of every request that ran, and replays it
    for 24 hours). A fault that loses an answer after forwarding is thus a request Stripe
    handled, exactly the case a client's retry must not repeat.
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.faults: list[Fault] = []
        self.log: list[ProxiedRequest] = []
        self.results: dict[tuple[str, str, str], tuple[int, dict[str, str], bytes]] = {}
        self.lock = threading.Lock()
        self.released = threading.Event()  # set at shutdown: held answers go at once
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                proxy._handle(self)

            def do_POST(self):
                proxy._handle(self)

            def do_DELETE(self):
                proxy._handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FaultProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()

    def fail(self, method: str, path: str, *, times: int, mode: str = "500",
             delay: float = 0.0) -> Fault:
        fault = Fault(method=method, path=path, times=times, mode=mode, delay=delay)
        with self.lock:
            self.faults.append(fault)
        return fault

    def heal(self) -> None:
        with self.lock:
            self.faults.clear()

    def requests(self, method: str, path: str) -> list[ProxiedRequest]:
        with self.lock:
            return [r for r in self.log if r.method == method and r.path == path]

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.method == method and fault.path == path and fault.used < fault.times:
                    fault.used += 1
                    return fault
        return None

    def _forward(self, method: str, path: str, body: bytes | None,
                 headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(self.upstream + path, data=body, method=method,
                                         headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        method, path = handler.command, handler.path
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else None
        key = handler.headers.get("Idempotency-Key")
        headers = {k: v for k, v in handler.headers.items()
                   if k.lower() not in {"host", "content-length", "connection"}}
        bare_path = path.split("?", 1)[0]
        fault = self._take_fault(method, bare_path)
        record = ProxiedRequest(method=method, path=bare_path, idempotency_key=key,
                                fault=fault.mode if fault else None)
        with self.lock:
            self.log.append(record)
        if fault is not None and fault.mode == "500":
            self._answer(handler, 500, {}, json.dumps(
                {"error": {"type": "api_error", "message": "injected fault"}}).encode())
            return
        store_key = (method, bare_path, key) if method == "POST" and key else None
        with self.lock:
            stored = self.results.get(store_key) if store_key else None
        if stored is not None:
            record.replayed = True
            status, up_headers, raw = stored
        else:
            status, up_headers, raw = self._forward(method, path, body, headers)
            if store_key:
                with self.lock:
                    self.results[store_key] = (status, up_headers, raw)
        record.upstream_status = status
        with contextlib.suppress(ValueError):
            record.upstream_body = json.loads(raw) if raw else None
        if fault is not None and fault.mode == "500_after_forward":
            self._answer(handler, 500, {}, json.dumps(
                {"error": {"type": "api_error", "message": "injected fault (answer lost)"}}
            ).encode())
            return
        if fault is not None and fault.mode == "slow_after_forward":
            self.released.wait(fault.delay)
        self._answer(handler, status, up_headers, raw)

    @staticmethod
    def _answer(handler: BaseHTTPRequestHandler, status: int, headers: dict[str, str],
                raw: bytes) -> None:
        with contextlib.suppress(OSError):
            handler.send_response(status)
            handler.send_header("Content-Type", headers.get("Content-Type",
                                                            "application/json"))
            handler.send_header("Content-Length", str(len(raw)))
            handler.end_headers()
            handler.wfile.write(raw)
