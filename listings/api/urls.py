from django.urls import path

from listings.api import views

urlpatterns = [
    path("listings", views.ListingListView.as_view(), name="listings"),
    path("listings/<uuid:listing_id>", views.ListingDetailView.as_view(), name="listing-detail"),
    path("listings/<uuid:listing_id>/publish", views.ListingPublishView.as_view(),
         name="listing-publish"),
    path("listings/<uuid:listing_id>/images", views.ListingImagesView.as_view(),
         name="listing-images"),
    path("listings/<uuid:listing_id>/videos", views.ListingVideosView.as_view(),
         name="listing-videos"),
    path("listings/<uuid:listing_id>/videos/<uuid:video_id>",
         views.ListingVideoDetailView.as_view(), name="listing-video"),
    path("listings/<uuid:listing_id>/watch", views.ListingWatchView.as_view(),
         name="listing-watch"),
    path("listings/<uuid:listing_id>/report", views.ListingReportView.as_view(),
         name="listing-report"),
]
