"""A localstripe server on 127.0.0.1 plus stubs for the Connect calls it lacks.

Run as `python tests/escrow/stripe_server.py PORT`. localstripe serves PaymentIntents,
charges, refunds and signed webhooks; this adds, for the test only:
- `POST /v1/accounts`, `GET /v1/accounts/{id}`, `POST /v1/account_links`, `POST /v1/transfers`,
  `GET /v1/transfers/{id}` (Stripe Connect, absent from localstripe), honouring
  `Idempotency-Key` like Stripe does (the same key returns the first object);
- `GET /v1/account`, the platform's own account (dj-stripe's mirror asks whose key it holds);
- `GET /_config/stub/requests` (every Connect request: method, path, form data, key),
  `POST /_config/stub/accounts/{id}` (set an account's flags, as finishing onboarding would),
  `DELETE /_config/stub/requests`.
Two adaptations of localstripe itself: its store isn't dumped to /tmp (runs stay
independent), and PaymentIntents accept `transfer_group` (real Stripe does; 1.15 refuses it).
"""

from __future__ import annotations

import itertools
import sys
import time

from aiohttp import web
from localstripe import resources
from localstripe.server import app, get_post_data

resources.Store.dump_to_disk = lambda self: None
_pi_init = resources.PaymentIntent.__init__


def _pi_init_with_group(self, transfer_group=None, **kwargs):
    _pi_init(self, **kwargs)
    self.transfer_group = transfer_group


resources.PaymentIntent.__init__ = _pi_init_with_group

REQUESTS: list[dict] = []
ACCOUNTS: dict[str, dict] = {}
BY_KEY: dict[str, dict] = {}
PLATFORM = {"id": "acct_platform_biddt", "object": "account", "type": "standard",
            "country": "CA", "default_currency": "cad", "charges_enabled": True,
            "payouts_enabled": True, "details_submitted": True, "livemode": False,
            "metadata": {}}
_ids = itertools.count(1)


async def _record(request) -> tuple[dict, str | None]:
    data = await get_post_data(request) if request.method == "POST" else {}
    key = request.headers.get("Idempotency-Key")
    REQUESTS.append({"method": request.method, "path": request.path, "data": data or {},
                     "idempotency_key": key})
    return data or {}, key


def _once(key, make):
    if key and key in BY_KEY:
        return BY_KEY[key]
    obj = make()
    if key:
        BY_KEY[key] = obj
    return obj


async def accounts_create(request):
    data, key = await _record(request)

    def make():
        acct = {"id": f"acct_stub{next(_ids):06d}", "object": "account",
                "type": data.get("type"), "charges_enabled": False, "payouts_enabled": False,
                "details_submitted": False, "metadata": data.get("metadata") or {},
                "country": data.get("country"), "livemode": False,
                "default_currency": data.get("default_currency")}
        ACCOUNTS[acct["id"]] = acct
        return acct

    return web.json_response(_once(key, make))


async def accounts_retrieve(request):
    await _record(request)
    acct = ACCOUNTS.get(request.match_info["id"])
    if acct is None:
        return web.json_response({"error": {"type": "invalid_request_error",
                                            "message": "No such account"}}, status=404)
    return web.json_response(acct)


async def platform_account(request):
    """`GET /v1/account`: the platform's own account (dj-stripe asks whose key it holds)."""
    return web.json_response(PLATFORM)


async def transfers_retrieve(request):
    for obj in BY_KEY.values():
        if obj.get("object") == "transfer" and obj["id"] == request.match_info["id"]:
            return web.json_response(obj)
    return web.json_response({"error": {"type": "invalid_request_error",
                                        "message": "No such transfer"}}, status=404)


async def account_links_create(request):
    data, _ = await _record(request)
    return web.json_response({"object": "account_link",
                              "url": f"https://connect.stripe.test/setup/{data.get('account')}",
                              "expires_at": 9999999999})


async def transfers_create(request):
    data, key = await _record(request)

    def make():
        tr_id = f"tr_stub{next(_ids):06d}"
        return {"id": tr_id, "object": "transfer",
                "amount": int(data["amount"]), "currency": data.get("currency"),
                "destination": data.get("destination"),
                "transfer_group": data.get("transfer_group"), "amount_reversed": 0,
                "reversed": False, "livemode": False, "created": int(time.time()),
                "reversals": {"object": "list", "data": [], "has_more": False,
                              "url": f"/v1/transfers/{tr_id}/reversals"},
                "metadata": data.get("metadata") or {}}

    return web.json_response(_once(key, make))


async def stub_requests(request):
    if request.method == "DELETE":
        REQUESTS.clear()
        return web.json_response({})
    return web.json_response(REQUESTS)


async def stub_account_update(request):
    data = await request.json()
    ACCOUNTS[request.match_info["id"]].update(data)
    return web.json_response(ACCOUNTS[request.match_info["id"]])


app.router.add_post("/v1/accounts", accounts_create)
app.router.add_get("/v1/accounts/{id}", accounts_retrieve)
app.router.add_get("/v1/account", platform_account)
app.router.add_get("/v1/transfers/{id}", transfers_retrieve)
app.router.add_post("/v1/account_links", account_links_create)
app.router.add_post("/v1/transfers", transfers_create)
app.router.add_route("*", "/_config/stub/requests", stub_requests)
app.router.add_post("/_config/stub/accounts/{id}", stub_account_update)

if __name__ == "__main__":
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None,
                print=None)
