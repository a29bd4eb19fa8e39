from django.contrib import admin

from listings.models import Listing, ListingImage, ListingReport, Watch


class ListingImageInline(admin.TabularInline):
    model = ListingImage
    extra = 0
    fields = ["image", "thumbnail", "position", "width", "height"]
    readonly_fields = ["width", "height"]


@admin.register(Listing)
class ListingAdmin(admin.ModelAdmin):
    list_display = ["title", "seller", "status", "category", "auction_type",
                    "current_price_cents", "bid_count", "ends_at", "created_at"]
    list_filter = ["status", "category", "condition", "auction_type", "created_at"]
    search_fields = ["title", "description", "id", "seller__display_name"]
    date_hierarchy = "created_at"
    raw_id_fields = ["seller", "leader"]
    inlines = [ListingImageInline]
    # Auction state belongs to the bidding engine: never edited by hand.
    readonly_fields = ["current_price_cents", "bid_count", "leader", "leader_max_cents", "seq",
                       "view_count", "closed_at", "created_at", "updated_at"]


@admin.register(ListingImage)
class ListingImageAdmin(admin.ModelAdmin):
    list_display = ["listing", "position", "width", "height", "created_at"]
    raw_id_fields = ["listing"]


@admin.register(Watch)
class WatchAdmin(admin.ModelAdmin):
    list_display = ["user", "listing", "created_at"]
    raw_id_fields = ["user", "listing"]


@admin.register(ListingReport)
class ListingReportAdmin(admin.ModelAdmin):
    list_display = ["listing", "reporter", "reason", "status", "created_at"]
    list_filter = ["status", "reason"]
    search_fields = ["listing__title", "details"]
    raw_id_fields = ["listing", "reporter"]
