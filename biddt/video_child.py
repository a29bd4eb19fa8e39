"""The child process that reads an untrusted video with PyAV (FFmpeg), on bounded resources.

Run by `biddt.videos` as `python -I <this file> <mode> <limits-json> <source> [<out-dir>]`,
never imported by the server: FFmpeg parses a hostile file here, in a process whose address
space, CPU time, file size and open files are capped with `setrlimit` before PyAV is even
imported, and which the parent kills after a wall-clock timeout. Whatever the file does, the
server thread or worker that waits for it gets an answer in bounded time and memory.

Modes:
- `probe`: the container's header only (the `moov` atom): container, codec, size, duration.
- `clean`: probe, then a remux of the video stream (and one audio stream) into a new MP4
  with no metadata (no GPS `©xyz`, no creation time, no maker tags, no data or timecode
  tracks), checking the packets' real duration, and a poster frame (the first key frame,
  decoded alone) as a JPEG.

Prints one JSON object on stdout: `{"ok": true, ...}` or
`{"ok": false, "refusal": "<code>", "params": {...}}`.
"""

from __future__ import annotations

import json
import resource
import sys

MOV_DEMUXER = "mov"  # FFmpeg's "mov,mp4,m4a,3gp,3g2,mj2" demuxer: MP4 and QuickTime
VIDEO_CODECS = {"h264": "avc1", "hevc": "hvc1"}  # decoder name → the MP4 sample entry to write
AUDIO_CODECS = {"aac", "mp3", "alac", "ac3", "eac3", "opus"}  # copied as they are into MP4
POSTER_SIDE = 1280


class Refused(Exception):
    """The file is not an acceptable video. Carries a refusal code (and its numbers); the
    parent turns it into the uploader's language (`biddt.videos.REFUSALS`): this process
    loads nothing of Django."""

    def __init__(self, code: str, **params) -> None:
        super().__init__(code)
        self.code = code
        self.params = params


def _limit(kind: int, value: int) -> None:
    soft, hard = resource.getrlimit(kind)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(kind, (value, value if hard == resource.RLIM_INFINITY else hard))


def apply_limits(limits: dict) -> None:
    _limit(resource.RLIMIT_AS, int(limits["memory_bytes"]))
    _limit(resource.RLIMIT_CPU, int(limits["cpu_seconds"]))
    _limit(resource.RLIMIT_FSIZE, int(limits["max_bytes"]) + 16 * 1024 * 1024)
    _limit(resource.RLIMIT_NOFILE, 64)
    _limit(resource.RLIMIT_CORE, 0)


def _open(av, path: str, limits: dict):
    # The MOV demuxer only (no other parser sees the bytes), local files only (no `dref`
    # reference can make it open another file or URL), and a time-out per blocking call.
    return av.open(path, mode="r", format=MOV_DEMUXER, timeout=(10.0, 10.0), options={
        "protocol_whitelist": "file", "format_whitelist": MOV_DEMUXER,
        "probesize": str(5 * 1024 * 1024), "analyzeduration": "0",
        "enable_drefs": "0",
    })


def _seconds(value, time_base) -> float:
    return float(value * time_base) if value is not None and time_base else 0.0


def _probe(av, container, limits: dict) -> dict:
    videos = list(container.streams.video)
    if not videos:
        raise Refused("no_video_track")
    stream = videos[0]
    codec = stream.codec_context.name
    if codec not in VIDEO_CODECS:
        raise Refused("codec")
    width, height = stream.codec_context.width, stream.codec_context.height
    if width < 1 or height < 1 or width * height > int(limits["max_pixels"]):
        raise Refused("frame_size")
    duration = max(
        container.duration / av.time_base if container.duration else 0.0,
        _seconds(stream.duration, stream.time_base),
    )
    if duration <= 0:
        raise Refused("no_duration")
    if duration > float(limits["max_seconds"]) + 0.05:
        raise Refused("too_long", seconds=int(limits["max_seconds"]))
    brand = str(container.metadata.get("major_brand", "")).strip().lower()
    if brand.startswith(("3g", "m4a", "mj")):  # 3GPP, audio-only MPEG-4, Motion JPEG 2000
        raise Refused("container")
    return {"container": "quicktime" if brand == "qt" else "mp4", "codec": codec,
            "width": width,
            "height": height, "duration_seconds": round(duration, 2)}


def _remux(av, container, out_path: str, limits: dict) -> float:
    """Copy the video (and first MP4-compatible audio) packets into a metadata-free MP4;
    returns the duration the packets really span."""
    video = container.streams.video[0]
    audio = next((s for s in container.streams.audio
                  if s.codec_context.name in AUDIO_CODECS), None)
    keep = [s for s in (video, audio) if s is not None]
    max_seconds = float(limits["max_seconds"]) + 0.05
    # `+bitexact` leaves out the muxer's own "encoder" tag; nothing of the source's
    # metadata is copied (container, stream or chapter), so no GPS and no creation time.
    with av.open(out_path, mode="w", format="mp4", options={
            "movflags": "+faststart", "fflags": "+bitexact"}) as out:
        mapping = {}
        for stream in keep:
            target = out.add_stream_from_template(stream)
            target.metadata.clear()
            if stream is video:
                target.codec_context.codec_tag = VIDEO_CODECS[video.codec_context.name]
            mapping[stream.index] = target
        first: dict[int, float] = {}
        last: dict[int, float] = {}
        for packet in container.demux(keep):
            if packet.dts is None or packet.size == 0:
                continue
            at = _seconds(packet.pts if packet.pts is not None else packet.dts,
                          packet.time_base)
            index = packet.stream.index
            first.setdefault(index, at)
            last[index] = max(last.get(index, at),
                              at + _seconds(packet.duration, packet.time_base))
            if last[index] - first[index] > max_seconds:
                raise Refused("too_long", seconds=int(limits["max_seconds"]))
            packet.stream = mapping[index]
            out.mux(packet)
    if video.index not in last:
        raise Refused("no_frames")
    return round(last[video.index] - first[video.index], 2)


def _poster(av, path: str, poster_path: str, limits: dict) -> None:

    with _open(av, path, limits) as container:
        stream = container.streams.video[0]
        stream.codec_context.skip_frame = "NONKEY"  # decode key frames only
        stream.codec_context.thread_count = 1  # one decoding thread: bounded memory
        for frame in container.decode(stream):
            image = frame.to_image()
            break
        else:
            raise Refused("no_poster")
    image.thumbnail((POSTER_SIDE, POSTER_SIDE))
    image.convert("RGB").save(poster_path, format="JPEG", quality=85)


def run(mode: str, limits: dict, source: str, out_dir: str | None) -> dict:
    import av

    av.logging.set_level(av.logging.PANIC)  # FFmpeg's own warnings are not our output
    try:
        with _open(av, source, limits) as container:
            info = _probe(av, container, limits)
            if mode == "clean":
                info["duration_seconds"] = _remux(av, container, f"{out_dir}/video.mp4",
                                                  limits)
                if info["duration_seconds"] <= 0:
                    raise Refused("no_duration")
        if mode == "clean":
            _poster(av, f"{out_dir}/video.mp4", f"{out_dir}/poster.jpg", limits)
    except Refused as exc:
        return {"ok": False, "refusal": exc.code, "params": exc.params}
    except (av.FFmpegError, ValueError, OSError, EOFError, IndexError) as exc:
        return {"ok": False, "refusal": "unreadable", "params": {},
                "reason": type(exc).__name__}
    return {"ok": True, **info}


def main(argv: list[str]) -> int:
    mode, limits_json, source = argv[1], argv[2], argv[3]
    out_dir = argv[4] if len(argv) > 4 else None
    limits = json.loads(limits_json)
    apply_limits(limits)
    result = run(mode, limits, source, out_dir)
    sys.stdout.write(json.dumps(result))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
