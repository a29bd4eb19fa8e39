from django.apps import AppConfig


class PrivacyConfig(AppConfig):
    """Account rights (issue 20): closing an account and exporting its data.

    The top layer: an account's closure and export read and act across every app (listings,
    bids, transactions, chat, notifications), so they live above all of them and reach each
    through its services and selectors."""

    name = "privacy"
    verbose_name = "Account rights"
