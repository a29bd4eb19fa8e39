"""biddt.client_ip: the address the throttles see, checked before it is stored."""

from __future__ import annotations

import pytest
from django.test import RequestFactory, override_settings
from rest_framework.settings import api_settings

from biddt.client_ip import client_ip


@pytest.fixture
def proxies():
    def use(n: int):
        settings = override_settings(REST_FRAMEWORK={"NUM_PROXIES": n})
        settings.enable()
        api_settings.reload()
        return settings

    started = []
    yield lambda n: started.append(use(n))
    for settings in started:
        settings.disable()
    api_settings.reload()


@pytest.mark.parametrize(("num_proxies", "forwarded", "expected"), [
    (0, "203.0.113.7", "10.0.0.9"),                 # no proxy trusted: the header is ignored
    (1, "203.0.113.7, 198.51.100.4", "198.51.100.4"),  # the entry our proxy wrote (rightmost)
    (1, "not-an-address", None),                     # made up, past the proxy: not stored
    (1, None, "10.0.0.9"),                           # no header: the peer
])
def test_client_ip_follows_the_trusted_proxies(proxies, num_proxies, forwarded, expected):
    proxies(num_proxies)
    headers = {"REMOTE_ADDR": "10.0.0.9"}
    if forwarded is not None:
        headers["HTTP_X_FORWARDED_FOR"] = forwarded
    request = RequestFactory().post("/v1/auth/phone/send-code", **headers)
    assert client_ip(request) == expected
