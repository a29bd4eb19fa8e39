"""Create or update a staff account: `create_staff --phone +14165550100 --role admin`."""

from __future__ import annotations

import getpass

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.models import InvalidPhoneNumber, User, format_e164, phone_index
from accounts.roles import ADMIN, SUPPORT, user_set_role


class Command(BaseCommand):
    help = "Create or update a staff user (support or admin) who logs in to /admin/ by phone."

    def add_arguments(self, parser):
        parser.add_argument("--phone", required=True, help="E.164 phone number (the login)")
        parser.add_argument("--role", choices=[SUPPORT, ADMIN], required=True)
        parser.add_argument("--name", default="", help="display name")
        parser.add_argument("--password", help="admin password (prompted when omitted)")

    def handle(self, *args, phone, role, name, password, **options):
        try:
            e164 = format_e164(phone)
        except InvalidPhoneNumber as exc:
            raise CommandError(f"not a phone number: {exc}") from None
        if not password:
            if not options.get("interactive", True) or not self.stdin_is_tty():
                raise CommandError("--password is required when not run interactively")
            password = getpass.getpass("Password: ")
        if len(password) < 8:
            raise CommandError("the password must have at least 8 characters")
        with transaction.atomic():
            user = User.objects.filter(phone_index=phone_index(e164)).first()
            created = user is None
            if created:
                user = User.objects.create_user(e164, password, display_name=name or role)
            else:
                user.set_password(password)
                if name:
                    user.display_name = name
                user.save()
            user_set_role(user=user, role=role)
        verb = "created" if created else "updated"
        self.stdout.write(self.style.SUCCESS(f"{role} {user.display_name} {verb} ({user.id})"))

    @staticmethod
    def stdin_is_tty() -> bool:
        import sys

        return sys.stdin is not None and sys.stdin.isatty()
