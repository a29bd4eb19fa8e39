"""The client's address, as the throttles see it, for storing and logging."""

from __future__ import annotations

import ipaddress

from rest_framework.throttling import BaseThrottle


def client_ip(request) -> str | None:
    """DRF's rule (`get_ident`): REMOTE_ADDR, or with `BIDDT_NUM_PROXIES`=N the N-th
    X-Forwarded-For entry from the right, the one our own proxy wrote (deploy/nginx.conf
    overwrites the header with the address it saw). None when that isn't an IP address
    (a client talking to the server directly, past the proxy, with a made-up header)."""
    ident = BaseThrottle().get_ident(request)
    try:
        return str(ipaddress.ip_address(ident))
    except ValueError:
        return None
