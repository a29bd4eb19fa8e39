"""Browse reads on a PostgreSQL read replica, everything else on the primary.

With `DATABASE_REPLICA_URL` set, settings add a second database alias, `replica` (a hot
standby streaming from the primary), install `ReplicaRouter` and `ReplicaReadMiddleware`.

What goes to the replica: the reads of a safe request (GET, HEAD, OPTIONS) to one of the
views named in `BIDDT_REPLICA_READ_VIEWS` (browse and search, a listing, safe zones, public
profiles), outside any transaction. Everything else reads and writes the primary: other
views, unsafe methods, Celery tasks, sockets, management commands, and every query inside
`transaction.atomic` (locks, read-then-write). Migrations run on the primary only; the
replica receives them through replication.

Read-your-writes: a write by a user (any unsafe request that user made, a socket bid) pins
that user to the primary for `BIDDT_REPLICA_PIN_SECONDS`. The pin is in the shared cache, so
every instance sees it. A pinned user's browse reads come from the primary, so their own
listing, bid or profile change is there on the next request however far the replica lags.
The user row behind a token is always read from the primary (accounts.authentication), so a
just-created account never answers 401 while the replica catches up.

Everyone else sees the replica as it is: eventual consistency, normally milliseconds behind.
A listing created or changed by someone else a moment ago may be missing or older there for
that long. Live prices come from the socket (`seq`), which is never served by the replica.

The marking lives here, not in the selectors: a view is a browse view by its URL name, and
the router reads a context variable that the middleware sets around that view only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

from django.conf import settings
from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, connections
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import AccessToken

PRIMARY = DEFAULT_DB_ALIAS
REPLICA = "replica"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# True while the current request's reads may go to the replica. Each HTTP request runs its
# middleware and view in one thread call (biddt.http), so a value set by the middleware is the
# one the router sees for that request's queries, and it is reset before the thread is reused.
_replica_reads: ContextVar[bool] = ContextVar("biddt_replica_reads", default=False)


def replica_enabled() -> bool:
    return REPLICA in settings.DATABASES


def _pin_key(user_id) -> str:
    return f"replica-pin:{user_id}"


def replica_pin_user(*, user_id) -> None:
    """After a write by `user_id`: their reads use the primary for the pin window."""
    if user_id is not None and replica_enabled():
        cache.set(_pin_key(user_id), 1, timeout=settings.BIDDT_REPLICA_PIN_SECONDS)


def replica_user_pinned(*, user_id) -> bool:
    return user_id is not None and cache.get(_pin_key(user_id)) is not None


@contextlib.contextmanager
def use_primary() -> Iterator[None]:
    """Every read inside the block goes to the primary, even in a browse view."""
    token = _replica_reads.set(False)
    try:
        yield
    finally:
        _replica_reads.reset(token)


@contextlib.contextmanager
def use_replica_for_reads() -> Iterator[None]:
    """Reads inside the block (outside a transaction) go to the replica, when there is one."""
    token = _replica_reads.set(replica_enabled())
    try:
        yield
    finally:
        _replica_reads.reset(token)


class ReplicaRouter:
    """`DATABASE_ROUTERS` entry: the replica for marked reads, the primary for all else.

    The answer is always an alias, never None: Django would otherwise send a related lookup
    on an instance loaded from the replica back to the replica, outside any browse view.
    """

    def db_for_read(self, model, **hints) -> str:
        if _replica_reads.get() and not connections[PRIMARY].in_atomic_block:
            return REPLICA
        return PRIMARY

    def db_for_write(self, model, **hints) -> str:
        return PRIMARY

    def allow_relation(self, obj1, obj2, **hints) -> bool:
        return True  # the same rows: the replica is a copy of the primary

    def allow_migrate(self, db, app_label, model_name=None, **hints) -> bool:
        return db == PRIMARY


def _token_user_id(request):
    """The user id an `Authorization: Bearer` access token names, without a database read.

    Only to find a pin before the view runs: the view authenticates the token properly (on
    the primary). An invalid token reads as anonymous here, and the view answers 401.
    """
    header = request.headers.get("Authorization", "")
    scheme, _, raw = header.partition(" ")
    if scheme not in api_settings.AUTH_HEADER_TYPES or not raw:
        return None
    try:
        return AccessToken(raw.strip()).get(api_settings.USER_ID_CLAIM)
    except TokenError:
        return None


class ReplicaReadMiddleware:
    """Marks the reads of browse views for the replica; pins users after their writes."""

    sync_capable = True
    async_capable = False

    def __init__(self, get_response) -> None:
        self.get_response = get_response
        self.views = frozenset(settings.BIDDT_REPLICA_READ_VIEWS)

    def __call__(self, request):
        token = _replica_reads.set(False)
        try:
            response = self.get_response(request)
        finally:
            _replica_reads.reset(token)
        if request.method not in SAFE_METHODS:
            # DRF puts the authenticated user on the Django request; before the response
            # leaves, so the writer's next request already finds the pin.
            user = getattr(request, "user", None)
            if user is not None and user.is_authenticated:
                replica_pin_user(user_id=user.pk)
        return response

    def process_view(self, request, view_func, view_args, view_kwargs):
        match = request.resolver_match
        if (request.method in SAFE_METHODS and match is not None
                and match.url_name in self.views
                and not replica_user_pinned(user_id=_token_user_id(request))):
            _replica_reads.set(True)  # undone by __call__'s reset when the request ends
        return None
