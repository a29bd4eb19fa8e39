"""docker-compose.yml and deploy/nginx.conf, checked where `docker compose config` can't run."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_two_web_instances_behind_nginx_with_health_checks():
    services = compose()["services"]
    webs = [name for name, svc in services.items()
            if svc.get("command") and "daphne" in svc["command"]]
    assert sorted(webs) == ["web1", "web2"]
    for name in webs:
        assert "ports" not in services[name]  # only nginx is published
        assert "healthcheck" in services[name]
    nginx = services["nginx"]
    assert nginx["ports"] == ["${BIDDT_PORT:-8000}:80"]
    assert set(nginx["depends_on"]) == {"web1", "web2"}
    assert any("deploy/nginx.conf" in v for v in nginx["volumes"])
    for name in ("postgres", "redis", "nginx", *webs):
        assert "test" in services[name]["healthcheck"], name


def test_every_app_service_gets_the_same_required_secrets():
    services = compose()["services"]
    for name in ("migrate", "web1", "web2", "worker", "beat"):
        env = services[name]["environment"]
        for key in ("SECRET_KEY", "ALLOWED_HOSTS", "BIDDT_PII_KEYS", "DATABASE_URL",
                    "REDIS_URL", "JWT_SIGNING_KEY", "STRIPE_SECRET_KEY",
                    "STRIPE_WEBHOOK_SECRET", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"):
            assert env.get(key), (name, key)
    beats = [n for n, s in services.items() if s.get("command") and "beat" in s["command"]]
    assert beats == ["beat"]  # exactly one scheduler


def test_nginx_upgrades_websockets_and_balances_both_instances():
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    assert re.search(r"server web1:8000", conf) and re.search(r"server web2:8000", conf)
    ws = conf[conf.index("location /ws/"):]
    ws = ws[:ws.index("}")]
    assert "proxy_set_header Upgrade $http_upgrade" in ws
    assert "proxy_set_header Connection $connection_upgrade" in ws
    assert "proxy_read_timeout 3600s" in ws
    assert "proxy_http_version 1.1" in conf
    assert "X-Forwarded-Proto" in conf
    assert conf.count("{") == conf.count("}")
