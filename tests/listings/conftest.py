"""Listings test helpers: clients per user, generated images, a moto S3 server."""

from __future__ import annotations

import io
import socket
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from django.utils import timezone
from PIL import Image
from rest_framework.test import APIClient

from tests.conftest import bearer


def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=bearer(user))
    return client


def error_code(response) -> str:
    return response.json()["errors"][0]["code"]


def error_attr(response) -> str | None:
    return response.json()["errors"][0]["attr"]


def draft_body(**overrides) -> dict:
    body = {
        "title": "Road bike",
        "description": "54 cm aluminium frame",
        "category": "sports",
        "condition": "good",
        "starting_price_cents": 5000,
        "ends_at": (timezone.now() + timedelta(days=3)).isoformat(),
        "location_lat": 43.6532,
        "location_lng": -79.3832,
        "location_name": "Toronto",
    }
    body.update(overrides)
    return body


def image_bytes(fmt: str = "JPEG", size=(800, 600), color=(200, 30, 30), exif=None) -> bytes:
    out = io.BytesIO()
    kwargs = {"exif": exif} if exif is not None else {}
    Image.new("RGB", size, color).save(out, format=fmt, **kwargs)
    return out.getvalue()


def gps_exif() -> bytes:
    """EXIF with a GPS position (a seller's home) and a camera make."""
    exif = Image.Exif()
    exif[0x010F] = "HomeCam"  # Make
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = (43.0, 39.0, 11.5)
    gps[3] = "W"
    gps[4] = (79.0, 22.0, 59.5)
    return exif.tobytes()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def moto_s3(settings, monkeypatch):
    """A real moto S3 server on a free 127.0.0.1 port, with default storage pointed at it."""
    boto3 = pytest.importorskip("boto3")
    moto_server = pytest.importorskip("moto.server")
    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    # moto keeps its state per process: a bucket of its own per test, and a reset after.
    bucket = f"biddt-test-{uuid.uuid4().hex[:12]}"
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    s3.create_bucket(Bucket=bucket)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": bucket, "endpoint_url": endpoint, "region_name": "us-east-1",
                "access_key": "testing", "secret_key": "testing", "querystring_auth": True,
                "querystring_expire": 600, "file_overwrite": False, "default_acl": None,
            },
        },
    }
    try:
        yield s3, bucket, endpoint
    finally:
        httpx.post(f"{endpoint}/moto-api/reset")
        server.stop()


def media_files(settings) -> list[Path]:
    """Every file under MEDIA_ROOT (what an upload left on disk)."""
    root = Path(settings.MEDIA_ROOT)
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


@pytest.fixture
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return settings
