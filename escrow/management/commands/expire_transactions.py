from django.core.management.base import BaseCommand

from escrow import services


class Command(BaseCommand):
    help = ("Run the escrow expiry jobs now: cancel transactions unpaid past the payment "
            "window, send meetup reminders and refund those past the meetup window.")

    def handle(self, *args, **options):
        cancelled = services.transactions_expire_unpaid()
        meetup = services.transactions_meetup_sweep()
        self.stdout.write(f"cancelled {cancelled} unpaid; {meetup} meetup reminders or refunds")
