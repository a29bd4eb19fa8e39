"""Bidding writes: place a bid, retract, buy now, close auctions, announce endings.

Every write that reads-then-writes the auction state locks the listing row first
(`select_for_update(of=("self",), no_key=True)`), keeps the locked section to a few
statements (lock, insert bids, update the row), and hands every side effect (socket events,
notification tasks) to `biddt.events`, which runs them after commit.
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy
from rest_framework import serializers

from accounts.models import User, mask_name
from accounts.policies import ensure_active
from accounts.services import user_lock_acting
from bidding import messages, selectors, tasks
from bidding.models import Bid
from bidding.payloads import bid_history_data, listing_live_data
from bidding.signals import SOURCE_AUCTION, SOURCE_BUY_NOW, listing_sold
from biddt.errors import Conflict, NotFound, invalid
from biddt.events import batched, on_commit, send_to_group_on_commit, task_on_commit
from biddt.i18n import Money
from biddt.metrics import AUCTIONS_CLOSED, BIDS_PLACED
from listings import rules
from listings.lifecycle import listing_close_due, listing_lock, listing_transition
from listings.messages import (
    Reason,
    auction_ended_on_commit,
    listing_room,
    listing_updated_on_commit,
    room_event,
)
from listings.models import AuctionType, Listing, ListingStatus, Watch
from notifications.models import NotificationType
from notifications.services import Note, notify, notify_many

RETRACT_ALL_BEFORE = timedelta(hours=12)
RETRACT_LATEST_WITHIN = timedelta(hours=1)
ENDING_SOON_SECONDS = 60


class BidTooLow(Conflict):
    """409 `bid_too_low`; the error item carries `minimum_next_bid_cents` as a field (and the
    detail names it too, for people), the socket error as `minimumNextBidCents`."""

    default_code = "bid_too_low"

    def __init__(self, minimum_next_bid_cents: int, message: str) -> None:
        super().__init__(f"{message} minimum_next_bid_cents={minimum_next_bid_cents}",
                         code="bid_too_low")
        self.minimum_next_bid_cents = minimum_next_bid_cents
        self.error_fields = {"minimum_next_bid_cents": minimum_next_bid_cents}


@dataclass(frozen=True, slots=True)
class BidPlaced:
    bid: Bid  # the submitter's row; `bid.listing` is the updated listing
    records: tuple[Bid, ...]  # every row inserted: the submitter's, then a proxy's answer
    listing: Listing
    is_leading: bool
    outbid_id: uuid.UUID | None
    extended: bool
    # The masked name of the proxy's automatic answer (the leader's, read with the lock).
    auto_bidder_name: str | None = None


def listing_group(listing_id: Any) -> str:
    """The channel-layer group of a listing's live room (its subscribers' sockets)."""
    return listing_room(listing_id)


room = listing_group  # the old name, for code written against it
_ws_event = room_event

# Read with the locked listing row (listings.lifecycle.listing_lock): the "Bidder N" numbers
# of the bidder and of the leader (None before their first bid on the listing), so a bid
# costs no query of its own for them while every other bid on the listing waits for the lock.
# Correlated with the locked row, so PostgreSQL re-evaluates them on the row version it
# finally locks. Only model metadata is formatted in; the bidder id is a bound parameter.
_BIDDER_NUMBERS = f""",
           (SELECT b.bidder_number FROM {Bid._meta.db_table} b
             WHERE b.bidder_id = %s AND b.listing_id = l.id
               AND b.bidder_number IS NOT NULL LIMIT 1) AS bidder_number,
           (SELECT b.bidder_number FROM {Bid._meta.db_table} b
             WHERE b.bidder_id = l.leader_id AND b.listing_id = l.id
               AND b.bidder_number IS NOT NULL LIMIT 1) AS leader_number"""  # noqa: S608


def _lock_listing(listing_id: Any, *, bidder_id: Any = None) -> Listing:
    """The listing lock (listings.lifecycle.listing_lock) with the bidder numbers of
    `bidder_id` and of the leader (`bidder_number`, `leader_number`). Inside
    `transaction.atomic`."""
    bidder = (None if bidder_id is None
              else User._meta.pk.get_db_prep_value(bidder_id, connection))
    return listing_lock(listing_id, extra_columns=_BIDDER_NUMBERS, params=[bidder])


def _hide_drafts(listing: Listing, user) -> None:
    if listing.status == ListingStatus.DRAFT and listing.seller_id != user.pk:
        raise NotFound(_("Listing not found."))


def _seller_paused(listing: Listing) -> bool:
    """A suspended seller's listings are paused: no bids, no buy now (accounts.user_suspend).
    `listing` comes from `listing_lock`, which reads the seller's status with the row."""
    return listing.seller_paused


def _check_biddable(listing: Listing, bidder, now: datetime) -> None:
    _hide_drafts(listing, bidder)
    if listing.seller_id == bidder.pk:
        raise Conflict(_("You can't bid on your own listing."), code="own_listing")
    if listing.auction_type == AuctionType.FIXED:
        raise Conflict(_("This listing is sold at a fixed price; use buy now."),
                       code="fixed_price_listing")
    # Past its end the auction has ended, whether or not the sweep has closed it yet: the
    # answer doesn't depend on the sweep's timing.
    if listing.status in (ListingStatus.SOLD, ListingStatus.UNSOLD):
        raise _auction_ended()
    if (listing.status != ListingStatus.ACTIVE or listing.ends_at is None
            or (listing.starts_at is not None and listing.starts_at > now)
            or _seller_paused(listing)):
        raise Conflict(_("This listing is not open for bids."), code="listing_not_active")
    if listing.ends_at <= now:
        raise _auction_ended()


def _bid_rule_detail(err: rules.BidRuleError, before: rules.AuctionState) -> str:
    """The rules' refusal in the request's language (`bidding.rules` is plain Python: its
    messages are English)."""
    if err.code == rules.BID_TOO_LOW:
        minimum = err.minimum_next_bid_cents or 0
        if minimum != rules.minimum_next_bid(before):  # the leader's own bid, below their max
            return _("You are already leading; a new bid must raise your maximum above "
                     "%(max)d cents.") % {"max": minimum - 1}
        return _("The bid must be at least %(minimum)d cents.") % {"minimum": minimum}
    if err.code == rules.INVALID_MAX:
        return _("The maximum must not be below the bid amount.")
    return str(err)


def _auction_ended() -> Conflict:
    return Conflict(_("This auction has ended."), code="auction_ended")


def bid_place(*, listing_id: Any, bidder, amount_cents: int,
              max_amount_cents: int | None = None) -> BidPlaced:
    """Place a bid (REST and socket). Opens its own transaction (a savepoint when nested, e.g.
    under `biddt.idempotency.run_once`): locks the listing row, applies `rules.apply_bid` to the
    state on the row, inserts the bid rows (the proxy's automatic answer included), writes the
    new state, extends `ends_at` under soft close. `seq` counts what others see: a bid moves it
    by one (`bid_placed`), a soft-close extension by one more (`auction_extended`), and the
    leader's silent raise of their own maximum not at all (no room event: nobody else sees
    it). After commit: those room events, `outbid` to the previous leader's sockets, and the
    `outbid` notification task.
    """
    ensure_active(bidder)
    highest = settings.BIDDT_MAX_PRICE_CENTS  # no listing may be priced above it either
    for attr, value in (("amount_cents", amount_cents), ("max_amount_cents", max_amount_cents)):
        if value is not None and value > highest:
            raise invalid("max_value", _("Ensure this value is less than or equal to "
                                         "%(limit_value)s.") % {"limit_value": highest},
                          attr=attr)
    if max_amount_cents is not None and max_amount_cents < amount_cents:
        raise invalid(rules.INVALID_MAX, _("The maximum must not be below the bid amount."),
                      attr="max_amount_cents")
    with transaction.atomic():
        user_lock_acting(bidder)  # user row before listing row: see privacy.account_delete
        listing = _lock_listing(listing_id, bidder_id=bidder.pk)
        now = timezone.now()  # read after the lock: the end is judged at the moment we own it
        _check_biddable(listing, bidder, now)
        before = selectors.auction_state(listing)
        try:
            outcome = rules.apply_bid(before, rules.BidInput(bidder.pk, amount_cents,
                                                             max_amount_cents))
        except rules.BidRuleError as err:
            if err.code == rules.BID_TOO_LOW:
                raise BidTooLow(err.minimum_next_bid_cents or 0,
                                _bid_rule_detail(err, before)) from None
            raise invalid(err.code, _bid_rule_detail(err, before),
                          attr="max_amount_cents") from None

        # Bid rows are ordered by their own counter (`bids_seq`), which every bid moves; the
        # listing's `seq` moves only when others can see a change (not on a silent raise).
        listing.bids_seq += 1
        number = listing.bidder_number
        if number is None:  # the bidder's first bid here: the next alias
            listing.bidder_count += 1
            number = listing.bidder_count
        silent = all(r.is_max_raise for r in outcome.records)
        if not silent:
            listing.seq += 1
        # The leader's automatic bid carries only the leader's id: the event that shows the
        # leader's name is rendered after commit, outside the lock.
        rows = tuple(
            Bid(listing=listing, bidder_id=r.bidder_id, amount_cents=r.amount_cents,
                max_amount_cents=r.max_amount_cents,
                requested_amount_cents=r.requested_amount_cents, is_auto_bid=r.is_auto_bid,
                is_max_raise=r.is_max_raise, seq=listing.bids_seq,
                bidder_number=number if r.bidder_id == bidder.pk else listing.leader_number)
            for r in outcome.records
        )
        for row in rows:
            if row.bidder_id == bidder.pk:
                row.bidder = bidder

        state = outcome.state
        listing.current_price_cents = state.current_price_cents
        listing.bid_count = state.bid_count
        listing.leader_id = state.leader_id
        if state.leader_id == bidder.pk:
            listing.leader = bidder
        listing.leader_max_cents = state.leader_max_cents
        window = timedelta(seconds=settings.BIDDT_SOFT_CLOSE_SECONDS)
        extended = ((outcome.price_changed or outcome.leader_changed)
                    and listing.ends_at - now < window)
        ends_before = listing.ends_at
        if extended:
            listing.ends_at = now + window
            listing.seq += 1  # the extension is a change of its own: `auction_extended`
        _write_bid(listing, rows, visible=not silent)
        auto_name = None
        if (len(rows) > 1 and rows[-1].bidder_id == before.leader_id
                and getattr(listing, "leader_display_name", None) is not None):
            # The proxy answering is the leader read with the locked row: their name too.
            auto_name = mask_name(listing.leader_display_name)
        placed = BidPlaced(bid=rows[0], records=rows, listing=listing,
                           is_leading=outcome.is_leading, outbid_id=outcome.outbid_id,
                           extended=extended, auto_bidder_name=auto_name)
        _announce_bid(placed, previous_leader_max=before.leader_max_cents,
                      ends_before=ends_before)
    return placed


_BID_FIELDS = list(Bid._meta.concrete_fields)
_LISTING_BID_FIELDS = [Listing._meta.get_field(name) for name in (
    "seq", "bids_seq", "bidder_count", "current_price_cents", "bid_count", "leader",
    "leader_max_cents", "ends_at", "updated_at")]
_LISTING_SILENT_FIELDS = [f for f in _LISTING_BID_FIELDS if f.name != "updated_at"]


def _write_bid(listing: Listing, rows: tuple[Bid, ...], *, visible: bool = True) -> None:
    """Insert the bid rows and write the listing's new state, under the row lock.

    On PostgreSQL one statement (the INSERT in a CTE, then the UPDATE): one round trip while
    every other bid on the listing waits, and none of the ORM's per-call query building.
    Values are prepared by the model fields themselves (`pre_save` fills `created_at` and
    `updated_at`, `get_db_prep_save` converts), as `bulk_create` and `save` would. Bids and
    listings have no save signals or history to skip. A change nobody else sees (`visible`
    False: the leader's silent raise) leaves `updated_at`, a field of the representation, as
    it was: it moves with `seq` only."""
    fields = _LISTING_BID_FIELDS if visible else _LISTING_SILENT_FIELDS
    if connection.vendor != "postgresql":
        Bid.objects.bulk_create(rows)
        listing.save(update_fields=[f.name for f in fields])
        return
    qn = connection.ops.quote_name
    params: list[Any] = []
    values = []
    for row in rows:
        values.append("(" + ", ".join(["%s"] * len(_BID_FIELDS)) + ")")
        params += [f.get_db_prep_save(f.pre_save(row, True), connection) for f in _BID_FIELDS]
    assignments = ", ".join(f"{qn(f.column)} = %s" for f in fields)
    params += [f.get_db_prep_save(f.pre_save(listing, False), connection) for f in fields]
    params.append(Listing._meta.pk.get_db_prep_value(listing.pk, connection))
    sql = (f"WITH inserted AS (INSERT INTO {qn(Bid._meta.db_table)} "  # noqa: S608
           f"({', '.join(qn(f.column) for f in _BID_FIELDS)}) VALUES {', '.join(values)}) "
           f"UPDATE {qn(Listing._meta.db_table)} SET {assignments} "
           f"WHERE {qn(Listing._meta.pk.column)} = %s")
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
    for row in rows:
        row._state.adding = False
        row._state.db = connection.alias


def _announce_bid(placed: BidPlaced, *, previous_leader_max: int | None,
                  ends_before: datetime | None) -> None:
    """Register the bid's after-commit events. The payloads are rendered after the commit
    too: serializers don't belong inside the row lock every bid on the listing waits for."""
    listing = placed.listing
    listing_id = str(listing.pk)
    if not placed.bid.is_max_raise:
        # With an extension the bid is `seq - 1` (the state before the end moved) and the
        # extension `seq`: one room event per `seq`, each a state a client can hold.
        bid_seq = listing.seq - 1 if placed.extended else listing.seq
        send_to_group_on_commit(listing_group(listing_id), lambda: _ws_event(
            _bid_placed_payload(placed, seq=bid_seq, ends_at=ends_before)))
    # else the leader raised their own maximum and nothing the room sees moved: no `seq`, no
    # event (it would tell everyone the leader raised).
    on_commit(BIDS_PLACED.inc)
    if placed.outbid_id is not None:
        send_to_group_on_commit(f"user.{placed.outbid_id}", _ws_event(messages.OUTBID.build(
            listingId=listing_id, yourMaxBid=previous_leader_max,
            currentBid=listing.current_price_cents)))
        task_on_commit(tasks.bid_outbid_notify, listing_id=listing_id,
                       user_id=str(placed.outbid_id), seq=listing.seq)
    if placed.extended:
        ends_at, seq = listing.ends_at, listing.seq
        send_to_group_on_commit(listing_group(listing_id), lambda: _ws_event(
            messages.AUCTION_EXTENDED.build(
                listingId=listing_id, seq=seq,
                endsAt=serializers.DateTimeField().to_representation(ends_at))))


def _bid_placed_payload(placed: BidPlaced, *, seq: int,
                        ends_at: datetime | None) -> dict[str, Any]:
    listing = placed.listing
    live = listing_live_data(listing)
    if placed.extended:  # the state at the bid's own `seq`: the end before it moved
        live["ends_at"] = serializers.DateTimeField().to_representation(ends_at)
        live["seq"] = seq
    extra: dict[str, Any] = {}
    if len(placed.records) > 1:
        # The leader's proxy answered: the history row that now stands at the price.
        extra["autoBid"] = bid_history_data(placed.records[-1],
                                            bidder_name=placed.auto_bidder_name)
    return messages.BID_PLACED.build(listingId=str(listing.pk), seq=seq,
                                     bid=bid_history_data(placed.bid), listing=live, **extra)


def bid_outbid_notify(*, listing_id: Any, user_id: Any, seq: int) -> None:
    """The `outbid` notification (once per listing and seq, whatever the task's retries)."""
    listing = Listing.objects.filter(pk=listing_id).first()
    if listing is None:
        return
    notify(user_id=user_id, type=NotificationType.OUTBID, title=_("You've been outbid"),
           body=format_lazy(_("Someone bid more on “{title}”. The price is now {price}."),
                            title=listing.title,
                            price=Money(listing.current_price_cents, listing.currency)),
           data={"listing_id": str(listing.pk), "current_price_cents": listing.current_price_cents},
           dedupe_key=f"outbid:{listing.pk}:{seq}")


# --- Retraction ---------------------------------------------------------------------------

def bid_retract(*, bid_id: Any, user) -> list[uuid.UUID]:
    """Retract the caller's bid(s) by eBay's rule; returns the ids retracted.

    ≥ 12 h left: all the caller's bids on the listing; < 12 h: only the caller's latest bid,
    within 1 h of placing it; else 409 `retraction_not_allowed`. Another user's bid is 404.
    Locks the listing row, then rebuilds price, leader, maximum, bid count and the automatic
    bids by replaying the remaining bids (`rules.replay` semantics). When what others see
    changed, `seq` moves and the room hears `listing_updated` (reason `retraction`) with the
    replayed listing, after commit.
    """
    ensure_active(user)
    listing_id = (Bid.objects.filter(pk=bid_id, bidder=user)
                  .values_list("listing_id", flat=True).first())
    if listing_id is None:
        raise NotFound(_("Bid not found."))
    with transaction.atomic():
        listing = listing_lock(listing_id)
        now = timezone.now()
        bid = Bid.objects.get(pk=bid_id)
        not_allowed = Conflict(_("This bid can't be retracted now."), code="retraction_not_allowed")
        if (bid.status != Bid.Status.ACTIVE or listing.status != ListingStatus.ACTIVE
                or listing.ends_at is None or listing.ends_at <= now):
            raise not_allowed
        mine = Bid.objects.filter(listing=listing, bidder=user, status=Bid.Status.ACTIVE,
                                  is_auto_bid=False)
        if listing.ends_at - now >= RETRACT_ALL_BEFORE:
            retracted = list(mine.values_list("id", flat=True))
        else:
            latest = mine.order_by("-seq").first()
            if (latest is None or latest.pk != bid.pk
                    or now - latest.created_at > RETRACT_LATEST_WITHIN):
                raise not_allowed
            retracted = [latest.pk]
        Bid.objects.filter(pk__in=retracted).update(status=Bid.Status.RETRACTED)
        if _rebuild_from_bids(listing):
            listing_updated_on_commit(listing_id=listing.pk, seq=listing.seq,
                                      reason=Reason.RETRACTION)
    return retracted


def _rebuild_from_bids(listing: Listing) -> bool:
    """Replay the listing's active user bids: rewrite their visible amounts, re-insert the
    automatic bids the replay implies, store the replayed state, with `seq + 1` when what
    others see changed (then True). Needs the listing row locked by the caller."""
    visible_before = _visible_state(listing)
    Bid.objects.filter(listing=listing, is_auto_bid=True, status=Bid.Status.ACTIVE).delete()
    survivors = list(Bid.objects.filter(listing=listing, status=Bid.Status.ACTIVE,
                                        is_auto_bid=False).order_by("seq"))
    state = rules.AuctionState.initial(starting_price_cents=listing.starting_price_cents,
                                       reserve_price_cents=listing.reserve_price_cents)
    changed: list[Bid] = []
    autos: list[Bid] = []
    numbers = {bid.bidder_id: bid.bidder_number for bid in survivors}
    for bid in survivors:
        outcome = rules.apply_bid(state, rules.BidInput(
            bid.bidder_id, bid.requested_amount_cents or bid.amount_cents, bid.max_amount_cents,
        ), validate=False)
        own, *answers = outcome.records
        replayed = (own.amount_cents, own.max_amount_cents, own.is_max_raise)
        if replayed != (bid.amount_cents, bid.max_amount_cents, bid.is_max_raise):
            bid.amount_cents, bid.max_amount_cents, bid.is_max_raise = replayed
            changed.append(bid)
        autos.extend(
            Bid(listing=listing, bidder_id=r.bidder_id, amount_cents=r.amount_cents,
                max_amount_cents=r.max_amount_cents, requested_amount_cents=None,
                is_auto_bid=True, seq=bid.seq, bidder_number=numbers.get(r.bidder_id))
            for r in answers
        )
        state = outcome.state
    if changed:
        Bid.objects.bulk_update(changed, ["amount_cents", "max_amount_cents", "is_max_raise"])
    Bid.objects.bulk_create(autos)
    listing.current_price_cents = state.current_price_cents
    listing.bid_count = state.bid_count
    listing.leader_id = state.leader_id
    listing.leader_max_cents = state.leader_max_cents
    visible = _visible_state(listing) != visible_before
    if visible:
        listing.seq += 1
    listing.save(update_fields=["current_price_cents", "bid_count", "leader",
                                "leader_max_cents", "seq", *(["updated_at"] if visible else [])])
    return visible


def _visible_state(listing: Listing) -> tuple:
    """What others see of the auction state (the leader's maximum is not part of it)."""
    live = selectors.listing_live(listing)
    return (live["current_price_cents"], live["bid_count"], live["minimum_next_bid_cents"],
            live["reserve_met"], listing.leader_id)


# --- Staff takedown ------------------------------------------------------------------------

def listing_bids_void(*, listing_id: Any, reason: str) -> int:
    """Void a removed listing's auction: its active bids → `voided`, the bidders notified and
    the room told `auction_ended` (status `removed`) after commit. Returns how many bids.

    Caller (listings.services.listing_remove) holds the listing row lock and has already
    moved the listing to `removed`, in the same transaction.
    """
    listing = Listing.objects.get(pk=listing_id)
    bidder_ids = selectors.bidders_of(listing_id=listing_id)
    voided = Bid.objects.filter(listing_id=listing_id, status=Bid.Status.ACTIVE).update(
        status=Bid.Status.VOIDED)
    Listing.objects.filter(pk=listing_id).update(seq=F("seq") + 1)
    seq = Listing.objects.filter(pk=listing_id).values_list("seq", flat=True).get()
    data = {"listing_id": str(listing_id), "status": ListingStatus.REMOVED}
    for bidder_id in bidder_ids:
        notify(user_id=bidder_id, type=NotificationType.AUCTION_ENDED,
               title=_("Auction cancelled"),
               body=format_lazy(_("“{title}” was removed by our team; your bids are void."),
                                title=listing.title),
               data=data, dedupe_key=f"removed:{listing_id}")
    notify(user_id=listing.seller_id, type=NotificationType.AUCTION_ENDED,
           title=_("Your listing was removed"),
           body=format_lazy(_("“{title}”: {reason}"), title=listing.title, reason=reason),
           data=data, dedupe_key=f"removed:{listing_id}")
    auction_ended_on_commit(listing_id=listing_id, seq=seq, status=ListingStatus.REMOVED,
                            final_price=None)
    return voided


def listing_ended_apply(*, listing: Listing, status: str, reason: str, was_active: bool,
                        **_signal: Any) -> int:
    """`listings.lifecycle.listing_ended` (connected in bidding.apps), in the transaction that
    ended the listing: a removal voids the auction (`listing_bids_void`, which tells the room
    `auction_ended`); a cancellation has no bids (listings tells the room itself). Returns how
    many bids were voided."""
    if status == ListingStatus.REMOVED:
        return listing_bids_void(listing_id=listing.pk, reason=reason)
    return 0


# --- Buy now and closing ------------------------------------------------------------------

def _sold(listing: Listing, *, buyer_id: Any, amount_cents: int, source: str,
          winning_bid_id: Any = None) -> Any:
    """Tell the sale's receivers, in this transaction: escrow creates the sale's transaction
    (bidding.signals.listing_sold, connected in escrow.apps) and it is returned."""
    sold = listing_sold.send(sender=Listing, listing=listing, buyer_id=buyer_id,
                             amount_cents=amount_cents, source=source,
                             winning_bid_id=winning_bid_id)
    return next((made for _receiver, made in sold if made is not None), None)


def listing_buy_now(*, listing_id: Any, buyer) -> Any:
    """Buy the listing outright: lock the row, check that buy now is on offer (`fixed`
    listings while active; `both` while `rules.buy_now_available`), mark it sold and create
    the transaction in the same transaction (escrow's, through `listing_sold`: returned);
    notify and announce `auction_ended` after commit.
    """
    ensure_active(buyer)
    unavailable = Conflict(_("Buy now is not available for this listing."),
                           code="buy_now_unavailable")
    with transaction.atomic():
        user_lock_acting(buyer)  # user row before listing row: see privacy.account_delete
        listing = _lock_listing(listing_id)
        now = timezone.now()
        _hide_drafts(listing, buyer)
        if listing.seller_id == buyer.pk:
            raise Conflict(_("You can't buy your own listing."), code="own_listing")
        if (listing.auction_type == AuctionType.AUCTION
                or listing.status != ListingStatus.ACTIVE
                or (listing.starts_at is not None and listing.starts_at > now)
                or (listing.ends_at is not None and listing.ends_at <= now)
                or _seller_paused(listing)):
            raise unavailable
        if listing.auction_type == AuctionType.FIXED:
            price = listing.buy_now_price_cents or listing.starting_price_cents
        elif rules.buy_now_available(selectors.auction_state(listing),
                                     buy_now_price_cents=listing.buy_now_price_cents):
            price = listing.buy_now_price_cents
        else:
            raise unavailable
        listing_transition(listing_id=listing.pk, frm=[ListingStatus.ACTIVE],
                           to=ListingStatus.SOLD, closed_at=now, updated_at=now,
                           seq=F("seq") + 1)
        listing.refresh_from_db()
        txn = _sold(listing, buyer_id=buyer.pk, amount_cents=price, source=SOURCE_BUY_NOW)
        _announce_closed(listing, buyer_id=buyer.pk, final_price=price)
    return txn


def auction_close(*, listing_id: Any) -> bool:
    """Close one due auction; True only for the one caller that closed it.

    The lifecycle's conditional UPDATE (`listings.lifecycle.listing_close_due`) is the
    decision: any number of sweepers or duplicate deliveries leave exactly one winner. Only
    the winner, in the same transaction, creates the sale's transaction (unique per listing;
    escrow's, through `listing_sold`) and the `won`/`lost`/`auction_ended` notifications;
    events go after commit.
    """
    with transaction.atomic():
        listing = listing_close_due(listing_id=listing_id)
        if listing is None:
            return False
        # One read of the active bids serves the winning bid and the losers to notify.
        bids = list(Bid.objects.filter(listing_id=listing_id, status=Bid.Status.ACTIVE)
                    .order_by("-seq", "-is_auto_bid").values_list("pk", "bidder_id"))
        buyer_id = None
        if listing.status == ListingStatus.SOLD:
            buyer_id = listing.leader_id
            winning_bid_id = next((pk for pk, bidder in bids if bidder == buyer_id), None)
            _sold(listing, buyer_id=buyer_id, amount_cents=listing.current_price_cents,
                  source=SOURCE_AUCTION, winning_bid_id=winning_bid_id)
        bidder_ids = list(dict.fromkeys(bidder for _pk, bidder in bids))
        _announce_closed(listing, buyer_id=buyer_id, bidder_ids=bidder_ids,
                         final_price=listing.current_price_cents if buyer_id else None)
        on_commit(AUCTIONS_CLOSED.labels(outcome=listing.status).inc)
    return True


def _announce_closed(listing: Listing, *, buyer_id: Any, final_price: int | None,
                     bidder_ids: list | None = None) -> None:
    """Notifications (rows now, in one INSERT; pushes after commit) and the room's
    `auction_ended`. Called by the one caller that closed the listing."""
    data = {"listing_id": str(listing.pk), "status": listing.status,
            "final_price_cents": final_price}
    notes = []
    if buyer_id is not None:
        notes.append(Note(
            user_id=buyer_id, type=NotificationType.WON, title=_("You won!"),
            body=format_lazy(
                ngettext_lazy("“{title}” is yours for {price}. Pay within {hours} hour.",
                              "“{title}” is yours for {price}. Pay within {hours} hours.",
                              settings.BIDDT_PAYMENT_WINDOW_HOURS),
                title=listing.title, hours=settings.BIDDT_PAYMENT_WINDOW_HOURS,
                price=Money(final_price or listing.current_price_cents, listing.currency)),
            data=data, dedupe_key=f"won:{listing.pk}"))
    notes += [Note(user_id=bidder_id, type=NotificationType.LOST, title=_("Auction ended"),
                   body=format_lazy(_("You didn't win “{title}”."), title=listing.title),
                   data=data,
                   dedupe_key=f"lost:{listing.pk}")
              for bidder_id in (selectors.bidders_of(listing_id=listing.pk)
                                if bidder_ids is None else bidder_ids)
              if bidder_id != buyer_id]
    notes.append(Note(
        user_id=listing.seller_id, type=NotificationType.AUCTION_ENDED,
        title=_("Your item sold") if buyer_id else _("Your auction ended without a sale"),
        body=f"“{listing.title}”", data=data, dedupe_key=f"auction_ended:{listing.pk}"))
    notify_many(notes)
    auction_ended_on_commit(listing_id=listing.pk, seq=listing.seq, status=listing.status,
                            final_price=final_price)


def auction_sweep(*, limit: int = 500, threads: int | None = None) -> int:
    """Close up to `limit` due auctions, each in its own transaction; returns how many this
    caller closed (others may have closed the rest: that is fine).

    A close is mostly waiting on PostgreSQL, so `threads` (default BIDDT_CLOSE_THREADS)
    connections close in parallel; the conditional update keeps each close exactly once
    whoever runs it. Each thread sends its closes' events and tasks in batches.
    """
    due = selectors.auctions_due_ids(limit=limit)
    threads = max(1, min(threads or settings.BIDDT_CLOSE_THREADS, len(due)))
    if threads == 1:
        with batched():
            return sum(auction_close(listing_id=pk) for pk in due)
    with ThreadPoolExecutor(threads, thread_name_prefix="biddt-close") as pool:
        return sum(pool.map(_close_share, (due[n::threads] for n in range(threads))))


def _close_share(listing_ids: list) -> int:
    try:
        with batched():
            return sum(auction_close(listing_id=pk) for pk in listing_ids)
    finally:
        connection.close()  # this thread's own connection


def auction_ending_soon_announce() -> int:
    """Send `ending_soon` once per listing to its room when ≤ 60 s are left (run every few
    seconds). The once is a cache `add` (atomic in Redis), so concurrent runs send it once."""
    now = timezone.now()
    due = Listing.objects.filter(
        status=ListingStatus.ACTIVE, ends_at__gt=now,
        ends_at__lte=now + timedelta(seconds=ENDING_SOON_SECONDS),
    ).values_list("pk", "ends_at")
    sent = 0
    for pk, ends_at in due:
        if cache.add(f"bidding:ending_soon:{pk}", 1, timeout=86400):
            send_to_group_on_commit(listing_group(pk), _ws_event(messages.ENDING_SOON.build(
                listingId=str(pk),
                secondsRemaining=max(0, int((ends_at - now).total_seconds())))))
            sent += 1
    return sent


ENDING_SOON_MARKS = (60, 5)  # minutes before the end, for the `ending_soon` notification


def auction_ending_soon_notify() -> int:
    """Tell watchers and bidders once each, 1 hour and 5 minutes before an auction ends
    (run every minute). Returns how many notifications this run created."""
    now = timezone.now()
    sent = 0
    for mark in ENDING_SOON_MARKS:
        due = Listing.objects.filter(status=Listing.Status.ACTIVE, ends_at__gt=now,
                                     ends_at__lte=now + timedelta(minutes=mark)) \
            .values_list("id", "title")
        for listing_id, title in due:
            done_key = f"ending-soon:{listing_id}:{mark}"
            if cache.get(done_key):
                continue
            users = set(Watch.objects.filter(listing_id=listing_id)
                        .values_list("user_id", flat=True))
            users |= set(Bid.objects.filter(listing_id=listing_id, status=Bid.Status.ACTIVE)
                         .values_list("bidder_id", flat=True))
            for user_id in users:
                created = notify(
                    user_id=user_id, type="ending_soon",
                    title=(ngettext_lazy("Ending in %(count)d hour", "Ending in %(count)d hours",
                                         "count") % {"count": mark // 60} if mark % 60 == 0
                           else ngettext_lazy("Ending in %(count)d minute",
                                              "Ending in %(count)d minutes", "count")
                           % {"count": mark}),
                    body=title, data={"listing_id": str(listing_id), "minutes": mark},
                    dedupe_key=f"ending_soon:{listing_id}:{mark}")
                sent += created is not None
            cache.set(done_key, 1, timeout=2 * 3600)
    return sent
