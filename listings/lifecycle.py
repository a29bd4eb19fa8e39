"""The listing's lifecycle: the one owner of `Listing.status`.

- `TRANSITIONS`: which status may follow which (STYLE.md rule 5).
- `listing_lock()`: the one way to lock a listing row (`FOR NO KEY UPDATE OF` the row). Bids,
  edits, buy now, cancel and removal all take it, so they queue behind each other.
- `listing_transition()`: the only code that writes `status` (besides the close, below): a
  conditional UPDATE `status IN (from) → to`, whose row count says whether this caller won.
- `listing_close_due()`: the auction close's transition, `active` → `sold`/`unsold` in one
  statement that returns the closed row.
- `listing_ended`: sent inside the transaction when a seller cancels or staff removes a
  listing; the bidding app (a higher layer) voids the bids and tells the room.

Callers: listings.services (publish, cancel, remove), bidding.services (buy now, close),
escrow.services.expiry (an unpaid sale: `sold` → `unsold`). tests/listings/test_lifecycle.py
fails if another module writes `status`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import connection
from django.db.models import Q
from django.dispatch import Signal
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from biddt.errors import NotFound
from listings.models import Listing, ListingStatus

# Allowed status transitions, in one place (STYLE.md rule 5).
TRANSITIONS: dict[str, frozenset[str]] = {
    ListingStatus.DRAFT: frozenset({ListingStatus.SCHEDULED, ListingStatus.ACTIVE,
                                    ListingStatus.CANCELLED, ListingStatus.REMOVED}),
    ListingStatus.SCHEDULED: frozenset({ListingStatus.ACTIVE, ListingStatus.CANCELLED,
                                        ListingStatus.REMOVED}),
    ListingStatus.ACTIVE: frozenset({ListingStatus.SOLD, ListingStatus.UNSOLD,
                                     ListingStatus.CANCELLED, ListingStatus.REMOVED}),
    ListingStatus.SOLD: frozenset({ListingStatus.UNSOLD, ListingStatus.REMOVED}),
    # `sold` again: a runner-up accepted a second-chance offer (escrow.services.second_chance).
    ListingStatus.UNSOLD: frozenset({ListingStatus.SOLD, ListingStatus.REMOVED}),
    ListingStatus.CANCELLED: frozenset({ListingStatus.REMOVED}),
    ListingStatus.REMOVED: frozenset(),
}

# Sent inside the transaction that moved a listing to `cancelled` (by its seller) or
# `removed` (by staff), by the one caller that won the transition, with the row still
# locked. kwargs: listing (re-read), status, reason, was_active. Receivers write in that
# transaction and may return how many bids they voided (listing_remove audits the sum).
listing_ended = Signal()


class IllegalTransition(ValueError):
    """A caller asked for a transition that TRANSITIONS doesn't allow (a programming error)."""


def sources_of(to: str) -> frozenset[str]:
    """Every status that may move to `to`."""
    return frozenset(s for s, targets in TRANSITIONS.items() if to in targets)


# --- the row lock ---------------------------------------------------------------------------

# Only model metadata is formatted in; the listing id is a bound parameter.
# The leader's display name comes with the row too (`leader_display_name`): a proxy's
# automatic answer is shown under the leader's masked name, without a SELECT of their user.
# Both subqueries are correlated with the locked row, so PostgreSQL re-evaluates them on the
# row version it finally locks.
_LOCK_COLUMNS = f"""
    SELECT l.*, EXISTS (SELECT 1 FROM {User._meta.db_table} u
                         WHERE u.id = l.seller_id AND u.status <> '{User.Status.ACTIVE}')
                AS seller_paused,
           (SELECT u.display_name FROM {User._meta.db_table} u WHERE u.id = l.leader_id)
                AS leader_display_name"""  # noqa: S608
_LOCK_FROM = f"""
      FROM {Listing._meta.db_table} l WHERE l.id = %s"""  # noqa: S608


def listing_lock(listing_id: Any, *, extra_columns: str = "",
                 params: Sequence[Any] = ()) -> Listing:
    """Lock the listing row (`FOR NO KEY UPDATE`, like `select_for_update(of=("self",),
    no_key=True)`) and return it; 404 `not_found` when there is none. Must run inside
    `transaction.atomic`.

    The row comes with `seller_paused` (the seller is suspended) and `leader_display_name`.
    No `select_related` here: when PostgreSQL re-checks a row that changed while we waited
    for its lock, joined rows are not re-read, so a joined leader could be the old one.
    Written as SQL: building the subqueries through the ORM cost more CPU than the query
    itself, on every bid. SQLite (development) has no row locks: its transaction locks the
    database file instead.

    A higher layer that needs more read with the locked row (bidding: the bidders' "Bidder N"
    numbers) passes `extra_columns` (`, (subquery) AS name`, correlated with `l`) and their
    `params`; they are bound before the listing id.
    """
    try:
        listing_id = listing_id if isinstance(listing_id, uuid.UUID) else uuid.UUID(
            str(listing_id))
    except ValueError:
        raise NotFound(_("Listing not found.")) from None
    sql = _LOCK_COLUMNS + extra_columns + _LOCK_FROM + (
        " FOR NO KEY UPDATE OF l" if connection.features.has_select_for_update else "")
    pk = Listing._meta.pk.get_db_prep_value(listing_id, connection)
    listing = next(iter(Listing.objects.raw(sql, [*params, pk])), None)
    if listing is None:
        raise NotFound(_("Listing not found."))
    return listing


# --- transitions ----------------------------------------------------------------------------

def listing_transition(*, listing_id: Any, to: str, frm: Iterable[str] | None = None,
                       where: Q | None = None, **fields: Any) -> bool:
    """Move the listing to `to` if its status is one of `frm` (default: every status
    TRANSITIONS allows to move to `to`) and `where` holds; True for the one caller whose
    UPDATE matched the row. `fields` are written in the same UPDATE (`closed_at`, `seq`,
    `status_reason`...); `updated_at` is set to now.

    Raises IllegalTransition when `frm` names a status that may not move to `to`.
    """
    allowed = sources_of(to)
    frm = allowed if frm is None else frozenset(frm)
    if not frm or not frm <= allowed:
        raise IllegalTransition(f"{sorted(frm - allowed) or 'nothing'} → {to}")
    qs = Listing.objects.filter(pk=listing_id, status__in=frm)
    if where is not None:
        qs = qs.filter(where)
    fields.setdefault("updated_at", timezone.now())
    return qs.update(status=to, **fields) == 1


# The close decision, in one statement that also returns the closed row: sold to the leader
# when there is no reserve or it is met, else unsold; only while still active and due.
# Written as SQL (PostgreSQL and SQLite ≥ 3.35 both have RETURNING) because building it
# through the ORM and reading the row back cost more than the statement itself, 10,000 times
# in a sweep. The CASE is `rules.reserve_met(state) is not False` with a leader, which can't be
# called inside the statement; tests/listings/test_lifecycle.py checks that the two agree.
# Only model metadata is formatted in; values are bound parameters.
_CLOSE_SQL = f"""
    UPDATE {Listing._meta.db_table}
       SET status = CASE WHEN leader_id IS NOT NULL
                          AND (reserve_price_cents IS NULL
                               OR current_price_cents >= reserve_price_cents)
                         THEN '{ListingStatus.SOLD}' ELSE '{ListingStatus.UNSOLD}' END,
           closed_at = %s, updated_at = %s, seq = seq + 1
     WHERE id = %s AND status = '{ListingStatus.ACTIVE}' AND ends_at <= %s
 RETURNING *
"""  # noqa: S608


def listing_close_due(*, listing_id: Any) -> Listing | None:
    """`active` → `sold` (a leader and no reserve, or the reserve met) or `unsold`, only when
    `ends_at` has passed; the closed row for the one caller that closed it, else None.

    The conditional UPDATE is the decision: any number of sweepers, duplicate deliveries or
    a bid's soft-close extension racing it (the bid holds the row lock; the UPDATE re-checks
    `ends_at` after it commits) leave exactly one winner. Run it inside the transaction that
    records the sale (bidding.services.auction_close).
    """
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    pk = Listing._meta.pk.get_db_prep_value(listing_id, connection)
    return next(iter(Listing.objects.raw(_CLOSE_SQL, [now, now, pk, now])), None)
