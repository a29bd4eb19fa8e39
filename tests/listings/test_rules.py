"""Tests of the pure proxy-bidding rules (no Django needed).

Worked examples pin the contract down number by number; the Hypothesis
properties check the invariants over arbitrary bid sequences.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from listings.rules import (
    BID_TOO_LOW,
    INCREMENT_BANDS,
    INVALID_MAX,
    TOP_INCREMENT_CENTS,
    AuctionState,
    BidInput,
    BidOutcome,
    BidRecord,
    BidRuleError,
    apply_bid,
    buy_now_available,
    increment,
    minimum_next_bid,
    replay,
    reserve_met,
)

ALICE, BOB, CAROL = "alice", "bob", "carol"


def bid(bidder: Hashable, amount: int, max_amount: int | None = None) -> BidInput:
    return BidInput(bidder_id=bidder, amount_cents=amount, max_amount_cents=max_amount)


def place_all(state: AuctionState, *bids: BidInput) -> AuctionState:
    """Apply validated bids one after the other (test set-up helper)."""
    for item in bids:
        state = apply_bid(state, item).state
    return state


def alice_leads_at_1000_with_max_5000(reserve: int | None = None) -> AuctionState:
    start = AuctionState.initial(starting_price_cents=1000, reserve_price_cents=reserve)
    return place_all(start, bid(ALICE, 1000, 5000))


# --------------------------------------------------------------------------
# Increments and minimum next bid
# --------------------------------------------------------------------------

# Both sides of every band boundary, plus the extremes.
BOUNDARY_CASES = [
    (0, 5),
    (1, 5),
    (99, 5),
    (100, 25),
    (499, 25),
    (500, 50),
    (2_499, 50),
    (2_500, 100),
    (9_999, 100),
    (10_000, 250),
    (24_999, 250),
    (25_000, 500),
    (49_999, 500),
    (50_000, 1_000),
    (99_999, 1_000),
    (100_000, 2_500),
    (249_999, 2_500),
    (250_000, 5_000),
    (499_999, 5_000),
    (500_000, 10_000),
    (10**12, 10_000),
]


@pytest.mark.parametrize(("price", "expected"), BOUNDARY_CASES)
def test_increment_on_both_sides_of_every_band_boundary(price: int, expected: int):
    # given a price / when the increment is looked up / then it matches its band
    assert increment(price) == expected


def test_increment_bands_are_ascending_and_cover_every_boundary_case():
    # given the band table
    bounds = [upper for upper, _ in INCREMENT_BANDS]
    steps = [step for _, step in INCREMENT_BANDS]
    # then bounds and steps both strictly increase up to the top increment
    assert bounds == sorted(set(bounds))
    assert steps + [TOP_INCREMENT_CENTS] == sorted(set(steps + [TOP_INCREMENT_CENTS]))
    # and every boundary of the table is exercised on both sides above
    tested = {price for price, _ in BOUNDARY_CASES}
    for upper in bounds:
        assert {upper - 1, upper} <= tested


@pytest.mark.parametrize(("price", "expected_increment"), BOUNDARY_CASES)
def test_minimum_next_bid_after_a_bid_is_price_plus_its_increment(
    price: int, expected_increment: int
):
    # given a listing whose only bid stands at the starting price `price`
    state = place_all(
        AuctionState.initial(starting_price_cents=price), bid(ALICE, price)
    )
    assert state.current_price_cents == price
    # when / then the next bid must beat the price by the band's increment
    assert minimum_next_bid(state) == price + expected_increment


def test_minimum_next_bid_without_bid_is_the_starting_price():
    # given a fresh listing
    state = AuctionState.initial(starting_price_cents=1234, reserve_price_cents=9999)
    # then the first bid may be placed at the starting price itself
    assert minimum_next_bid(state) == 1234


def test_initial_state():
    state = AuctionState.initial(starting_price_cents=700)
    assert state == AuctionState(
        starting_price_cents=700,
        reserve_price_cents=None,
        current_price_cents=700,
        bid_count=0,
        leader_id=None,
        leader_max_cents=None,
    )


# --------------------------------------------------------------------------
# Worked bidding cases
# --------------------------------------------------------------------------


def test_first_bid_leads_at_the_starting_price():
    # given a fresh listing starting at 10.00
    state = AuctionState.initial(starting_price_cents=1000)
    # when alice bids 10.00 with a 50.00 maximum
    outcome = apply_bid(state, bid(ALICE, 1000, 5000))
    # then she leads at the starting price and her maximum stays hidden
    assert outcome.state == AuctionState(
        starting_price_cents=1000,
        reserve_price_cents=None,
        current_price_cents=1000,
        bid_count=1,
        leader_id=ALICE,
        leader_max_cents=5000,
    )
    assert outcome.records == (
        BidRecord(
            bidder_id=ALICE,
            amount_cents=1000,
            max_amount_cents=5000,
            requested_amount_cents=1000,
            is_auto_bid=False,
        ),
    )
    assert outcome.is_leading is True
    assert outcome.previous_leader_id is None
    assert outcome.outbid_id is None
    assert outcome.leader_changed is True
    assert outcome.price_changed is False


def test_first_bid_above_the_starting_price_still_leads_at_the_starting_price():
    # given a fresh listing starting at 10.00
    state = AuctionState.initial(starting_price_cents=1000)
    # when alice bids 15.00 without a maximum
    outcome = apply_bid(state, bid(ALICE, 1500))
    # then her amount becomes her maximum and the price stays at the start
    assert outcome.state.current_price_cents == 1000
    assert outcome.state.leader_max_cents == 1500
    assert outcome.records[0].amount_cents == 1000
    assert outcome.records[0].requested_amount_cents == 1500


def test_higher_maximum_takes_the_lead_one_increment_above_the_old_maximum():
    # given alice leads at 10.00 with a 50.00 maximum
    state = alice_leads_at_1000_with_max_5000()
    # when bob bids 10.50 with an 80.00 maximum
    outcome = apply_bid(state, bid(BOB, 1050, 8000))
    # then bob leads at min(80.00, 50.00 + 1.00) = 51.00 and alice is outbid
    assert outcome.state.current_price_cents == 5100
    assert outcome.state.leader_id == BOB
    assert outcome.state.leader_max_cents == 8000
    assert outcome.state.bid_count == 2
    assert outcome.records == (
        BidRecord(
            bidder_id=BOB,
            amount_cents=5100,
            max_amount_cents=8000,
            requested_amount_cents=1050,
            is_auto_bid=False,
        ),
    )
    assert outcome.is_leading is True
    assert outcome.previous_leader_id == ALICE
    assert outcome.outbid_id == ALICE
    assert outcome.leader_changed is True
    assert outcome.price_changed is True


def test_higher_maximum_below_one_increment_over_the_old_maximum_is_charged_in_full():
    # given alice leads with a 50.00 maximum
    state = alice_leads_at_1000_with_max_5000()
    # when bob bids exactly 50.50 (less than 50.00 + 1.00)
    outcome = apply_bid(state, bid(BOB, 5050))
    # then bob leads at his own maximum
    assert outcome.state.leader_id == BOB
    assert outcome.state.current_price_cents == 5050
    assert outcome.records[0].amount_cents == 5050


def test_lower_maximum_is_answered_by_the_leaders_automatic_bid():
    # given alice leads at 10.00 with a 50.00 maximum
    state = alice_leads_at_1000_with_max_5000()
    # when bob bids 20.00 with a 30.00 maximum
    outcome = apply_bid(state, bid(BOB, 2000, 3000))
    # then alice stays ahead at min(50.00, 30.00 + 1.00) = 31.00 via an auto bid
    assert outcome.state.leader_id == ALICE
    assert outcome.state.leader_max_cents == 5000
    assert outcome.state.current_price_cents == 3100
    assert outcome.state.bid_count == 3
    assert outcome.records == (
        BidRecord(
            bidder_id=BOB,
            amount_cents=3000,
            max_amount_cents=3000,
            requested_amount_cents=2000,
            is_auto_bid=False,
        ),
        BidRecord(
            bidder_id=ALICE,
            amount_cents=3100,
            max_amount_cents=5000,
            requested_amount_cents=None,
            is_auto_bid=True,
        ),
    )
    assert outcome.is_leading is False
    assert outcome.previous_leader_id == ALICE
    assert outcome.outbid_id is None
    assert outcome.leader_changed is False
    assert outcome.price_changed is True


def test_leaders_automatic_bid_is_capped_at_the_leaders_maximum():
    # given alice leads with a 50.00 maximum
    state = alice_leads_at_1000_with_max_5000()
    # when bob's maximum is 49.50 (49.50 + 1.00 would exceed alice's maximum)
    outcome = apply_bid(state, bid(BOB, 4950))
    # then alice stays ahead at exactly her maximum
    assert outcome.state.leader_id == ALICE
    assert outcome.state.current_price_cents == 5000
    assert outcome.records[-1].amount_cents == 5000
    assert outcome.records[-1].is_auto_bid is True


def test_tie_goes_to_the_earlier_bid():
    # given alice leads with a 50.00 maximum
    state = alice_leads_at_1000_with_max_5000()
    # when bob bids exactly alice's maximum
    outcome = apply_bid(state, bid(BOB, 5000))
    # then alice keeps the lead at that amount
    assert outcome.state.leader_id == ALICE
    assert outcome.state.current_price_cents == 5000
    assert [r.amount_cents for r in outcome.records] == [5000, 5000]
    assert [r.bidder_id for r in outcome.records] == [BOB, ALICE]
    assert outcome.is_leading is False


def test_tie_with_a_raised_maximum_also_goes_to_the_earlier_bid():
    # given alice raised her maximum to 60.00 before bob reached it
    state = place_all(alice_leads_at_1000_with_max_5000(), bid(ALICE, 1050, 6000))
    # when bob bids 60.00
    outcome = apply_bid(state, bid(BOB, 1050, 6000))
    # then alice still leads, at 60.00
    assert outcome.state.leader_id == ALICE
    assert outcome.state.current_price_cents == 6000


def test_leader_raising_own_maximum_changes_only_the_maximum():
    # given alice leads at 10.00 with a 50.00 maximum
    state = alice_leads_at_1000_with_max_5000()
    # when she raises her maximum to 90.00
    outcome = apply_bid(state, bid(ALICE, 1050, 9000))
    # then the price does not move against herself
    assert outcome.state.current_price_cents == 1000
    assert outcome.state.leader_id == ALICE
    assert outcome.state.leader_max_cents == 9000
    # and nobody else sees a bid: bid_count stays, the row is a silent raise (kept for replay)
    assert outcome.state.bid_count == 1
    assert outcome.records == (
        BidRecord(
            bidder_id=ALICE,
            amount_cents=1000,
            max_amount_cents=9000,
            requested_amount_cents=1050,
            is_auto_bid=False,
            is_max_raise=True,
        ),
    )
    assert outcome.is_leading is True
    assert outcome.previous_leader_id == ALICE
    assert outcome.outbid_id is None
    assert outcome.leader_changed is False
    assert outcome.price_changed is False


def test_outbid_leader_can_take_the_lead_back():
    # given bob took the lead from alice at 51.00 with an 80.00 maximum
    state = place_all(alice_leads_at_1000_with_max_5000(), bid(BOB, 1050, 8000))
    # when alice comes back with a 100.00 maximum
    outcome = apply_bid(state, bid(ALICE, 5200, 10000))
    # then alice leads at 80.00 + 1.00 and bob is the one outbid
    assert outcome.state.leader_id == ALICE
    assert outcome.state.current_price_cents == 8100
    assert outcome.outbid_id == BOB
    assert outcome.previous_leader_id == BOB


# --------------------------------------------------------------------------
# Reserve
# --------------------------------------------------------------------------


def test_first_bid_with_maximum_at_or_above_the_reserve_jumps_to_the_reserve():
    # given a listing starting at 10.00 with a 40.00 reserve
    state = AuctionState.initial(starting_price_cents=1000, reserve_price_cents=4000)
    # when alice bids with a 50.00 maximum
    outcome = apply_bid(state, bid(ALICE, 1000, 5000))
    # then the price is lifted to the reserve at once
    assert outcome.state.current_price_cents == 4000
    assert outcome.records[0].amount_cents == 4000
    assert outcome.price_changed is True
    assert reserve_met(outcome.state) is True


def test_maximum_exactly_at_the_reserve_meets_it():
    state = AuctionState.initial(starting_price_cents=1000, reserve_price_cents=4000)
    outcome = apply_bid(state, bid(ALICE, 1000, 4000))
    assert outcome.state.current_price_cents == 4000
    assert reserve_met(outcome.state) is True


def test_first_bid_below_the_reserve_stays_at_the_starting_price():
    # given a listing with a 40.00 reserve
    state = AuctionState.initial(starting_price_cents=1000, reserve_price_cents=4000)
    # when alice's maximum is 39.99
    outcome = apply_bid(state, bid(ALICE, 1000, 3999))
    # then nothing is lifted and the reserve is not met
    assert outcome.state.current_price_cents == 1000
    assert reserve_met(outcome.state) is False


def test_leader_raising_across_the_reserve_lifts_the_price_to_it():
    # given alice leads at 10.00 with a 30.00 maximum under a 40.00 reserve
    state = AuctionState.initial(starting_price_cents=1000, reserve_price_cents=4000)
    state = place_all(state, bid(ALICE, 1000, 3000))
    assert reserve_met(state) is False
    # when she raises her maximum to 45.00
    outcome = apply_bid(state, bid(ALICE, 1050, 4500))
    # then the price jumps to the reserve and her row shows it
    assert outcome.state.current_price_cents == 4000
    assert outcome.records[0].amount_cents == 4000
    assert outcome.price_changed is True
    assert outcome.leader_changed is False
    assert reserve_met(outcome.state) is True


def test_takeover_across_the_reserve_lifts_the_price_to_it():
    # given alice leads with a 30.00 maximum under a 40.00 reserve
    state = AuctionState.initial(starting_price_cents=1000, reserve_price_cents=4000)
    state = place_all(state, bid(ALICE, 1000, 3000))
    # when bob bids with a 100.00 maximum (proxy price would be 31.00)
    outcome = apply_bid(state, bid(BOB, 1050, 10000))
    # then bob leads at the reserve
    assert outcome.state.leader_id == BOB
    assert outcome.state.current_price_cents == 4000
    assert outcome.records[0].amount_cents == 4000


def test_price_above_the_reserve_follows_the_normal_proxy_rule():
    # given alice leads at the 40.00 reserve with a 50.00 maximum
    state = AuctionState.initial(starting_price_cents=1000, reserve_price_cents=4000)
    state = place_all(state, bid(ALICE, 1000, 5000))
    # when bob bids 45.00
    outcome = apply_bid(state, bid(BOB, 4500))
    # then alice answers at 45.00 + 1.00
    assert outcome.state.leader_id == ALICE
    assert outcome.state.current_price_cents == 4600


def test_reserve_met_values():
    no_reserve = AuctionState.initial(starting_price_cents=1000)
    assert reserve_met(no_reserve) is None
    assert reserve_met(place_all(no_reserve, bid(ALICE, 1000))) is None

    with_reserve = AuctionState.initial(
        starting_price_cents=1000, reserve_price_cents=2000
    )
    assert reserve_met(with_reserve) is False
    assert reserve_met(place_all(with_reserve, bid(ALICE, 1500))) is False
    assert reserve_met(place_all(with_reserve, bid(ALICE, 2000))) is True

    # a reserve at or below the starting price still needs a bid to be met
    low_reserve = AuctionState.initial(
        starting_price_cents=1000, reserve_price_cents=500
    )
    assert reserve_met(low_reserve) is False
    assert reserve_met(place_all(low_reserve, bid(ALICE, 1000))) is True


# --------------------------------------------------------------------------
# Buy now
# --------------------------------------------------------------------------


def test_buy_now_is_available_before_any_bid():
    state = AuctionState.initial(starting_price_cents=1000)
    assert buy_now_available(state, buy_now_price_cents=9000) is True


def test_buy_now_needs_a_buy_now_price():
    state = AuctionState.initial(starting_price_cents=1000)
    assert buy_now_available(state, buy_now_price_cents=None) is False


def test_buy_now_disappears_after_a_bid_without_reserve():
    state = alice_leads_at_1000_with_max_5000()
    assert buy_now_available(state, buy_now_price_cents=9000) is False


def test_buy_now_stays_while_the_reserve_is_unmet_and_goes_once_met():
    # given a 40.00 reserve and a bid below it
    state = AuctionState.initial(starting_price_cents=1000, reserve_price_cents=4000)
    state = place_all(state, bid(ALICE, 1000, 3000))
    # then buy now is still offered
    assert buy_now_available(state, buy_now_price_cents=9000) is True
    # when the reserve gets met
    state = place_all(state, bid(BOB, 1050, 4000))
    # then buy now is withdrawn
    assert reserve_met(state) is True
    assert buy_now_available(state, buy_now_price_cents=9000) is False


# --------------------------------------------------------------------------
# Refusals
# --------------------------------------------------------------------------


def test_first_bid_below_the_starting_price_is_too_low():
    state = AuctionState.initial(starting_price_cents=1000)
    with pytest.raises(BidRuleError) as caught:
        apply_bid(state, bid(ALICE, 999, 5000))
    assert caught.value.code == BID_TOO_LOW == "bid_too_low"
    assert caught.value.minimum_next_bid_cents == 1000


def test_bid_below_price_plus_increment_is_too_low_and_carries_the_minimum():
    # given the price stands at 10.00 (minimum next bid 10.50)
    state = alice_leads_at_1000_with_max_5000()
    # when bob bids one cent short of it, then it is refused with the minimum
    with pytest.raises(BidRuleError) as caught:
        apply_bid(state, bid(BOB, 1049, 9000))
    assert caught.value.code == BID_TOO_LOW
    assert caught.value.minimum_next_bid_cents == 1050
    # and exactly the minimum is accepted
    assert apply_bid(state, bid(BOB, 1050)).state.bid_count == 3


def test_maximum_below_the_amount_is_invalid():
    state = AuctionState.initial(starting_price_cents=1000)
    with pytest.raises(BidRuleError) as caught:
        apply_bid(state, bid(ALICE, 2000, 1999))
    assert caught.value.code == INVALID_MAX == "invalid_max"
    assert caught.value.minimum_next_bid_cents is None
    # a maximum equal to the amount is fine
    assert apply_bid(state, bid(ALICE, 2000, 2000)).state.leader_max_cents == 2000


def test_invalid_max_is_reported_before_too_low():
    state = AuctionState.initial(starting_price_cents=1000)
    with pytest.raises(BidRuleError) as caught:
        apply_bid(state, bid(ALICE, 10, 5))
    assert caught.value.code == INVALID_MAX


@pytest.mark.parametrize("new_max", [5000, 4000, None])
def test_leader_not_raising_the_maximum_is_too_low(new_max: int | None):
    # given alice leads with a 50.00 maximum
    state = alice_leads_at_1000_with_max_5000()
    # when she bids again without going above 50.00
    with pytest.raises(BidRuleError) as caught:
        apply_bid(state, bid(ALICE, 1050, new_max))
    # then it is refused
    assert caught.value.code == BID_TOO_LOW
    # and the minimum it names is what she could have sent: above her own maximum
    assert caught.value.minimum_next_bid_cents == 5001
    assert "above 5000 cents" in str(caught.value)


def test_leader_raise_still_needs_the_minimum_next_bid():
    state = alice_leads_at_1000_with_max_5000()
    with pytest.raises(BidRuleError) as caught:
        apply_bid(state, bid(ALICE, 1000, 9000))
    assert caught.value.code == BID_TOO_LOW
    assert caught.value.minimum_next_bid_cents == 1050


def test_refused_bid_leaves_the_state_untouched():
    state = alice_leads_at_1000_with_max_5000()
    with pytest.raises(BidRuleError):
        apply_bid(state, bid(BOB, 1))
    assert state == alice_leads_at_1000_with_max_5000()


# --------------------------------------------------------------------------
# Unvalidated application (replay after a retraction)
# --------------------------------------------------------------------------


def test_unvalidated_low_bid_is_applied_with_its_maximum_without_lowering_the_price():
    # given the price stands at 31.00 with alice's maximum at 50.00
    state = place_all(alice_leads_at_1000_with_max_5000(), bid(BOB, 2000, 3000))
    assert state.current_price_cents == 3100
    # when a stale 5.00 bid from carol is replayed
    outcome = apply_bid(state, bid(CAROL, 500), validate=False)
    # then it is recorded, alice's proxy answers, and the price does not drop
    assert outcome.state.leader_id == ALICE
    assert outcome.state.current_price_cents == 3100
    assert outcome.state.bid_count == state.bid_count + 2
    assert [r.amount_cents for r in outcome.records] == [500, 3100]


def test_unvalidated_bid_below_the_minimum_can_still_take_the_lead():
    # given alice leads at 10.00 with a 50.00 maximum
    state = alice_leads_at_1000_with_max_5000()
    # when bob's historical bid is amount 10.00 (below the minimum) max 60.00
    outcome = apply_bid(state, bid(BOB, 1000, 6000), validate=False)
    # then it is applied with its maximum
    assert outcome.state.leader_id == BOB
    assert outcome.state.current_price_cents == 5100


def test_unvalidated_leader_non_raise_is_a_no_op_that_still_records_its_row():
    state = alice_leads_at_1000_with_max_5000()
    outcome = apply_bid(state, bid(ALICE, 1050, 3000), validate=False)
    assert outcome.state.leader_max_cents == 5000
    assert outcome.state.current_price_cents == 1000
    assert outcome.state.bid_count == state.bid_count
    assert outcome.records == (
        BidRecord(
            bidder_id=ALICE,
            amount_cents=1000,
            max_amount_cents=5000,
            requested_amount_cents=1050,
            is_auto_bid=False,
            is_max_raise=True,
        ),
    )
    assert not outcome.price_changed
    assert not outcome.leader_changed


def test_unvalidated_max_below_amount_is_treated_as_the_amount():
    state = AuctionState.initial(starting_price_cents=1000)
    outcome = apply_bid(state, bid(ALICE, 2000, 1500), validate=False)
    assert outcome.state.leader_max_cents == 2000
    assert outcome.records[0].max_amount_cents == 2000


def test_replay_reproduces_a_worked_auction():
    # given an auction with a takeover, a defended bid and a raise
    start = AuctionState.initial(starting_price_cents=1000, reserve_price_cents=6000)
    history = [
        bid(ALICE, 1000, 5000),
        bid(BOB, 1050, 8000),
        bid(CAROL, 6100, 7000),
        bid(BOB, 7200, 12000),
    ]
    live = place_all(start, *history)
    # then replaying the same inputs gives the same state
    assert replay(start, history) == live
    assert live.leader_id == BOB
    assert live.leader_max_cents == 12000
    assert live.current_price_cents == 7100
    # alice, bob, carol + bob's auto bid; bob's raise lifted nothing, so nobody sees it
    assert live.bid_count == 4


def test_replay_after_retracting_the_leaders_bid_rebuilds_a_lower_state():
    # given bob had taken the lead over alice
    start = AuctionState.initial(starting_price_cents=1000)
    history = [bid(ALICE, 1000, 5000), bid(BOB, 1050, 8000), bid(CAROL, 5200, 6000)]
    assert place_all(start, *history).leader_id == BOB
    # when bob's bid is retracted and the rest replayed
    rebuilt = replay(start, [history[0], history[2]])
    # then carol now leads over alice at 50.00 + 1.00
    assert rebuilt.leader_id == CAROL
    assert rebuilt.current_price_cents == 5100
    assert rebuilt.bid_count == 2


def test_replay_of_nothing_is_the_initial_state():
    start = AuctionState.initial(starting_price_cents=1000, reserve_price_cents=2000)
    assert replay(start, []) == start


# --------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------

BIDDERS = (ALICE, BOB, CAROL)

# A step is (bidder, amount offset from the minimum next bid, how to pick the
# maximum).  The maximum is None, an offset from the amount ("amount", n) or an
# offset from the leader's maximum ("leader", n) -- the latter makes ties, capped
# auto bids and just-over takeovers common.  Offsets keep most bids near the
# action while still reaching invalid amounts (negative offsets) and far-away
# bands (large offsets).
MaxSpec = tuple[str, int] | None
Step = tuple[str, int, MaxSpec]
offsets = st.one_of(st.integers(-300, 300), st.integers(-1_000, 600_000))
max_specs = st.one_of(
    st.none(),
    st.tuples(st.just("amount"), offsets),
    st.tuples(st.just("leader"), st.just(0) | st.integers(-150, 150)),
)
steps_strategy = st.lists(
    st.tuples(st.sampled_from(BIDDERS), offsets, max_specs), max_size=30
)
initial_strategy = st.builds(
    lambda start, reserve: AuctionState.initial(
        starting_price_cents=start, reserve_price_cents=reserve
    ),
    st.one_of(st.integers(1, 600), st.integers(1, 700_000)),
    st.none() | st.integers(0, 900_000),
)


@dataclass
class Oracle:
    """Independent bookkeeping of who should lead.

    For each bidder: the highest maximum they ever submitted and the time it was
    first reached; the leader must be the best by (maximum, earliest).
    """

    best: dict[Hashable, tuple[int, int]] = field(default_factory=dict)
    clock: int = 0

    def observe(self, item: BidInput) -> None:
        self.clock += 1
        submitted = item.max_amount_cents
        new_max = item.amount_cents if submitted is None else submitted
        new_max = max(new_max, item.amount_cents)  # replay treats M < A as A
        known = self.best.get(item.bidder_id)
        if known is None or new_max > known[0]:
            self.best[item.bidder_id] = (new_max, self.clock)

    def expected_leader(self) -> tuple[Hashable, int]:
        bidder, (top, _) = max(self.best.items(), key=lambda kv: (kv[1][0], -kv[1][1]))
        return bidder, top

    def runner_up_max(self, leader: Hashable) -> int | None:
        others = [m for b, (m, _) in self.best.items() if b != leader]
        return max(others) if others else None


def check_step(
    before: AuctionState,
    item: BidInput,
    outcome: BidOutcome,
    oracle: Oracle,
    *,
    validated: bool,
) -> None:
    """Invariants that every applied bid must keep."""
    after = outcome.state
    oracle.observe(item)
    leader, top = oracle.expected_leader()

    # the price never decreases and never exceeds the leader's maximum
    assert after.current_price_cents >= before.current_price_cents
    assert after.leader_max_cents is not None
    assert after.current_price_cents <= after.leader_max_cents
    # the leader holds the highest maximum, the earliest on ties
    assert (after.leader_id, after.leader_max_cents) == (leader, top)
    # static fields survive; bid_count counts the records others see
    assert after.starting_price_cents == before.starting_price_cents
    assert after.reserve_price_cents == before.reserve_price_cents
    visible = [r for r in outcome.records if not r.is_max_raise]
    assert after.bid_count == before.bid_count + len(visible)
    # a silent raise is exactly the leader's bid that leaves price and leader where they were
    assert outcome.records[0].is_max_raise == (
        before.leader_id == item.bidder_id == after.leader_id
        and after.current_price_cents == before.current_price_cents)
    assert not any(r.is_max_raise for r in outcome.records[1:])
    # the reserve rule has been applied
    reserve = after.reserve_price_cents
    if reserve is None:
        assert reserve_met(after) is None
    elif after.leader_max_cents >= reserve:
        assert after.current_price_cents >= reserve
        assert reserve_met(after) is True
    else:
        assert reserve_met(after) is False

    # the outcome flags agree with the states
    assert outcome.is_leading == (after.leader_id == item.bidder_id)
    assert outcome.previous_leader_id == before.leader_id
    assert outcome.leader_changed == (
        before.leader_id is None or before.leader_id != after.leader_id
    )
    expected_outbid = before.leader_id if outcome.leader_changed else None
    assert outcome.outbid_id == expected_outbid
    assert outcome.price_changed == (
        after.current_price_cents != before.current_price_cents
    )

    # the records: the submitter first, then (only when not leading) an auto bid
    first = outcome.records[0]
    assert first.bidder_id == item.bidder_id
    assert first.requested_amount_cents == item.amount_cents
    assert first.is_auto_bid is False
    assert outcome.records[-1].amount_cents == after.current_price_cents
    if outcome.is_leading:
        assert len(outcome.records) == 1
        assert first.max_amount_cents == after.leader_max_cents
    else:
        assert len(outcome.records) == 2
        auto = outcome.records[1]
        assert auto.bidder_id == after.leader_id
        assert auto.is_auto_bid is True
        assert auto.requested_amount_cents is None
        assert auto.max_amount_cents == after.leader_max_cents
        assert first.amount_cents == first.max_amount_cents

    if validated:
        # proxy pricing: nobody else's maximum is above the price, and the
        # price is never more than one increment above the runner-up (or the
        # starting price / reserve when those are what set it)
        runner_up = oracle.runner_up_max(after.leader_id)
        floor = [after.starting_price_cents]
        if reserve is not None and after.leader_max_cents >= reserve:
            floor.append(reserve)
        if runner_up is not None:
            assert runner_up <= after.current_price_cents
            floor.append(runner_up + increment(runner_up))
        assert after.current_price_cents <= max(floor)
        # a non-leading bid's visible amount was beaten or tied by the leader
        assert all(r.amount_cents <= after.current_price_cents for r in outcome.records)


def run_live(
    initial: AuctionState, steps: Sequence[Step]
) -> tuple[AuctionState, list[BidInput], list[AuctionState]]:
    """Submit bids with validation, checking each step; return what was accepted."""
    state, accepted, states, oracle = initial, [], [initial], Oracle()
    for bidder, amount_offset, max_spec in steps:
        amount = max(0, minimum_next_bid(state) + amount_offset)
        maximum: int | None = None
        if max_spec is not None:
            kind, max_offset = max_spec
            base = state.leader_max_cents if kind == "leader" else None
            maximum = max(0, (amount if base is None else base) + max_offset)
        item = bid(bidder, amount, maximum)
        effective = amount if maximum is None else maximum
        if maximum is not None and maximum < amount:
            expected_error: str | None = INVALID_MAX
        elif amount < minimum_next_bid(state):
            expected_error = BID_TOO_LOW
        elif bidder == state.leader_id and effective <= (state.leader_max_cents or 0):
            expected_error = BID_TOO_LOW
        else:
            expected_error = None
        try:
            outcome = apply_bid(state, item)
        except BidRuleError as error:
            assert error.code == expected_error
            if error.code == BID_TOO_LOW:
                # what would have been accepted: the minimum, or for a leader who cleared
                # it, an amount above their own maximum
                expected = minimum_next_bid(state)
                if (amount >= expected and bidder == state.leader_id
                        and state.leader_max_cents is not None):
                    expected = max(expected, state.leader_max_cents + 1)
                assert error.minimum_next_bid_cents == expected
            continue
        assert expected_error is None
        check_step(state, item, outcome, oracle, validated=True)
        state = outcome.state
        accepted.append(item)
        states.append(state)
    return state, accepted, states


@settings(max_examples=300, deadline=None)
@given(initial=initial_strategy, steps=steps_strategy)
def test_property_live_bidding_keeps_the_invariants_and_replays_exactly(
    initial: AuctionState, steps: list[Step]
):
    # given any sequence of submitted bids, of which some are refused
    final, accepted, states = run_live(initial, steps)
    # then bid_count counts every record and replay reproduces every state
    assert replay(initial, accepted) == final
    for count, state in enumerate(states):
        assert replay(initial, accepted[:count]) == state
    # and the price never decreased over the whole auction
    prices = [s.current_price_cents for s in states]
    assert prices == sorted(prices)


def check_replay(initial: AuctionState, bids: Sequence[BidInput]) -> None:
    """Replay unvalidated with invariant checks at each step; must never raise."""
    state, oracle = initial, Oracle()
    for item in bids:
        outcome = apply_bid(state, item, validate=False)
        check_step(state, item, outcome, oracle, validated=False)
        state = outcome.state
    assert replay(initial, bids) == state


@settings(max_examples=200, deadline=None)
@given(initial=initial_strategy, steps=steps_strategy, data=st.data())
def test_property_replay_after_retracting_a_prefix_never_raises(
    initial: AuctionState, steps: list[Step], data: st.DataObject
):
    # given the accepted bids of an auction
    _, accepted, _ = run_live(initial, steps)
    # when the first few are retracted
    cut = data.draw(st.integers(0, len(accepted)), label="retracted prefix")
    # then replaying the rest never raises and keeps the invariants
    check_replay(initial, accepted[cut:])


@settings(max_examples=200, deadline=None)
@given(initial=initial_strategy, steps=steps_strategy, data=st.data())
def test_property_replay_after_retracting_any_bids_never_raises(
    initial: AuctionState, steps: list[Step], data: st.DataObject
):
    # given the accepted bids of an auction
    _, accepted, _ = run_live(initial, steps)
    # when any of them are retracted
    kept = data.draw(
        st.lists(st.booleans(), min_size=len(accepted), max_size=len(accepted))
    )
    survivors = [item for item, keep in zip(accepted, kept, strict=True) if keep]
    # then replaying the survivors never raises and keeps the invariants
    check_replay(initial, survivors)


@settings(max_examples=200, deadline=None)
@given(
    initial=initial_strategy,
    bids=st.lists(
        st.builds(
            BidInput,
            bidder_id=st.sampled_from(BIDDERS),
            amount_cents=st.integers(0, 1_000_000),
            max_amount_cents=st.none() | st.integers(0, 1_000_000),
        ),
        max_size=30,
    ),
)
def test_property_replay_of_arbitrary_bids_never_raises_nor_lowers_the_price(
    initial: AuctionState, bids: list[BidInput]
):
    # given arbitrary (even never-valid) historical bids
    state = initial
    for item in bids:
        # when each is applied unvalidated, then nothing raises
        after = apply_bid(state, item, validate=False).state
        # and the price never goes down; bid_count goes up unless only a maximum moved
        assert after.current_price_cents >= state.current_price_cents
        silent = (state.leader_id == item.bidder_id
                  and after.current_price_cents == state.current_price_cents)
        assert after.bid_count == state.bid_count + (0 if silent else 1 if after.leader_id
                                                     == item.bidder_id else 2)
        state = after
    assert replay(initial, bids) == state
