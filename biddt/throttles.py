"""Throttles whose rates are read from settings at request time (`BIDDT_THROTTLE_*`).

Fixed-window counters (`INCR`, expiring with the window) in the cache's Redis: every
throttle of a request is counted in ONE round trip (a Lua script over all their keys), where
DRF's own throttles read and rewrote a pickled list per throttle (two round trips each). The
first throttle DRF asks counts them all and keeps the answers on the request; the others
read theirs. Redis down: every throttle allows (fail open, as the cache does), and /readyz
reports the outage. Without Redis (development, the SQLite test run) the counters live in
Django's cache.

`Retry-After` is the time left in the refusing throttle's window. A throttle with
`count_on_success` only checks (`listing_create`: a refused 400 doesn't use up the hour);
its view calls `record()` once the thing is created.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache, caches
from django_redis import get_redis_connection
from django_redis.cache import RedisCache
from redis.commands.core import Script
from rest_framework.throttling import SimpleRateThrottle

logger = logging.getLogger(__name__)

# KEYS: the counters; ARGV: per key, its window in ms and 1 (count) or 0 (only read).
# Answers, per key: {count, ms left in the window}.
_HIT_SCRIPT = """
local out = {}
for i, key in ipairs(KEYS) do
  local window = tonumber(ARGV[2 * i - 1])
  local count
  if ARGV[2 * i] == '1' then
    count = redis.call('INCR', key)
    if count == 1 then redis.call('PEXPIRE', key, window) end
  else
    count = tonumber(redis.call('GET', key) or '0')
  end
  local left = redis.call('PTTL', key)
  if left == -1 then
    redis.call('PEXPIRE', key, window)
    left = window
  end
  out[i] = {count, left}
end
return out
"""

_ANSWERS = "biddt_throttle_answers"


@dataclass(frozen=True, slots=True)
class _Hit:
    key: str
    window_ms: int
    count: bool


def _redis_client():
    """The cache's Redis client, or None when the cache is not django-redis."""
    if not isinstance(caches["default"], RedisCache):
        return None
    return get_redis_connection("default")


_script: Script | None = None


def _hit_redis(client, hits: list[_Hit]) -> list[tuple[int, int]] | None:
    global _script
    if _script is None:
        _script = client.register_script(_HIT_SCRIPT)  # EVALSHA, loaded again if missing
    args: list[Any] = []
    for hit in hits:
        args += [hit.window_ms, 1 if hit.count else 0]
    try:
        answers = _script(keys=[cache.make_key(h.key) for h in hits], args=args,
                          client=client)
    except Exception:  # noqa: BLE001 - Redis down: throttles fail open
        logger.debug("throttle counters unavailable", exc_info=True)
        return None
    return [(int(count), int(left)) for count, left in answers]


def _hit_cache(hits: list[_Hit]) -> list[tuple[int, int]]:
    """The same counters in Django's cache (no Redis): not atomic, for development only."""
    now = time.monotonic()
    answers = []
    for hit in hits:
        count, ends = cache.get(hit.key) or (0, now + hit.window_ms / 1000)
        if ends <= now:
            count, ends = 0, now + hit.window_ms / 1000
        if hit.count:
            count += 1
            cache.set(hit.key, (count, ends), timeout=max(1, int(ends - now) + 1))
        answers.append((count, max(0, int((ends - now) * 1000))))
    return answers


def hit(hits: list[_Hit]) -> list[tuple[int, int]] | None:
    """Count (or read) each counter; None when the counters are unavailable (fail open)."""
    if not hits:
        return []
    client = _redis_client()
    if client is None:
        return _hit_cache(hits)
    return _hit_redis(client, hits)


def client_ip(request) -> str | None:
    """The client IP every per-IP limit keys on (DRF's rule: `BIDDT_NUM_PROXIES`), also for
    django-axes' staff login limit and the request logs."""
    return IPThrottle().get_ident(request)


class RateThrottle(SimpleRateThrottle):
    """DRF's throttle interface (`allow_request`, `wait`, `get_cache_key`), fixed window."""

    scope: str
    count_on_success = False  # True: only checked here; the view calls `record()`

    def get_rate(self):
        return settings.THROTTLE_RATES.get(self.scope)

    def _hit(self, key: str, *, count: bool) -> _Hit:
        return _Hit(key, int(self.duration * 1000), count)

    def allow_request(self, request, view) -> bool:
        self.left_ms = 0
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        answers = getattr(request, _ANSWERS, None)
        if answers is None or (self.scope, self.key) not in answers:
            answers = _count_all(request, view, self)
        answer = answers.get((self.scope, self.key))
        if answer is None:  # counters unavailable: fail open
            return True
        counted, self.left_ms = answer
        limit = self.num_requests - (1 if self.count_on_success else 0)
        return counted <= limit

    def wait(self) -> float | None:
        return max(self.left_ms / 1000, 0.001)

    def record(self, request, view=None) -> None:
        """Count one use (a `count_on_success` throttle, once its view succeeded)."""
        if self.rate is None:
            return
        key = self.get_cache_key(request, view)
        if key is not None:
            hit([self._hit(key, count=True)])


def _count_all(request, view, asking: RateThrottle) -> dict:
    """Count every RateThrottle of the view in one round trip; keep the answers on the request
    so each throttle DRF asks next reads its own."""
    throttles = [asking]
    if view is not None and hasattr(view, "get_throttles"):
        throttles += [t for t in view.get_throttles()
                      if isinstance(t, RateThrottle) and type(t) is not type(asking)]
    keyed: list[tuple[RateThrottle, str]] = [(asking, asking.key)]
    for throttle in throttles[1:]:
        if throttle.rate is None:
            continue
        key = throttle.get_cache_key(request, view)
        if key is not None:
            keyed.append((throttle, key))
    answers = hit([t._hit(k, count=not t.count_on_success) for t, k in keyed])
    stored = ({} if answers is None else
              {(t.scope, k): a for (t, k), a in zip(keyed, answers, strict=True)})
    if answers is None:
        stored = {(t.scope, k): None for t, k in keyed}
    try:
        setattr(request, _ANSWERS, stored)
    except AttributeError:  # an object without attributes of its own: ask again next time
        pass
    return stored


class UserThrottle(RateThrottle):
    """`BIDDT_THROTTLE_USER` (100/min) per authenticated user; anonymous callers get `anon`."""

    scope = "user"

    def get_cache_key(self, request, view):
        user = request.user
        if not (user and user.is_authenticated):
            return None
        return self.cache_format % {"scope": self.scope, "ident": user.pk}


class AnonThrottle(RateThrottle):
    """`BIDDT_THROTTLE_ANON` (300/min) per client IP, anonymous callers only."""

    scope = "anon"

    def get_cache_key(self, request, view):
        user = request.user
        if user and user.is_authenticated:
            return None
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class ScopedUserThrottle(RateThrottle):
    """Per-user throttle for one action (`bid`, `listing_create`); anonymous falls back to IP."""

    def get_cache_key(self, request, view):
        ident = request.user.pk if request.user and request.user.is_authenticated else \
            self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}


class IPThrottle(RateThrottle):
    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}

