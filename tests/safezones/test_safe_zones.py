"""Safe zones: nearest first with distance, radius, CSV import (validated, idempotent)."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from biddt.geo import bounding_box
from safezones.models import SafeZone
from tests.geo import haversine_km

pytestmark = pytest.mark.django_db

# Known places (lat, lng); distances from CN Tower computed independently.
CN_TOWER = (43.6426, -79.3871)
PLACES = {
    "Union Station": (43.6453, -79.3806),      # ~0.6 km
    "Royal Ontario Museum": (43.6677, -79.3948),  # ~2.9 km
    "Pearson Airport": (43.6777, -79.6248),    # ~19.4 km
    "Hamilton City Hall": (43.2557, -79.8711),  # ~58 km
}


@pytest.fixture
def zones():
    made = {name: SafeZone.objects.create(partner_name="Partner", name=name, address=name,
                                          lat=lat, lng=lng)
            for name, (lat, lng) in PLACES.items()}
    SafeZone.objects.create(partner_name="Closed", name="Inactive", address="x",
                            lat=43.6427, lng=-79.3872, is_active=False)
    return made


def test_nearest_first_with_distance(auth_api, zones):
    body = auth_api.get("/v1/safe-zones", {"lat": CN_TOWER[0], "lng": CN_TOWER[1],
                                           "radius_km": 30}).json()
    names = [z["name"] for z in body["results"]]
    assert names == ["Union Station", "Royal Ontario Museum", "Pearson Airport"]
    for zone in body["results"]:
        expected = haversine_km(*CN_TOWER, *PLACES[zone["name"]])
        assert zone["distance_km"] == pytest.approx(expected, abs=0.01)
    assert body["results"][0]["distance_km"] == pytest.approx(0.6, abs=0.1)
    assert set(body) == {"next", "previous", "results"}


def test_radius_limits_results(auth_api, zones):
    body = auth_api.get("/v1/safe-zones", {"lat": CN_TOWER[0], "lng": CN_TOWER[1],
                                           "radius_km": 1}).json()
    assert [z["name"] for z in body["results"]] == ["Union Station"]


def test_without_position_lists_active_zones(auth_api, zones):
    body = auth_api.get("/v1/safe-zones").json()
    assert len(body["results"]) == 4
    assert all(z["distance_km"] is None for z in body["results"])


@pytest.mark.parametrize("params,attr", [
    ({"lat": 91, "lng": 0}, "lat"), ({"lat": 0, "lng": 181}, "lng"),
    ({"lat": 0, "lng": 0, "radius_km": 501}, "radius_km"), ({"lat": "x", "lng": 0}, "lat"),
    ({"lat": 10}, None),
])
def test_bad_query_is_400(auth_api, params, attr):
    response = auth_api.get("/v1/safe-zones", params)
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] in {attr, "non_field_errors"}


def test_bounding_box_contains_the_circle_and_wraps_the_antimeridian():
    box = bounding_box(0.0, 179.9, 50)
    assert box.wraps
    assert box.q("lat", "lng")  # builds a valid filter
    polar = bounding_box(89.9, 0, 100)
    assert (polar.min_lng, polar.max_lng) == (-180, 180)
    plain = bounding_box(*CN_TOWER, 10)
    assert plain.min_lat < CN_TOWER[0] < plain.max_lat
    assert haversine_km(*CN_TOWER, plain.max_lat, CN_TOWER[1]) == pytest.approx(10, rel=1e-3)


CSV = """partner_name,name,address,lat,lng,phone,hours,is_active,external_ref
Toronto Police,52 Division,255 Dundas St W,43.6545,-79.3905,416-808-5200,\
"{""mon"": ""24h""}",yes,tps-52
Canadian Tire,Stockyards,2129 St Clair Ave W,43.6717,-79.4700,,Mon-Fri 9-5,yes,
Broken,,No coordinates,,,,,,
Broken,,Bad lat,123,-79,,,,
Broken,,Bad flag,43,-79,,,maybe,
"""


def run_import(tmp_path, text):
    path = tmp_path / "zones.csv"
    path.write_text(text)
    out = io.StringIO()
    try:
        call_command("import_safe_zones", str(path), stdout=out, stderr=io.StringIO())
        code = 0
    except CommandError as exc:
        code = exc.returncode
        out.write(str(exc))
    return code, out.getvalue()


def test_csv_import_reports_bad_rows_and_is_idempotent(tmp_path):
    code, out = run_import(tmp_path, CSV)
    assert code == 2
    assert "created 2, updated 0, unchanged 0, rejected 3" in out
    assert "line 4: lat is empty" in out
    assert "line 5: lat 123.0 is outside -90..90" in out
    assert "line 6: is_active 'maybe' is not yes/no" in out
    tps = SafeZone.objects.get(external_ref="tps-52")
    assert tps.hours == {"mon": "24h"}
    tire = SafeZone.objects.get(partner_name="Canadian Tire")
    assert tire.hours == {"all": "Mon-Fri 9-5"} and tire.external_ref.startswith("csv:")
    # when the same file runs again, nothing changes
    code, out = run_import(tmp_path, CSV)
    assert "created 0, updated 0, unchanged 2, rejected 3" in out
    assert SafeZone.objects.count() == 2
    # and an edited row updates in place
    code, out = run_import(tmp_path, CSV.replace("416-808-5200", "416-808-0000"))
    assert "updated 1" in out
    assert SafeZone.objects.get(external_ref="tps-52").phone == "416-808-0000"


def test_csv_import_refuses_a_file_without_the_columns(tmp_path):
    code, out = run_import(tmp_path, "name,address\nx,y\n")
    assert code == 1
    assert "missing columns: partner_name, lat, lng" in out


def test_csv_import_missing_file():
    with pytest.raises(CommandError, match="no such file"):
        call_command("import_safe_zones", "/nonexistent/zones.csv")
