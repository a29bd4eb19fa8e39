from django.core.management.base import BaseCommand

from escrow.ledger import books_check


class Command(BaseCommand):
    help = ("Verify the books: every journal and every transaction sums to zero, and the escrow "
            "account holds the amounts of the transactions in escrow. Exits 1 on a mismatch.")

    def handle(self, *args, **options):
        report = books_check()
        if report.ok:
            self.stdout.write(f"ledger balanced; escrow holds {report.escrow_held_cents} cents")
            return
        for line in report.problems():
            self.stderr.write(line)
        raise SystemExit(1)
