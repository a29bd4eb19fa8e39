"""PII encryption at rest (AES-256-GCM with key ids) and blind indexes (HMAC-SHA256)."""

from __future__ import annotations

import base64
import os

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test import override_settings

from biddt import crypto
from biddt.crypto import DecryptionError
from biddt.fields import EncryptedTextField
from tests.factories import UserFactory

PHONE = "+14165550100"


def b64key(n: int = 32) -> str:
    return base64.b64encode(os.urandom(n)).decode()


KEY_A = b64key()
KEY_B = b64key()


def test_round_trip():
    # given a configured key
    # when a value is encrypted and decrypted
    token = crypto.encrypt(PHONE)
    # then the plain value comes back and the token names the active key
    assert crypto.decrypt(token) == PHONE
    assert crypto.key_id_of(token) == crypto.active_key_id()


@pytest.mark.parametrize("value", ["", "é€ 漢字 \U0001f600", "x" * 10_000])
def test_round_trip_any_text(value):
    assert crypto.decrypt(crypto.encrypt(value)) == value


def test_ciphertext_is_randomised_and_hides_the_value():
    # when the same value is encrypted twice
    first, second = crypto.encrypt(PHONE), crypto.encrypt(PHONE)
    # then the tokens differ (fresh nonce) and neither contains the value, in any encoding
    assert first != second
    for token in (first, second):
        assert PHONE not in token
        assert "4165550100" not in token
        blob = base64.b64decode(token.partition(":")[2])
        assert PHONE.encode() not in blob
        assert len(blob) == crypto.NONCE_BYTES + len(PHONE.encode()) + 16  # nonce + data + tag


def _flip(token: str, index: int) -> str:
    kid, _, b64 = token.partition(":")
    blob = bytearray(base64.b64decode(b64))
    blob[index] ^= 0x01
    return f"{kid}:{base64.b64encode(bytes(blob)).decode()}"


@pytest.mark.parametrize("where", ["nonce", "ciphertext", "tag"])
def test_tampered_token_is_rejected(where):
    # given an encrypted value
    token = crypto.encrypt(PHONE)
    index = {"nonce": 0, "ciphertext": crypto.NONCE_BYTES + 1, "tag": -1}[where]
    # when one bit of it changes, then it no longer decrypts
    with pytest.raises(DecryptionError):
        crypto.decrypt(_flip(token, index))


@pytest.mark.parametrize(
    "make_bad",
    [
        pytest.param(lambda t: t.partition(":")[2], id="no-key-id"),
        pytest.param(lambda t: t[:-6], id="truncated"),
        pytest.param(lambda t: t.partition(":")[0] + ":", id="empty-body"),
        pytest.param(lambda t: t.partition(":")[0] + ":AAAA", id="shorter-than-nonce"),
        pytest.param(lambda t: t + "!!", id="not-base64"),
        pytest.param(lambda t: PHONE, id="plain-value"),
    ],
)
def test_malformed_token_is_a_decryption_error(make_bad):
    with pytest.raises(DecryptionError):
        crypto.decrypt(make_bad(crypto.encrypt(PHONE)))


def test_different_aad_is_rejected():
    # A value sealed for one context can't be opened in another.
    token = crypto.encrypt(PHONE, aad=b"user.phone")
    assert crypto.decrypt(token, aad=b"user.phone") == PHONE
    with pytest.raises(DecryptionError):
        crypto.decrypt(token, aad=b"user.email")


def test_key_rotation():
    # given a value encrypted under key A
    with override_settings(BIDDT_PII_KEYS=f"A:{KEY_A}"):
        old = crypto.encrypt(PHONE)
    assert crypto.key_id_of(old) == "A"
    # when B becomes the active key and A stays listed
    with override_settings(BIDDT_PII_KEYS=f"B:{KEY_B},A:{KEY_A}"):
        # then the old value still decrypts, and new values use B
        assert crypto.decrypt(old) == PHONE
        new = crypto.encrypt(PHONE)
        assert crypto.key_id_of(new) == "B"
        assert crypto.active_key_id() == "B"
        assert crypto.decrypt(new) == PHONE
    # and once A is retired, its values no longer decrypt
    with override_settings(BIDDT_PII_KEYS=f"B:{KEY_B}"):
        with pytest.raises(DecryptionError, match="unknown key id"):
            crypto.decrypt(old)
        assert crypto.decrypt(new) == PHONE


def test_same_key_id_with_another_key_fails():
    # given a value under A
    with override_settings(BIDDT_PII_KEYS=f"A:{KEY_A}"):
        token = crypto.encrypt(PHONE)
    # when "A" is rebound to a different key, then decryption fails instead of returning junk
    with override_settings(BIDDT_PII_KEYS=f"A:{KEY_B}"):
        with pytest.raises(DecryptionError):
            crypto.decrypt(token)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        pytest.param(f"A:{b64key(16)}", "32 bytes", id="aes-128-length"),
        pytest.param(f"A:{b64key(31)}", "32 bytes", id="short"),
        pytest.param(f"A:{b64key(33)}", "32 bytes", id="long"),
        pytest.param("A:not base64!!", "not base64", id="not-base64"),
        pytest.param(f"A:{KEY_A},A:{KEY_B}", "repeated key id", id="repeated-kid"),
        pytest.param(KEY_A, "kid:base64key", id="no-kid"),
        pytest.param(f":{KEY_A}", "kid:base64key", id="empty-kid"),
        pytest.param("", "no key", id="empty"),
        pytest.param(" , ", "no key", id="only-separators"),
    ],
)
def test_bad_key_config_is_improperly_configured(raw, message):
    # given a malformed BIDDT_PII_KEYS
    with override_settings(BIDDT_PII_KEYS=raw):
        # when anything is encrypted, then the configuration error names the problem
        with pytest.raises(ImproperlyConfigured, match=message):
            crypto.encrypt(PHONE)
        with pytest.raises(ImproperlyConfigured):
            crypto.active_key_id()


def test_keys_list_tolerates_spaces_between_entries():
    with override_settings(BIDDT_PII_KEYS=f" B:{KEY_B} , A:{KEY_A} "):
        assert crypto.active_key_id() == "B"


def test_blind_index_is_deterministic_and_purpose_separated():
    # when the same value is indexed twice for one purpose, and once for another
    first = crypto.blind_index(PHONE, purpose="phone")
    again = crypto.blind_index(PHONE, purpose="phone")
    email = crypto.blind_index(PHONE, purpose="email")
    # then the index is stable, differs by purpose and by value, and hides the value
    assert first == again
    assert first != email
    assert first != crypto.blind_index("+14165550101", purpose="phone")
    assert len(first) == 64
    assert int(first, 16) >= 0
    assert "4165550100" not in first
    assert crypto.log_hash(PHONE) == crypto.log_hash(PHONE)
    assert crypto.log_hash(PHONE) != first[:12]


def test_blind_index_depends_on_the_hmac_key():
    base = crypto.blind_index(PHONE, purpose="phone")
    with override_settings(BIDDT_PII_HMAC_KEY=b64key()):
        assert crypto.blind_index(PHONE, purpose="phone") != base


@pytest.mark.parametrize(
    ("raw", "message"),
    [("", "empty"), ("###", "not base64"), (b64key(16), "at least 32 bytes")],
)
def test_bad_hmac_key_is_improperly_configured(raw, message):
    with override_settings(BIDDT_PII_HMAC_KEY=raw):
        with pytest.raises(ImproperlyConfigured, match=message):
            crypto.blind_index(PHONE, purpose="phone")


def test_encrypted_field_prepares_ciphertext_and_reads_plaintext():
    field = EncryptedTextField()
    # when a value is prepared for the database
    stored = field.get_prep_value(PHONE)
    # then it is ciphertext that reads back as the value; empty and NULL stay as they are
    assert stored != PHONE
    assert field.from_db_value(stored, None, connection) == PHONE
    assert field.get_prep_value("") == ""
    assert field.get_prep_value(None) is None
    assert field.from_db_value(None, None, connection) is None


@pytest.mark.django_db
def test_encrypted_column_holds_no_plain_phone_number():
    # given a saved user
    user = UserFactory(phone_number="+14165550177")
    # when the row is read with raw SQL
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT phone_number FROM {user._meta.db_table} WHERE id = %s",
            [user.pk.hex if connection.vendor == "sqlite" else user.pk],
        )
        (raw,) = cursor.fetchone()
    # then the column holds ciphertext, and the model reads the number back
    assert "4165550177" not in raw
    assert crypto.decrypt(raw) == "+14165550177"
    user.refresh_from_db()
    assert user.phone_number == "+14165550177"
