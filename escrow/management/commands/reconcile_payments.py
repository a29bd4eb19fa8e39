"""`manage.py reconcile_payments [--backend stripe|simulated] [--source mirror|api]
[--since 2026-01-01]`.

Compares our ledger with the payment provider's side (see escrow.reconcile): for `stripe`,
dj-stripe's mirror of the objects we created (`--source mirror`, the default) or Stripe's
balance transactions read from the API (`--source api`)
and prints every difference, and every acknowledged webhook event about an object we don't
have. Exit codes: 0 everything matches, 1 differences found,
2 the provider could not be read (network, credentials).
"""

from __future__ import annotations

from datetime import datetime, time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from tqdm import tqdm

from escrow.payments import GatewayError
from escrow.reconcile import reconcile


def _since(raw: str | None) -> datetime | None:
    if not raw:
        return None
    value = parse_datetime(raw)
    if value is None:
        day = parse_date(raw)
        if day is None:
            raise CommandError(f"--since: not a date or time: {raw!r}", returncode=2)
        value = datetime.combine(day, time.min)
    if timezone.is_naive(value):
        value = timezone.make_aware(value)
    return value


class Command(BaseCommand):
    help = ("Compare the ledger with the payment provider's balance transactions; list the "
            "differences. Exit 0 when they match, 1 on differences, 2 if the provider fails.")

    def add_arguments(self, parser):
        parser.add_argument("--backend", choices=["stripe", "simulated"],
                            help="default: BIDDT_PAYMENTS_BACKEND")
        parser.add_argument("--since", help="only movements from this date/time (ISO 8601)")
        parser.add_argument("--source", choices=["mirror", "api"], default="mirror",
                            help="stripe only: dj-stripe's mirror (default) or the API")

    def handle(self, *args, backend: str | None, since: str | None, source: str, **options):
        import stripe

        backend = backend or settings.BIDDT_PAYMENTS_BACKEND
        with tqdm(unit="movement", desc=f"{backend} movements", file=self.stderr,
                  disable=options["verbosity"] == 0) as bar:
            try:
                report = reconcile(backend=backend, since=_since(since), progress=bar.update,
                                   source=source)
            except (GatewayError, stripe.StripeError) as exc:
                raise CommandError(f"could not read the provider: {exc}", returncode=2) from None
        for line in report.unmatched_provider:
            self.stdout.write(f"provider only: {line}")
        for line in report.unknown_events:
            self.stdout.write(f"unknown object: {line}")
        for diff in report.differences:
            self.stdout.write(str(diff))
        if not report.ok:
            problems = (len(report.differences) + len(report.unmatched_provider)
                        + len(report.unknown_events))
            self.stderr.write(self.style.ERROR(
                f"{problems} difference(s) in {report.compared} movement(s) ({backend})"))
            raise SystemExit(1)
        self.stdout.write(self.style.SUCCESS(
            f"ledger matches the provider: {report.compared} movement(s) ({backend})"))
