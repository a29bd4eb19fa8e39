from __future__ import annotations

import factory
from factory.django import DjangoModelFactory

from accounts.models import User


class UserFactory(DjangoModelFactory):
    class Meta:
        model = User

    display_name = factory.Sequence(lambda n: f"tester{n}")

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        phone = kwargs.pop("phone_number", None) or f"+1416555{cls._next_phone():04d}"
        return model_class.objects.create_user(phone, **kwargs)

    _counter = 0

    @classmethod
    def _next_phone(cls) -> int:
        UserFactory._counter += 1
        return UserFactory._counter % 10000


# --- bidding ---------------------------------------------------------------------------------

class ListingFactory(DjangoModelFactory):
    """An active auction that started an hour ago and ends in a day, no bid yet."""

    class Meta:
        model = "listings.Listing"

    seller = factory.SubFactory(UserFactory)
    title = factory.Sequence(lambda n: f"Item {n}")
    auction_type = "auction"
    status = "active"
    starting_price_cents = 1000
    current_price_cents = factory.SelfAttribute("starting_price_cents")
    starts_at = factory.LazyFunction(lambda: _now() - _td(hours=1))
    ends_at = factory.LazyFunction(lambda: _now() + _td(days=1))


def _now():
    from django.utils import timezone

    return timezone.now()


def _td(**kwargs):
    from datetime import timedelta

    return timedelta(**kwargs)


# --- escrow ----------------------------------------------------------------------------------

class SafeZoneFactory(DjangoModelFactory):
    class Meta:
        model = "safezones.SafeZone"

    partner_name = factory.Sequence(lambda n: f"Police station {n}")
    address = factory.Sequence(lambda n: f"{n} King St W, Toronto")
    lat = 43.65
    lng = -79.38


def sold_transaction(*, amount_cents: int = 10000, buyer=None, seller=None, **listing_fields):
    """A listing sold to `buyer` at `amount_cents` and its `pending_payment` transaction,
    made by escrow.services.transaction_create_for_sale as the sale would."""
    from escrow.services import transaction_create_for_sale

    buyer = buyer or UserFactory()
    listing = ListingFactory(seller=seller or UserFactory(), status="sold", leader=buyer,
                             starting_price_cents=min(amount_cents, 1000),
                             current_price_cents=amount_cents, leader_max_cents=amount_cents,
                             **listing_fields)
    return transaction_create_for_sale(listing=listing, buyer=buyer, amount_cents=amount_cents,
                                       source="auction")
