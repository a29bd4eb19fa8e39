from django.apps import AppConfig


class SafezonesConfig(AppConfig):
    name = "safezones"
    verbose_name = "Safe zones"
    default_auto_field = "django.db.models.BigAutoField"
