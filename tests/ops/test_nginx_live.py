"""deploy/nginx.conf itself, run by Debian's nginx on loopback in front of the real servers.

The test renders the shipped file with its upstreams pointed at a REST server and a socket
server it starts (`live_servers`, with `BIDDT_NUM_PROXIES=1` as in docker-compose.yml and
the real 20/min per-IP send-code limit), wraps it in a main configuration of its own (pid,
logs and temp files in a temporary prefix, `daemon off`), and attacks it as a client would:
forged `X-Forwarded-For` / `X-Real-IP` headers, `/metrics`, a WebSocket upgrade.
Skips with the reason where nginx is not installed.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.biddt.processes import _stop, free_port

ROOT = Path(__file__).resolve().parents[2]
NGINX = shutil.which("nginx") or next(
    (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None)
AUTH_IP_LIMIT = 20

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(NGINX is None, reason="nginx is not installed (apt-get install nginx)"),
]


def render(conf: str, *, listen: int, rest: str, sockets: str, media: Path) -> str:
    """The shipped server block with this machine's addresses; nothing else changed."""
    def upstream(name: str, address: str, text: str) -> str:
        match = re.search(rf"upstream {name} \{{(.*?)\}}", text, re.S)
        assert match, f"no upstream {name} in deploy/nginx.conf"
        kept = [line for line in match.group(1).splitlines()
                if not line.strip().startswith("server ")]  # keepalive etc. stay
        body = "\n".join([f"    server {address} max_fails=3 fail_timeout=10s;", *kept])
        return text[:match.start(1)] + "\n" + body + "\n" + text[match.end(1):]

    conf = upstream("biddt_http", rest, conf)
    conf = upstream("biddt_ws", sockets, conf)
    conf = conf.replace("listen 80;", f"listen 127.0.0.1:{listen};")
    return conf.replace("alias /srv/media/;", f"alias {media}/;")


@contextmanager
def nginx_running(prefix: Path, server_block: str, port: int):
    """Debian's nginx with `server_block` inside a main configuration of its own (pid, logs
    and temp files under `prefix`, `daemon off`), until the block exits; `port` is one it
    listens on (waited for)."""
    (prefix / "logs").mkdir(parents=True, exist_ok=True)
    (prefix / "biddt.conf").write_text(server_block)
    user = "user root root;\n" if os.geteuid() == 0 else ""  # workers as root read the prefix
    (prefix / "nginx.conf").write_text(
        f"{user}daemon off;\nworker_processes 1;\npid {prefix}/nginx.pid;\n"
        f"error_log {prefix}/logs/error.log warn;\n"
        "events { worker_connections 256; }\n"
        "http {\n"
        f"    access_log {prefix}/logs/access.log;\n"
        f"    client_body_temp_path {prefix}/body;\n    proxy_temp_path {prefix}/proxy;\n"
        f"    fastcgi_temp_path {prefix}/fastcgi;\n    uwsgi_temp_path {prefix}/uwsgi;\n"
        f"    scgi_temp_path {prefix}/scgi;\n"
        f"    include {prefix}/biddt.conf;\n"
        "}\n")
    check = subprocess.run([NGINX, "-t", "-p", str(prefix), "-c", str(prefix / "nginx.conf"),
                            "-e", str(prefix / "logs" / "error.log")],
                           capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stderr
    process = subprocess.Popen([NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf"),
                                "-e", str(prefix / "logs" / "error.log")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((prefix / "logs" / "error.log").read_text()) from None
                time.sleep(0.05)
        yield
    finally:
        _stop(process)


@pytest.fixture
def nginx(live_servers, tmp_path):
    """(nginx URL, servers): nginx with the rendered deploy/nginx.conf in front of fresh
    servers that trust one proxy and enforce the real per-IP send-code limit."""
    servers = live_servers({"BIDDT_NUM_PROXIES": "1",
                            "BIDDT_THROTTLE_AUTH_IP": f"{AUTH_IP_LIMIT}/min",
                            "LOG_LEVEL": "INFO", "REQUEST_LOG_LEVEL": "INFO"}, fresh=True)
    prefix = tmp_path / "nginx"
    (prefix / "media").mkdir(parents=True)
    port = free_port()
    server_block = render((ROOT / "deploy" / "nginx.conf").read_text(), listen=port,
                          rest=f"127.0.0.1:{servers.rest_port}",
                          sockets=f"127.0.0.1:{servers.ws_port}", media=prefix / "media")
    try:
        with nginx_running(prefix, server_block, port):
            yield f"http://127.0.0.1:{port}", servers
    finally:
        servers.stop()


def test_forged_forwarded_for_does_not_rotate_the_client_ip(nginx):
    from accounts.models import PhoneOTP

    url, servers = nginx
    # given a client behind nobody, talking to nginx, forging a new address on every request
    codes = []
    with httpx.Client(base_url=url, timeout=30) as http:
        for i in range(AUTH_IP_LIMIT + 5):
            response = http.post(
                "/v1/auth/phone/send-code",
                json={"phone_number": f"+1416555{i:04d}"},
                headers={"X-Forwarded-For": f"203.0.113.{i}, 127.0.0.1",
                         "X-Real-IP": f"203.0.113.{i}"})
            codes.append(response.status_code)
    # then the per-IP limit holds: 20 accepted, then 429 whatever the header says
    assert codes[:AUTH_IP_LIMIT] == [202] * AUTH_IP_LIMIT, codes
    assert set(codes[AUTH_IP_LIMIT:]) == {429}, codes
    # and the address stored with each code is the one nginx saw, never the forged one
    stored = set(PhoneOTP.objects.values_list("requested_ip", flat=True))
    assert stored == {"127.0.0.1"}, stored
    log = servers.log()
    assert "203.0.113." not in log
    assert re.search(r"""["']?ip["']?\s*[:=]\s*["']?127\.0\.0\.1""", log), log[-3000:]


def test_metrics_is_not_reachable_through_nginx(nginx):
    url, servers = nginx
    # when a client asks nginx for the app's Prometheus endpoint
    for path in ("/metrics", "/metrics/", "/metrics?x=1"):
        response = httpx.get(f"{url}{path}", timeout=30)
        # then nginx answers 404 itself: the app never sees it (its 404s are JSON)
        assert response.status_code == 404, (path, response.text[:200])
        assert "application/json" not in response.headers.get("content-type", "")
    # while the app does serve it to whoever reaches the process directly (the scraper)
    direct = httpx.get(f"{servers.http_url}/metrics", timeout=30)
    assert direct.status_code != 404
    # and the API still goes through
    assert httpx.get(f"{url}/healthz", timeout=30).status_code == 200


def test_only_the_video_upload_path_takes_a_body_past_the_photo_limit(nginx):
    url, _servers = nginx
    body = {"files": {"video": ("clip.mp4", b"\0" * (13 * 1024 * 1024), "video/mp4")}}
    listing = "00000000-0000-0000-0000-000000000000"
    with httpx.Client(base_url=url, timeout=60) as http:
        # a 13 MB body reaches the app on the video path (401: no token), not elsewhere
        video = http.post(f"/v1/listings/{listing}/videos", **body)
        image = http.post(f"/v1/listings/{listing}/images", **body)
    assert video.status_code == 401, video.text[:200]
    assert image.status_code == 413


def test_websocket_upgrades_through_nginx(nginx):
    url, _servers = nginx

    async def scenario():
        async with connect(url.replace("http://", "ws://") + "/ws/", open_timeout=15,
                           additional_headers={"X-Forwarded-For": "203.0.113.9"}) as ws:
            await ws.send(json.dumps({"type": "ping"}))
            return json.loads(await asyncio.wait_for(ws.recv(), timeout=15))

    # when a client opens a socket through nginx, then it is upgraded and served
    assert asyncio.run(scenario()) == {"type": "pong"}
