from django.contrib import admin, messages
from django.db.models import Exists, OuterRef

from biddt.staff import ReadOnlyInline, ReasonActionForm, action_reason, require_reason
from listings.models import Listing, ListingImage, ListingReport, Watch

# Prices are what bidders relied on; the auction state belongs to the bidding engine.
MONEY_FIELDS = ["starting_price_cents", "reserve_price_cents", "buy_now_price_cents",
                "current_price_cents", "leader_max_cents"]


class ListingImageInline(admin.TabularInline):
    model = ListingImage
    extra = 0
    fields = ["image", "thumbnail", "position", "width", "height"]
    readonly_fields = ["width", "height"]


class ReportInline(ReadOnlyInline):
    model = ListingReport
    fields = ["created_at", "reporter", "reason", "details", "status"]


class OpenReportsFilter(admin.SimpleListFilter):
    title = "reports"
    parameter_name = "reported"

    def lookups(self, request, model_admin):
        return [("open", "Open reports"), ("any", "Ever reported")]

    def queryset(self, request, queryset):
        reports = ListingReport.objects.filter(listing=OuterRef("pk"))
        if self.value() == "open":
            return queryset.filter(Exists(reports.filter(status=ListingReport.Status.OPEN)))
        if self.value() == "any":
            return queryset.filter(Exists(reports))
        return queryset


@admin.register(Listing)
class ListingAdmin(admin.ModelAdmin):
    list_display = ["title", "seller", "status", "category", "auction_type",
                    "current_price_cents", "bid_count", "ends_at", "created_at"]
    list_filter = ["status", OpenReportsFilter, "category", "condition", "auction_type",
                   "seller__status", "created_at"]
    search_fields = ["title", "description", "id", "seller__display_name"]
    date_hierarchy = "created_at"
    raw_id_fields = ["seller", "leader"]
    inlines = [ListingImageInline, ReportInline]
    # Shown after the images: the higher apps' rows of a listing (bidding.admin adds the bid
    # history); listings (a lower layer) imports none of them.
    app_inlines: list = []
    action_form = ReasonActionForm
    actions = ["remove_listings"]
    # Money and auction state are never edited by hand; status moves through services.
    readonly_fields = [*MONEY_FIELDS, "seller", "status", "status_reason", "bid_count",
                       "leader", "seq", "view_count", "closed_at", "created_at", "updated_at"]

    def get_inlines(self, request, obj):
        return [self.inlines[0], *self.app_inlines, *self.inlines[1:]]

    def has_add_permission(self, request):
        return False  # listings are created by sellers through the API

    @admin.action(description="Remove (void the auction, notify bidders)",
                  permissions=["change"])
    def remove_listings(self, request, queryset):
        from listings.services import listing_remove

        reason = require_reason(self, request)
        if reason is None:
            return
        done = 0
        for listing in queryset.exclude(status=Listing.Status.REMOVED):
            listing_remove(listing_id=listing.pk, staff_user=request.user, reason=reason)
            done += 1
        self.message_user(request, f"{done} listing(s) removed.", messages.SUCCESS)


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
    """The moderation queue: open reports first; dismiss them or remove the listing."""

    list_display = ["listing", "listing_status", "reporter", "reason", "status", "created_at"]
    list_filter = ["status", "reason", "created_at"]
    search_fields = ["listing__title", "details"]
    list_select_related = ["listing", "reporter"]
    ordering = ["status", "-created_at"]
    fields = ["listing", "reporter", "reason", "details", "status", "created_at"]
    readonly_fields = fields
    action_form = ReasonActionForm
    actions = ["remove_reported_listings", "dismiss_reports"]

    @admin.display(description="listing status")
    def listing_status(self, obj):
        return obj.listing.status

    def has_add_permission(self, request):
        return False

    @admin.action(description="Remove the reported listing(s)", permissions=["change"])
    def remove_reported_listings(self, request, queryset):
        from listings.services import listing_remove

        reason = require_reason(self, request)
        if reason is None:
            return
        ids = set(queryset.exclude(listing__status=Listing.Status.REMOVED)
                  .values_list("listing_id", flat=True))
        for listing_id in ids:
            listing_remove(listing_id=listing_id, staff_user=request.user, reason=reason)
        self.message_user(request, f"{len(ids)} listing(s) removed.", messages.SUCCESS)

    @admin.action(description="Dismiss (no action needed)", permissions=["change"])
    def dismiss_reports(self, request, queryset):
        from listings.services import report_dismiss

        done = sum(report_dismiss(report_id=pk, staff_user=request.user,
                                  reason=action_reason(request))
                   for pk in queryset.values_list("pk", flat=True))
        self.message_user(request, f"{done} report(s) dismissed.", messages.SUCCESS)
