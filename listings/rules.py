"""Proxy-bidding rules of the auction marketplace, as pure functions.

They live with the listing (the lowest app that needs them): the auction state they read is
kept on the listing row, and listings shows `minimum_next_bid`/`reserve_met` and decides a
close's outcome with them; bidding applies bids with them.

Why a pure module: the same rules must drive live bidding (``apply_bid`` with
validation) and the rebuild of a listing after a bid is retracted (``replay``,
which re-applies the surviving historical bids without validation).  Keeping the
rules free of Django, the database and the clock makes both paths share one
implementation and lets the rules be tested exhaustively with property tests.

Money is always integer cents.  A bid carries an amount ``A`` and an optional
maximum ``M``; the bidder's *maximum* is ``M`` or ``A`` when ``M`` is absent.
The visible price only moves as far as needed to beat the runner-up (the
classic proxy/"second price plus one increment" rule), capped at the leader's
maximum, and lifted to the reserve as soon as the leader's maximum reaches it.

Invariants (for validated sequences and any subsequence of them, i.e. replays
after retractions): the price never decreases; the price never exceeds the
leader's maximum; the leader holds the highest maximum, the earliest on ties;
replaying the inputs of the accepted bids reproduces the state.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Iterable
from dataclasses import dataclass, replace
from typing import Final

BidderId = Hashable
"""Any hashable bidder identifier (user pk, UUID, ...); compared with ``==``."""

INCREMENT_BANDS: Final[tuple[tuple[int, int], ...]] = (
    (100, 5),
    (500, 25),
    (2_500, 50),
    (10_000, 100),
    (25_000, 250),
    (50_000, 500),
    (100_000, 1_000),
    (250_000, 2_500),
    (500_000, 5_000),
)
"""``(upper_bound_exclusive, increment)`` pairs in ascending order, in cents."""

TOP_INCREMENT_CENTS: Final[int] = 10_000
"""Increment for prices at or above the last band's upper bound."""

BID_TOO_LOW: Final[str] = "bid_too_low"
INVALID_MAX: Final[str] = "invalid_max"


def increment(price_cents: int) -> int:
    """Return the bid increment that applies at ``price_cents``.

    Why bands: a fixed step would be meaningless on expensive items and
    prohibitive on cheap ones, so the step grows with the price.
    """
    for upper_bound, step in INCREMENT_BANDS:
        if price_cents < upper_bound:
            return step
    return TOP_INCREMENT_CENTS


@dataclass(frozen=True, slots=True)
class AuctionState:
    """Everything the rules need to know about a listing's bidding so far.

    Frozen so that every bid yields a new state and a failed validation can
    never leave a half-updated state behind.
    """

    starting_price_cents: int
    reserve_price_cents: int | None
    current_price_cents: int  # equals the starting price while there is no bid
    bid_count: int  # bid rows others see (user bids + auto bids; not a leader's silent raise)
    leader_id: BidderId | None
    leader_max_cents: int | None

    @classmethod
    def initial(
        cls, *, starting_price_cents: int, reserve_price_cents: int | None = None
    ) -> AuctionState:
        """State of a listing that has not received any bid yet."""
        return cls(
            starting_price_cents=starting_price_cents,
            reserve_price_cents=reserve_price_cents,
            current_price_cents=starting_price_cents,
            bid_count=0,
            leader_id=None,
            leader_max_cents=None,
        )

    @property
    def has_bid(self) -> bool:
        """Whether someone leads; a bid always leaves a leader behind."""
        return self.leader_id is not None and self.leader_max_cents is not None


def minimum_next_bid(state: AuctionState) -> int:
    """Smallest amount ``A`` a bid may carry right now.

    The first bid may be placed at the starting price itself; afterwards a bid
    has to beat the visible price by one increment.
    """
    if not state.has_bid:
        return state.starting_price_cents
    return state.current_price_cents + increment(state.current_price_cents)


def reserve_met(state: AuctionState) -> bool | None:
    """``None`` without a reserve, else whether a leader stands at or above it.

    The reserve rule lifts the price to the reserve as soon as the leader's
    maximum reaches it, so looking at the visible price is enough.
    """
    if state.reserve_price_cents is None:
        return None
    return state.has_bid and state.current_price_cents >= state.reserve_price_cents


def buy_now_available(state: AuctionState, *, buy_now_price_cents: int | None) -> bool:
    """Whether the listing's buy-now price may still be used.

    Once a real contest exists (a bid, and the reserve met if there is one),
    buying outright would take the item away from the leader, so buy-now is only
    offered before the first bid or while the reserve is still unmet.  Listings
    of the ``fixed`` kind are handled by the service, not here.
    """
    if buy_now_price_cents is None:
        return False
    if not state.has_bid:
        return True
    return reserve_met(state) is False


@dataclass(frozen=True, slots=True)
class BidInput:
    """A bid as submitted by a bidder (also what ``replay`` re-applies)."""

    bidder_id: BidderId
    amount_cents: int  # A as submitted
    max_amount_cents: int | None  # M as submitted

    @property
    def effective_max_cents(self) -> int:
        """The bidder's maximum: ``M``, or ``A`` when ``M`` is absent or below ``A``.

        ``M < A`` is refused by validation; replay treats it as ``A`` so that it
        never has to raise on historical data.
        """
        if self.max_amount_cents is None:
            return self.amount_cents
        return max(self.max_amount_cents, self.amount_cents)


@dataclass(frozen=True, slots=True)
class BidRecord:
    """A bid row to insert; the rows of one outcome are in insertion order."""

    bidder_id: BidderId
    amount_cents: int  # the visible amount this bid stands at
    max_amount_cents: int  # that bidder's maximum (never shown to others)
    requested_amount_cents: int | None  # A as submitted (None for auto bids)
    is_auto_bid: bool
    # The leader raising their own maximum with the price left where it was: the row is kept
    # for the replay, but it is not a bid anyone else sees (not in the history, not counted in
    # `bid_count`): "the leader raising their own maximum changes only their maximum".
    is_max_raise: bool = False


@dataclass(frozen=True, slots=True)
class BidOutcome:
    """Result of applying one bid: the new state plus what the service must do."""

    state: AuctionState
    records: tuple[BidRecord, ...]
    is_leading: bool  # is the submitting bidder leading after this bid
    previous_leader_id: BidderId | None  # leader before this bid
    outbid_id: BidderId | None  # bidder who lost the lead because of this bid
    price_changed: bool  # visible price differs from the one before the bid
    leader_changed: bool  # leader differs from the one before (first bid: True)


class BidRuleError(Exception):
    """A bid refused by the rules; ``code`` is stable, the message is for humans.

    ``minimum_next_bid_cents`` is set for ``bid_too_low`` so that the client can
    tell the bidder what would have been accepted.
    """

    def __init__(
        self, code: str, message: str, *, minimum_next_bid_cents: int | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.minimum_next_bid_cents = minimum_next_bid_cents


def validate_bid(state: AuctionState, bid: BidInput) -> None:
    """Raise ``BidRuleError`` if ``bid`` may not be placed on ``state``.

    A malformed bid (``M < A``) is reported before the state-dependent checks,
    because no amount would make it acceptable.
    """
    if bid.max_amount_cents is not None and bid.max_amount_cents < bid.amount_cents:
        raise BidRuleError(INVALID_MAX, "The maximum must not be below the bid amount.")
    minimum = minimum_next_bid(state)
    if bid.amount_cents < minimum:
        raise BidRuleError(
            BID_TOO_LOW,
            f"The bid must be at least {minimum} cents.",
            minimum_next_bid_cents=minimum,
        )
    leader_max = state.leader_max_cents if state.has_bid else None
    if (leader_max is not None and bid.bidder_id == state.leader_id
            and bid.effective_max_cents <= leader_max):
        # A leader's bid can only raise their maximum: what would have been accepted is an
        # amount (or maximum) above it, not the listing's minimum they already cleared.
        raise BidRuleError(
            BID_TOO_LOW,
            f"You are already leading; a new bid must raise your maximum above {leader_max} "
            "cents.",
            minimum_next_bid_cents=max(minimum, leader_max + 1),
        )


def apply_bid(
    state: AuctionState, bid: BidInput, *, validate: bool = True
) -> BidOutcome:
    """Apply ``bid`` to ``state`` and return the new state and the rows to store.

    With ``validate=False`` (replaying history after a retraction) nothing is
    refused: the bid is applied with its maximum, a leader's non-raise is a
    no-op that still records its row, and the price is never lowered.  The
    ``max(price, current price)`` below is a no-op for validated bids (they
    always clear the current price); it only stops a stale replayed bid from
    lowering the price.
    """
    if validate:
        validate_bid(state, bid)
    bid_max = bid.effective_max_cents
    leader_id, leader_max = state.leader_id, state.leader_max_cents

    if not state.has_bid or leader_max is None:
        # First bid: the bidder leads at the starting price.
        price = _lift_to_reserve(state, state.starting_price_cents, bid_max)
        return _submitter_leads(state, bid, bid_max, price)

    if bid.bidder_id == leader_id:
        # The leader only moves their own ceiling; nobody forces the price up. Unless the new
        # maximum reaches the reserve (the price jumps to it, a bid everyone sees), nothing
        # visible changes: the row is a silent raise.
        new_max = max(bid_max, leader_max)
        price = _lift_to_reserve(state, state.current_price_cents, new_max)
        return _submitter_leads(state, bid, new_max, price,
                                is_max_raise=price == state.current_price_cents)

    if bid_max > leader_max:
        # Takeover: beat the old leader's ceiling by one step, no further.
        price = min(bid_max, leader_max + increment(leader_max))
        price = _lift_to_reserve(state, max(price, state.current_price_cents), bid_max)
        return _submitter_leads(state, bid, bid_max, price)

    # The leader's proxy defends (ties go to the earlier bid): the price moves
    # one step above the challenger, capped at the leader's maximum.
    price = min(leader_max, bid_max + increment(bid_max))
    price = _lift_to_reserve(state, max(price, state.current_price_cents), leader_max)
    records = (
        BidRecord(
            bidder_id=bid.bidder_id,
            amount_cents=bid_max,
            max_amount_cents=bid_max,
            requested_amount_cents=bid.amount_cents,
            is_auto_bid=False,
        ),
        BidRecord(
            bidder_id=leader_id,
            amount_cents=price,
            max_amount_cents=leader_max,
            requested_amount_cents=None,
            is_auto_bid=True,
        ),
    )
    return _outcome(state, bid, leader_id, leader_max, price, records)


def replay(initial: AuctionState, bids: Iterable[BidInput]) -> AuctionState:
    """Re-apply historical bids without validation, e.g. after a retraction.

    Validation already happened when each bid was placed; after removing a bid
    the survivors must still be applied even if they no longer clear the (now
    lower) thresholds, so that the rebuilt state is a function of the history.
    """
    state = initial
    for bid in bids:
        state = apply_bid(state, bid, validate=False).state
    return state


def runner_up(
    initial: AuctionState, bids: Iterable[BidInput], *, exclude: Collection[BidderId]
) -> tuple[BidderId, int] | None:
    """The bidder who would lead had the ``exclude``d bidders never bid, with their maximum.

    This is the second-chance offer's recipient: the highest maximum among the other
    bidders, ties to the earlier bid, by the same replay that rebuilds a listing after a
    retraction (so "maximum" means exactly what it means while bidding). ``None`` when no
    other bidder is left.
    """
    state = replay(initial, (bid for bid in bids if bid.bidder_id not in exclude))
    if not state.has_bid:
        return None
    return state.leader_id, state.leader_max_cents


def _lift_to_reserve(state: AuctionState, price: int, leader_max: int) -> int:
    """Raise ``price`` to the reserve once the leader's maximum reaches it.

    Why: the seller accepts any price from the reserve upwards, so a leader
    willing to pay the reserve should be shown as meeting it immediately.
    """
    reserve = state.reserve_price_cents
    if reserve is not None and leader_max >= reserve and price < reserve:
        return reserve
    return price


def _submitter_leads(
    state: AuctionState, bid: BidInput, max_cents: int, price: int, *,
    is_max_raise: bool = False,
) -> BidOutcome:
    """Outcome of a bid that leaves its bidder leading: a single row at ``price``."""
    record = BidRecord(
        bidder_id=bid.bidder_id,
        amount_cents=price,
        max_amount_cents=max_cents,
        requested_amount_cents=bid.amount_cents,
        is_auto_bid=False,
        is_max_raise=is_max_raise,
    )
    return _outcome(state, bid, bid.bidder_id, max_cents, price, (record,))


def _outcome(
    before: AuctionState,
    bid: BidInput,
    leader_id: BidderId,
    leader_max: int,
    price: int,
    records: tuple[BidRecord, ...],
) -> BidOutcome:
    """Assemble the new state and the change flags from the decided values."""
    after = replace(
        before,
        current_price_cents=price,
        bid_count=before.bid_count + sum(not r.is_max_raise for r in records),
        leader_id=leader_id,
        leader_max_cents=leader_max,
    )
    leader_changed = not before.has_bid or leader_id != before.leader_id
    return BidOutcome(
        state=after,
        records=records,
        is_leading=leader_id == bid.bidder_id,
        previous_leader_id=before.leader_id,
        outbid_id=before.leader_id if leader_changed else None,
        price_changed=price != before.current_price_cents,
        leader_changed=leader_changed,
    )
