"""docker-compose.yml and deploy/nginx.conf, checked where `docker compose config` can't run."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _serving(services: dict, server: str) -> list[str]:
    return sorted(name for name, svc in services.items()
                  if svc.get("command") and svc["command"][0] == server)


def test_two_rest_and_two_socket_processes_behind_nginx_with_health_checks():
    services = compose()["services"]
    webs, sockets = _serving(services, "granian"), _serving(services, "uvicorn")
    assert webs == ["web1", "web2"] and sockets == ["ws1", "ws2"]
    for name in webs:
        command = services[name]["command"]
        assert command[command.index("--interface") + 1] == "wsgi"
        assert command[-1] == "biddt.wsgi:application"
    for name in sockets:
        command = services[name]["command"]
        # uvicorn trusts X-Forwarded-For from 127.0.0.1 unless told not to
        assert "--no-proxy-headers" in command
        assert command[-1] == "biddt.asgi:application"
    for name in webs + sockets:
        assert "ports" not in services[name]  # only nginx is published
        assert "test" in services[name]["healthcheck"], name
        assert services[name]["environment"]["BIDDT_NUM_PROXIES"] == "1"
    nginx = services["nginx"]
    assert nginx["ports"] == ["${BIDDT_PORT:-8000}:80", "${BIDDT_TLS_PORT:-8443}:443"]
    assert set(nginx["depends_on"]) == {"web1", "web2", "ws1", "ws2"}
    assert any("deploy/nginx.conf" in v for v in nginx["volumes"])
    for name in ("postgres", "redis", "nginx"):
        assert "test" in services[name]["healthcheck"], name
    assert not any("daphne" in " ".join(svc.get("command") or []) for svc in services.values())


def test_every_app_service_gets_the_same_required_secrets():
    services = compose()["services"]
    for name in ("migrate", "web1", "web2", "ws1", "ws2", "worker", "beat"):
        env = services[name]["environment"]
        for key in ("SECRET_KEY", "ALLOWED_HOSTS", "BIDDT_PII_KEYS", "DATABASE_URL",
                    "REDIS_URL", "JWT_SIGNING_KEY", "STRIPE_SECRET_KEY",
                    "STRIPE_WEBHOOK_SECRET", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"):
            assert env.get(key), (name, key)
    beats = [n for n, s in services.items() if s.get("command") and "beat" in s["command"]]
    assert beats == ["beat"]  # exactly one scheduler


def _block(conf: str, start: str) -> str:
    block = conf[conf.index(start):]
    return block[:block.index("}")]


def test_nginx_routes_sockets_and_rest_apart_and_upgrades_websockets():
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    http, ws = _block(conf, "upstream biddt_http"), _block(conf, "upstream biddt_ws")
    assert "server web1:8000" in http and "server web2:8000" in http
    assert "server ws1:8000" in ws and "server ws2:8000" in ws
    sockets = _block(conf, "location /ws/")
    assert "proxy_pass http://biddt_ws;" in sockets
    assert "proxy_set_header Upgrade $http_upgrade" in sockets
    assert "proxy_set_header Connection $connection_upgrade" in sockets
    assert "proxy_read_timeout 3600s" in sockets
    assert "proxy_pass http://biddt_http;" in _block(conf, "location / {")
    assert "proxy_http_version 1.1" in conf
    assert conf.count("{") == conf.count("}")


def test_nginx_overwrites_the_client_address_in_every_proxied_location():
    # a location's proxy_set_header replaces the server-level ones, so each sets its own
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    assert "$proxy_add_x_forwarded_for" not in conf  # appending keeps the client's forgery
    for start in ("location /ws/", "location / {", "location ~ ^/v1/listings/[^/]+/videos$"):
        block = _block(conf, start)
        assert "proxy_set_header X-Forwarded-For $remote_addr;" in block, start
        assert "proxy_set_header X-Real-IP $remote_addr;" in block, start
        assert "proxy_set_header X-Forwarded-Proto" in block, start
        assert "proxy_set_header Host $host;" in block, start


def test_nginx_does_not_expose_metrics():
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    assert "return 404" in _block(conf, "location ~ ^/metrics(/|$)")


def test_worker_and_beat_have_health_checks_and_the_worker_time_to_finish():
    services = compose()["services"]
    worker, beat = services["worker"], services["beat"]
    assert "inspect ping" in " ".join(worker["healthcheck"]["test"])
    assert beat["healthcheck"]["test"][-2:] == ["deploy/healthcheck.py", "beat"]
    # CELERY_TASK_TIME_LIMIT is 120 s: a task running at SIGTERM gets to finish
    seconds = int(worker["stop_grace_period"].rstrip("s"))
    assert seconds > 120
    for name in ("web1", "ws1"):
        assert services[name]["healthcheck"]["test"][-3:] == ["deploy/healthcheck.py", "http",
                                                              "8000"]
    assert 'CMD ["python", "deploy/healthcheck.py", "http", "8000"]' in (
        ROOT / "Dockerfile").read_text()


def test_no_line_of_the_deployment_files_is_unreadably_long():
    for name in ("docker-compose.yml", "Dockerfile", "deploy/nginx.conf",
                 "deploy/nginx-tls.conf"):
        for number, line in enumerate((ROOT / name).read_text().splitlines(), 1):
            assert len(line) <= 140, f"{name}:{number} has {len(line)} characters"


def test_apt_packages_are_pinned_to_the_base_image_release():
    import re

    dockerfile = (ROOT / "Dockerfile").read_text()
    # the base image names its Debian release, so the pins below are of that release
    assert re.search(r"^ARG PYTHON_IMAGE=python:[\d.]+-slim-bookworm$", dockerfile, re.M)
    installs = re.findall(r"apt-get install ([^&]+?)(?:&&|$)", dockerfile.replace("\\\n", " "))
    assert installs, "no apt-get install in the Dockerfile"
    for install in installs:
        packages = [word for word in install.split() if not word.startswith("-")]
        assert packages
        for package in packages:
            assert re.fullmatch(r"[a-z0-9.+-]+=[\w.:~+-]+", package), f"unpinned: {package}"


def test_nginx_tls_is_one_variable_away_in_compose():
    nginx = compose()["services"]["nginx"]
    volumes = nginx["volumes"]
    # plain HTTP by default; BIDDT_NGINX_CONF=./deploy/nginx-tls.conf turns TLS on
    assert "${BIDDT_NGINX_CONF:-./deploy/nginx.conf}:/etc/nginx/conf.d/default.conf:ro" in volumes
    assert "${BIDDT_TLS_CERTS:-./deploy/certs}:/etc/nginx/certs:ro" in volumes
    assert "${BIDDT_TLS_PORT:-8443}:443" in nginx["ports"]
    tls = (ROOT / "deploy" / "nginx-tls.conf").read_text()
    assert "return 308 https://$host$request_uri;" in tls
    for path in ("/etc/nginx/certs/fullchain.pem", "/etc/nginx/certs/privkey.pem"):
        assert path in tls
    assert (ROOT / "deploy" / "certs" / "README.md").exists()
    assert "/deploy/certs/*.pem" in (ROOT / ".gitignore").read_text()
    assert "deploy/certs/*.pem" in (ROOT / ".dockerignore").read_text()
