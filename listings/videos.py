"""Listing videos: upload (checked on the request thread), cleaning (in the worker), deletion.

An upload is checked by content on the request thread, header only and in a bounded child
process (`biddt.videos.video_probe`): a renamed file, another codec or a declared duration
over the limit is a 400 `invalid_video` at once. The upload as received is then stored
privately (`source`, never given a URL) and the row created `processing`; after commit the
worker (`listings.tasks.listing_video_process`) remuxes it without metadata, checks the
packets' real duration, extracts the poster, stores both and marks the row `ready`, the only
state the listing representation shows. A file refused there is marked `failed` (with the
reason) and its source deleted.

Storage calls (S3) run outside the listing row's lock; the per-listing limit is checked again
under the lock, and a failure after storing deletes what was stored, so no orphan is left.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.core.files import File
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts.policies import ensure_active
from biddt.errors import Conflict, NotFound, PermissionDenied, invalid
from biddt.events import on_commit, task_on_commit
from biddt.i18n import for_user_language
from biddt.videos import (
    InvalidVideo,
    max_bytes,
    too_large_message,
    upload_path,
    video_clean,
    video_probe,
)
from listings import tasks
from listings.models import Listing, ListingStatus, ListingVideo, VideoStatus
from listings.services import (
    EDITABLE_STATUSES,
    listing_not_editable,
    listing_shown_changed,
)

logger = logging.getLogger(__name__)

MAX_VIDEOS_PER_LISTING = 1
# A video still `processing` this long after its upload lost its task (a process killed
# between the commit and the hand-off to the broker): queued again. Past GIVE_UP it is failed.
REQUEUE_AFTER = timedelta(minutes=10)
GIVE_UP_AFTER = timedelta(hours=2)


def _storage():
    return ListingVideo._meta.get_field("file").storage


def _delete_files(names: list[str]) -> None:
    storage = _storage()
    for name in names:
        if not name:
            continue
        try:
            storage.delete(name)
        except Exception:  # noqa: BLE001 - a leftover file must not fail the caller
            logger.warning("could not delete video file %s", name, exc_info=True)


def _invalid(message: str):
    return invalid("invalid_video", message, attr="video")


def _listing_for_seller(*, listing_id: Any, user, lock: bool, action: str) -> Listing:
    """The caller's listing, editable; 404 when the caller may not know it, 403 when it is
    someone else's, 409 `listing_not_editable` unless draft or active."""
    qs = Listing.objects.filter(pk=listing_id)
    if lock:
        qs = qs.select_for_update(of=("self",), no_key=True)
    listing = qs.first()
    if listing is None or (listing.seller_id != user.pk
                           and (listing.status in (ListingStatus.DRAFT, ListingStatus.REMOVED)
                                or not listing.seller_active)):
        raise NotFound(_("Listing not found."))
    if listing.seller_id != user.pk:
        raise PermissionDenied(_("Only the seller can add videos.") if action == "add"
                               else _("Only the seller can remove videos."))
    if listing.status not in EDITABLE_STATUSES:
        raise listing_not_editable(listing)
    return listing


def _check_room(listing: Listing) -> None:
    # A failed video doesn't count: the seller may send another at once.
    taken = ListingVideo.objects.filter(listing=listing).exclude(
        status=VideoStatus.FAILED).count()
    if taken >= MAX_VIDEOS_PER_LISTING:
        raise _invalid(ngettext(
            "A listing has at most %(count)d video; delete it first.",
            "A listing has at most %(count)d videos; delete one first.",
            MAX_VIDEOS_PER_LISTING) % {"count": MAX_VIDEOS_PER_LISTING})


def listing_video_check_size(*, content_length: int | None) -> None:
    """Refuse a request body that can't hold an acceptable video, before reading it."""
    # The multipart envelope around the file is small; a megabyte of slack is plenty.
    if content_length is not None and content_length > max_bytes() + 1024 * 1024:
        raise _invalid(too_large_message())


def listing_video_add(*, listing_id: Any, user, upload) -> ListingVideo:
    """Check the upload (header, on bounded resources), store it privately, record the row
    as `processing` and queue its cleaning after commit."""
    ensure_active(user)
    listing = _listing_for_seller(listing_id=listing_id, user=user, lock=False, action="add")
    _check_room(listing)
    row = ListingVideo()
    stored: list[str] = []
    try:
        with upload_path(upload) as path:
            info = video_probe(path)
            row.duration_seconds = info.duration_seconds
            row.width, row.height, row.codec = info.width, info.height, info.codec
            row.size_bytes = path.stat().st_size
            with path.open("rb") as handle:
                row.source.save(f"{uuid.uuid4().hex}.upload", File(handle), save=False)
            stored.append(row.source.name)
        with transaction.atomic():
            row.listing = _listing_for_seller(listing_id=listing_id, user=user, lock=True,
                                              action="add")
            _check_room(row.listing)
            row.save()
            task_on_commit(tasks.listing_video_process, str(row.pk))
    except InvalidVideo as exc:
        _delete_files(stored)
        raise _invalid(str(exc)) from None
    except BaseException:
        _delete_files(stored)
        raise
    row.refresh_from_db()  # ready already when the task ran eagerly (development, tests)
    return row


def _download(name: str, directory: Path) -> Path:
    """Copy a stored file to local disk, refusing past the size limit."""
    limit = max_bytes()
    path = directory / "source"
    written = 0
    with _storage().open(name, "rb") as src, path.open("wb") as out:
        while chunk := src.read(1024 * 1024):
            written += len(chunk)
            if written > limit:
                raise InvalidVideo(too_large_message())
            out.write(chunk)
    return path


def listing_video_process(*, video_id: Any) -> str:
    """Clean a `processing` video (worker): remux without metadata, poster, mark `ready`.

    Safe to run twice: only the run whose conditional update moves the row out of
    `processing` keeps its files; another (or one for a video deleted meanwhile) deletes what
    it stored. Returns the status the row ended in ("gone" when there is none to process).
    """
    video = ListingVideo.objects.filter(pk=video_id, status=VideoStatus.PROCESSING).first()
    if video is None:
        return "gone"
    workdir = Path(tempfile.mkdtemp(prefix="biddt-video-src-"))
    stored: list[str] = []
    try:
        try:
            source = _download(video.source.name, workdir)
            with video_clean(source) as clean:
                base = uuid.uuid4().hex
                with clean.video_path.open("rb") as handle:
                    video.file.save(f"{base}.mp4", File(handle), save=False)
                stored.append(video.file.name)
                with clean.poster_path.open("rb") as handle:
                    video.poster.save(f"{base}-poster.jpg", File(handle), save=False)
                stored.append(video.poster.name)
                size = clean.video_path.stat().st_size
        except InvalidVideo as exc:
            _delete_files(stored)
            # The seller reads the verdict later: written in their language.
            language = Listing.objects.filter(pk=video.listing_id).values_list(
                "seller__language", flat=True).first()
            with for_user_language(language):
                error = str(exc)[:255]
            if ListingVideo.objects.filter(pk=video.pk, status=VideoStatus.PROCESSING).update(
                    status=VideoStatus.FAILED, error=error, source=""):
                _delete_files([video.source.name])
            return VideoStatus.FAILED
        with transaction.atomic():
            won = ListingVideo.objects.filter(pk=video.pk, status=VideoStatus.PROCESSING).update(
                status=VideoStatus.READY, file=video.file.name, poster=video.poster.name,
                duration_seconds=clean.info.duration_seconds, size_bytes=size, source="",
                ready_at=timezone.now())
            if won:  # the listing now shows it
                listing_shown_changed(listing_id=video.listing_id)
        if not won:
            _delete_files(stored)
            return "gone"
        _delete_files([video.source.name])
        return VideoStatus.READY
    except BaseException:
        _delete_files(stored)
        raise
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def listing_video_get(*, listing_id: Any, video_id: Any, user) -> ListingVideo:
    """The seller's view of one of their listing's videos, in any state."""
    listing = Listing.objects.filter(pk=listing_id, seller_id=user.pk).first()
    video = (ListingVideo.objects.filter(pk=video_id, listing=listing).first()
             if listing is not None else None)
    if video is None:
        raise NotFound(_("Video not found."))
    return video


def listing_video_delete(*, listing_id: Any, video_id: Any, user) -> None:
    """Seller only, before any bid (the bidders saw it): 409 `listing_has_bids`.

    Locks the listing row (the lock `bid_place` takes), so a bid racing the deletion lands
    either before it (and the deletion is refused) or after it. The files go after commit.
    """
    ensure_active(user)
    with transaction.atomic():
        listing = _listing_for_seller(listing_id=listing_id, user=user, lock=True,
                                      action="delete")
        video = ListingVideo.objects.filter(pk=video_id, listing=listing).first()
        if video is None:
            raise NotFound(_("Video not found."))
        if listing.bid_count > 0:
            raise Conflict(_("The video can't be removed once a bid exists."),
                           code="listing_has_bids")
        names = [video.source.name, video.file.name, video.poster.name]
        shown = video.status == VideoStatus.READY
        video.delete()
        if shown:
            listing_shown_changed(listing_id=listing.pk)
        on_commit(lambda: _delete_files(names))


def listing_videos_requeue_stale() -> int:
    """Queue again every video left `processing` past REQUEUE_AFTER (the task is safe to run
    twice); fail those past GIVE_UP_AFTER, deleting their source. Returns how many were
    queued."""
    now = timezone.now()
    stale = ListingVideo.objects.filter(status=VideoStatus.PROCESSING)
    given_up = stale.filter(created_at__lt=now - GIVE_UP_AFTER).only("id", "source").annotate(
        language=F("listing__seller__language"))
    for video in given_up:
        with for_user_language(video.language):
            error = str(_("The video could not be processed."))
        if ListingVideo.objects.filter(pk=video.pk, status=VideoStatus.PROCESSING).update(
                status=VideoStatus.FAILED, error=error, source=""):
            _delete_files([video.source.name])
    ids = [str(pk) for pk in stale.filter(created_at__lt=now - REQUEUE_AFTER)
           .values_list("pk", flat=True)]
    for video_id in ids:
        task_on_commit(tasks.listing_video_process, video_id)
    return len(ids)
