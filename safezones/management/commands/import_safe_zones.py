"""`manage.py import_safe_zones FILE`: load partner meetup places from CSV.

Columns: partner_name, address, lat, lng (required); name, phone, hours (JSON object or
free text), is_active (yes/no), external_ref (the idempotency key; derived from partner and
address when absent). Re-running the same file changes nothing. Exit codes: 0 all rows
imported, 2 some rows rejected (the rest imported; see the report), 1 the file can't be read.
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from biddt.dbstats import analyze
from safezones.models import SafeZone
from safezones.services import ImportFileError, ImportReport, csv_rows, safe_zone_import_row


class Command(BaseCommand):
    help = "Import safe zones from a CSV file (idempotent, with a report of rejected rows)."

    def add_arguments(self, parser):
        parser.add_argument("file", help="CSV file with a header row")

    def handle(self, *args, file: str, **options):
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"no such file: {file}", returncode=1)
        report = ImportReport()
        try:
            with path.open(newline="", encoding="utf-8-sig") as fh:
                total = max(sum(1 for _ in fh) - 1, 0)
                fh.seek(0)
                rows = csv_rows(fh)
                for line, row in tqdm(rows, total=total, unit="row", file=self.stderr,
                                      disable=options["verbosity"] == 0):
                    safe_zone_import_row(line=line, row=row, report=report)
        except ImportFileError as exc:
            raise CommandError(f"{file}: {exc}", returncode=1) from None
        except UnicodeDecodeError:
            raise CommandError(f"{file}: not UTF-8 text", returncode=1) from None
        if report.created or report.updated:
            analyze(SafeZone)  # near-me zone queries plan on fresh statistics
        self.stdout.write(f"created {report.created}, updated {report.updated}, "
                          f"unchanged {report.unchanged}, rejected {len(report.rejected)}")
        for line, reason in report.rejected:
            self.stdout.write(f"  line {line}: {reason}")
        if report.rejected:
            raise CommandError(f"{len(report.rejected)} row(s) rejected", returncode=2)
