from django.contrib import admin

from bidding.models import Bid, SecondChanceOffer


@admin.register(Bid)
class BidAdmin(admin.ModelAdmin):
    list_display = ["listing", "bidder", "amount_cents", "is_auto_bid", "status", "seq",
                    "created_at"]
    list_filter = ["status", "is_auto_bid", "created_at"]
    search_fields = ["listing__title", "bidder__display_name", "id"]
    raw_id_fields = ["listing", "bidder"]
    # Bids are money promises: changed only by the engine (retract) or a takedown (void).
    readonly_fields = ["listing", "bidder", "amount_cents", "max_amount_cents",
                       "requested_amount_cents", "is_auto_bid", "status", "seq", "created_at"]

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
    # Offers are made, accepted, declined and expired by bidding.second_chance only.
    readonly_fields = ["listing", "bidder", "amount_cents", "status", "expires_at",
                       "transaction", "created_at", "decided_at"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
