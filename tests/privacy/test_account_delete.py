"""`DELETE /v1/users/me` (issue 20): the refusals, what is erased (read from the database),
the revocations, the re-signup, staff closure through the same service."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from PIL import Image
from rest_framework.test import APIClient
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from accounts.models import DELETED_USER_NAME, Device, User, phone_index
from accounts.services import device_register, user_update_profile
from accounts.tokens import UserRefreshToken
from bidding.services import bid_place
from biddt.core.models import AuditEntry
from chat.models import Message
from chat.services import message_post
from escrow.models import Transaction
from listings.models import Listing
from privacy.services import account_delete
from tests.conftest import bearer
from tests.factories import ListingFactory, UserFactory, sold_transaction

pytestmark = pytest.mark.django_db

OBLIGATIONS = "account_has_open_obligations"


def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=bearer(user))
    return client


def delete_me(user):
    return client_for(user).delete("/v1/users/me")


def assert_refused(response):
    assert response.status_code == 409, response.content
    error = response.json()["errors"][0]
    assert error["code"] == OBLIGATIONS
    assert error["attr"] is None


def png(size=(32, 32)) -> SimpleUploadedFile:
    out = io.BytesIO()
    Image.new("RGB", size, (10, 200, 10)).save(out, format="PNG")
    return SimpleUploadedFile("me.png", out.getvalue(), content_type="image/png")


# --- refusals ---------------------------------------------------------------------------------

def test_refused_while_leading_an_active_auction(user):
    bid_place(listing_id=ListingFactory().pk, bidder=user, amount_cents=1000)
    assert_refused(delete_me(user))
    assert User.objects.get(pk=user.pk).deleted_at is None


def test_refused_with_an_outbid_bid_in_an_active_auction(user):
    listing = ListingFactory()
    bid_place(listing_id=listing.pk, bidder=user, amount_cents=1000)
    bid_place(listing_id=listing.pk, bidder=UserFactory(), amount_cents=5000)
    assert Listing.objects.get(pk=listing.pk).leader_id != user.pk
    assert_refused(delete_me(user))


def test_refused_while_selling_an_active_listing_with_bids(user):
    listing = ListingFactory(seller=user)
    bid_place(listing_id=listing.pk, bidder=UserFactory(), amount_cents=1000)
    assert_refused(delete_me(user))
    assert Listing.objects.get(pk=listing.pk).status == "active"


@pytest.mark.parametrize("status", ["pending_payment", "in_escrow", "disputed"])
@pytest.mark.parametrize("side", ["buyer", "seller"])
def test_refused_while_party_to_an_unsettled_transaction(status, side):
    txn = sold_transaction()
    Transaction.objects.filter(pk=txn.pk).update(status=status)
    assert_refused(delete_me(getattr(txn, side)))


@pytest.mark.parametrize("status", ["released", "refunded", "cancelled"])
def test_settled_transactions_do_not_block_and_stay(status):
    txn = sold_transaction()
    Transaction.objects.filter(pk=txn.pk).update(status=status)
    assert delete_me(txn.buyer).status_code == 204
    kept = Transaction.objects.get(pk=txn.pk)
    assert kept.buyer_id == txn.buyer_id
    assert kept.buyer.display_name == DELETED_USER_NAME


def test_a_bid_on_an_ended_auction_does_not_block(user):
    listing = ListingFactory()
    bid_place(listing_id=listing.pk, bidder=user, amount_cents=1000)
    Listing.objects.filter(pk=listing.pk).update(status="unsold")
    assert delete_me(user).status_code == 204


# --- what the closure does --------------------------------------------------------------------

def test_erases_personal_data_in_the_database(user, settings, tmp_path,
                                              django_capture_on_commit_callbacks):
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(tmp_path)}}}
    user_update_profile(user=user, display_name="Jordan Smith", email="jordan@example.com",
                        email_given=True, avatar=png())
    user = User.objects.get(pk=user.pk)
    avatar_name = user.avatar.name
    assert (tmp_path / avatar_name).exists()
    old_phone_index = user.phone_index

    with django_capture_on_commit_callbacks(execute=True):
        response = delete_me(user)
    assert response.status_code == 204
    assert response.content == b""

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT phone_number, phone_index, email, email_index, display_name, "
                       f"avatar, is_active, deleted_at FROM {User._meta.db_table} WHERE id = %s",
                       [user.pk.hex if connection.vendor == "sqlite" else user.pk])
        phone, p_index, email, e_index, name, avatar, is_active, deleted_at = cursor.fetchone()
    assert p_index != old_phone_index and p_index.startswith("deleted:")
    assert e_index is None
    assert name == DELETED_USER_NAME
    assert avatar == ""
    assert is_active is False or is_active == 0
    assert deleted_at is not None
    # The ciphertext columns hold the encryption of "" (or nothing): no number, no address.
    closed = User.objects.get(pk=user.pk)
    assert closed.phone_number == "" and closed.email == ""
    assert "jordan" not in f"{phone}{email}".lower()
    assert not (tmp_path / avatar_name).exists()
    # simple-history's copies lose the name, avatar and indexes too.
    for row in User.history.filter(id=user.pk):
        assert row.display_name == DELETED_USER_NAME
        assert row.avatar == ""
        assert row.phone_index != old_phone_index
        assert row.email_index is None
    entry = AuditEntry.objects.get(action="user.delete", object_id=str(user.pk))
    assert entry.actor_id == user.pk and entry.after["by"] == "self"


def test_revokes_refresh_tokens_and_devices_and_access(user, api):
    refreshes = [str(UserRefreshToken.for_user(user)) for _ in range(2)]
    device_register(user=user, token="fcm-token-1", platform="ios")
    client = client_for(user)
    assert client.delete("/v1/users/me").status_code == 204

    assert not Device.objects.filter(user=user).exists()
    outstanding = OutstandingToken.objects.filter(user=user)
    assert outstanding.count() >= 2
    assert BlacklistedToken.objects.filter(token__in=outstanding).count() == outstanding.count()
    for refresh in refreshes:
        response = api.post("/v1/auth/refresh", {"refresh": refresh}, format="json")
        assert response.status_code == 401
    # The access token still in the app's hands stops working at once.
    assert client.get("/v1/users/me").status_code == 401
    # A second DELETE can't happen: the caller no longer authenticates.
    assert client.delete("/v1/users/me").status_code == 401


def test_cancels_listings_without_bids_and_keeps_the_rest(user):
    draft = ListingFactory(seller=user, status="draft")
    active = ListingFactory(seller=user)
    sold = ListingFactory(seller=user, status="sold")
    assert delete_me(user).status_code == 204
    assert Listing.objects.get(pk=draft.pk).status == "cancelled"
    assert Listing.objects.get(pk=active.pk).status == "cancelled"
    assert Listing.objects.get(pk=sold.pk).status == "sold"


def test_shown_as_deleted_user_in_profile_bids_transactions_and_chat(api):
    buyer, seller = UserFactory(display_name="Alice Buyer"), UserFactory()
    listing = ListingFactory(seller=seller)
    bid_place(listing_id=listing.pk, bidder=buyer, amount_cents=1000)
    Listing.objects.filter(pk=listing.pk).update(status="unsold")
    txn = sold_transaction(buyer=buyer, seller=seller)
    message_post(user=buyer, transaction_id=txn.pk, content="see you at noon")
    Transaction.objects.filter(pk=txn.pk).update(status="released")
    assert delete_me(buyer).status_code == 204

    profile = api.get(f"/v1/users/{buyer.pk}/profile")
    assert profile.status_code == 200
    assert profile.json()["display_name"] == DELETED_USER_NAME
    assert profile.json()["avatar_url"] is None
    history = api.get(f"/v1/listings/{listing.pk}/bids").json()
    items = history.get("results", history)
    assert [item["bidder"]["display_name"] for item in items] == [DELETED_USER_NAME]
    seller_view = client_for(seller)
    detail = seller_view.get(f"/v1/transactions/{txn.pk}").json()
    assert DELETED_USER_NAME in str(detail)
    assert "Alice" not in str(detail)
    assert Message.objects.filter(transaction=txn, sender=buyer).exists()  # messages stay
    assert str(User.objects.get(pk=buyer.pk)) == DELETED_USER_NAME  # the admin's label


def test_the_same_phone_signs_up_again_as_a_new_user(api, settings):
    settings.BIDDT_TEST_PHONE_NUMBERS = "+15555550142:424242"
    first = api.post("/v1/auth/phone/verify", {"phone_number": "+15555550142",
                                               "code": "424242"}, format="json").json()
    assert first["is_new_user"] is True
    old_id = first["user"]["id"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {first['access']}")
    assert client.delete("/v1/users/me").status_code == 204

    again = api.post("/v1/auth/phone/verify", {"phone_number": "+15555550142",
                                               "code": "424242"}, format="json")
    assert again.status_code == 200
    body = again.json()
    assert body["is_new_user"] is True
    assert body["user"]["id"] != old_id
    assert body["user"]["phone_number"] == "+15555550142"
    assert User.objects.get(phone_index=phone_index("+15555550142")).pk != old_id
    assert User.objects.get(pk=old_id).deleted_at is not None


def test_staff_closure_goes_through_the_same_service_and_is_audited():
    staff, target = UserFactory(is_staff=True), UserFactory()
    ListingFactory(seller=target)
    assert account_delete(user_id=target.pk, staff_user=staff, reason="user asked by e-mail")
    assert User.objects.get(pk=target.pk).deleted_at is not None
    entry = AuditEntry.objects.get(action="user.delete", object_id=str(target.pk))
    assert entry.actor_id == staff.pk and entry.reason == "user asked by e-mail"
    assert account_delete(user_id=target.pk, staff_user=staff) is False  # once


def test_only_staff_may_close_another_account():
    from biddt.errors import PermissionDenied

    with pytest.raises(PermissionDenied):
        account_delete(user_id=UserFactory().pk, staff_user=UserFactory())
