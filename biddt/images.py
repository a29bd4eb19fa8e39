"""Image uploads checked by content (Pillow), never by name, and re-encoded without metadata.

Re-encoding drops EXIF (including GPS location: sellers photograph items at home) and any
payload hidden after the image data.

Memory is bounded whatever the file: a few hundred KB of PNG can declare 40 Mpx and decode
to 160 MB. So, for every upload path (listing images, avatars, chat images):
- the dimensions are read from the header (`Image.open` decodes nothing) and more than
  BIDDT_IMAGE_MAX_PIXELS is refused before any pixel is decoded;
- a JPEG is decoded already reduced (`draft`: DCT scaling to 1/2, 1/4 or 1/8) to the largest
  size kept, and the full-size image is shrunk before anything else copies it;
- at most BIDDT_IMAGE_DECODE_CONCURRENCY decodes run at once in a process; a caller that
  waits more than BIDDT_IMAGE_DECODE_WAIT_SECONDS gets a 503 (retry), not a queue of bombs.
"""

from __future__ import annotations

import contextlib
import io
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

from django.conf import settings
from django.core.files.base import ContentFile
from django.utils.translation import gettext_lazy as _
from PIL import Image, ImageOps, UnidentifiedImageError

from biddt.errors import ServiceUnavailable

ALLOWED_FORMATS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}


class InvalidImage(ValueError):
    pass


class ImagesBusy(ServiceUnavailable):
    default_detail = _("Too many images are being processed; try again.")


@dataclass(frozen=True)
class CleanImage:
    content: ContentFile
    width: int
    height: int
    format: str


_slots_lock = threading.Lock()
_slots: tuple[int, threading.BoundedSemaphore] | None = None


def _decode_slots() -> threading.BoundedSemaphore:
    """The process-wide semaphore, sized by the setting (rebuilt if the setting changes)."""
    global _slots
    size = max(1, int(settings.BIDDT_IMAGE_DECODE_CONCURRENCY))
    with _slots_lock:
        if _slots is None or _slots[0] != size:
            _slots = (size, threading.BoundedSemaphore(size))
        return _slots[1]


@contextlib.contextmanager
def decode_slot() -> Iterator[None]:
    """Hold one of the process's image-decoding slots (decode, resize and encode)."""
    slots = _decode_slots()
    if not slots.acquire(timeout=settings.BIDDT_IMAGE_DECODE_WAIT_SECONDS):
        raise ImagesBusy()
    try:
        yield
    finally:
        slots.release()


def _read(upload, max_bytes: int) -> bytes:
    if upload is None:
        raise InvalidImage("No image was sent.")
    if getattr(upload, "size", 0) and upload.size > max_bytes:
        raise InvalidImage(f"The image is larger than {max_bytes // (1024 * 1024)} MB.")
    data = upload.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise InvalidImage(f"The image is larger than {max_bytes // (1024 * 1024)} MB.")
    return data


def _open(data: bytes, *, max_side: int) -> Image.Image:
    """The first frame, decoded, at most `max_side` on its longest side (EXIF not yet
    applied). Refuses by header anything over the pixel cap, before decoding."""
    max_pixels = settings.BIDDT_IMAGE_MAX_PIXELS
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            probe = Image.open(io.BytesIO(data))  # lazy: the header only
            if probe.format not in ALLOWED_FORMATS:
                raise InvalidImage("Only JPEG, PNG and WebP images are accepted.")
            width, height = probe.size
            if width < 1 or height < 1 or width * height > max_pixels:
                raise InvalidImage(f"The image has too many pixels (at most "
                                   f"{max_pixels // 1_000_000} million).")
            probe.verify()  # structure and checksums, without decoding the pixels
            image = Image.open(io.BytesIO(data))
            if image.format == "JPEG":
                # Decode at 1/2, 1/4 or 1/8 scale, never below max_side: the full-size
                # pixels of a large photo are never in memory.
                image.draft(image.mode if image.mode in ("RGB", "L") else "RGB",
                            (max_side, max_side))
            image.load()
        except InvalidImage:
            raise
        except (UnidentifiedImageError, Image.DecompressionBombError,
                Image.DecompressionBombWarning, OSError, SyntaxError, ValueError,
                EOFError) as exc:
            raise InvalidImage("The file is not a readable JPEG, PNG or WebP image.") from exc
    fmt = image.format
    image.thumbnail((max_side, max_side))  # in place: the full-size buffer is freed
    image.format = fmt
    return image


def _oriented(image: Image.Image) -> Image.Image:
    """Applies the EXIF orientation (the thumbnail kept the original's EXIF)."""
    fmt = image.format
    image = ImageOps.exif_transpose(image)
    image.format = fmt
    return image


def image_clean(upload, *, max_bytes: int, max_side: int, name: str) -> CleanImage:
    """Validate an uploaded file and return a metadata-free copy, at most `max_side` pixels."""
    data = _read(upload, max_bytes)
    with decode_slot():
        image = _oriented(_open(data, max_side=max_side))
        fmt = image.format
        if fmt == "JPEG" and image.mode not in ("RGB", "L"):
            image = image.convert("RGB")
        out = io.BytesIO()
        save_kwargs = {"quality": 85} if fmt in ("JPEG", "WEBP") else {"optimize": True}
        image.save(out, format=fmt, **save_kwargs)  # no exif= argument: metadata is dropped
    return CleanImage(
        content=ContentFile(out.getvalue(), name=f"{name}.{ALLOWED_FORMATS[fmt]}"),
        width=image.width,
        height=image.height,
        format=fmt,
    )


def image_variants(upload, *, max_bytes: int, sides: dict[str, int],
                   name: str) -> dict[str, CleanImage]:
    """Validate once, then return one metadata-free re-encode per `sides` entry.

    `sides` maps a variant name to its longest side, e.g. `{"display": 1600, "thumb": 400}`;
    each variant is named `<name>-<variant>.<ext>`. The upload is decoded a single time, at
    the largest side asked for (bomb-checked before decoding, as in `image_clean`).
    """
    data = _read(upload, max_bytes)
    with decode_slot():
        source = _oriented(_open(data, max_side=max(sides.values())))
        fmt = source.format
        if fmt == "JPEG" and source.mode not in ("RGB", "L"):
            source = source.convert("RGB")
        elif source.mode not in ("RGB", "RGBA", "L", "LA"):
            keep_alpha = "A" in source.getbands() or "transparency" in source.info
            source = source.convert("RGBA" if keep_alpha else "RGB")
        variants: dict[str, CleanImage] = {}
        for variant, side in sides.items():
            image = source.copy()
            image.thumbnail((side, side))
            out = io.BytesIO()
            save_kwargs = {"quality": 85} if fmt in ("JPEG", "WEBP") else {"optimize": True}
            image.save(out, format=fmt, **save_kwargs)  # no exif= argument: metadata dropped
            variants[variant] = CleanImage(
                content=ContentFile(out.getvalue(),
                                    name=f"{name}-{variant}.{ALLOWED_FORMATS[fmt]}"),
                width=image.width,
                height=image.height,
                format=fmt,
            )
    return variants


def absolute_media_url(request, field) -> str | None:
    """A stored file's URL, absolute when a request is at hand and the storage's URL is a
    path (local `media/`); None without a file. Used by REST bodies and socket payloads."""
    if not field:
        return None
    url = field.url
    return request.build_absolute_uri(url) if request is not None and url.startswith("/") else url
