"""`manage.py close_auctions`: close every auction whose end has passed, now.

Each due listing is closed by `bidding.services.auction_close` (the same conditional update
the Celery sweep uses, so running this beside the workers closes nothing twice). Exit codes:
0 every due auction is closed (or none was due), 1 some failed (each is listed; rerun).
"""

from __future__ import annotations

import logging

from django.core.management.base import BaseCommand
from tqdm import tqdm

from bidding.selectors import auctions_due_ids
from bidding.services import auction_close

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Close every auction whose end has passed, now, and print how many. Exit 1 on errors."

    def handle(self, *args, **options):
        due = auctions_due_ids()
        closed, failed = 0, []
        for pk in tqdm(due, unit="auction", desc="closing", file=self.stderr,
                       disable=options["verbosity"] == 0 or not due):
            try:
                closed += auction_close(listing_id=pk)
            except Exception as exc:  # noqa: BLE001 - report, go on with the others
                logger.exception("closing %s failed", pk)
                failed.append(f"{pk}: {exc}")
        self.stdout.write(f"closed {closed} auction(s)")
        if failed:
            for line in failed:
                self.stderr.write(f"failed {line}")
            self.stderr.write(self.style.ERROR(f"{len(failed)} auction(s) could not be closed"))
            raise SystemExit(1)
