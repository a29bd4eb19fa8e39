"""deploy/nginx-tls.conf run by Debian's nginx on loopback, with a self-signed certificate
made here (`cryptography`), in front of the real servers: port 80 redirects to https, port
443 serves the API and the sockets over TLS. Skips where nginx is not installed."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import re
import socket
import ssl

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.biddt.processes import free_port
from tests.ops.test_nginx_live import NGINX, ROOT, nginx_running, render

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(NGINX is None, reason="nginx is not installed (apt-get install nginx)"),
]


def self_signed(directory) -> tuple:
    """(fullchain.pem, privkey.pem) of a fresh self-signed certificate for 127.0.0.1."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "biddt.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    chain, private = directory / "fullchain.pem", directory / "privkey.pem"
    chain.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return chain, private


def server_blocks(conf: str) -> dict[str, str]:
    """`listen` line -> the server block's text (without its listen/TLS lines)."""
    out = {}
    for match in re.finditer(r"^server \{\n(.*?)^\}", conf, re.S | re.M):
        body = match.group(1)
        listen = re.search(r"^\s*listen ([^;]+);", body, re.M).group(1)
        out[listen] = "\n".join(line for line in body.splitlines()
                                if not re.match(r"\s*(listen|ssl_|#)", line) and line.strip())
    return out


def test_tls_server_serves_what_the_plain_server_serves():
    # the 443 server is deploy/nginx.conf's port-80 server plus TLS, nothing else
    plain = server_blocks((ROOT / "deploy" / "nginx.conf").read_text())
    tls_conf = (ROOT / "deploy" / "nginx-tls.conf").read_text()
    tls = server_blocks(tls_conf)
    assert tls["443 ssl"] == plain["80"]
    assert "ssl_certificate     /etc/nginx/certs/fullchain.pem;" in tls_conf
    assert "ssl_certificate_key /etc/nginx/certs/privkey.pem;" in tls_conf
    upstreams = re.compile(r"^upstream .*?^\}", re.S | re.M)
    assert upstreams.findall(tls_conf) == upstreams.findall(
        (ROOT / "deploy" / "nginx.conf").read_text())


@pytest.fixture
def nginx_tls(live_servers, tmp_path):
    servers = live_servers()
    prefix = tmp_path / "nginx"
    (prefix / "media").mkdir(parents=True)
    chain, key = self_signed(tmp_path)
    http_port, https_port = free_port(), free_port()
    conf = render((ROOT / "deploy" / "nginx-tls.conf").read_text(), listen=http_port,
                  rest=f"127.0.0.1:{servers.rest_port}", sockets=f"127.0.0.1:{servers.ws_port}",
                  media=prefix / "media")
    assert conf.count("listen 443 ssl;") == 1
    conf = (conf.replace("listen 443 ssl;", f"listen 127.0.0.1:{https_port} ssl;")
            .replace("/etc/nginx/certs/fullchain.pem", str(chain))
            .replace("/etc/nginx/certs/privkey.pem", str(key)))
    with nginx_running(prefix, conf, https_port):
        yield f"http://127.0.0.1:{http_port}", f"https://127.0.0.1:{https_port}", chain


def test_http_redirects_to_https_and_tls_serves_the_api(nginx_tls):
    http_url, https_url, chain = nginx_tls
    # when a client speaks plain HTTP, then it is sent to https with method and body kept
    response = httpx.post(f"{http_url}/v1/auth/phone/send-code?x=1", json={}, timeout=30)
    assert response.status_code == 308
    assert response.headers["location"] == "https://127.0.0.1/v1/auth/phone/send-code?x=1"
    # except nginx's own health check (compose probes it over HTTP)
    assert httpx.get(f"{http_url}/nginx-health", timeout=30).text == "ok\n"

    # when it speaks TLS, then it gets our certificate and the API behind it
    with httpx.Client(base_url=https_url, verify=ssl.create_default_context(cafile=chain),
                      timeout=30) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/nginx-health").text == "ok\n"
        assert client.get("/metrics").status_code == 404  # never through the public entry
    # and a client that doesn't trust the certificate is refused by its TLS check
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{https_url}/healthz", timeout=30)
    # TLS 1.2 and 1.3 are served (ssl_protocols); the handshake verifies our certificate
    host, port = https_url.removeprefix("https://").split(":")
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        context = ssl.create_default_context(cafile=chain)
        context.minimum_version = context.maximum_version = version
        with socket.create_connection((host, int(port)), timeout=30) as raw, \
                context.wrap_socket(raw, server_hostname=host) as tls:
            assert tls.version() == version.name.replace("v1_", "v1.")

def test_websocket_over_tls(nginx_tls):
    _http_url, https_url, chain = nginx_tls

    async def scenario():
        context = ssl.create_default_context(cafile=chain)
        async with connect(https_url.replace("https://", "wss://") + "/ws/", ssl=context,
                           open_timeout=15) as ws:
            await ws.send(json.dumps({"type": "ping"}))
            return json.loads(await asyncio.wait_for(ws.recv(), timeout=15))

    assert asyncio.run(scenario()) == {"type": "pong"}
