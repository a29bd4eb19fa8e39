"""Demo data for `make run`: a staff admin, demo users on test phone numbers, listings, safe zones.

Idempotent: running it again tops up what's missing and creates no duplicates. Refuses to
run in production.
"""

from __future__ import annotations

import random
from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone
from tqdm import tqdm

from accounts.models import User, format_e164, phone_index
from accounts.roles import ADMIN, user_set_role
from accounts.services import test_phone_numbers
from listings.models import AuctionType, Category, Condition, Listing
from safezones.models import SafeZone

ADMIN_PHONE = "+15555550199"
DEMO_NAMES = ["Jordan", "Priya", "Mateo", "Aiko", "Sam", "Noor", "Liam", "Chloé"]
CITY = ("Toronto", 43.6532, -79.3832)
ITEMS = [
    ("Road bike, 54 cm aluminium frame", Category.SPORTS, 24000),
    ("Mid-century teak sideboard", Category.FURNITURE, 45000),
    ("Nintendo Switch OLED with two games", Category.ELECTRONICS, 28000),
    ("Vintage Leica M3 camera body", Category.COLLECTIBLES, 120000),
    ("Cordless drill set, two batteries", Category.TOOLS, 6000),
    ("Acoustic guitar, solid spruce top", Category.MUSIC, 18000),
    ("Winter parka, men's L", Category.CLOTHING, 9000),
    ("Complete Harry Potter hardcover set", Category.BOOKS, 7500),
    ("LEGO Millennium Falcon 75192, sealed", Category.TOYS, 65000),
    ("Espresso machine with grinder", Category.HOME, 35000),
    ("Winter tires on rims, 205/55R16", Category.VEHICLES, 40000),
    ("Standing desk, electric, 140 cm", Category.FURNITURE, 30000),
]
SAFE_ZONES = [
    ("Toronto Police Service", "52 Division", "255 Dundas St W, Toronto", 43.6545, -79.3905),
    ("Toronto Police Service", "14 Division", "350 Dovercourt Rd, Toronto", 43.6508, -79.4262),
    ("Canadian Tire", "Stockyards", "2129 St Clair Ave W, Toronto", 43.6717, -79.4700),
    ("Toronto Public Library", "Toronto Reference Library", "789 Yonge St, Toronto",
     43.6719, -79.3867),
]


class Command(BaseCommand):
    help = "Load demo users, listings and safe zones (idempotent; development only)."

    def add_arguments(self, parser):
        parser.add_argument("--listings", type=int, default=len(ITEMS),
                            help="how many demo listings to have in all")
        parser.add_argument("--admin-password", default="biddt-demo-admin",
                            help="password of the demo admin (development only)")
        parser.add_argument("--seed", type=int, default=7)

    def handle(self, *args, listings: int, admin_password: str, seed: int, **options):
        if settings.PRODUCTION:
            raise CommandError("seed_demo refuses to run with BIDDT_ENVIRONMENT=production")
        if listings < 0:
            raise CommandError("--listings must be zero or more")
        rng = random.Random(seed)
        with transaction.atomic():
            admin = self._user(ADMIN_PHONE, "Biddt Admin")
            admin.set_password(admin_password)
            admin.save()
            user_set_role(user=admin, role=ADMIN)
            numbers = list(test_phone_numbers().items())
            demo_users = [self._user(phone, DEMO_NAMES[i % len(DEMO_NAMES)])
                          for i, (phone, _code) in enumerate(numbers)]
            if not demo_users:
                demo_users = [self._user(f"+1555555{i:04d}", name)
                              for i, name in enumerate(DEMO_NAMES[:3], start=110)]
            for partner, name, address, lat, lng in SAFE_ZONES:
                SafeZone.objects.update_or_create(
                    external_ref=f"demo:{name}",
                    defaults={"partner_name": partner, "name": name, "address": address,
                              "lat": lat, "lng": lng, "hours": {"mon-sun": "08:00-22:00"}},
                )
        have = Listing.objects.filter(title__startswith="[demo]").count()
        now = timezone.now()
        for n in tqdm(range(have, listings), desc="listings", unit="listing",
                      disable=options["verbosity"] == 0 or listings - have <= 0,
                      file=self.stderr):
            title, category, price = ITEMS[n % len(ITEMS)]
            start = max(500, int(price * rng.uniform(0.3, 0.8)) // 100 * 100)
            name, lat, lng = CITY
            Listing.objects.create(
                seller=demo_users[n % len(demo_users)],
                title=f"[demo] {title}" if n < len(ITEMS) else f"[demo] {title} #{n}",
                description=f"{title}. Pick-up in {name}; meet at a safe zone.",
                category=category,
                condition=rng.choice(Condition.values),
                auction_type=AuctionType.BOTH if n % 3 == 0 else AuctionType.AUCTION,
                starting_price_cents=start,
                current_price_cents=start,
                buy_now_price_cents=price if n % 3 == 0 else None,
                reserve_price_cents=int(start * 1.2) if n % 4 == 1 else None,
                status=Listing.Status.ACTIVE,
                starts_at=now,
                ends_at=now + timedelta(hours=rng.randint(2, 24 * 7)),
                location_lat=round(lat + rng.uniform(-0.08, 0.08), 5),
                location_lng=round(lng + rng.uniform(-0.12, 0.12), 5),
                location_name=name,
            )
        self._report(numbers, admin_password)

    @staticmethod
    def _user(phone: str, name: str) -> User:
        e164 = format_e164(phone)
        user = User.objects.filter(phone_index=phone_index(e164)).first()
        return user or User.objects.create_user(e164, display_name=name)

    def _report(self, numbers, admin_password: str) -> None:
        out = self.stdout
        out.write(self.style.SUCCESS("Demo data ready."))
        out.write(f"  Staff console: /admin/  login {ADMIN_PHONE} / {admin_password}")
        if numbers:
            out.write("  Demo users (POST /v1/auth/phone/send-code, then /verify with the code):")
            for phone, code in numbers:
                out.write(f"    {phone}  code {code}")
        else:
            out.write("  Set BIDDT_TEST_PHONE_NUMBERS to log in as demo users "
                      "(`make run` does).")
