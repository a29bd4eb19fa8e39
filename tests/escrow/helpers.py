from __future__ import annotations

from rest_framework.test import APIClient

from escrow.ledger import books_check
from escrow.models import LedgerEntry
from tests.conftest import bearer


def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=bearer(user))
    return client


def assert_books_balanced() -> None:
    """Every journal and every transaction sums to zero and escrow holds what it should."""
    report = books_check()
    assert report.ok, report.problems()


def journal_kinds(txn) -> list[str]:
    return sorted(set(LedgerEntry.objects.filter(transaction=txn).values_list("kind", flat=True)))


def error_code(response) -> str:
    return response.json()["errors"][0]["code"]
