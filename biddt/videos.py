"""Video uploads checked by content (PyAV), on bounded resources, and remuxed without metadata.

FFmpeg parses the untrusted file in a child process (`biddt/video_child.py`) whose memory,
CPU time, output size and open files are capped by `setrlimit` before PyAV loads, and which
is killed past a wall-clock timeout: a hostile file (a `moov` atom declaring millions of
samples, a decoder bomb) costs at most those limits, then is refused as `invalid_video`.

Two steps, so a server thread only ever waits for the cheap one:
- `video_probe` (on the request thread): the header only: container (MOV/MP4 demuxer, chosen
  by FFmpeg's parser, never by the name), codec (H.264 or HEVC), frame size, declared
  duration. Seconds at most (BIDDT_VIDEO_PROBE_TIMEOUT_SECONDS).
- `video_clean` (in the Celery worker): the remux into a metadata-free MP4, the packets'
  real duration checked against the limit, and a JPEG poster frame.

At most BIDDT_VIDEO_CONCURRENCY children run at once per process; a caller that waits more
than BIDDT_VIDEO_WAIT_SECONDS gets a 503 (retry).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.utils.functional import lazy
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from biddt.errors import ServiceUnavailable

CHILD = Path(__file__).with_name("video_child.py")
UNREADABLE = _("The file is not a readable MP4 or QuickTime video.")


def _too_long(seconds: int) -> str:
    return ngettext("The video is longer than %(seconds)d second.",
                    "The video is longer than %(seconds)d seconds.", seconds) % {
                        "seconds": seconds}


# The child's refusal codes (and "too_long", with its number), written in the language
# active when the message is rendered (the request's for an upload, the seller's for the
# worker's verdict).
REFUSALS = {
    "unreadable": UNREADABLE,
    "no_video_track": _("The file has no video track."),
    "codec": _("Only H.264 or HEVC video is accepted."),
    "frame_size": _("The video's frame size is not accepted."),
    "no_duration": _("The video's duration can't be read."),
    "container": _("Only MP4 or QuickTime videos are accepted."),
    "no_frames": _("The video track holds no frames."),
    "no_poster": _("No frame of the video could be decoded."),
}


class InvalidVideo(ValueError):
    """Refused by content; `str()` renders the message in the active language."""


def refusal_message(code: str, params: dict | None = None):
    if code == "too_long":  # the one with a number (and so a plural)
        return lazy(_too_long, str)(int((params or {}).get("seconds", 0)))
    return REFUSALS.get(code, UNREADABLE)


class VideosBusy(ServiceUnavailable):
    default_detail = _("Too many videos are being processed; try again.")


@dataclass(frozen=True)
class VideoInfo:
    container: str
    codec: str
    width: int
    height: int
    duration_seconds: float


@dataclass(frozen=True)
class CleanVideo:
    info: VideoInfo
    video_path: Path  # the metadata-free MP4
    poster_path: Path  # the JPEG poster frame


_slots_lock = threading.Lock()
_slots: tuple[int, threading.BoundedSemaphore] | None = None


def _video_slots() -> threading.BoundedSemaphore:
    global _slots
    size = max(1, int(settings.BIDDT_VIDEO_CONCURRENCY))
    with _slots_lock:
        if _slots is None or _slots[0] != size:
            _slots = (size, threading.BoundedSemaphore(size))
        return _slots[1]


@contextlib.contextmanager
def video_slot() -> Iterator[None]:
    slots = _video_slots()
    if not slots.acquire(timeout=settings.BIDDT_VIDEO_WAIT_SECONDS):
        raise VideosBusy()
    try:
        yield
    finally:
        slots.release()


def max_bytes() -> int:
    return int(settings.BIDDT_VIDEO_MAX_BYTES)


def _too_large() -> str:
    limit = max_bytes()
    if limit >= 1024 * 1024:
        return _("The video is larger than %(size)d MB.") % {"size": limit // (1024 * 1024)}
    return ngettext("The video is larger than %(size)d byte.",
                    "The video is larger than %(size)d bytes.", limit) % {"size": limit}


def too_large_message():
    """The size refusal, rendered in the language active when it is shown."""
    return lazy(_too_large, str)()


def _limits(*, cpu_seconds: float) -> dict:
    return {
        "memory_bytes": int(settings.BIDDT_VIDEO_MEMORY_BYTES),
        "cpu_seconds": max(1, int(cpu_seconds)),
        "max_bytes": max_bytes(),
        "max_seconds": float(settings.BIDDT_VIDEO_MAX_SECONDS),
        "max_pixels": int(settings.BIDDT_VIDEO_MAX_PIXELS),
    }


def _run_child(mode: str, source: Path, out_dir: Path | None, *, timeout: float) -> dict:
    """Run the child on `source`; its JSON answer, or InvalidVideo when it broke a limit."""
    args = [sys.executable, "-I", str(CHILD), mode,
            json.dumps(_limits(cpu_seconds=timeout)), str(source)]
    if out_dir is not None:
        args.append(str(out_dir))
    with video_slot():
        try:
            done = subprocess.run(  # noqa: S603 - our own script, no shell
                args, capture_output=True, timeout=timeout, check=False,
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "OMP_NUM_THREADS": "1"})
        except subprocess.TimeoutExpired:  # run() killed it
            raise InvalidVideo(_("The video could not be read in time.")) from None
    try:
        result = json.loads(done.stdout or b"{}")
    except ValueError:
        result = {}
    if done.returncode != 0 or "ok" not in result:
        # Killed by a limit (SIGXCPU, SIGKILL), out of memory, or crashed in FFmpeg.
        raise InvalidVideo(UNREADABLE)
    if not result["ok"]:
        raise InvalidVideo(refusal_message(str(result.get("refusal")), result.get("params")))
    return result


def _info(result: dict) -> VideoInfo:
    return VideoInfo(container=result["container"], codec=result["codec"],
                     width=int(result["width"]), height=int(result["height"]),
                     duration_seconds=float(result["duration_seconds"]))


@contextlib.contextmanager
def upload_path(upload) -> Iterator[Path]:
    """The upload as a file on disk, read at most to the size limit (+1 byte).

    A large upload already is a temporary file (FILE_UPLOAD_MAX_MEMORY_SIZE); a small one is
    copied to one. Refused past BIDDT_VIDEO_MAX_BYTES before anything parses it.
    """
    if upload is None:
        raise InvalidVideo(_("No video was sent."))
    limit = max_bytes()
    if getattr(upload, "size", 0) and upload.size > limit:
        raise InvalidVideo(too_large_message())
    if hasattr(upload, "temporary_file_path"):  # already on disk, whole and counted
        path = Path(upload.temporary_file_path())
        if path.stat().st_size > limit:
            raise InvalidVideo(too_large_message())
        if path.stat().st_size == 0:
            raise InvalidVideo(_("The video file is empty."))
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="biddt-video-") as tmp:
        path = Path(tmp) / "upload"
        upload.seek(0)
        written = 0
        with path.open("wb") as out:
            while chunk := upload.read(min(1024 * 1024, limit + 1 - written)):
                written += len(chunk)
                out.write(chunk)
                if written > limit:
                    raise InvalidVideo(too_large_message())
        if written == 0:
            raise InvalidVideo(_("The video file is empty."))
        yield path


def video_probe(path: Path) -> VideoInfo:
    """The container, codec, frame size and declared duration, read from the header only."""
    if path.stat().st_size > max_bytes():
        raise InvalidVideo(too_large_message())
    return _info(_run_child("probe", path, None,
                            timeout=float(settings.BIDDT_VIDEO_PROBE_TIMEOUT_SECONDS)))


@contextlib.contextmanager
def video_clean(path: Path) -> Iterator[CleanVideo]:
    """A metadata-free MP4 remux of the video at `path`, and its poster frame (JPEG), in a
    temporary directory that lives as long as the context."""
    if path.stat().st_size > max_bytes():
        raise InvalidVideo(too_large_message())
    out_dir = Path(tempfile.mkdtemp(prefix="biddt-video-out-"))
    try:
        result = _run_child("clean", path, out_dir,
                            timeout=float(settings.BIDDT_VIDEO_PROCESS_TIMEOUT_SECONDS))
        yield CleanVideo(info=_info(result), video_path=out_dir / "video.mp4",
                         poster_path=out_dir / "poster.jpg")
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
