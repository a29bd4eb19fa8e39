from django.urls import path

from escrow.api import second_chance, views

urlpatterns = [
    path("listings/<uuid:listing_id>/second-chance",
         second_chance.SecondChanceCreateView.as_view(), name="listing-second-chance"),
    path("second-chance/<uuid:offer_id>/accept", second_chance.SecondChanceAcceptView.as_view(),
         name="second-chance-accept"),
    path("second-chance/<uuid:offer_id>/decline",
         second_chance.SecondChanceDeclineView.as_view(), name="second-chance-decline"),
    path("transactions", views.TransactionsView.as_view(), name="transactions"),
    path("transactions/<uuid:transaction_id>", views.TransactionDetailView.as_view(),
         name="transaction-detail"),
    path("transactions/<uuid:transaction_id>/pay", views.PayView.as_view(),
         name="transaction-pay"),
    path("transactions/<uuid:transaction_id>/qr", views.QrView.as_view(), name="transaction-qr"),
    path("transactions/<uuid:transaction_id>/verify", views.VerifyView.as_view(),
         name="transaction-verify"),
    path("transactions/<uuid:transaction_id>/dispute", views.DisputeView.as_view(),
         name="transaction-dispute"),
    path("transactions/<uuid:transaction_id>/meetup", views.MeetupView.as_view(),
         name="transaction-meetup"),
    path("transactions/<uuid:transaction_id>/rating", views.RatingView.as_view(),
         name="transaction-rating"),
    path("handoff-keys", views.HandoffKeysView.as_view(), name="handoff-keys"),
    # Buying sells the listing (bidding) and creates its transaction (escrow).
    path("listings/<uuid:listing_id>/buy-now", views.BuyNowView.as_view(),
         name="listing-buy-now"),
    path("users/me/wallet", views.WalletView.as_view(), name="wallet"),
    path("users/me/wallet/balance", views.WalletBalanceView.as_view(), name="wallet-balance"),
    path("users/me/transactions", views.MyTransactionsView.as_view(), name="my-transactions"),
    path("webhooks/stripe", views.StripeWebhookView.as_view(), name="stripe-webhook"),
]
