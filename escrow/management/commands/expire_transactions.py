"""`manage.py expire_transactions`: run the escrow expiry jobs now.

Cancels sales unpaid past the payment window, sends meetup reminders and refunds those past
the meetup window: the services the Celery beat schedule runs, one transaction at a time.
Exit codes: 0 all done, 1 some transactions failed (listed; rerun, every step is idempotent).
"""

from __future__ import annotations

import logging

from django.core.management.base import BaseCommand
from tqdm import tqdm

from escrow import selectors, services

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = ("Run the escrow expiry jobs now: cancel transactions unpaid past the payment "
            "window, send meetup reminders and refund those past the meetup window. "
            "Exit 1 when some fail.")

    def handle(self, *args, **options):
        quiet = options["verbosity"] == 0
        failed: list[str] = []
        unpaid = selectors.transactions_unpaid_due_ids()
        cancelled = 0
        for pk in tqdm(unpaid, unit="txn", desc="unpaid", file=self.stderr,
                       disable=quiet or not unpaid):
            try:
                cancelled += services.transaction_expire_unpaid(transaction_id=pk)
            except Exception as exc:  # noqa: BLE001 - report, go on with the others
                logger.exception("expiring %s failed", pk)
                failed.append(f"{pk}: {exc}")
        held = selectors.transactions_meetup_due_ids()
        meetup = 0
        for pk in tqdm(held, unit="txn", desc="meetups", file=self.stderr,
                       disable=quiet or not held):
            try:
                meetup += services.transaction_meetup_check(transaction_id=pk) is not None
            except Exception as exc:  # noqa: BLE001
                logger.exception("meetup check of %s failed", pk)
                failed.append(f"{pk}: {exc}")
        self.stdout.write(f"cancelled {cancelled} unpaid; {meetup} meetup reminders or refunds")
        if failed:
            for line in failed:
                self.stderr.write(f"failed {line}")
            self.stderr.write(self.style.ERROR(f"{len(failed)} transaction(s) failed"))
            raise SystemExit(1)
