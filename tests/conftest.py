"""Shared fixtures: API clients, users, tokens; isolation of cache, SMS outbox and throttles."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from tests.factories import UserFactory


def pytest_collection_modifyitems(config, items):
    """`postgres` tests skip with a reason on SQLite (locking and full-text search need PG)."""
    if settings.USING_POSTGRES:
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL: set DATABASE_URL (CI does)")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _isolation():
    from accounts.services import _parse_test_numbers
    from accounts.sms import InMemoryBackend

    cache.clear()
    InMemoryBackend.outbox.clear()
    _parse_test_numbers.cache_clear()
    yield
    _parse_test_numbers.cache_clear()


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def user(db):
    return UserFactory()


def bearer(user) -> str:
    return f"Bearer {RefreshToken.for_user(user).access_token}"


@pytest.fixture
def auth_api(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=bearer(user))
    return client


@pytest.fixture
def pg():
    """Skip unless the database is PostgreSQL."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: set DATABASE_URL (CI does)")
