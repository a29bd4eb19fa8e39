"""Listing jobs. Each takes ids (or nothing), wraps one service and is safe to run twice."""

from __future__ import annotations

from celery import shared_task

from listings import videos


@shared_task(acks_late=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def listing_video_process(video_id: str) -> str:
    """Remux an uploaded video without metadata, extract its poster, mark it `ready`.

    FFmpeg runs in a child process with capped memory and CPU time (biddt/videos.py); a
    storage error (S3 unreachable) is retried, a refused file ends the video `failed`."""
    return videos.listing_video_process(video_id=video_id)


@shared_task(acks_late=True)
def listings_open_due() -> int:
    """The opening sweep (beat, every 2 s): scheduled listings whose start has come open."""
    from listings.services import listing_open_sweep

    return listing_open_sweep()


@shared_task(acks_late=True)
def listing_videos_requeue() -> int:
    """The sweep (beat, every 5 min): queue again the videos whose task was lost."""
    return videos.listing_videos_requeue_stale()
