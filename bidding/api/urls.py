from django.urls import path

from bidding.api import views

urlpatterns = [
    path("listings/<uuid:listing_id>/bids", views.ListingBidsView.as_view(),
         name="listing-bids"),
    path("bids/me", views.MyBidsView.as_view(), name="bids-me"),
    path("bids/<uuid:bid_id>", views.BidDetailView.as_view(), name="bid-detail"),
]
