"""Image work has bounded memory whatever the file (issue 14, item 8).

A 154 KB PNG that decodes to 39.7 Mpx took daphne from 175 MB to 676 MB. Here each file is
decoded in a fresh Python process (the project's settings, the same `biddt.images` code the
upload paths call) and the peak resident memory it reached (`ru_maxrss`) is compared with
its resident memory just before: a conservative measure of what the decode cost. The peak is
the kernel's high-water mark of the process's own memory (`VmHWM`; `ru_maxrss` would carry
the parent's across exec).

Stated bounds (default BIDDT_IMAGE_MAX_PIXELS = 24 Mpx):
- a file refused by its header (decompression bomb, huge dimensions): < 16 MB;
- an accepted JPEG at the cap (decoded reduced with `draft`): < 48 MB (its full decode
  alone would be 70 MB);
- an accepted RGBA PNG at the cap (PNG can't be decoded reduced, and Pillow resizes RGBA
  through a premultiplied copy): < 8 bytes x the cap + 64 MB (measured: 214 MB at 24 Mpx).
"""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import threading
import zlib
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from biddt import images
from tests.factories import ListingFactory, UserFactory, sold_transaction
from tests.listings.conftest import client_for

MB = 1024 * 1024
CAP = 24_000_000
REPO = Path(__file__).resolve().parents[2]

PROBE = r"""
import json, os, sys
import django
django.setup()
from django.core.files.uploadedfile import SimpleUploadedFile
from biddt.images import InvalidImage, image_clean, image_variants

data = open(sys.argv[1], "rb").read()
upload = SimpleUploadedFile("x", data)
def status(field):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024  # kB

rss_before = status("VmRSS")
if sys.argv[2] == "variants":
    call = lambda: image_variants(upload, max_bytes=20 * 2**20, name="x",
                                  sides={"display": 1600, "thumb": 400})
else:
    call = lambda: image_clean(upload, max_bytes=20 * 2**20, max_side=512, name="x")
try:
    call()
    outcome = "accepted"
except InvalidImage:
    outcome = "invalid_image"
peak = status("VmHWM")
print(json.dumps({"outcome": outcome, "growth": max(0, peak - rss_before)}))
"""


def decode_cost(path: Path, how: str = "variants") -> tuple[str, int]:
    """(outcome, bytes of peak memory growth) of decoding `path` in a fresh process."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "biddt.settings_test"}
    done = subprocess.run([sys.executable, "-c", PROBE, str(path), how], cwd=REPO, env=env,
                          capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result["outcome"], result["growth"]


def _chunk(kind: bytes, body: bytes) -> bytes:
    return (struct.pack(">I", len(body)) + kind + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))


def png_file(path: Path, width: int, height: int, *, rgba: bool = False) -> Path:
    """A complete, valid PNG of zeros, written row by row (never held in memory)."""
    channels, color_type = (4, 6) if rgba else (1, 0)
    z = zlib.compressobj(9)
    row = b"\x00" * (width * channels + 1)
    with path.open("wb") as fh:
        fh.write(b"\x89PNG\r\n\x1a\n")
        fh.write(_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, color_type,
                                             0, 0, 0)))
        for _ in range(height):
            if piece := z.compress(row):
                fh.write(_chunk(b"IDAT", piece))
        fh.write(_chunk(b"IDAT", z.flush()))
        fh.write(_chunk(b"IEND", b""))
    return path


def jpeg_claiming(path: Path, width: int, height: int) -> Path:
    """A small real JPEG whose frame header (SOF0) is rewritten to claim width x height."""
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 10, 10)).save(buf, "JPEG")
    data = bytearray(buf.getvalue())
    sof = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, height, width)
    path.write_bytes(bytes(data))
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("images")
    big_jpeg = d / "at-cap.jpg"
    Image.new("RGB", (5600, 4200), (120, 130, 140)).save(big_jpeg, "JPEG", quality=70)
    return {
        # the file: 39.7 Mpx in a few hundred KB
        "bomb_png": png_file(d / "bomb.png", 7300, 5440),
        "bomb_png_100mpx": png_file(d / "bomb100.png", 10000, 10000),
        "huge_jpeg": jpeg_claiming(d / "huge.jpg", 30000, 30000),
        "huge_jpeg_just_over": jpeg_claiming(d / "over.jpg", 6000, 4001),
        "jpeg_at_cap": big_jpeg,
        "png_at_cap": png_file(d / "at-cap.png", 6000, 4000, rgba=True),
    }


@pytest.mark.parametrize("name", ["bomb_png", "bomb_png_100mpx", "huge_jpeg",
                                  "huge_jpeg_just_over"])
@pytest.mark.parametrize("how", ["variants", "clean"])
def test_bombs_are_refused_before_decoding(files, name, how):
    assert files[name].stat().st_size < 1 * MB
    outcome, growth = decode_cost(files[name], how)
    assert outcome == "invalid_image"
    assert growth < 16 * MB, f"{name}: {growth / MB:.1f} MB"


def test_a_jpeg_at_the_cap_is_decoded_reduced(files):
    outcome, growth = decode_cost(files["jpeg_at_cap"])
    assert outcome == "accepted"
    assert growth < 48 * MB, f"{growth / MB:.1f} MB"  # a full decode is 70 MB by itself


def test_a_png_at_the_cap_stays_within_its_bound(files):
    outcome, growth = decode_cost(files["png_at_cap"])
    assert outcome == "accepted"
    assert growth < 8 * CAP + 64 * MB, f"{growth / MB:.1f} MB"


# --- every upload path answers 400 invalid_image -------------------------------------------

@pytest.fixture
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def _upload(path: Path) -> SimpleUploadedFile:
    ctype = "image/png" if path.suffix == ".png" else "image/jpeg"
    return SimpleUploadedFile(path.name, path.read_bytes(), content_type=ctype)


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["bomb_png", "huge_jpeg"])
def test_every_upload_path_refuses_them_with_invalid_image(files, media_root, name):
    from django.test import TestCase

    listing = ListingFactory()
    user = UserFactory()
    txn = sold_transaction()
    answers = {
        "listing image": client_for(listing.seller).post(
            f"/v1/listings/{listing.pk}/images", {"image": _upload(files[name])},
            format="multipart"),
        "avatar": client_for(user).patch("/v1/users/me", {"avatar": _upload(files[name])},
                                         format="multipart"),
    }
    with TestCase.captureOnCommitCallbacks(execute=True):
        answers["chat image"] = client_for(txn.buyer).post(
            f"/v1/transactions/{txn.pk}/messages", {"image": _upload(files[name])},
            format="multipart")
    for path, response in answers.items():
        assert response.status_code == 400, (path, response.content[:300])
        assert response.json()["errors"][0]["code"] == "invalid_image", path


@pytest.mark.django_db
def test_the_pixel_cap_is_a_setting(files, media_root, settings):
    listing = ListingFactory()
    settings.BIDDT_IMAGE_MAX_PIXELS = 4_000_000
    refused = client_for(listing.seller).post(
        f"/v1/listings/{listing.pk}/images", {"image": _upload(files["jpeg_at_cap"])},
        format="multipart")
    assert refused.status_code == 400
    assert "at most 4 million" in refused.json()["errors"][0]["detail"]
    settings.BIDDT_IMAGE_MAX_PIXELS = CAP
    accepted = client_for(listing.seller).post(
        f"/v1/listings/{listing.pk}/images", {"image": _upload(files["jpeg_at_cap"])},
        format="multipart")
    assert accepted.status_code == 201, accepted.content[:300]
    assert max(accepted.json()["width"], accepted.json()["height"]) <= 1600


@pytest.mark.django_db
def test_decodes_beyond_the_concurrency_limit_wait_then_get_503(media_root, settings):
    # given one decode slot, held by another request
    settings.BIDDT_IMAGE_DECODE_CONCURRENCY = 1
    settings.BIDDT_IMAGE_DECODE_WAIT_SECONDS = 0.2
    listing = ListingFactory()
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (1, 2, 3)).save(buf, "JPEG")
    holding, release = threading.Event(), threading.Event()

    def hold():
        with images.decode_slot():
            holding.set()
            release.wait()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(30)
        # when an upload needs a slot
        seller = client_for(listing.seller)
        seller.raise_request_exception = False  # a 5xx is reported, not raised to the test
        busy = seller.post(
            f"/v1/listings/{listing.pk}/images",
            {"image": SimpleUploadedFile("a.jpg", buf.getvalue(), content_type="image/jpeg")},
            format="multipart")
    finally:
        release.set()
        holder.join()
    # then it is a 503 to retry, not one more decode in memory
    assert busy.status_code == 503, busy.content[:300]
    assert busy.json()["errors"][0]["code"] == "service_unavailable"
    # and once the slot is free the same upload goes through
    again = client_for(listing.seller).post(
        f"/v1/listings/{listing.pk}/images",
        {"image": SimpleUploadedFile("a.jpg", buf.getvalue(), content_type="image/jpeg")},
        format="multipart")
    assert again.status_code == 201
