"""The offline handoff: the QR code's Ed25519-signed token, the public JWKS, and the release
by `{token, scanned_at}` sent once the seller's phone is online again."""

from __future__ import annotations

import base64
import io
import json
from datetime import timedelta

import jwt
import pytest
import qrcode
import time_machine
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import call_command
from django.utils import timezone

from biddt import checks, handoff_tokens
from escrow.models import LedgerEntry
from notifications.models import Notification
from tests.escrow.helpers import assert_books_balanced, client_for, error_code
from tests.factories import UserFactory, sold_transaction

pytestmark = pytest.mark.django_db


def _key_line(kid: str, seed: bytes) -> str:
    return f"{kid}:{handoff_tokens.b64url(seed)}"


def _public_line(kid: str, seed: bytes) -> str:
    public = Ed25519PrivateKey.from_private_bytes(seed).public_key()
    return f"{kid}:{handoff_tokens.public_key_b64(public)}"


@pytest.fixture(autouse=True)
def _keys(settings):
    settings.BIDDT_PAYMENTS_BACKEND = "simulated"
    settings.BIDDT_HANDOFF_SIGNING_KEY = _key_line("k1", b"1" * 32)
    settings.BIDDT_HANDOFF_PREVIOUS_KEYS = ""


def _paid(**kwargs):
    txn = sold_transaction(amount_cents=10000, **kwargs)
    assert client_for(txn.buyer).post(f"/v1/transactions/{txn.pk}/pay").status_code == 200
    txn.refresh_from_db()
    assert txn.status == "in_escrow"
    return txn


def _qr(txn) -> dict:
    response = client_for(txn.buyer).get(f"/v1/transactions/{txn.pk}/qr")
    assert response.status_code == 200, response.content
    return response.json()


def _verify(txn, token: str, scanned_at, user=None):
    return client_for(user or txn.seller).post(
        f"/v1/transactions/{txn.pk}/verify",
        {"token": token, "scanned_at": scanned_at.isoformat()}, format="json")


def _offline_check(token: str, jwk_set: dict) -> dict:
    """What the seller's app does with no network: PyJWT and the cached JWKS, nothing else."""
    kid = jwt.get_unverified_header(token)["kid"]
    key = jwt.PyJWKSet.from_dict(jwk_set)[kid]
    return jwt.decode(token, key.key, algorithms=["EdDSA"], audience="biddt-handoff",
                      options={"verify_exp": False})


def test_the_token_verifies_with_the_public_jwks_alone(api):
    # given a paid transaction and the buyer's QR answer
    txn = _paid()
    body = _qr(txn)
    assert set(body) == {"code", "expires_at", "token"}
    # and the public key set, fetched without any token
    response = api.get("/v1/handoff-keys")
    assert response.status_code == 200
    assert response["Cache-Control"] == "public, max-age=3600"
    jwk_set = response.json()
    assert [(k["kty"], k["crv"], k["alg"], k["use"], k["kid"]) for k in jwk_set["keys"]] == [
        ("OKP", "Ed25519", "EdDSA", "sig", "k1")]
    # when the seller's app checks the token offline
    header = jwt.get_unverified_header(body["token"])
    claims = _offline_check(body["token"], jwk_set)
    # then it is an EdDSA JWS binding this transaction, seller, amount and expiry
    assert header == {"alg": "EdDSA", "kid": "k1", "typ": "biddt-handoff+jwt"}
    assert claims["transaction_id"] == str(txn.pk)
    assert claims["seller_id"] == str(txn.seller_id)
    assert claims["amount_cents"] == 10000 and claims["currency"] == "CAD"
    assert claims["exp"] == int(timezone.datetime.fromisoformat(body["expires_at"]).timestamp())
    assert claims["jti"] and claims["iss"] == "biddt"
    assert handoff_tokens.token_claims(body["token"], jwk_set=jwk_set) == claims
    with pytest.raises(handoff_tokens.HandoffTokenInvalid):  # a key set without its kid
        handoff_tokens.token_claims(body["token"], jwk_set={"keys": [
            {**jwk_set["keys"][0], "kid": "other"}]})
    # and a forged signature fails the same offline check
    head, payload, _sig = body["token"].split(".")
    other = jwt.encode(claims, Ed25519PrivateKey.generate(), algorithm="EdDSA",
                       headers={"kid": "k1", "typ": "biddt-handoff+jwt"})
    with pytest.raises(jwt.InvalidSignatureError):
        _offline_check(f"{head}.{payload}.{other.split('.')[2]}", jwk_set)


def test_the_png_encodes_the_token(monkeypatch):
    txn = _paid()
    encoded = []
    real_make = qrcode.make
    monkeypatch.setattr(qrcode, "make", lambda data, **kw: encoded.append(data)
                        or real_make(data, **kw))
    response = client_for(txn.buyer).get(f"/v1/transactions/{txn.pk}/qr", {"format": "png"})
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert len(encoded) == 1
    claims = handoff_tokens.token_claims(encoded[0])
    assert claims["transaction_id"] == str(txn.pk)
    buffer = io.BytesIO()
    real_make(encoded[0]).save(buffer, format="PNG")
    assert response.content == buffer.getvalue()


def test_a_token_scanned_offline_releases_the_escrow_once(django_capture_on_commit_callbacks):
    # given the buyer's token, scanned by the seller's phone in a garage
    txn = _paid()
    token = _qr(txn)["token"]
    scanned_at = timezone.now()
    # when the phone is online again two hours later
    with time_machine.travel(timezone.now() + timedelta(hours=2), tick=False):
        with django_capture_on_commit_callbacks(execute=True):
            response = _verify(txn, token, scanned_at)
        # then the money is released through the code path's service
        assert response.status_code == 200, response.content
        assert response.json()["status"] == "released"
        txn.refresh_from_db()
        assert txn.verified_at == scanned_at.replace(microsecond=txn.verified_at.microsecond)
        assert txn.released_at > txn.verified_at
        assert LedgerEntry.objects.filter(transaction=txn, kind="release").exists()
        assert Notification.objects.filter(type="escrow_released").count() == 2
        txn.seller.refresh_from_db()
        assert txn.seller.completed_sales == 1
        assert_books_balanced()
        # and sending it again (or the code) is `code_already_used`
        again = _verify(txn, token, scanned_at)
        assert again.status_code == 409 and error_code(again) == "code_already_used"


def test_a_forged_signature_is_invalid_code():
    txn = _paid()
    token = _qr(txn)["token"]
    head, payload, sig = token.split(".")
    flipped = sig[:-2] + ("AA" if sig[-2:] != "AA" else "BA")
    forged_payload = json.loads(base64.urlsafe_b64decode(payload + "=="))
    forged_payload["amount_cents"] = 1
    tampered = base64.urlsafe_b64encode(json.dumps(forged_payload).encode()).rstrip(b"=")
    other_key = jwt.encode(forged_payload, Ed25519PrivateKey.generate(), algorithm="EdDSA",
                           headers={"kid": "k1", "typ": "biddt-handoff+jwt"})
    hs256 = jwt.encode(forged_payload, "s" * 32, algorithm="HS256",
                       headers={"kid": "k1", "typ": "biddt-handoff+jwt"})
    for bad in (f"{head}.{payload}.{flipped}", f"{head}.{tampered.decode()}.{sig}", other_key,
                hs256, "not-a-token", ""):
        response = _verify(txn, bad, timezone.now())
        assert response.status_code == 400, (bad, response.content)
        assert error_code(response) == ("invalid_code" if bad else "blank")
    txn.refresh_from_db()
    assert txn.status == "in_escrow"


def test_another_transactions_token_is_invalid_code():
    # given two paid sales by the same seller
    first = _paid()
    second = _paid(seller=first.seller)
    token = _qr(first)["token"]
    # when the seller sends the first sale's token to the second
    response = _verify(second, token, timezone.now())
    # then it is refused and neither is released
    assert response.status_code == 400 and error_code(response) == "invalid_code"
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == ("in_escrow", "in_escrow")


def test_a_token_for_another_seller_is_invalid_code():
    # given a token signed by our key for this transaction but naming another seller
    txn = _paid()
    claims = handoff_tokens.token_claims(_qr(txn)["token"])
    claims["seller_id"] = str(UserFactory().pk)
    keys = handoff_tokens.handoff_keys()
    token = jwt.encode(claims, keys.signing_key, algorithm="EdDSA",
                       headers={"kid": "k1", "typ": "biddt-handoff+jwt"})
    # when the seller sends it, it is refused
    response = _verify(txn, token, timezone.now())
    assert response.status_code == 400 and error_code(response) == "invalid_code"
    # and the buyer or a stranger can't use the real one at all (404)
    real = _qr(txn)["token"]
    assert _verify(txn, real, timezone.now(), user=txn.buyer).status_code == 404
    assert _verify(txn, real, timezone.now(), user=UserFactory()).status_code == 404


def test_scanned_at_in_the_future_beyond_the_clock_skew_is_invalid_code(settings):
    settings.BIDDT_HANDOFF_CLOCK_SKEW_SECONDS = 120
    txn = _paid()
    token = _qr(txn)["token"]
    response = _verify(txn, token, timezone.now() + timedelta(minutes=5))
    assert response.status_code == 400 and error_code(response) == "invalid_code"
    assert response.json()["errors"][0]["attr"] == "scanned_at"
    # a phone clock a minute ahead is fine
    assert _verify(txn, token, timezone.now() + timedelta(seconds=60)).status_code == 200


def test_a_scan_older_than_72_hours_is_code_expired(settings):
    settings.BIDDT_QR_TTL_SECONDS = 7 * 24 * 3600  # a long-lived code, to test the 72 h rule
    txn = _paid()
    token = _qr(txn)["token"]
    scanned_at = timezone.now()
    with time_machine.travel(timezone.now() + timedelta(hours=72, minutes=1), tick=False):
        response = _verify(txn, token, scanned_at)
        assert response.status_code == 400 and error_code(response) == "code_expired"
    with time_machine.travel(timezone.now() + timedelta(hours=71, minutes=59), tick=False):
        assert _verify(txn, token, scanned_at).status_code == 200


def test_a_scan_after_the_token_expired_is_code_expired():
    txn = _paid()
    body = _qr(txn)
    expires_at = timezone.datetime.fromisoformat(body["expires_at"])
    with time_machine.travel(expires_at + timedelta(minutes=5), tick=False):
        late = _verify(txn, body["token"], expires_at + timedelta(seconds=1))
        assert late.status_code == 400 and error_code(late) == "code_expired"
        # scanned just in time, sent later: accepted
        assert _verify(txn, body["token"], expires_at).status_code == 200


def test_a_rotation_in_the_middle_keeps_old_tokens_valid(settings, api):
    # given a token signed with key k1
    txn = _paid()
    old_token = _qr(txn)["token"]
    assert jwt.get_unverified_header(old_token)["kid"] == "k1"
    # when the operator rotates: k2 signs, k1's public key stays as a previous key
    settings.BIDDT_HANDOFF_SIGNING_KEY = _key_line("k2", b"2" * 32)
    settings.BIDDT_HANDOFF_PREVIOUS_KEYS = _public_line("k1", b"1" * 32)
    jwk_set = api.get("/v1/handoff-keys").json()
    # then the JWKS lists both, new first, and new tokens use k2
    assert [k["kid"] for k in jwk_set["keys"]] == ["k2", "k1"]
    assert jwt.get_unverified_header(_qr(txn)["token"])["kid"] == "k2"
    # and the old token still checks offline and releases the escrow
    assert _offline_check(old_token, jwk_set)["transaction_id"] == str(txn.pk)
    response = _verify(txn, old_token, timezone.now())
    assert response.status_code == 200, response.content
    # but once k1 is dropped, its tokens no longer verify
    other = _paid()
    settings.BIDDT_HANDOFF_PREVIOUS_KEYS = ""
    settings.BIDDT_HANDOFF_SIGNING_KEY = _key_line("k1", b"1" * 32)
    stale = _qr(other)["token"]
    settings.BIDDT_HANDOFF_SIGNING_KEY = _key_line("k2", b"2" * 32)
    dropped = _verify(other, stale, timezone.now())
    assert dropped.status_code == 400 and error_code(dropped) == "invalid_code"


def test_the_verify_body_needs_code_or_token_with_scanned_at():
    txn = _paid()
    url = f"/v1/transactions/{txn.pk}/verify"
    seller = client_for(txn.seller)
    token = _qr(txn)["token"]
    cases = [({}, "code"), ({"token": token}, "scanned_at"),
             ({"token": token, "code": "x", "scanned_at": timezone.now().isoformat()}, "token")]
    for body, attr in cases:
        response = seller.post(url, body, format="json")
        assert response.status_code == 400, body
        assert response.json()["errors"][0]["attr"] == attr


def test_a_token_does_not_release_a_disputed_transaction():
    txn = _paid()
    token = _qr(txn)["token"]
    assert client_for(txn.buyer).post(f"/v1/transactions/{txn.pk}/dispute",
                                      {"reason": "broken"}).status_code in (200, 201)
    response = _verify(txn, token, timezone.now())
    assert response.status_code == 409 and error_code(response) == "invalid_state"


def test_handoff_keygen_prints_a_usable_key(settings):
    out = io.StringIO()
    call_command("handoff_keygen", "2027-01", stdout=out)
    lines = out.getvalue().splitlines()
    signing = lines[0].removeprefix("BIDDT_HANDOFF_SIGNING_KEY=")
    public = lines[1].rsplit(" ", 1)[1]
    keys = handoff_tokens.parse_keys(signing, "")
    assert keys.signing_kid == "2027-01"
    assert handoff_tokens.public_key_b64(keys.public_keys["2027-01"]) == public.split(":")[1]
    assert signing != checks.dev_handoff_key()


def test_a_code_used_after_a_token_release_is_already_used():
    txn = _paid()
    body = _qr(txn)
    assert _verify(txn, body["token"], timezone.now()).status_code == 200
    r = client_for(txn.seller).post(f"/v1/transactions/{txn.pk}/verify", {"code": body["code"]})
    assert r.status_code == 409 and error_code(r) == "code_already_used"
