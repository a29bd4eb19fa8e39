"""POST /v1/listings/{id}/report: a user's report feeds the moderation queue."""

from __future__ import annotations

import pytest

from listings.models import ListingReport
from tests.factories import ListingFactory

pytestmark = pytest.mark.django_db


def test_report_once_then_409(auth_api, user):
    listing = ListingFactory()
    url = f"/v1/listings/{listing.pk}/report"
    first = auth_api.post(url, {"reason": "counterfeit", "details": "logo is wrong"},
                          format="json")
    assert first.status_code == 201, first.json()
    assert first.json()["reason"] == "counterfeit" and first.json()["status"] == "open"
    report = ListingReport.objects.get()
    assert report.reporter == user and report.listing == listing
    again = auth_api.post(url, {"reason": "scam"}, format="json")
    assert again.status_code == 409
    assert again.json()["errors"][0]["code"] == "already_reported"


def test_reason_from_the_fixed_list(auth_api):
    listing = ListingFactory()
    response = auth_api.post(f"/v1/listings/{listing.pk}/report", {"reason": "ugly"},
                             format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "reason"


def test_report_needs_auth_and_a_visible_listing(api, auth_api, user):
    listing = ListingFactory()
    assert api.post(f"/v1/listings/{listing.pk}/report", {"reason": "scam"},
                    format="json").status_code == 401
    draft = ListingFactory(status="draft")
    assert auth_api.post(f"/v1/listings/{draft.pk}/report", {"reason": "scam"},
                         format="json").status_code == 404
    own = ListingFactory(seller=user)
    response = auth_api.post(f"/v1/listings/{own.pk}/report", {"reason": "scam"},
                             format="json")
    assert response.status_code == 409
    assert response.json()["errors"][0]["code"] == "own_listing"
