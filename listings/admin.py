from django.contrib import admin, messages
from django.db.models import Exists, OuterRef
from django.utils.html import format_html

from biddt.money import money_text
from biddt.staff import (
    Decision,
    DecisionAdminMixin,
    ReadOnlyAdminMixin,
    ReadOnlyInline,
    ReasonActionForm,
    action_reason,
    money_display,
    require_reason,
)
from listings.models import Listing, ListingImage, ListingReport, ListingVideo, Watch
from listings.services import listing_remove

# Prices are what bidders relied on; the auction state belongs to the bidding engine.
MONEY_FIELDS = ["starting_price_cents", "reserve_price_cents", "buy_now_price_cents",
                "current_price_cents", "leader_max_cents"]


class ListingImageInline(admin.TabularInline):
    model = ListingImage
    extra = 0
    fields = ["image", "thumbnail", "position", "width", "height"]
    readonly_fields = ["width", "height"]


class ListingVideoInline(ReadOnlyInline):
    """The listing's video, small and read-only (the seller adds and removes it)."""

    model = ListingVideo
    fields = ["preview", "status", "duration_seconds", "resolution", "codec", "size_bytes",
              "error", "created_at"]

    @admin.display(description="video")
    def preview(self, obj):
        if not obj.file:
            return "-"
        poster = obj.poster.url if obj.poster else ""
        return format_html('<video src="{}" poster="{}" width="160" controls '
                           'preload="none" muted></video>', obj.file.url, poster)

    @admin.display(description="size")
    def resolution(self, obj):
        return f"{obj.width}×{obj.height}"


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


def _restate_remove(listing, data) -> list[str]:
    lines = [f"Remove “{listing.title}” by {listing.seller} ({listing.get_status_display()})."]
    if listing.status == Listing.Status.ACTIVE:
        lines.append(f"The auction is voided: its {listing.bid_count} bid(s) (current price "
                     f"{money_text(listing.current_price_cents, listing.currency)}) are "
                     "void and the bidders are told.")
    lines.append("The listing disappears from browse and search; the note is kept on it and "
                 "in the audit log.")
    return lines


def _run_remove(request, listing, data) -> str:
    listing_remove(listing_id=listing.pk, staff_user=request.user, reason=data["note"])
    return f"“{listing.title}” removed."


LISTING_DECISIONS = (
    Decision(key="remove", label="Remove the listing", restate=_restate_remove,
             run=_run_remove, danger=True,
             available=lambda listing: listing.status != Listing.Status.REMOVED),
)


@admin.register(Listing)
class ListingAdmin(DecisionAdminMixin, admin.ModelAdmin):
    list_display = ["title", "seller", "status", "category", "auction_type",
                    "current_price", "bid_count", "ends_at", "created_at"]
    list_filter = ["status", OpenReportsFilter, "category", "condition", "auction_type",
                   "seller__status", "created_at"]
    search_fields = ["title", "description", "id", "seller__display_name"]
    date_hierarchy = "created_at"
    raw_id_fields = ["seller", "leader"]
    inlines = [ListingImageInline, ListingVideoInline, ReportInline]
    # Shown after the images: the higher apps' rows of a listing (bidding.admin adds the bid
    # history); listings (a lower layer) imports none of them.
    app_inlines: list = []
    action_form = ReasonActionForm
    actions = ["remove_listings"]
    # Money and auction state are never edited by hand; status moves through services.
    readonly_fields = ["starting_price", "reserve_price", "buy_now_price", "current_price",
                       "leader_max", "seller", "status", "status_reason", "bid_count",
                       "leader", "seq", "view_count", "closed_at", "created_at", "updated_at"]
    exclude = MONEY_FIELDS
    decisions = LISTING_DECISIONS

    starting_price = money_display("starting_price_cents")
    reserve_price = money_display("reserve_price_cents")
    buy_now_price = money_display("buy_now_price_cents")
    current_price = money_display("current_price_cents")
    leader_max = money_display("leader_max_cents", description="leader's max")

    def get_inlines(self, request, obj):
        return [self.inlines[0], *self.app_inlines, *self.inlines[1:]]

    def has_add_permission(self, request):
        return False  # listings are created by sellers through the API

    @admin.action(description="Remove (void the auction, notify bidders)",
                  permissions=["change"])
    def remove_listings(self, request, queryset):
        reason = require_reason(self, request)
        if reason is None:
            return
        done = 0
        for listing in queryset.exclude(status=Listing.Status.REMOVED):
            listing_remove(listing_id=listing.pk, staff_user=request.user, reason=reason)
            done += 1
        self.message_user(request, f"{done} listing(s) removed.", messages.SUCCESS)


@admin.register(ListingVideo)
class ListingVideoAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Videos are added and removed by their sellers (files and rules go together)."""

    list_display = ["listing", "status", "duration_seconds", "codec", "size_bytes",
                    "created_at"]
    list_filter = ["status", "codec"]
    raw_id_fields = ["listing"]


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
