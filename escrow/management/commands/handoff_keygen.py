"""Print a new Ed25519 key for offline handoff tokens (biddt.handoff_tokens)."""

from django.core.management.base import BaseCommand

from biddt.handoff_tokens import new_key_lines


class Command(BaseCommand):
    help = ("Print a new handoff signing key: the BIDDT_HANDOFF_SIGNING_KEY value, and the "
            "public entry to append to BIDDT_HANDOFF_PREVIOUS_KEYS when it is retired.")

    def add_arguments(self, parser):
        parser.add_argument("kid", help="the key id, e.g. 2026-12")

    def handle(self, *args, kid: str, **options):
        signing, public = new_key_lines(kid)
        self.stdout.write(f"BIDDT_HANDOFF_SIGNING_KEY={signing}\n")
        self.stdout.write(f"# after the next rotation, append to BIDDT_HANDOFF_PREVIOUS_KEYS: "
                          f"{public}\n")
