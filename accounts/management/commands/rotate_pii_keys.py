"""Re-encrypt personal data under the active key of BIDDT_PII_KEYS; with --reindex, rebuild
every blind index with the current BIDDT_PII_HMAC_KEY.

Encryption rotation: put the new key first in BIDDT_PII_KEYS, keep the old ones after it,
deploy, run this command, then remove the old keys. HMAC rotation: deploy the new
BIDDT_PII_HMAC_KEY, then run it with --reindex (until it finishes, a user whose index is
still the old one can't log in by phone).

What it covers: `accounts.User.phone_number` and `.email` (the only EncryptedTextFields) and
their indexes `phone_index` / `email_index` / `phone_last4_index` (staff search by the last
four digits), and `accounts.Device.token_index`. Login codes
and handoff QR codes are stored as hashes keyed with the HMAC key and live minutes; they
can't be recomputed (only their hash is kept), so --reindex ends the open login codes and
their owners ask for a new one.

Safe to stop and run again: each batch is its own transaction, rows already under the
active key with a current index are left alone. Before writing anything it decrypts a
sample of rows and refuses to run (exit 2) if the configured keys can't read them: run with
the wrong BIDDT_PII_KEYS, it would otherwise fail on every row. A new index that another row
already holds (e.g. someone signed up again with the same number while indexes were stale)
is reported and the row skipped, not a crash midway (exit 1).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError, transaction
from django.db.models import TextField
from django.db.models.functions import Cast
from django.utils import timezone
from tqdm import tqdm

from accounts.models import (
    Device,
    PhoneOTP,
    User,
    email_index,
    phone_index,
    phone_last4_index,
)
from biddt import crypto


@dataclass
class Tally:
    rows: int = 0
    reencrypted: int = 0
    reindexed: int = 0
    problems: list[str] = field(default_factory=list)


def _raw(qs):
    """The stored ciphertexts, not decrypted by the field."""
    return qs.annotate(raw_phone=Cast("phone_number", TextField()),
                       raw_email=Cast("email", TextField()))


class Command(BaseCommand):
    help = ("Re-encrypt phone numbers and e-mail addresses under the active PII key; "
            "--reindex also rebuilds the blind indexes with the current HMAC key.")

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=500)
        parser.add_argument("--reindex", action="store_true",
                            help="recompute phone, e-mail and device-token blind indexes")
        parser.add_argument("--dry-run", action="store_true",
                            help="report what would change; write nothing")
        parser.add_argument("--sample", type=int, default=100,
                            help="rows decrypted before anything is written (0: skip)")

    def handle(self, *args, batch_size: int, reindex: bool, dry_run: bool, sample: int,
               **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        self.quiet = options["verbosity"] == 0
        active = crypto.active_key_id()
        self._refuse_unreadable(sample)
        users = self._users(active=active, reindex=reindex, dry_run=dry_run,
                            batch_size=batch_size)
        devices = self._devices(dry_run=dry_run, batch_size=batch_size) if reindex else None
        expired = self._expire_open_codes(dry_run=dry_run) if reindex else 0

        verb = "would be" if dry_run else "were"
        lines = [f"{users.reencrypted} of {users.rows} users re-encrypted under key {active!r}"
                 if not dry_run else
                 f"{users.reencrypted} of {users.rows} users would be re-encrypted under key "
                 f"{active!r}"]
        if reindex:
            lines.append(f"{users.reindexed} of {users.rows} users' blind indexes {verb} "
                         "rebuilt")
            lines.append(f"{devices.reindexed} of {devices.rows} device tokens' blind indexes "
                         f"{verb} rebuilt")
            lines.append(f"{expired} open login codes {verb} ended (keyed with the old key)")
        if dry_run:
            lines.append("dry run: nothing was written")
        problems = users.problems + (devices.problems if devices else [])
        for problem in problems:
            self.stderr.write(problem)
        self.stdout.write("\n".join(lines))
        if problems:
            raise CommandError(f"{len(problems)} rows could not be rotated (listed above); "
                               "fix them and run the command again", returncode=1)
        self.stdout.write(self.style.SUCCESS("done"))

    def _refuse_unreadable(self, sample: int) -> None:
        """Decrypt a random sample with the configured keys; refuse to run if any fails."""
        if sample <= 0:
            return
        rows = _raw(User.objects.order_by("?")).values_list("pk", "raw_phone", "raw_email")
        unreadable = []
        for pk, *values in rows[:sample]:
            for value in values:
                if not value:
                    continue
                try:
                    crypto.decrypt(value)
                except crypto.DecryptionError as exc:
                    unreadable.append(f"user {pk}: {exc} (key {crypto.key_id_of(value)!r})")
                    break
        if unreadable:
            listed = "\n  ".join(unreadable[:10])
            raise CommandError(
                f"refusing to run: {len(unreadable)} of the sampled users can't be decrypted "
                f"with BIDDT_PII_KEYS; nothing was written. Keep every key still in use in "
                f"BIDDT_PII_KEYS (the new one first).\n  {listed}", returncode=2)

    def _bar(self, total: int, unit: str) -> tqdm:
        return tqdm(total=total, unit=unit, disable=self.quiet, file=self.stderr)

    def _batches(self, model, *, batch_size: int, unit: str):
        """The model's primary keys in batches (keyset order, so rows added meanwhile are
        not skipped), each yielded inside its own transaction, with a progress bar."""
        last = None
        with self._bar(model.objects.count(), unit) as bar:
            while True:
                qs = model.objects.order_by("pk")
                if last is not None:
                    qs = qs.filter(pk__gt=last)
                ids = list(qs.values_list("pk", flat=True)[:batch_size])
                if not ids:
                    return
                with transaction.atomic():
                    yield ids
                last = ids[-1]
                bar.update(len(ids))

    def _users(self, *, active: str, reindex: bool, dry_run: bool, batch_size: int) -> Tally:
        tally = Tally(rows=User.objects.count())
        for ids in self._batches(User, batch_size=batch_size, unit="user"):
            rows = _raw(User.objects.select_for_update(of=("self",), no_key=True)
                        .filter(pk__in=ids).order_by("pk")).values_list(
                "pk", "raw_phone", "raw_email", "phone_index", "email_index",
                "phone_last4_index")
            for row in rows:
                self._user(row, active=active, reindex=reindex, dry_run=dry_run, tally=tally)
        return tally

    def _user(self, row, *, active: str, reindex: bool, dry_run: bool, tally: Tally) -> None:
        pk, raw_phone, raw_email, old_phone_index, old_email_index, old_last4 = row
        try:
            phone = crypto.decrypt(raw_phone) if raw_phone else ""
            email = crypto.decrypt(raw_email) if raw_email else ""
        except crypto.DecryptionError as exc:
            tally.problems.append(f"user {pk}: can't be decrypted ({exc}); left as it is")
            return
        changes: dict[str, str | None] = {}
        if any(v and crypto.key_id_of(v) != active for v in (raw_phone, raw_email)):
            # The field encrypts on write: plain values are stored under the active key.
            changes.update(phone_number=phone, email=email)
        if reindex:
            new_phone_index = phone_index(phone)
            new_email_index = email_index(email) if email else None
            if new_phone_index != old_phone_index:
                changes["phone_index"] = new_phone_index
            if new_email_index != old_email_index:
                changes["email_index"] = new_email_index
            if phone_last4_index(phone) != old_last4:
                changes["phone_last4_index"] = phone_last4_index(phone)
        if not changes:
            return
        reindexed = any(name in changes
                        for name in ("phone_index", "email_index", "phone_last4_index"))
        taken = self._taken(pk, changes)
        if taken:
            tally.problems.append(f"user {pk}: its new {taken} is already another user's "
                                  "(a duplicate account?); left as it is")
            return
        if not dry_run:
            try:
                # A savepoint: a collision that appeared since the check above fails this
                # row only, not the batch.
                with transaction.atomic():
                    User.objects.filter(pk=pk).update(**changes)
            except IntegrityError:
                tally.problems.append(f"user {pk}: its new blind index is already another "
                                      "user's; left as it is")
                return
        tally.reencrypted += "phone_number" in changes
        tally.reindexed += reindexed

    @staticmethod
    def _taken(pk, changes: dict) -> str | None:
        for name in ("phone_index", "email_index"):
            value = changes.get(name)
            if value and User.objects.filter(**{name: value}).exclude(pk=pk).exists():
                return name
        return None

    def _devices(self, *, dry_run: bool, batch_size: int) -> Tally:
        tally = Tally(rows=Device.objects.count())
        for ids in self._batches(Device, batch_size=batch_size, unit="device"):
            for pk, token, old in (Device.objects
                                   .select_for_update(of=("self",), no_key=True)
                                   .filter(pk__in=ids).order_by("pk")
                                   .values_list("pk", "token", "token_index")):
                new = crypto.blind_index(token, purpose="device")
                if new == old:
                    continue
                if Device.objects.filter(token_index=new).exclude(pk=pk).exists():
                    tally.problems.append(f"device {pk}: its new token index is "
                                          "already another device's; left as it is")
                    continue
                if not dry_run:
                    try:
                        with transaction.atomic():
                            Device.objects.filter(pk=pk).update(token_index=new)
                    except IntegrityError:
                        tally.problems.append(f"device {pk}: its new token index is "
                                              "already another device's")
                        continue
                tally.reindexed += 1
        return tally

    @staticmethod
    def _expire_open_codes(*, dry_run: bool) -> int:
        open_codes = PhoneOTP.objects.filter(consumed_at__isnull=True,
                                             expires_at__gt=timezone.now())
        if dry_run:
            return open_codes.count()
        return open_codes.update(consumed_at=timezone.now())
