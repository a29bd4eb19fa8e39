from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        # consumers: the suspension policy on socket messages; schema: the OpenAPI auth
        # extension. Both register themselves on import.
        from accounts import consumers, schema  # noqa: F401
        from accounts.roles import roles_sync

        # After every app migrated (the roles need all apps' permissions): see roles_sync.
        post_migrate.connect(roles_sync, dispatch_uid="biddt-roles-sync")
