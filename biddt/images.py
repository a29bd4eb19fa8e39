"""Image uploads checked by content (Pillow), never by name, and re-encoded without metadata.

Re-encoding drops EXIF (including GPS location: sellers photograph items at home) and any
payload hidden after the image data. Decompression bombs are refused before decoding.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from django.core.files.base import ContentFile
from PIL import Image, ImageOps, UnidentifiedImageError

ALLOWED_FORMATS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}
MAX_PIXELS = 40_000_000  # ~ 8000 x 5000; larger is refused as a possible bomb


class InvalidImage(ValueError):
    pass


@dataclass(frozen=True)
class CleanImage:
    content: ContentFile
    width: int
    height: int
    format: str


def _open(data: bytes) -> Image.Image:
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            probe = Image.open(io.BytesIO(data))
            if probe.format not in ALLOWED_FORMATS:
                raise InvalidImage("Only JPEG, PNG and WebP images are accepted.")
            if probe.width * probe.height > MAX_PIXELS:
                raise InvalidImage("The image has too many pixels.")
            probe.verify()
            image = Image.open(io.BytesIO(data))
            image.load()
        except InvalidImage:
            raise
        except (UnidentifiedImageError, Image.DecompressionBombError,
                Image.DecompressionBombWarning, OSError, SyntaxError, ValueError) as exc:
            raise InvalidImage("The file is not a readable JPEG, PNG or WebP image.") from exc
    return image


def image_clean(upload, *, max_bytes: int, max_side: int, name: str) -> CleanImage:
    """Validate an uploaded file and return a metadata-free copy, at most `max_side` pixels."""
    if upload is None:
        raise InvalidImage("No image was sent.")
    if upload.size > max_bytes:
        raise InvalidImage(f"The image is larger than {max_bytes // (1024 * 1024)} MB.")
    data = upload.read()
    if len(data) > max_bytes:
        raise InvalidImage(f"The image is larger than {max_bytes // (1024 * 1024)} MB.")
    image = _open(data)
    fmt = image.format
    image = ImageOps.exif_transpose(image)  # keep the orientation the EXIF tag gave
    image.thumbnail((max_side, max_side))
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
    each variant is named `<name>-<variant>.<ext>`. The upload is decoded a single time
    (bomb-checked before decoding, as in `image_clean`).
    """
    if upload is None:
        raise InvalidImage("No image was sent.")
    if getattr(upload, "size", 0) and upload.size > max_bytes:
        raise InvalidImage(f"The image is larger than {max_bytes // (1024 * 1024)} MB.")
    data = upload.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise InvalidImage(f"The image is larger than {max_bytes // (1024 * 1024)} MB.")
    source = _open(data)
    fmt = source.format
    source = ImageOps.exif_transpose(source)
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
        image.save(out, format=fmt, **save_kwargs)  # no exif= argument: metadata is dropped
        variants[variant] = CleanImage(
            content=ContentFile(out.getvalue(), name=f"{name}-{variant}.{ALLOWED_FORMATS[fmt]}"),
            width=image.width,
            height=image.height,
            format=fmt,
        )
    return variants
