"""The whole escrow flow through REST on the `simulated` backend (the embedded default)."""

from datetime import timedelta
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.utils import timezone

from accounts.models import Wallet
from escrow import services
from escrow.models import Dispute, LedgerEntry, Transaction
from notifications.models import Notification
from tests.escrow.helpers import assert_books_balanced, client_for, error_code, journal_kinds
from tests.factories import SafeZoneFactory, UserFactory, sold_transaction

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _simulated(settings):
    settings.BIDDT_PAYMENTS_BACKEND = "simulated"
    settings.STRIPE_WEBHOOK_SECRET = "whsec_sim"


@pytest.fixture
def txn():
    return sold_transaction(amount_cents=10000)


def _pay(txn):
    response = client_for(txn.buyer).post(f"/v1/transactions/{txn.pk}/pay")
    assert response.status_code == 200, response.content
    return response.json()


def _scan(txn):
    code = client_for(txn.buyer).get(f"/v1/transactions/{txn.pk}/qr").json()["code"]
    return client_for(txn.seller).post(f"/v1/transactions/{txn.pk}/verify", {"code": code})


def test_whole_flow_pay_scan_payout(txn, sent_events, django_capture_on_commit_callbacks):
    buyer, seller = txn.buyer, txn.seller
    # given the seller set up a wallet (simulated: active at once, no onboarding link)
    response = client_for(seller).post("/v1/users/me/wallet")
    assert response.status_code == 201
    assert response.json() == {"status": "active", "onboarding_url": None}
    assert client_for(seller).post("/v1/users/me/wallet").status_code == 200
    assert Wallet.objects.filter(user=seller).count() == 1

    # when the buyer claims and pays
    claim = client_for(buyer).post("/v1/transactions", {"listing_id": str(txn.listing_id)})
    assert claim.status_code == 200 and claim.json()["id"] == str(txn.pk)
    with django_capture_on_commit_callbacks(execute=True):
        body = _pay(txn)
    # then the payment is confirmed at once (test money) and the money is in escrow
    assert body["payment_intent_id"].startswith("pi_sim_") and body["status"] == "succeeded"
    txn.refresh_from_db()
    assert txn.status == "in_escrow" and txn.paid_at is not None
    assert journal_kinds(txn) == ["funds_held"]
    assert Notification.objects.filter(user=seller, type="payment_received").count() == 1
    updates = [(g, e) for g, e in sent_events if e.get("type") == "transaction_update"]
    assert {g for g, _ in updates} == {f"user.{buyer.pk}", f"user.{seller.pk}"}
    assert all(e == {"type": "transaction_update", "transactionId": str(txn.pk),
                     "status": "in_escrow"} for _, e in updates)
    assert client_for(seller).get("/v1/users/me/wallet/balance").json() == {
        "currency": "CAD", "pending_cents": 9201, "available_cents": 0, "paid_out_cents": 0}
    assert_books_balanced()

    # paying again is a state conflict
    again = client_for(buyer).post(f"/v1/transactions/{txn.pk}/pay")
    assert again.status_code == 409 and error_code(again) == "invalid_state"

    # when the seller scans the buyer's code at the meetup
    with django_capture_on_commit_callbacks(execute=True):
        response = _scan(txn)
    # then the escrow is released and paid out once
    assert response.status_code == 200, response.content
    detail = response.json()
    assert detail["status"] == "released" and detail["released_at"] and detail["verified_at"]
    txn.refresh_from_db()
    assert txn.payout_status == "paid" and txn.payout_transfer_id.startswith("tr_sim_")
    assert journal_kinds(txn) == ["funds_held", "payout", "release"]
    seller.refresh_from_db()
    assert seller.completed_sales == 1
    assert Notification.objects.filter(type="escrow_released").count() == 2
    assert client_for(seller).get("/v1/users/me/wallet/balance").json() == {
        "currency": "CAD", "pending_cents": 0, "available_cents": 0, "paid_out_cents": 9201}
    assert_books_balanced()
    out = StringIO()
    call_command("ledger_check", stdout=out)
    assert "balanced" in out.getvalue()

    # and both can rate each other once
    for rater in (buyer, seller):
        r = client_for(rater).post(f"/v1/transactions/{txn.pk}/rating",
                                   {"score": 4, "comment": "smooth"})
        assert r.status_code == 201
        again = client_for(rater).post(f"/v1/transactions/{txn.pk}/rating", {"score": 5})
        assert again.status_code == 409 and error_code(again) == "already_rated"
    seller.refresh_from_db()
    assert (seller.rating_count, seller.rating_total) == (1, 4)
    mine = client_for(buyer).get("/v1/users/me/transactions").json()
    assert [t["id"] for t in mine["results"]] == [str(txn.pk)] and "next" in mine


def test_transaction_representation(txn):
    zone = SafeZoneFactory()
    when = timezone.now() + timedelta(days=1)
    r = client_for(txn.seller).patch(f"/v1/transactions/{txn.pk}/meetup",
                                     {"safe_zone_id": str(zone.pk),
                                      "meetup_at": when.isoformat()})
    assert r.status_code == 200, r.content
    body = client_for(txn.buyer).get(f"/v1/transactions/{txn.pk}").json()
    assert set(body) == {"id", "listing", "buyer", "seller", "amount_cents", "fee_cents",
                         "escrow_fee_cents", "total_charged_cents", "seller_payout_cents",
                         "status", "meetup", "verified_at", "released_at", "created_at",
                         "updated_at"}
    assert body["meetup"]["safe_zone"] == {"id": str(zone.pk), "partner_name": zone.partner_name,
                                           "address": zone.address, "lat": zone.lat,
                                           "lng": zone.lng}
    assert body["meetup"]["proposed_by"] == str(txn.seller_id)
    assert set(body["buyer"]) == {"id", "display_name", "rating_avg", "rating_count",
                                  "completed_sales"}
    assert body["listing"]["id"] == str(txn.listing_id)
    staff = UserFactory(is_staff=True)
    assert client_for(staff).get(f"/v1/transactions/{txn.pk}").status_code == 200


def test_meetup_rules(txn, sent_events, django_capture_on_commit_callbacks):
    zone = SafeZoneFactory()
    url = f"/v1/transactions/{txn.pk}/meetup"
    later = (timezone.now() + timedelta(days=1)).isoformat()
    inactive = SafeZoneFactory(is_active=False)
    r = client_for(txn.buyer).patch(url, {"safe_zone_id": str(inactive.pk), "meetup_at": later})
    assert r.status_code == 400 and error_code(r) == "invalid_safe_zone"
    past = (timezone.now() - timedelta(hours=1)).isoformat()
    r = client_for(txn.buyer).patch(url, {"safe_zone_id": str(zone.pk), "meetup_at": past})
    assert r.status_code == 400 and error_code(r) == "invalid_meetup_time"
    with django_capture_on_commit_callbacks(execute=True):
        r = client_for(txn.buyer).patch(url, {"safe_zone_id": str(zone.pk),
                                              "meetup_at": later})
    assert r.status_code == 200
    assert [g for g, e in sent_events if e.get("type") == "transaction_update"] == [
        f"user.{txn.seller_id}"]


def test_every_endpoint_refuses_another_user(txn):
    stranger = client_for(UserFactory())
    base = f"/v1/transactions/{txn.pk}"
    zone = SafeZoneFactory()
    later = (timezone.now() + timedelta(days=1)).isoformat()
    calls = [
        stranger.get(base), stranger.post(f"{base}/pay"), stranger.get(f"{base}/qr"),
        stranger.post(f"{base}/verify", {"code": "x"}),
        stranger.post(f"{base}/dispute", {"reason": "x"}),
        stranger.patch(f"{base}/meetup", {"safe_zone_id": str(zone.pk), "meetup_at": later}),
        stranger.post(f"{base}/rating", {"score": 5}),
        stranger.post("/v1/transactions", {"listing_id": str(txn.listing_id)}),
        # the wrong party: the seller can't pay or show the code, the buyer can't verify
        client_for(txn.seller).post(f"{base}/pay"),
        client_for(txn.seller).get(f"{base}/qr"),
        client_for(txn.buyer).post(f"{base}/verify", {"code": "x"}),
    ]
    assert [c.status_code for c in calls] == [404] * len(calls)


def test_every_endpoint_refuses_the_wrong_state(txn):
    base = f"/v1/transactions/{txn.pk}"
    buyer, seller = client_for(txn.buyer), client_for(txn.seller)
    # pending_payment: no code, no scan, no dispute, no rating
    refused = [buyer.get(f"{base}/qr"), seller.post(f"{base}/verify", {"code": "x"}),
               buyer.post(f"{base}/dispute", {"reason": "x"}),
               buyer.post(f"{base}/rating", {"score": 5})]
    assert [r.status_code for r in refused] == [409] * 4
    assert {error_code(r) for r in refused} == {"invalid_state"}
    # released: no pay, no dispute, no meetup
    _pay(txn)
    assert _scan(txn).status_code == 200
    zone = SafeZoneFactory()
    later = (timezone.now() + timedelta(days=1)).isoformat()
    refused = [buyer.post(f"{base}/pay"), buyer.post(f"{base}/dispute", {"reason": "x"}),
               buyer.patch(f"{base}/meetup", {"safe_zone_id": str(zone.pk),
                                              "meetup_at": later}),
               buyer.get(f"{base}/qr")]
    assert [r.status_code for r in refused] == [409] * 4


def test_claim_of_an_unsold_listing_is_a_conflict():
    from tests.factories import ListingFactory

    listing = ListingFactory()
    r = client_for(UserFactory()).post("/v1/transactions", {"listing_id": str(listing.pk)})
    assert r.status_code == 409 and error_code(r) == "listing_not_sold"


def test_qr_rotates_expires_and_is_single_use(txn, settings):
    _pay(txn)
    buyer, seller = client_for(txn.buyer), client_for(txn.seller)
    url = f"/v1/transactions/{txn.pk}/qr"
    first = buyer.get(url).json()["code"]
    second = buyer.get(url).json()
    assert first != second["code"]
    # the stored value is a keyed hash, never the code
    txn.refresh_from_db()
    assert first not in txn.qr_code_hash and second["code"] not in txn.qr_code_hash
    r = seller.post(f"/v1/transactions/{txn.pk}/verify", {"code": first})
    assert r.status_code == 400 and error_code(r) == "invalid_code"
    with time_machine.travel(timezone.now() + timedelta(seconds=settings.BIDDT_QR_TTL_SECONDS
                                                         + 1)):
        r = seller.post(f"/v1/transactions/{txn.pk}/verify", {"code": second["code"]})
    assert r.status_code == 400 and error_code(r) == "code_expired"
    png = buyer.get(url, {"format": "png"})
    assert png.status_code == 200 and png["Content-Type"] == "image/png"
    assert png.content.startswith(b"\x89PNG")
    code = buyer.get(url).json()["code"]
    assert seller.post(f"/v1/transactions/{txn.pk}/verify", {"code": code}).status_code == 200
    r = seller.post(f"/v1/transactions/{txn.pk}/verify", {"code": code})
    assert r.status_code == 409 and error_code(r) == "code_already_used"
    assert LedgerEntry.objects.filter(transaction=txn, kind="release").count() == 4
    assert_books_balanced()


def test_release_without_wallet_waits_then_pays_when_the_wallet_is_active(
        txn, django_capture_on_commit_callbacks):
    _pay(txn)
    with django_capture_on_commit_callbacks(execute=True):
        assert _scan(txn).status_code == 200
    txn.refresh_from_db()
    assert txn.payout_status == "waiting_wallet"
    seller_api = client_for(txn.seller)
    assert seller_api.get("/v1/users/me/wallet/balance").json()["available_cents"] == 9201
    with django_capture_on_commit_callbacks(execute=True):
        seller_api.post("/v1/users/me/wallet")
    txn.refresh_from_db()
    assert txn.payout_status == "paid"
    assert seller_api.get("/v1/users/me/wallet/balance").json()["paid_out_cents"] == 9201
    # the task run again (a duplicate delivery) pays nothing more
    from escrow.tasks import payout_send

    assert payout_send(str(txn.pk)) == "paid"
    assert LedgerEntry.objects.filter(transaction=txn, kind="payout").count() == 2
    assert_books_balanced()


def test_dispute_then_staff_refund_and_release(django_capture_on_commit_callbacks):
    staff = UserFactory(is_staff=True)
    refunded, released = sold_transaction(), sold_transaction()
    for t in (refunded, released):
        _pay(t)
        r = client_for(t.buyer).post(f"/v1/transactions/{t.pk}/dispute", {"reason": "broken"})
        assert r.status_code == 201 and r.json()["transaction_status"] == "disputed"
        again = client_for(t.seller).post(f"/v1/transactions/{t.pk}/dispute", {"reason": "x"})
        assert again.status_code == 409
    assert Notification.objects.filter(type="dispute_update").count() == 4
    d1 = Dispute.objects.get(transaction=refunded)
    services.dispute_resolve_refund(dispute_id=d1.pk, staff_user=staff, note="refund")
    services.dispute_resolve_refund(dispute_id=d1.pk, staff_user=staff, note="twice")
    refunded.refresh_from_db()
    d1.refresh_from_db()
    assert (refunded.status, d1.status, d1.resolution_note) == ("refunded", "refunded", "refund")
    assert refunded.refund_id.startswith("re_sim_")
    assert journal_kinds(refunded) == ["funds_held", "refund"]
    d2 = Dispute.objects.get(transaction=released)
    with django_capture_on_commit_callbacks(execute=True):
        services.dispute_resolve_release(dispute_id=d2.pk, staff_user=staff, note="ok")
    released.refresh_from_db()
    assert released.status == "released" and released.payout_status == "waiting_wallet"
    assert_books_balanced()


def test_admin_actions_resolve_disputes(client):
    staff = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(staff)
    t = sold_transaction()
    _pay(t)
    client_for(t.buyer).post(f"/v1/transactions/{t.pk}/dispute", {"reason": "broken"})
    dispute = Dispute.objects.get(transaction=t)
    r = client.post("/admin/escrow/dispute/", {"action": "resolve_refund",
                                                      "_selected_action": [str(dispute.pk)],
                                                      "reason": "photos show it broken"})
    assert r.status_code == 302
    t.refresh_from_db()
    dispute.refresh_from_db()
    assert (t.status, dispute.status, dispute.resolved_by) == ("refunded", "refunded", staff)
    from django.contrib.admin.models import LogEntry

    assert LogEntry.objects.filter(user=staff, object_id=str(dispute.pk)).count() == 1
    assert_books_balanced()


def test_unpaid_transaction_expires_and_the_listing_is_unsold(txn, settings):
    # given a transaction unpaid past the payment window
    with time_machine.travel(timezone.now()
                             + timedelta(hours=settings.BIDDT_PAYMENT_WINDOW_HOURS, minutes=1)):
        # when the expiry job runs (twice: a duplicate delivery)
        call_command("expire_transactions", stdout=StringIO())
        call_command("expire_transactions", stdout=StringIO())
    # then it is cancelled once and the listing is unsold
    txn.refresh_from_db()
    txn.listing.refresh_from_db()
    assert txn.status == "cancelled" and txn.listing.status == "unsold"
    assert Notification.objects.filter(title="Sale cancelled").count() == 2
    r = client_for(txn.buyer).post(f"/v1/transactions/{txn.pk}/pay")
    assert r.status_code == 409


def test_meetup_reminders_then_automatic_refund(txn):
    _pay(txn)
    txn.refresh_from_db()
    paid = txn.paid_at

    def run_at(days):
        with time_machine.travel(paid + timedelta(days=days, minutes=1)):
            services.transactions_meetup_sweep()
            services.transactions_meetup_sweep()

    run_at(3)
    assert Transaction.objects.get(pk=txn.pk).reminders_sent == 0
    run_at(7)
    assert Transaction.objects.get(pk=txn.pk).reminders_sent == 1
    run_at(13)
    assert Transaction.objects.get(pk=txn.pk).reminders_sent == 2
    assert Notification.objects.filter(title="Meet up to complete your sale").count() == 4
    run_at(14)
    txn.refresh_from_db()
    assert txn.status == "refunded" and journal_kinds(txn) == ["funds_held", "refund"]
    assert_books_balanced()


def test_ledger_check_fails_on_unbalanced_books(txn):
    _pay(txn)
    entry = LedgerEntry.objects.filter(transaction=txn).first()
    LedgerEntry.objects.filter(pk=entry.pk).update(amount_cents=entry.amount_cents + 1)
    err = StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("ledger_check", stdout=StringIO(), stderr=err)
    assert exit_info.value.code == 1
    assert "sums to 1" in err.getvalue()
