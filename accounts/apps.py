from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from axes.signals import user_locked_out
        from django.contrib.auth.signals import user_login_failed
        from django.db.models.signals import post_migrate

        # consumers: the suspension policy on socket messages; schema: the OpenAPI auth
        # extension. Both register themselves on import.
        from accounts import consumers, schema, staff_login  # noqa: F401
        from accounts.roles import roles_sync

        # After every app migrated (the roles need all apps' permissions): see roles_sync.
        post_migrate.connect(roles_sync, dispatch_uid="biddt-roles-sync")
        # The staff console's failed logins and lockouts go to the audit log.
        user_login_failed.connect(staff_login.on_login_failed,
                                  dispatch_uid="biddt-staff-login-failed")
        user_locked_out.connect(staff_login.on_locked_out, dispatch_uid="biddt-staff-locked-out")
