"""Saved-search writes (create, update, delete, at most 20 per user) and the alerts: one
`saved_search_match` notification per search and listing when a listing becomes active."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import translation
from django.utils.text import format_lazy
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.policies import ensure_active
from biddt.errors import Conflict
from discovery.models import MatchedListing, SavedSearch
from discovery.selectors import FILTERS, saved_search_get, saved_searches_matching
from listings.models import Listing, ListingStatus
from listings.selectors import search_text
from notifications.models import NotificationType
from notifications.services import Note, notify_many_once

logger = logging.getLogger(__name__)

MAX_SAVED_SEARCHES = 20


def saved_search_websearch(q: str | None) -> str:
    """The text the database turns into the search's tsquery: browse's treatment of `q`."""
    q = (q or "").strip()
    return search_text(q) if q else ""


def _apply(search: SavedSearch, data: dict[str, Any]) -> None:
    for key, value in data.items():
        if key == "q":
            value = (value or "").strip() or None
            search.q_websearch = saved_search_websearch(value)
        setattr(search, key, value)


def saved_search_create(*, user, data: dict[str, Any]) -> SavedSearch:
    """Save a search (shape checked by the serializer). 409 `too_many_saved_searches` past
    `MAX_SAVED_SEARCHES`: the count is taken under a lock of the user's row, so two
    concurrent creates can't both take the last place."""
    ensure_active(user)
    with transaction.atomic():
        list(get_user_model().objects.select_for_update(of=("self",), no_key=True)
             .filter(pk=user.pk).values_list("pk"))
        if SavedSearch.objects.filter(user_id=user.pk).count() >= MAX_SAVED_SEARCHES:
            raise Conflict(format_lazy(gettext_lazy("At most {limit} saved searches per account; "
                                                    "delete one first."),
                                       limit=MAX_SAVED_SEARCHES),
                           code="too_many_saved_searches")
        search = SavedSearch(user_id=user.pk)
        _apply(search, {key: data.get(key) for key in FILTERS}
               | {"name": data["name"], "notify": data.get("notify", True)})
        search.save()
    return search


def saved_search_update(*, user, saved_search_id: Any, data: dict[str, Any]) -> SavedSearch:
    """Replace the given fields (a filter set to null is dropped); the serializer checked
    the search as it will be."""
    ensure_active(user)
    with transaction.atomic():
        search = saved_search_get(user=user, saved_search_id=saved_search_id)
        _apply(search, data)
        search.save()
    search.refresh_from_db()
    return search


def saved_search_delete(*, user, saved_search_id: Any) -> None:
    ensure_active(user)
    saved_search_get(user=user, saved_search_id=saved_search_id).delete()


# --- alerts --------------------------------------------------------------------------------

def _languages(user_ids: set[Any]) -> dict[Any, str]:
    """Each owner's language, where accounts keeps one (else the site's)."""
    User = get_user_model()  # noqa: N806
    if not user_ids or not any(f.name == "language" for f in User._meta.concrete_fields):
        return {}
    return dict(User.objects.filter(pk__in=user_ids).values_list("pk", "language"))


def saved_search_matches_notify(*, listing_id: Any) -> int:
    """Notify the owner of every saved search the listing matches, once per search and
    listing; returns how many notifications this call created.

    Safe to run twice (Celery delivers at least once): each notification's dedupe key is
    the (search, listing) pair under the notifications' unique constraint, and only the rows
    this call inserted are pushed. A listing no longer active and visible (cancelled or
    removed before the worker got to it) notifies no one.
    """
    listing = (Listing.objects.filter(pk=listing_id, status=ListingStatus.ACTIVE,
                                      seller_active=True)
               .only("id", "seller_id", "title", "category", "condition",
                     "starting_price_cents", "location_lat", "location_lng", "description")
               .first())
    if listing is None:
        return 0
    matches = saved_searches_matching(listing=listing)
    notes = _notes(listing, matches)
    with transaction.atomic():
        created = notify_many_once(notes)
        MatchedListing.objects.get_or_create(listing_id=listing.pk)
    logger.info("listing %s matched %d saved searches, %d new notifications",
                listing.pk, len(matches), len(created))
    return len(created)


def _notes(listing: Listing, matches: list[tuple[Any, Any, str]]) -> list[Note]:
    if not matches:
        return []
    languages = _languages({user_id for _id, user_id, _name in matches})
    # One translation per language (activating one costs more than formatting a title).
    templates: dict[str, str] = {}
    for language in {*languages.values(), settings.LANGUAGE_CODE}:
        with translation.override(language):
            templates[language] = _("New listing for “%(name)s”")
    return [Note(
        user_id=user_id, type=NotificationType.SAVED_SEARCH_MATCH,
        title=templates[languages.get(user_id) or settings.LANGUAGE_CODE] % {"name": name},
        body=listing.title,
        data={"saved_search_id": str(search_id), "listing_id": str(listing.pk)},
        dedupe_key=f"saved_search_match:{search_id}:{listing.pk}")
        for search_id, user_id, name in matches]


def saved_searches_delete_of_user(*, user_id: Any) -> int:
    """Delete every saved search of a user (an account closure, privacy.account_delete, in its
    transaction). Returns how many."""
    deleted, _by_model = SavedSearch.objects.filter(user_id=user_id).delete()
    return deleted
