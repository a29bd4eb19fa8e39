from django.urls import path

from bidding.api import second_chance, views

urlpatterns = [
    path("listings/<uuid:listing_id>/bids", views.ListingBidsView.as_view(),
         name="listing-bids"),
    path("listings/<uuid:listing_id>/second-chance",
         second_chance.SecondChanceCreateView.as_view(), name="listing-second-chance"),
    path("second-chance/<uuid:offer_id>/accept", second_chance.SecondChanceAcceptView.as_view(),
         name="second-chance-accept"),
    path("second-chance/<uuid:offer_id>/decline",
         second_chance.SecondChanceDeclineView.as_view(), name="second-chance-decline"),
    path("bids/me", views.MyBidsView.as_view(), name="bids-me"),
    path("bids/<uuid:bid_id>", views.BidDetailView.as_view(), name="bid-detail"),
]
