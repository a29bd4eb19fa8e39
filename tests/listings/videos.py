"""Real small videos made with PyAV for the video tests (a few frames, no fixture files)."""

from __future__ import annotations

import io

import av
from PIL import Image

# What a phone writes: where and when the clip was shot.
PHONE_METADATA = {
    "location": "+43.6532-079.3832/",
    "location-eng": "+43.6532-079.3832/",
    "creation_time": "2026-05-01T10:00:00.000000Z",
    "make": "HomeCam",
    "title": "my living room",
}


def make_video(*, seconds: float = 1.0, fps: int = 10, codec: str = "libx264",
               fmt: str = "mp4", size: tuple[int, int] = (64, 48),
               metadata: dict[str, str] | None = None, audio: bool = False) -> bytes:
    """An H.264 (or `codec`) clip of `seconds`, in `fmt` (mp4, mov, matroska...)."""
    out = io.BytesIO()
    with av.open(out, mode="w", format=fmt) as container:
        if metadata:
            container.metadata.update(metadata)
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        if codec == "libx265":
            stream.options = {"x265-params": "log-level=error"}
        if metadata and "creation_time" in metadata:
            stream.metadata["creation_time"] = metadata["creation_time"]
        sound = container.add_stream("aac", rate=8000) if audio else None
        for n in range(round(seconds * fps)):
            frame = av.VideoFrame.from_image(Image.new("RGB", size, (n * 20 % 256, 90, 160)))
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        if sound is not None:
            samples = 1024
            for n in range(int(seconds * 8000 / samples)):
                frame = av.AudioFrame(format="fltp", layout="mono", samples=samples)
                for plane in frame.planes:
                    plane.update(bytes(plane.buffer_size))
                frame.sample_rate = 8000
                frame.pts = n * samples
                for packet in sound.encode(frame):
                    container.mux(packet)
            for packet in sound.encode():
                container.mux(packet)
    return out.getvalue()


def read_metadata(data_or_path) -> dict:
    """Container and stream metadata as PyAV reads them back."""
    source = io.BytesIO(data_or_path) if isinstance(data_or_path, bytes) else data_or_path
    with av.open(source) as container:
        return {"container": dict(container.metadata),
                "streams": [dict(s.metadata) for s in container.streams],
                "codecs": [s.codec_context.name for s in container.streams],
                "duration": container.duration / av.time_base if container.duration else 0}
