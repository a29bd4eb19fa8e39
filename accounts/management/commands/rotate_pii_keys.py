"""Re-encrypt personal data with the active key of BIDDT_PII_KEYS (the first one listed).

Rotation: put the new key first in BIDDT_PII_KEYS, keep the old one after it, deploy, run
this command, then remove the old key. Rows already under the active key are skipped, so
the command can be stopped and run again.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.db import connection, transaction
from tqdm import tqdm

from accounts.models import User
from biddt import crypto


class Command(BaseCommand):
    help = "Re-encrypt phone numbers and e-mail addresses with the active PII key."

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args, batch_size: int, **options):
        active = crypto.active_key_id()
        table = User._meta.db_table
        total = User.objects.count()
        rotated = 0
        with tqdm(total=total, unit="user", disable=options["verbosity"] == 0,
                  file=self.stdout) as bar:
            last = None
            while True:
                qs = User.objects.order_by("pk")
                if last is not None:
                    qs = qs.filter(pk__gt=last)
                ids = list(qs.values_list("pk", flat=True)[:batch_size])
                if not ids:
                    break
                with transaction.atomic(), connection.cursor() as cur:
                    cur.execute(
                        f"SELECT id, phone_number, email FROM {table} WHERE id IN "  # noqa: S608
                        f"({', '.join(['%s'] * len(ids))})",
                        [User._meta.pk.get_db_prep_value(i, connection) for i in ids],
                    )
                    for pk, phone_raw, email_raw in cur.fetchall():
                        stale = [v for v in (phone_raw, email_raw)
                                 if v and crypto.key_id_of(v) != active]
                        if not stale:
                            continue
                        user = User.objects.select_for_update().get(
                            pk=User._meta.pk.to_python(pk))
                        # Saving re-encrypts both fields with the active key.
                        user.save(update_fields=["phone_number", "email"])
                        rotated += 1
                last = ids[-1]
                bar.update(len(ids))
        self.stdout.write(self.style.SUCCESS(
            f"{rotated} of {total} users re-encrypted under key {active!r}"))
