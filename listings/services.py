"""Listing writes: drafts, publish, edits, cancel, staff removal, images, watchlist, views.

The auction state on the row (current price, bid count, leader) belongs to the bidding
engine. A write here that depends on "no bid yet" locks the row first
(`lifecycle.listing_lock`, the lock `bidding.services.bid_place` takes), or is a conditional
UPDATE on `bid_count=0`, so a bid racing an edit or a cancel either lands before it (and the
edit is refused) or after it. Status changes go through `listings.lifecycle`.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce, Now
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.policies import ensure_active, ensure_staff
from biddt.audit import audit_record
from biddt.errors import Conflict, NotFound, PermissionDenied, invalid
from biddt.events import on_commit
from biddt.images import InvalidImage, image_variants
from listings.lifecycle import listing_ended, listing_lock, listing_transition
from listings.messages import Reason, auction_ended_on_commit, listing_updated_on_commit
from listings.models import (
    AuctionType,
    Listing,
    ListingImage,
    ListingReport,
    ListingStatus,
    Watch,
)
from listings.selectors import listing_get_visible
from listings.signals import listing_activated

logger = logging.getLogger(__name__)

MAX_IMAGES_PER_LISTING = 10
MAX_IMAGE_BYTES = 10 * 1024 * 1024
DISPLAY_SIDE = 1600
THUMB_SIDE = 400
VIEW_WINDOW_SECONDS = 3600

# Fields a first bid freezes (the bidders relied on them).
FROZEN_AFTER_BID = ("starting_price_cents", "reserve_price_cents", "buy_now_price_cents",
                    "ends_at", "starts_at", "auction_type")
EDITABLE_FIELDS = ("title", "description", "category", "condition", "location_lat",
                   "location_lng", "location_name", *FROZEN_AFTER_BID)
EDITABLE_STATUSES = (ListingStatus.DRAFT, ListingStatus.SCHEDULED, ListingStatus.ACTIVE)


def _max_price_cents() -> int:
    return settings.BIDDT_MAX_PRICE_CENTS


def _listing_has_bids() -> Conflict:
    return Conflict(_("Prices, type and end time can't change once a bid exists."),
                    code="listing_has_bids")


def listing_not_editable(listing: Listing) -> Conflict:
    """409 `listing_not_editable`: only a draft, scheduled or active listing changes."""
    return Conflict(_("A %(status)s listing can't be changed.") % {"status": listing.status},
                    code="listing_not_editable")


# --- validation (the domain rules; serializers only check shapes) --------------------------

def listing_validate_terms(*, auction_type: str, starting_price_cents: int,
                           reserve_price_cents: int | None, buy_now_price_cents: int | None,
                           starts_at: datetime | None, ends_at: datetime | None,
                           now: datetime | None = None, check_start: bool = True) -> None:
    """Raise 400 `invalid_price` / `invalid_duration` for terms a listing may not have."""
    now = now or timezone.now()
    low, high = settings.BIDDT_MIN_PRICE_CENTS, _max_price_cents()
    if not low <= starting_price_cents <= high:
        raise invalid("invalid_price", _("The starting price must be between %(low)d and "
                                         "%(high)d cents.") % {"low": low, "high": high},
                      attr="starting_price_cents")
    for field, value in (("reserve_price_cents", reserve_price_cents),
                         ("buy_now_price_cents", buy_now_price_cents)):
        if value is None:
            continue
        if value < starting_price_cents:
            raise invalid("invalid_price", _("Must be at least the starting price."), attr=field)
        if value > high:
            raise invalid("invalid_price", _("Must be at most %(high)d cents.") % {"high": high},
                          attr=field)
    if auction_type == AuctionType.BOTH and buy_now_price_cents is None:
        raise invalid("invalid_price", _("An auction with buy now needs a buy-now price."),
                      attr="buy_now_price_cents")
    if auction_type == AuctionType.AUCTION and buy_now_price_cents is not None:
        raise invalid("invalid_price", _("Use auction_type `both` to offer a buy-now price."),
                      attr="buy_now_price_cents")
    if auction_type == AuctionType.FIXED and reserve_price_cents is not None:
        raise invalid("invalid_price", _("A fixed-price listing has no reserve."),
                      attr="reserve_price_cents")
    if (reserve_price_cents is not None and buy_now_price_cents is not None
            and buy_now_price_cents < reserve_price_cents):
        raise invalid("invalid_price", _("The buy-now price must be at least the reserve."),
                      attr="buy_now_price_cents")

    min_seconds = settings.BIDDT_MIN_AUCTION_SECONDS
    latest = now + timedelta(days=settings.BIDDT_MAX_AUCTION_DAYS)
    if check_start and starts_at is not None and not (
            now - timedelta(minutes=5) <= starts_at <= latest):
        raise invalid("invalid_duration", _("The start must be between now and %(days)d days "
                                            "ahead.") % {"days": settings.BIDDT_MAX_AUCTION_DAYS},
                      attr="starts_at")
    if ends_at is None:
        if auction_type != AuctionType.FIXED:
            raise invalid("invalid_duration", _("An auction needs an end time."), attr="ends_at")
        return
    start = max(now, starts_at) if starts_at else now
    if ends_at - start < timedelta(seconds=min_seconds):
        raise invalid("invalid_duration", _("The listing must run at least %(seconds)d "
                                            "seconds.") % {"seconds": min_seconds},
                      attr="ends_at")
    if ends_at > latest:
        raise invalid("invalid_duration", _("The end must be at most %(days)d days ahead.")
                      % {"days": settings.BIDDT_MAX_AUCTION_DAYS}, attr="ends_at")


def _validate_location(lat: float | None, lng: float | None) -> None:
    if (lat is None) != (lng is None):
        raise invalid("invalid_location", _("Give both location_lat and location_lng, or neither."),
                      attr="location_lng" if lng is None else "location_lat")


# --- lifecycle ----------------------------------------------------------------------------

def listing_create(*, seller, title: str, starting_price_cents: int, description: str = "",
                   category: str = "other", condition: str = "good",
                   auction_type: str = AuctionType.AUCTION,
                   reserve_price_cents: int | None = None,
                   buy_now_price_cents: int | None = None, starts_at: datetime | None = None,
                   ends_at: datetime | None = None, location_lat: float | None = None,
                   location_lng: float | None = None, location_name: str = "") -> Listing:
    """Create a `draft`; nothing is visible to others until `listing_publish`."""
    ensure_active(seller)
    listing_validate_terms(auction_type=auction_type, starting_price_cents=starting_price_cents,
                           reserve_price_cents=reserve_price_cents,
                           buy_now_price_cents=buy_now_price_cents, starts_at=starts_at,
                           ends_at=ends_at)
    _validate_location(location_lat, location_lng)
    return Listing.objects.create(
        seller=seller, title=title, description=description, category=category,
        condition=condition, auction_type=auction_type,
        starting_price_cents=starting_price_cents, current_price_cents=starting_price_cents,
        reserve_price_cents=reserve_price_cents, buy_now_price_cents=buy_now_price_cents,
        starts_at=starts_at, ends_at=ends_at, location_lat=location_lat,
        location_lng=location_lng, location_name=location_name,
    )  # `status` starts as the model's default, `draft`


def _own_listing_for_update(*, listing_id: Any, user) -> Listing:
    """The caller's listing, row-locked; 404 for a draft they don't own, 403 otherwise."""
    listing = listing_lock(listing_id)
    if listing.seller_id != user.pk:
        if listing.status in (ListingStatus.DRAFT, ListingStatus.REMOVED):
            raise NotFound(_("Listing not found."))
        raise PermissionDenied(_("Only the seller can change this listing."))
    return listing


def listing_publish(*, listing_id: Any, user) -> Listing:
    """`draft` → `active`, or `scheduled` while `starts_at` is in the future (the opening
    sweep opens it then); `starts_at` = now if unset. Terms are re-checked against now.
    An `active` one sends `listing_activated` after commit."""
    ensure_active(user)
    now = timezone.now()
    with transaction.atomic():
        listing = _own_listing_for_update(listing_id=listing_id, user=user)
        if listing.status != ListingStatus.DRAFT:
            raise Conflict(_("Only a draft can be published."), code="listing_not_draft")
        starts_at = listing.starts_at if listing.starts_at and listing.starts_at > now else now
        ends_at = listing.ends_at
        if ends_at is None:  # a fixed-price listing without an end runs the maximum time
            ends_at = now + timedelta(days=settings.BIDDT_MAX_AUCTION_DAYS)
        listing_validate_terms(
            auction_type=listing.auction_type,
            starting_price_cents=listing.starting_price_cents,
            reserve_price_cents=listing.reserve_price_cents,
            buy_now_price_cents=listing.buy_now_price_cents, starts_at=starts_at,
            ends_at=ends_at, now=now, check_start=False)
        to = ListingStatus.SCHEDULED if starts_at > now else ListingStatus.ACTIVE
        listing_transition(listing_id=listing.pk, frm=[ListingStatus.DRAFT], to=to,
                           starts_at=starts_at, ends_at=ends_at)
        listing.refresh_from_db()
        if listing.status == ListingStatus.ACTIVE:
            _activated_on_commit(listing.pk)
    return listing


def _activated_on_commit(listing_id: Any) -> None:
    on_commit(lambda: listing_activated.send(sender=Listing, listing_id=listing_id))


# Opening due scheduled listings, one conditional UPDATE each: any number of sweepers (beat
# and the embedded scheduler, duplicate deliveries) open a listing once.
OPEN_BATCH = 500


def listing_open(*, listing_id: Any) -> bool:
    """`scheduled` → `active` once its `starts_at` has come; True only for the one caller
    that opened it. `seq` moves; after commit the room hears `listing_updated` (`opened`)
    and `listing_activated` is sent. A paused listing (suspended seller) waits."""
    now = timezone.now()
    with transaction.atomic():
        won = listing_transition(listing_id=listing_id, frm=[ListingStatus.SCHEDULED],
                                 to=ListingStatus.ACTIVE,
                                 where=Q(starts_at__lte=now, seller_active=True),
                                 updated_at=now, seq=F("seq") + 1)
        if not won:
            return False
        seq = Listing.objects.values_list("seq", flat=True).get(pk=listing_id)
        listing_updated_on_commit(listing_id=listing_id, seq=seq, reason=Reason.OPENED)
        _activated_on_commit(listing_id)
    return True


def listing_open_sweep(*, limit: int = OPEN_BATCH) -> int:
    """Open every due scheduled listing (up to `limit`); returns how many this call opened."""
    due = list(Listing.objects.filter(status=ListingStatus.SCHEDULED,
                                      starts_at__lte=timezone.now(), seller_active=True)
               .order_by("starts_at").values_list("pk", flat=True)[:limit])
    return sum(listing_open(listing_id=pk) for pk in due)


def listing_update(*, listing_id: Any, user, data: dict[str, Any]) -> Listing:
    """Seller edits of a `draft` or `active` listing.

    Locks the row (the bid lock), so `bid_count` can't change under the check: once a bid
    exists, a change to a price, the type or the end is 409 `listing_has_bids` (sending the
    current value again is not a change).
    """
    ensure_active(user)
    unknown = set(data) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValueError(f"not editable: {sorted(unknown)}")
    with transaction.atomic():
        listing = _own_listing_for_update(listing_id=listing_id, user=user)
        if listing.status not in EDITABLE_STATUSES:
            raise listing_not_editable(listing)
        changed = {k: v for k, v in data.items() if getattr(listing, k) != v}
        if not changed:
            return listing
        if listing.bid_count > 0 and any(k in FROZEN_AFTER_BID for k in changed):
            raise _listing_has_bids()
        if listing.status != ListingStatus.DRAFT and "starts_at" in changed:
            raise invalid("invalid_duration", _("A published listing's start can't change."),
                          attr="starts_at")
        for key, value in changed.items():
            setattr(listing, key, value)
        published = listing.status != ListingStatus.DRAFT
        if published:
            # A change others see: `seq` moves and the room hears `listing_updated` (`edit`).
            listing.seq += 1
            changed["seq"] = listing.seq
        if any(k in FROZEN_AFTER_BID for k in changed):
            listing_validate_terms(
                auction_type=listing.auction_type,
                starting_price_cents=listing.starting_price_cents,
                reserve_price_cents=listing.reserve_price_cents,
                buy_now_price_cents=listing.buy_now_price_cents, starts_at=listing.starts_at,
                ends_at=listing.ends_at,
                check_start=listing.status == ListingStatus.DRAFT and "starts_at" in changed)
            if listing.bid_count == 0:
                listing.current_price_cents = listing.starting_price_cents
                changed["current_price_cents"] = listing.current_price_cents
        _validate_location(listing.location_lat, listing.location_lng)
        listing.save(update_fields=[*changed, "updated_at"])
        if published:
            listing_updated_on_commit(listing_id=listing.pk, seq=listing.seq,
                                      reason=Reason.EDIT)
    return listing


def listing_cancel(*, listing_id: Any, user) -> Listing:
    """`draft`/`active` → `cancelled` by the seller, only while no bid exists.

    A conditional UPDATE on `bid_count=0`: a concurrent first bid (which holds the row lock)
    makes this UPDATE match nothing once it commits, and the caller gets 409. A published
    listing's `seq` moves and its room hears `auction_ended` (`cancelled`) after commit.
    """
    ensure_active(user)

    with transaction.atomic():
        listing = Listing.objects.filter(pk=listing_id).first()
        if listing is None or (listing.seller_id != user.pk
                               and listing.status in (ListingStatus.DRAFT,
                                                      ListingStatus.REMOVED)):
            raise NotFound(_("Listing not found."))
        if listing.seller_id != user.pk:
            raise PermissionDenied(_("Only the seller can cancel this listing."))
        was_published = listing.status != ListingStatus.DRAFT
        won = listing_transition(listing_id=listing_id, frm=EDITABLE_STATUSES,
                                 to=ListingStatus.CANCELLED, where=Q(bid_count=0),
                                 closed_at=timezone.now(),
                                 seq=F("seq") + (1 if was_published else 0))
        listing.refresh_from_db()
        if not won:
            if listing.bid_count > 0:
                raise Conflict(_("A listing with bids can't be cancelled."),
                               code="listing_has_bids")
            raise listing_not_editable(listing)
        listing_ended.send(sender=Listing, listing=listing, status=ListingStatus.CANCELLED,
                           reason="", was_active=listing.status == ListingStatus.ACTIVE)
        if was_published:
            auction_ended_on_commit(listing_id=listing.pk, seq=listing.seq,
                                    status=ListingStatus.CANCELLED, final_price=None)
    return listing


def listings_lock_open_of_seller(*, seller_id: Any) -> list[Listing]:
    """Lock the seller's draft/active listings (ordered by id), for an account closure.

    Caller holds the seller's user row lock (a user row before listing rows) in its
    transaction; a bid on one of these listings waits for this lock, or holds it first and
    the closure sees its `bid_count`."""
    return list(Listing.objects.select_for_update(of=("self",), no_key=True)
                .filter(seller_id=seller_id, status__in=EDITABLE_STATUSES).order_by("pk"))


def listings_cancel_for_closed_account(*, listings: list[Listing]) -> int:
    """Cancel the closing account's listings that have no bids (`privacy.account_delete`).

    The listings come locked from `listings_lock_open_of_seller`; the closure refused the
    deletion already if an active one has bids. The same transition as `listing_cancel`
    (whose `ensure_active` would refuse a suspended seller that staff close). Returns how
    many were cancelled."""
    cancelled = 0
    for listing in listings:
        was_published = listing.status != ListingStatus.DRAFT
        won = listing_transition(listing_id=listing.pk, frm=EDITABLE_STATUSES,
                                 to=ListingStatus.CANCELLED, where=Q(bid_count=0),
                                 closed_at=timezone.now(),
                                 seq=F("seq") + (1 if was_published else 0))
        cancelled += won
        if won and was_published:
            seq = listing.seq + 1
            auction_ended_on_commit(listing_id=listing.pk, seq=seq,
                                    status=ListingStatus.CANCELLED, final_price=None)
    return cancelled


def listing_remove(*, listing_id: Any, staff_user, reason: str) -> Listing:
    """Staff takedown: any status → `removed`, with the reason kept on the row and audited.

    Locks the listing row (the bid lock) so no bid lands between the decision and the
    voiding: the auction is void (its active bids → `voided`, via bidding.services), open
    reports of it are marked actioned, and after commit the bidders are notified and the
    room hears `auction_ended` with status `removed`.
    """
    ensure_staff(staff_user, detail=_("Only staff can remove listings."))
    reason = (reason or "").strip()[:255]
    if not reason:
        raise invalid("required", _("A reason is required."), attr="reason")
    now = timezone.now()
    with transaction.atomic():
        listing = listing_lock(listing_id)
        before = {"status": listing.status, "status_reason": listing.status_reason,
                  "bid_count": listing.bid_count}
        won = listing_transition(listing_id=listing_id, to=ListingStatus.REMOVED,
                                 status_reason=reason,
                                 closed_at=Coalesce(F("closed_at"), Now()), updated_at=now)
        if not won:
            raise Conflict(_("The listing is already removed."), code="listing_not_editable")
        # bidding voids the auction's bids, notifies and tells the room (bidding.apps).
        ended = listing_ended.send(sender=Listing, listing=listing,
                                   status=ListingStatus.REMOVED, reason=reason,
                                   was_active=before["status"] == ListingStatus.ACTIVE)
        voided = sum(n for _receiver, n in ended if isinstance(n, int))
        reports = ListingReport.objects.filter(listing_id=listing.pk,
                                               status=ListingReport.Status.OPEN).update(
            status=ListingReport.Status.ACTIONED)
        listing.refresh_from_db()
        audit_record(actor=staff_user, action="listing.remove", obj=listing, before=before,
                     after={"status": listing.status, "status_reason": reason,
                            "bids_voided": voided, "reports_actioned": reports},
                     reason=reason)
    logger.info("listing %s removed by staff %s: %s", listing_id, staff_user.pk, reason)
    return listing


# --- reports --------------------------------------------------------------------------------

def listing_report(*, listing_id: Any, user, reason: str, details: str = ""):
    """A user reports a listing they can see (else 404): once per user per listing (409
    `already_reported`); the report joins the moderation queue (admin: open reports)."""
    ensure_active(user)
    listing = listing_get_visible(listing_id=listing_id, user=user)
    if listing.seller_id == user.pk:
        raise Conflict(_("You can't report your own listing."), code="own_listing")
    if reason not in ListingReport.Reason.values:
        raise invalid("invalid_choice", _("Pick a reason from the list."), attr="reason")
    try:
        with transaction.atomic():
            return ListingReport.objects.create(listing=listing, reporter=user, reason=reason,
                                                details=(details or "").strip()[:2000])
    except IntegrityError:
        raise Conflict(_("You already reported this listing."), code="already_reported") from None


def report_dismiss(*, report_id: Any, staff_user, reason: str = "") -> bool:
    """Staff: an open report needs no action (`open → dismissed`, audited). True if moved."""
    with transaction.atomic():
        if not ListingReport.objects.filter(pk=report_id, status=ListingReport.Status.OPEN) \
                .update(status=ListingReport.Status.DISMISSED):
            return False
        audit_record(actor=staff_user, action="report.dismiss",
                     obj=ListingReport.objects.get(pk=report_id), before={"status": "open"},
                     after={"status": "dismissed"}, reason=reason)
    return True


# --- images --------------------------------------------------------------------------------

def listing_image_add(*, listing_id: Any, user, upload) -> ListingImage:
    """Validate by content, store a display version and a thumbnail, record the row.

    The files are stored outside the row lock (S3 is a network call); the count of 10 is
    checked again under the lock, and any failure after storing deletes both files, so a
    refused or failed upload leaves no orphan.
    """
    ensure_active(user)
    _image_target(listing_id=listing_id, user=user, lock=False)
    try:
        variants = image_variants(upload, max_bytes=MAX_IMAGE_BYTES, name=uuid.uuid4().hex,
                                  sides={"display": DISPLAY_SIDE, "thumb": THUMB_SIDE})
    except InvalidImage as exc:
        raise invalid("invalid_image", str(exc), attr="image") from None
    display, thumb = variants["display"], variants["thumb"]
    field = ListingImage._meta.get_field("image")
    storage = field.storage
    row = ListingImage(width=display.width, height=display.height)
    stored: list[str] = []
    try:
        row.image.save(display.content.name, display.content, save=False)
        stored.append(row.image.name)
        row.thumbnail.save(thumb.content.name, thumb.content, save=False)
        stored.append(row.thumbnail.name)
        with transaction.atomic():
            listing, count = _image_target(listing_id=listing_id, user=user, lock=True)
            row.listing = listing
            row.position = count
            row.save()
            listing_shown_changed(listing_id=listing.pk)
    except BaseException:
        for name in stored:
            try:
                storage.delete(name)
            except Exception:  # noqa: BLE001 - the original error matters more
                logger.warning("could not delete orphan image %s", name, exc_info=True)
        raise
    return row


def listing_shown_changed(*, listing_id: Any) -> None:
    """A field of the public representation changed outside the edit (an image added, a video
    ready or deleted): once the listing is published that is a change others see, so its
    `seq` moves and the room hears `listing_updated` (`edit`) after commit. Call it inside the
    transaction that made the change; a draft changes nothing."""
    with transaction.atomic():
        if Listing.objects.filter(pk=listing_id).exclude(status=ListingStatus.DRAFT).update(
                seq=F("seq") + 1):
            seq = Listing.objects.values_list("seq", flat=True).get(pk=listing_id)
            listing_updated_on_commit(listing_id=listing_id, seq=seq, reason=Reason.EDIT)


def _image_target(*, listing_id: Any, user, lock: bool) -> tuple[Listing, int]:
    listing = listing_lock(listing_id) if lock else Listing.objects.filter(pk=listing_id).first()
    if listing is None or (listing.seller_id != user.pk
                           and listing.status in (ListingStatus.DRAFT, ListingStatus.REMOVED)):
        raise NotFound(_("Listing not found."))
    if listing.seller_id != user.pk:
        raise PermissionDenied(_("Only the seller can add images."))
    if listing.status not in EDITABLE_STATUSES:
        raise listing_not_editable(listing)
    count = ListingImage.objects.filter(listing=listing).count()
    if count >= MAX_IMAGES_PER_LISTING:
        raise invalid("invalid_image", _("A listing has at most %(count)d images.")
                      % {"count": MAX_IMAGES_PER_LISTING}, attr="image")
    return listing, count


# --- a seller's suspension pauses their open listings -----------------------------------

OPEN_STATUSES = (ListingStatus.SCHEDULED, ListingStatus.ACTIVE)


def listing_seller_active_set(*, seller_id: Any, active: bool) -> int:
    """Pause (`active=False`) or resume every listing of the seller, in the caller's
    transaction (accounts.services.user_suspend / user_reinstate); returns how many open ones.

    The flag lives on the listings so browse filters on one table's indexes (issue 22). An
    open listing's pause is a change others see (it stops taking bids and leaves browse):
    its `seq` moves in the same UPDATE, which takes each row's lock (so a bid is before or
    after it), and its room hears `listing_updated` (`paused` / `reinstated`) after commit.
    """
    rows = Listing.objects.filter(seller_id=seller_id).exclude(seller_active=active)
    opened = list(rows.filter(status__in=OPEN_STATUSES).values_list("pk", flat=True))
    Listing.objects.filter(pk__in=opened).update(seq=F("seq") + 1)
    rows.update(seller_active=active)
    reason = Reason.REINSTATED if active else Reason.PAUSED
    for pk, seq in Listing.objects.filter(pk__in=opened).values_list("pk", "seq"):
        listing_updated_on_commit(listing_id=pk, seq=seq, reason=reason)
    return len(opened)


# --- watchlist and views -----------------------------------------------------------------

def listing_watch(*, listing_id: Any, user) -> bool:
    """Watch a listing the caller may see (else 404); True when newly watched (idempotent)."""
    ensure_active(user)
    listing_get_visible(listing_id=listing_id, user=user)
    try:
        with transaction.atomic():
            _watch, created = Watch.objects.get_or_create(user=user, listing_id=listing_id)
    except IntegrityError:  # a concurrent identical request won
        created = False
    return created


def listing_unwatch(*, listing_id: Any, user) -> None:
    ensure_active(user)
    Watch.objects.filter(user=user, listing_id=listing_id).delete()


def listing_view_record(*, listing: Listing, viewer_key: str) -> bool:
    """Count a view once per viewer per hour; True when this call counted it.

    The cache `add` is atomic in Redis (shared by every instance): only the first view in
    the window writes, with an `F()` increment, so a busy page costs no write per request.
    The seller's own views don't count.
    """
    if viewer_key == f"user:{listing.seller_id}":
        return False
    key = f"listing-view:{listing.pk}:{viewer_key}"
    if not cache.add(key, 1, timeout=VIEW_WINDOW_SECONDS):
        return False
    Listing.objects.filter(pk=listing.pk).update(view_count=F("view_count") + 1)
    listing.view_count += 1
    return True


# --- the seller's account -------------------------------------------------------------------

def listings_set_seller_active(*, user_id: Any, active: bool, **_signal: Any) -> int:
    """`accounts.signals.user_active_changed` (connected in listings.apps), sent by
    `user_suspend`/`user_reinstate` in their transaction: pause or resume the seller's
    listings (`listing_seller_active_set`, with their room events)."""
    return listing_seller_active_set(seller_id=user_id, active=active)
