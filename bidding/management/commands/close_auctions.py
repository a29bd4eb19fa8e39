from django.core.management.base import BaseCommand

from bidding.services import auction_sweep


class Command(BaseCommand):
    help = "Close every auction whose end has passed, now (one sweep), and print how many."

    def handle(self, *args, **options):
        total = 0
        while closed := auction_sweep(limit=500):
            total += closed
        self.stdout.write(f"closed {total} auction(s)")
