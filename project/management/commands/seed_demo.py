"""Demo data for `make run`: a staff admin, demo users on test phone numbers, listings, safe zones.

Idempotent: running it again tops up what's missing and creates no duplicates. Refuses to
run in production.
"""

from __future__ import annotations

import io
import random
from datetime import timedelta

from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone
from tqdm import tqdm

from accounts.models import User, format_e164, phone_index
from accounts.roles import ADMIN, user_set_role
from accounts.services import test_phone_numbers
from biddt.dbstats import analyze
from listings.models import AuctionType, Category, Condition, Listing, ListingImage
from listings.services import listing_image_add
from safezones.models import SafeZone

ADMIN_PHONE = "+15555550199"
DEMO_NAMES = ["Jordan", "Priya", "Mateo", "Aiko", "Sam", "Noor", "Liam", "Chloé"]
CITY = ("Toronto", 43.6532, -79.3832)
NEIGHBOURHOODS = [
    ("Downtown", 43.6510, -79.3820), ("Kensington Market", 43.6547, -79.4005),
    ("The Annex", 43.6703, -79.4067), ("Leslieville", 43.6628, -79.3300),
    ("Liberty Village", 43.6383, -79.4201), ("North York", 43.7615, -79.4111),
    ("Scarborough", 43.7764, -79.2318), ("Etobicoke", 43.6205, -79.5132),
    ("The Beaches", 43.6677, -79.2970), ("Yorkville", 43.6709, -79.3933),
]
CATEGORY_COLORS = {
    Category.SPORTS: (46, 125, 50), Category.FURNITURE: (121, 85, 72),
    Category.ELECTRONICS: (33, 150, 243), Category.COLLECTIBLES: (156, 39, 176),
    Category.TOOLS: (255, 152, 0), Category.MUSIC: (233, 30, 99),
    Category.CLOTHING: (0, 150, 136), Category.BOOKS: (96, 125, 139),
    Category.TOYS: (255, 193, 7), Category.HOME: (139, 195, 74),
    Category.VEHICLES: (69, 90, 100), Category.OTHER: (120, 120, 120),
}
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
        parser.add_argument("--batch-size", type=int, default=2000,
                            help="rows per INSERT for the bulk listings")

    def handle(self, *args, listings: int, admin_password: str, seed: int, batch_size: int,
               **options):
        if settings.PRODUCTION:
            raise CommandError("seed_demo refuses to run with BIDDT_ENVIRONMENT=production")
        if listings < 0:
            raise CommandError("--listings must be zero or more")
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
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
        quiet = options["verbosity"] == 0
        # The first listings (one per demo item) get generated photos through the normal
        # image service; the rest, for load and scale tests (`--listings 100000`), are
        # inserted in batches without images: seconds, not hours.
        pictured = range(have, min(listings, len(ITEMS)))
        for n in tqdm(pictured, desc="listings with photos", unit="listing",
                      disable=quiet or not pictured, file=self.stderr):
            listing = self._listing(n, demo_users, rng, now)
            listing.save()
            for k in range(1 + n % 2):
                listing_image_add(listing_id=listing.pk, user=listing.seller,
                                  upload=demo_image(ITEMS[n % len(ITEMS)][0],
                                                    ITEMS[n % len(ITEMS)][1], variant=k,
                                                    rng=rng))
        bulk = range(max(have, len(ITEMS)), listings)
        with tqdm(total=len(bulk), desc="listings", unit="listing", file=self.stderr,
                  disable=quiet or not bulk) as bar:
            for start in range(bulk.start, bulk.stop, batch_size):
                stop = min(start + batch_size, bulk.stop)
                with transaction.atomic():
                    Listing.objects.bulk_create(
                        [self._listing(n, demo_users, rng, now) for n in range(start, stop)],
                        batch_size=batch_size)
                bar.update(stop - start)
        # The pictured demo listings from before images existed get one now (tops up).
        pictured_titles = [f"[demo] {title}" for title, _c, _p in ITEMS]
        for listing in Listing.objects.filter(title__in=pictured_titles, images__isnull=True,
                                              status__in=["draft", "active"]):
            listing_image_add(listing_id=listing.pk, user=listing.seller,
                              upload=demo_image(listing.title, listing.category, variant=0,
                                                rng=rng))
        # Statistics for what was just written: until autovacuum analyzes the tables the
        # planner plans browse for empty ones (see biddt.dbstats).
        analyze(User, Listing, ListingImage, SafeZone)
        self._report(demo_users, dict(numbers), admin_password)

    @staticmethod
    def _listing(n: int, demo_users: list[User], rng: random.Random, now) -> Listing:
        title, category, price = ITEMS[n % len(ITEMS)]
        hood, lat, lng = NEIGHBOURHOODS[n % len(NEIGHBOURHOODS)]
        price = int(price * rng.uniform(0.6, 1.6)) // 100 * 100
        start = max(500, int(price * rng.uniform(0.3, 0.8)) // 100 * 100)
        return Listing(
            seller=demo_users[n % len(demo_users)],
            title=f"[demo] {title}" if n < len(ITEMS) else f"[demo] {title} #{n}",
            description=f"{title}. Pick-up in {hood}, {CITY[0]}; meet at a safe zone.",
            category=category,
            condition=rng.choice(Condition.values),
            auction_type=AuctionType.BOTH if n % 3 == 0 else AuctionType.AUCTION,
            starting_price_cents=start,
            current_price_cents=start,
            buy_now_price_cents=max(price, start) if n % 3 == 0 else None,
            reserve_price_cents=int(start * 1.2) if n % 4 == 1 else None,
            status=Listing.Status.ACTIVE,
            starts_at=now,
            ends_at=now + timedelta(hours=rng.randint(2, 24 * 7)),
            location_lat=round(lat + rng.uniform(-0.015, 0.015), 5),
            location_lng=round(lng + rng.uniform(-0.02, 0.02), 5),
            location_name=f"{hood}, {CITY[0]}",
        )

    @staticmethod
    def _user(phone: str, name: str) -> User:
        e164 = format_e164(phone)
        user = User.objects.filter(phone_index=phone_index(e164)).first()
        return user or User.objects.create_user(e164, display_name=name)

    def _report(self, demo_users: list[User], codes: dict[str, str],
                admin_password: str) -> None:
        """The logins this command seeded: the admin and the demo sellers, no other user.

        A database shared with real accounts (or a long BIDDT_TEST_PHONE_NUMBERS list used
        elsewhere) must not turn into a list of everyone's phone number here.
        """
        out = self.stdout
        out.write(self.style.SUCCESS("Demo data ready."))
        out.write(f"  Staff console: /admin/  login {ADMIN_PHONE} / {admin_password}")
        loginable = [(u, u.phone_number) for u in demo_users if u.phone_number in codes]
        if loginable:
            out.write("  Demo users (POST /v1/auth/phone/send-code, then /verify with the code):")
            for user, phone in loginable:
                out.write(f"    {phone}  code {codes[phone]}  {user.display_name}")
        else:
            out.write("  Set BIDDT_TEST_PHONE_NUMBERS to log in as demo users "
                      "(`make run` does).")

def demo_image(title: str, category: str, *, variant: int, rng: random.Random):
    """A generated JPEG (gradient, shapes, the title) standing in for a seller's photo."""
    from PIL import Image, ImageDraw

    width, height = 1200, 900
    base = CATEGORY_COLORS.get(category, (120, 120, 120))
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    for y in range(height):  # vertical gradient from the category colour to a light tint
        t = y / height
        draw.line([(0, y), (width, y)],
                  fill=tuple(int(c + (235 - c) * t * (0.5 + 0.3 * variant)) for c in base))
    for _ in range(6):
        x, y, r = rng.randint(0, width), rng.randint(0, height), rng.randint(40, 180)
        shade = tuple(min(255, c + rng.randint(20, 80)) for c in base)
        draw.ellipse([x - r, y - r, x + r, y + r], outline=shade, width=8)
    draw.rectangle([60, height - 200, width - 60, height - 60], fill=(255, 255, 255))
    draw.text((90, height - 160), title[:60], fill=(30, 30, 30), font_size=48)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85)
    return SimpleUploadedFile("demo.jpg", out.getvalue(), content_type="image/jpeg")
