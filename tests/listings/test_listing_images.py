"""POST /v1/listings/{id}/images: content checks, EXIF stripping, variants, S3 (moto)."""

from __future__ import annotations

import io
import os
import struct
import zlib

import httpx
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from listings import services
from listings.models import ListingImage
from tests.factories import ListingFactory, UserFactory
from tests.listings.conftest import (
    client_for,
    error_attr,
    error_code,
    gps_exif,
    image_bytes,
    media_files,
)

pytestmark = pytest.mark.django_db


def url(listing) -> str:
    return f"/v1/listings/{listing.pk}/images"


def upload(data: bytes, name: str = "photo.jpg", content_type: str = "image/jpeg"):
    return SimpleUploadedFile(name, data, content_type=content_type)


@pytest.fixture
def listing():
    return ListingFactory()


def post_image(listing, data: bytes, **kwargs):
    return client_for(listing.seller).post(url(listing), {"image": upload(data, **kwargs)},
                                           format="multipart")


def png_bomb(width: int = 60000, height: int = 60000) -> bytes:
    """A tiny PNG whose header claims billions of pixels (decoding it would take GBs)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    # a few rows of zeros; the rest of the image is "missing", and never decoded
    idat = zlib.compress(b"\x00" * (width + 1) * 4, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(
        b"IEND", b"")


def test_upload_stores_a_display_version_and_a_thumbnail_without_exif(media_root, listing):
    # given a large JPEG carrying GPS EXIF
    data = image_bytes(size=(3000, 2000), exif=gps_exif())
    assert Image.open(io.BytesIO(data)).getexif()  # the fixture really has EXIF
    # when the seller uploads it
    response = post_image(listing, data)
    # then 201 with the stored versions, resized and metadata-free
    assert response.status_code == 201, response.content
    body = response.json()
    image = ListingImage.objects.get(pk=body["id"])
    assert (body["width"], body["height"], body["position"]) == (1600, 1067, 0)
    stored = image.image.read()
    thumb = Image.open(image.thumbnail)
    assert max(thumb.size) == 400
    assert b"Exif" not in stored and b"HomeCam" not in stored
    assert not Image.open(io.BytesIO(stored)).getexif()
    assert body["url"].startswith("http://testserver/media/listings/")
    # and the listing shows the display URL
    detail = client_for(listing.seller).get(f"/v1/listings/{listing.pk}").json()
    assert detail["images"] == [body["url"]]


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_png_and_webp_are_accepted(media_root, listing, fmt):
    response = post_image(listing, image_bytes(fmt), name=f"x.{fmt.lower()}")
    assert response.status_code == 201, response.content
    assert response.json()["url"].endswith("." + {"PNG": "png", "WEBP": "webp"}[fmt])


@pytest.mark.parametrize(("data", "name"), [
    (b"MZ\x90\x00 this is an executable, renamed" * 100, "photo.jpg"),
    (b"<svg xmlns='http://www.w3.org/2000/svg'></svg>", "photo.jpg"),
    (image_bytes("GIF"), "photo.jpg"),
    (image_bytes("JPEG")[:400], "photo.jpg"),  # truncated
    (png_bomb(), "bomb.png"),
])
def test_bad_files_are_400_invalid_image_and_leave_no_file(media_root, listing, data, name):
    response = post_image(listing, data, name=name)
    assert response.status_code == 400, response.content
    assert (error_code(response), error_attr(response)) == ("invalid_image", "image")
    assert not ListingImage.objects.exists()
    assert media_files(media_root) == []


def test_a_20_mb_file_is_refused(media_root, listing):
    data = image_bytes() + os.urandom(20 * 1024 * 1024)
    response = post_image(listing, data)
    assert response.status_code == 400 and error_code(response) == "invalid_image"
    assert "10 MB" in response.json()["errors"][0]["detail"]
    assert media_files(media_root) == []


def test_missing_image_field_is_400(media_root, listing):
    response = client_for(listing.seller).post(url(listing), {}, format="multipart")
    assert response.status_code == 400 and error_code(response) == "invalid_image"


def test_at_most_ten_images(media_root, listing):
    data = image_bytes(size=(64, 64))
    codes = [post_image(listing, data).status_code for _ in range(11)]
    assert codes == [201] * 10 + [400]
    assert ListingImage.objects.count() == 10
    assert sorted(ListingImage.objects.values_list("position", flat=True)) == list(range(10))
    assert len(media_files(media_root)) == 20  # display + thumbnail each, no orphan


def test_a_failed_row_insert_deletes_the_stored_files(media_root, listing, monkeypatch):
    # given the database refusing the row after the files were stored
    def boom(self, *args, **kwargs):
        raise RuntimeError("database went away")
    monkeypatch.setattr(ListingImage, "save", boom)
    # when uploading
    with pytest.raises(RuntimeError):
        services.listing_image_add(listing_id=listing.pk, user=listing.seller,
                                   upload=upload(image_bytes()))
    # then nothing is left in storage
    assert media_files(media_root) == []


def test_only_the_seller_adds_images(media_root, listing):
    other = client_for(UserFactory())
    response = other.post(url(listing), {"image": upload(image_bytes())}, format="multipart")
    assert response.status_code == 403
    draft = ListingFactory(status="draft")
    response = other.post(url(draft), {"image": upload(image_bytes())}, format="multipart")
    assert response.status_code == 404
    assert media_files(media_root) == []


def test_no_images_on_a_closed_listing(media_root):
    listing = ListingFactory(status="sold")
    response = post_image(listing, image_bytes())
    assert response.status_code == 409 and error_code(response) == "listing_not_editable"


def test_upload_to_s3_on_a_real_moto_server_strips_exif_and_signs_urls(moto_s3, listing):
    s3, bucket, endpoint = moto_s3
    # given a JPEG with GPS EXIF
    data = image_bytes(size=(2000, 1500), exif=gps_exif())
    # when uploaded with media on S3
    response = post_image(listing, data)
    # then both versions are objects in the bucket, without EXIF
    assert response.status_code == 201, response.content
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"])
    assert len(keys) == 2 and all(k.startswith("listings/") for k in keys)
    image = ListingImage.objects.get()
    stored = s3.get_object(Bucket=bucket, Key=image.image.name)["Body"].read()
    assert b"Exif" not in stored and b"HomeCam" not in stored
    assert Image.open(io.BytesIO(stored)).size == (1600, 1200)
    # and the URLs are signed, and work
    body = response.json()
    for signed in (body["url"], body["thumbnail_url"]):
        assert signed.startswith(endpoint) and "Signature" in signed
    fetched = httpx.get(body["url"])
    assert fetched.status_code == 200 and fetched.content == stored
    detail = client_for(UserFactory()).get(f"/v1/listings/{listing.pk}").json()
    assert detail["images"][0].startswith(f"{endpoint}/{bucket}/{image.image.name}")


def test_s3_upload_of_a_bad_file_leaves_no_object(moto_s3, listing):
    s3, bucket, _ = moto_s3
    assert post_image(listing, b"not an image at all").status_code == 400
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0
