"""Encryption at rest for personal data (AES-256-GCM) and blind indexes (HMAC-SHA256).

Stored form of an encrypted value: ``"<key id>:<base64(nonce || ciphertext+tag)>"``. The key
id lets `BIDDT_PII_KEYS` hold several keys: the first encrypts, every listed key decrypts, so
keys rotate without downtime (`manage.py rotate_pii_keys` re-encrypts old rows).

A blind index is a keyed HMAC of the *normalised* value: it supports exact lookup and a
unique constraint without storing the value, and without the HMAC key it can't be reversed
by hashing every phone number (which a plain SHA-256 would allow).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

NONCE_BYTES = 12


class DecryptionError(Exception):
    """The stored value can't be decrypted with any configured key."""


@lru_cache(maxsize=8)
def _parse_keys(raw: str) -> tuple[tuple[str, bytes], ...]:
    keys: list[tuple[str, bytes]] = []
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        kid, sep, b64 = part.partition(":")
        if not sep or not kid or ":" in b64:
            raise ImproperlyConfigured("BIDDT_PII_KEYS entries look like 'kid:base64key'")
        try:
            key = base64.b64decode(b64, validate=True)
        except binascii.Error as exc:
            raise ImproperlyConfigured(f"BIDDT_PII_KEYS key {kid!r} is not base64") from exc
        if len(key) != 32:
            raise ImproperlyConfigured(f"BIDDT_PII_KEYS key {kid!r} must be 32 bytes (AES-256)")
        keys.append((kid, key))
    if not keys:
        raise ImproperlyConfigured("BIDDT_PII_KEYS holds no key")
    if len({kid for kid, _ in keys}) != len(keys):
        raise ImproperlyConfigured("BIDDT_PII_KEYS has a repeated key id")
    return tuple(keys)


def active_key_id() -> str:
    return _parse_keys(settings.BIDDT_PII_KEYS)[0][0]


def encrypt(plaintext: str, *, aad: bytes = b"biddt-pii") -> str:
    kid, key = _parse_keys(settings.BIDDT_PII_KEYS)[0]
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(key).encrypt(nonce, plaintext.encode("utf-8"), aad)
    return f"{kid}:{base64.b64encode(nonce + sealed).decode('ascii')}"


def decrypt(token: str, *, aad: bytes = b"biddt-pii") -> str:
    kid, sep, b64 = token.partition(":")
    if not sep:
        raise DecryptionError("not an encrypted value")
    keys = dict(_parse_keys(settings.BIDDT_PII_KEYS))
    if kid not in keys:
        raise DecryptionError(f"unknown key id {kid!r}")
    try:
        blob = base64.b64decode(b64, validate=True)
        return AESGCM(keys[kid]).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad).decode()
    except (binascii.Error, InvalidTag, ValueError) as exc:
        raise DecryptionError("ciphertext rejected") from exc


def key_id_of(token: str) -> str:
    return token.partition(":")[0]


@lru_cache(maxsize=4)
def _hmac_key(raw: str) -> bytes:
    if not raw:
        raise ImproperlyConfigured("BIDDT_PII_HMAC_KEY is empty")
    try:
        key = base64.b64decode(raw, validate=True)
    except binascii.Error as exc:
        raise ImproperlyConfigured("BIDDT_PII_HMAC_KEY is not base64") from exc
    if len(key) < 32:
        raise ImproperlyConfigured("BIDDT_PII_HMAC_KEY must be at least 32 bytes")
    return key


def blind_index(value: str, *, purpose: str) -> str:
    """HMAC-SHA256 of an already normalised value, separated by purpose (phone, email)."""
    key = _hmac_key(settings.BIDDT_PII_HMAC_KEY)
    return hmac.new(key, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()


def log_hash(value: str) -> str:
    """Short, keyed, stable hash for logs: correlates lines without revealing the value."""
    return blind_index(value, purpose="log")[:12]
