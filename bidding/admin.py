from django.contrib import admin

from bidding.models import Bid
from biddt.staff import ReadOnlyInline
from listings.admin import ListingAdmin


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


class BidInline(ReadOnlyInline):
    """The bid history (all statuses, newest first), read-only, on the listing's page."""

    model = Bid
    ordering = ["-seq", "-is_auto_bid"]
    fields = ["created_at", "bidder", "amount_cents", "max_amount_cents", "is_auto_bid",
              "status", "seq"]
    show_change_link = True


ListingAdmin.app_inlines.append(BidInline)
