"""Offline handoff tokens: a compact JWS (`alg: EdDSA`, Ed25519) the buyer's QR code carries.

The token binds the transaction id, the seller id, the amount and `exp` (the code's
`expires_at`), with a `jti` and the signing key's `kid` in its header. The seller's app checks
it with the public keys of `GET /v1/handoff-keys` (a JWKS) and no network, then sends it with
`scanned_at` to `POST /v1/transactions/{id}/verify` once online (escrow.services.handoff).

Keys come from the environment:
- `BIDDT_HANDOFF_SIGNING_KEY`: `"kid:<base64url of the 32-byte Ed25519 private key>"`, signs
  every new token;
- `BIDDT_HANDOFF_PREVIOUS_KEYS`: `"kid:<base64url of a 32-byte Ed25519 public key>,..."`,
  keys retired by a rotation: still in the JWKS and still verifying, so a token issued before
  the rotation verifies until it expires. Only public keys: a retired private key can be
  destroyed.
`manage.py handoff_keygen` prints a new pair of lines. Development uses a public default
(biddt.checks.DEV_HANDOFF_SEED), which production refuses (biddt.E015).

Signing and checking go through PyJWT (with `cryptography`); nothing here builds JSON or
signatures by hand.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from jwt.algorithms import OKPAlgorithm

ALGORITHM = "EdDSA"
TOKEN_TYPE = "biddt-handoff+jwt"
ISSUER = "biddt"
AUDIENCE = "biddt-handoff"
REQUIRED_CLAIMS = ["iss", "aud", "jti", "iat", "exp", "transaction_id", "seller_id",
                   "amount_cents"]


class HandoffTokenInvalid(Exception):
    """Not a token we signed with a known key (malformed, unknown `kid`, bad signature)."""


@dataclass(frozen=True)
class HandoffKeys:
    signing_kid: str
    signing_key: Ed25519PrivateKey
    public_keys: dict[str, Ed25519PublicKey]  # the signing key's first, then previous keys


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _b64url_decode(value: str, *, variable: str, kid: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ImproperlyConfigured(f"{variable}: key {kid!r} is not base64url") from exc
    if len(raw) != 32:
        raise ImproperlyConfigured(f"{variable}: key {kid!r} must be 32 bytes (Ed25519)")
    return raw


def _entries(raw: str, *, variable: str) -> list[tuple[str, bytes]]:
    entries = []
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        kid, sep, value = part.partition(":")
        if not sep or not kid.strip() or not value.strip():
            raise ImproperlyConfigured(f"{variable}: entries look like 'kid:base64url-key'")
        entries.append((kid.strip(), _b64url_decode(value.strip(), variable=variable,
                                                    kid=kid.strip())))
    return entries


@lru_cache(maxsize=8)
def parse_keys(signing: str, previous: str) -> HandoffKeys:
    """The keys the two settings name; ImproperlyConfigured naming the variable when wrong."""
    signing_entries = _entries(signing, variable="BIDDT_HANDOFF_SIGNING_KEY")
    if len(signing_entries) != 1:
        raise ImproperlyConfigured("BIDDT_HANDOFF_SIGNING_KEY: exactly one 'kid:key' is needed")
    kid, seed = signing_entries[0]
    private = Ed25519PrivateKey.from_private_bytes(seed)
    public_keys: dict[str, Ed25519PublicKey] = {kid: private.public_key()}
    for old_kid, raw in _entries(previous, variable="BIDDT_HANDOFF_PREVIOUS_KEYS"):
        if old_kid in public_keys:
            raise ImproperlyConfigured(f"BIDDT_HANDOFF_PREVIOUS_KEYS: key id {old_kid!r} is "
                                       "repeated (or is the signing key's)")
        public_keys[old_kid] = Ed25519PublicKey.from_public_bytes(raw)
    return HandoffKeys(signing_kid=kid, signing_key=private, public_keys=public_keys)


def handoff_keys() -> HandoffKeys:
    return parse_keys(settings.BIDDT_HANDOFF_SIGNING_KEY, settings.BIDDT_HANDOFF_PREVIOUS_KEYS)


def public_key_b64(key: Ed25519PublicKey) -> str:
    return b64url(key.public_bytes(Encoding.Raw, PublicFormat.Raw))


def jwks(keys: HandoffKeys | None = None) -> dict[str, list[dict[str, str]]]:
    """The public keys as a JWKS (RFC 7517/8037), the signing key first."""
    keys = keys or handoff_keys()
    return {"keys": [
        {**OKPAlgorithm.to_jwk(public, as_dict=True), "kid": kid, "alg": ALGORITHM,
         "use": "sig"}
        for kid, public in keys.public_keys.items()
    ]}


def token_issue(*, transaction_id: Any, seller_id: Any, amount_cents: int, currency: str,
                expires_at: datetime, keys: HandoffKeys | None = None) -> str:
    """A signed token for this handoff; `exp` is `expires_at` (whole seconds)."""
    keys = keys or handoff_keys()
    now = datetime.now(tz=UTC)
    claims = {
        "iss": ISSUER, "aud": AUDIENCE, "jti": uuid.uuid4().hex,
        "iat": int(now.timestamp()), "exp": int(expires_at.timestamp()),
        "transaction_id": str(transaction_id), "seller_id": str(seller_id),
        "amount_cents": int(amount_cents), "currency": currency,
    }
    return jwt.encode(claims, keys.signing_key, algorithm=ALGORITHM,
                      headers={"kid": keys.signing_kid, "typ": TOKEN_TYPE})


def token_claims(token: str, *, jwk_set: dict | None = None) -> dict[str, Any]:
    """The claims of a token signed by one of the keys (default: ours; or any JWKS, which is
    what the seller's app does offline). Checks the signature with the key its `kid` names,
    `alg`, `iss`, `aud` and that every claim is there; NOT `exp`: the handoff rules compare
    `exp` with the time of the scan, not with now (escrow.services.handoff)."""
    if jwk_set is None:
        candidates = handoff_keys().public_keys
    else:
        try:
            candidates = {k.key_id: k.key for k in jwt.PyJWKSet.from_dict(jwk_set).keys}
        except jwt.PyJWTError as exc:
            raise HandoffTokenInvalid("unusable key set") from exc
    try:
        header = jwt.get_unverified_header(token)
        if header.get("alg") != ALGORITHM or header.get("typ") != TOKEN_TYPE:
            raise HandoffTokenInvalid("not a handoff token")
        key = candidates.get(header.get("kid"))
        if key is None:
            raise HandoffTokenInvalid("unknown key id")
        claims = jwt.decode(token, key, algorithms=[ALGORITHM], audience=AUDIENCE,
                            issuer=ISSUER,
                            options={"verify_exp": False, "require": REQUIRED_CLAIMS})
    except jwt.PyJWTError as exc:
        raise HandoffTokenInvalid(str(exc)) from exc
    if not isinstance(claims.get("amount_cents"), int) or not isinstance(claims.get("exp"), int):
        raise HandoffTokenInvalid("malformed claims")
    return claims


def new_key_lines(kid: str) -> tuple[str, str]:
    """A fresh key: the `BIDDT_HANDOFF_SIGNING_KEY` value, and the entry that goes into
    `BIDDT_HANDOFF_PREVIOUS_KEYS` once the key is retired."""
    private = Ed25519PrivateKey.generate()
    seed = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return f"{kid}:{b64url(seed)}", f"{kid}:{public_key_b64(private.public_key())}"
