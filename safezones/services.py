"""Safe zone writes: the idempotent CSV import used by `manage.py import_safe_zones`."""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from django.db import transaction

from safezones.models import SafeZone

REQUIRED = ("partner_name", "address", "lat", "lng")
OPTIONAL = ("name", "phone", "hours", "is_active", "external_ref")
TRUE = {"1", "true", "yes", "y", "active"}
FALSE = {"0", "false", "no", "n", "inactive"}


class ImportFileError(ValueError):
    """The file as a whole can't be imported (missing columns, not CSV)."""


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line number, reason)


def _row_clean(row: dict[str, str]) -> dict:
    data = {k: (row.get(k) or "").strip() for k in (*REQUIRED, *OPTIONAL)}
    for key in REQUIRED:
        if not data[key]:
            raise ValueError(f"{key} is empty")
    try:
        lat, lng = float(data["lat"]), float(data["lng"])
    except ValueError:
        raise ValueError("lat and lng must be numbers") from None
    if not -90 <= lat <= 90:
        raise ValueError(f"lat {lat} is outside -90..90")
    if not -180 <= lng <= 180:
        raise ValueError(f"lng {lng} is outside -180..180")
    if len(data["partner_name"]) > 255 or len(data["address"]) > 500:
        raise ValueError("partner_name or address is too long")
    hours: dict = {}
    if data["hours"]:
        try:
            hours = json.loads(data["hours"])
        except json.JSONDecodeError:
            hours = {"all": data["hours"]}  # free text like "Mon-Fri 9-5"
        if not isinstance(hours, dict):
            raise ValueError("hours must be a JSON object or free text")
    active = data["is_active"].lower()
    if active and active not in TRUE | FALSE:
        raise ValueError(f"is_active {data['is_active']!r} is not yes/no")
    ref = data["external_ref"] or "csv:" + hashlib.sha256(
        f"{data['partner_name'].lower()}|{data['address'].lower()}".encode()).hexdigest()[:32]
    return {
        "external_ref": ref[:128],
        "values": {"partner_name": data["partner_name"], "name": data["name"][:255],
                   "address": data["address"], "lat": lat, "lng": lng,
                   "phone": data["phone"][:32], "hours": hours,
                   "is_active": active not in FALSE},
    }


def csv_rows(lines: Iterable[str]) -> Iterator[tuple[int, dict[str, str]]]:
    reader = csv.DictReader(lines)
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise ImportFileError(f"missing columns: {', '.join(missing)}")
    reader.fieldnames = header
    for row in reader:
        yield reader.line_num, row


def safe_zone_import_row(*, line: int, row: dict[str, str], report: ImportReport) -> None:
    """Create or update one zone by its external_ref; a bad row is reported, not raised."""
    try:
        clean = _row_clean(row)
    except ValueError as exc:
        report.rejected.append((line, str(exc)))
        return
    with transaction.atomic():
        zone = SafeZone.objects.select_for_update(of=("self",), no_key=True).filter(
            external_ref=clean["external_ref"]).first()
        if zone is None:
            SafeZone.objects.create(external_ref=clean["external_ref"], **clean["values"])
            report.created += 1
            return
        changed = [k for k, v in clean["values"].items() if getattr(zone, k) != v]
        if not changed:
            report.unchanged += 1
            return
        for key in changed:
            setattr(zone, key, clean["values"][key])
        zone.save(update_fields=[*changed, "updated_at"])
        report.updated += 1
