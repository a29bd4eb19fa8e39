from django.contrib import admin

from bidding.models import Bid, SecondChanceOffer
from biddt.staff import ReadOnlyInline, money_display
from listings.admin import ListingAdmin


@admin.register(Bid)
class BidAdmin(admin.ModelAdmin):
    list_display = ["listing", "bidder", "amount", "is_auto_bid", "status", "seq",
                    "created_at"]
    list_filter = ["status", "is_auto_bid", "created_at"]
    search_fields = ["listing__title", "bidder__display_name", "id"]
    raw_id_fields = ["listing", "bidder"]
    # Bids are money promises: changed only by the engine (retract) or a takedown (void).
    readonly_fields = ["listing", "bidder", "amount", "max_amount", "requested_amount",
                       "is_auto_bid", "status", "seq", "created_at"]
    exclude = ["amount_cents", "max_amount_cents", "requested_amount_cents"]
    list_select_related = ["listing", "bidder"]

    amount = money_display("amount_cents", description="amount",
                           currency_field="listing__currency")
    max_amount = money_display("max_amount_cents", description="max",
                               currency_field="listing__currency")
    requested_amount = money_display("requested_amount_cents", description="requested",
                                     currency_field="listing__currency")

    def has_add_permission(self, request):
        return False  # bids are placed through the engine only

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(SecondChanceOffer)
class SecondChanceOfferAdmin(admin.ModelAdmin):
    list_display = ["listing", "bidder", "amount_cents", "status", "expires_at", "created_at"]
    list_filter = ["status", "created_at"]
    search_fields = ["listing__title", "bidder__display_name", "id"]
    list_select_related = ["listing", "bidder"]
    # Offers are made, accepted, declined and expired by escrow.services.second_chance only.
    readonly_fields = ["listing", "bidder", "amount_cents", "status", "expires_at",
                       "transaction", "created_at", "decided_at"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class BidInline(ReadOnlyInline):
    """The bid history (all statuses, newest first), read-only, on the listing's page."""

    model = Bid
    ordering = ["-seq", "-is_auto_bid"]
    fields = ["created_at", "bidder", "amount", "max_amount", "is_auto_bid", "status", "seq"]
    show_change_link = True

    amount = money_display("amount_cents", description="amount",
                           currency_field="listing__currency")
    max_amount = money_display("max_amount_cents", description="max",
                               currency_field="listing__currency")


ListingAdmin.app_inlines.append(BidInline)
