"""A client generated from the live `/v1/schema/` (openapi-typescript, TypeScript 5) must
type-check a small app flow under `tsc --strict` and run it against a live server: login,
publish, bid, the outbid refusal's minimum read from its typed field, logout by POST.

This is what the apps' generated clients meet; a schema change that breaks them fails here.
Needs node and npm (the registry for `npm ci`); skips with the reason where they are missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest

from bidding.models import Bid
from listings.models import Listing

HERE = Path(__file__).resolve().parent / "typescript"
LOGINS = {"+15555550190": "190190", "+15555550191": "191191", "+15555550192": "192192"}


def _npm(*args: str, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(["npm", *args], cwd=HERE, capture_output=True, text=True,
                          timeout=timeout, env=env, check=False)


@pytest.fixture(scope="module")
def node_project():
    if not (shutil.which("node") and shutil.which("npm")):
        pytest.skip("node and npm are needed for the generated-client check")
    installed = _npm("ci", "--no-audit", "--no-fund", "--loglevel=error")
    if installed.returncode != 0:
        pytest.fail(f"npm ci failed:\n{installed.stdout}\n{installed.stderr}")
    return HERE


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_generated_typescript_client_runs_the_app_flow(node_project, daphne_server):
    # given a live server with three test logins
    logins = ",".join(f"{phone},{code}" for phone, code in LOGINS.items())
    server = daphne_server(env={"BIDDT_TEST_PHONE_NUMBERS": ",".join(
        f"{phone}:{code}" for phone, code in LOGINS.items())})
    with urllib.request.urlopen(f"{server.http_url}/v1/schema/?format=json", timeout=30) as r:
        (node_project / "schema.json").write_bytes(r.read())

    # when the client is generated from its schema and the flow type-checked strictly
    for script in ("generate", "check", "build"):
        step = _npm("run", "-s", script)
        assert step.returncode == 0, f"npm run {script}:\n{step.stdout}\n{step.stderr}"

    # and run against the server
    env = {**os.environ, "BIDDT_BASE_URL": server.http_url, "BIDDT_CLIENT_LOGINS": logins}
    ran = _npm("run", "-s", "flow", env=env, timeout=120)

    # then every step answered as the types say, and the server holds what the flow did
    assert ran.returncode == 0, f"{ran.stdout}\n{ran.stderr}\n{server.log()[-3000:]}"
    result = json.loads(ran.stdout.strip().splitlines()[-1])
    assert result["ok"] is True
    listing = Listing.objects.get(pk=result["listing"])
    assert listing.status == "active"
    assert Bid.objects.filter(listing=listing, is_auto_bid=False).count() == 2
    assert result["minimum"] == 1050  # the first bid leads at 1000; next is 1000 + 50
