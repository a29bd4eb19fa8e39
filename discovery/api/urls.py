from django.urls import path

from discovery.api import views

urlpatterns = [
    path("saved-searches", views.SavedSearchListView.as_view(), name="saved-searches"),
    path("saved-searches/<uuid:saved_search_id>", views.SavedSearchDetailView.as_view(),
         name="saved-search-detail"),
    path("saved-searches/<uuid:saved_search_id>/listings",
         views.SavedSearchListingsView.as_view(), name="saved-search-listings"),
]
