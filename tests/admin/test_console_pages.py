"""The console's object pages that decide, through Django's test client: what the pages
show, the confirmation pages, the decisions' effects, and what is not offered."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.urls import reverse
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken

from accounts.models import User
from biddt.core.models import AuditEntry, IdempotencyRecord
from chat.models import Message
from escrow.models import Dispute, LedgerEntry, Transaction
from escrow.payments import SimulatedGateway
from listings.models import Listing
from notifications.models import Notification
from tests.admin.conftest import disputed_transaction
from tests.escrow.helpers import assert_books_balanced
from tests.factories import ListingFactory, UserFactory

pytestmark = pytest.mark.django_db


def decide_url(model: str, pk, key: str) -> str:
    return reverse(f"admin:{model}_decide", args=[pk, key])


def test_dispute_page_shows_the_timeline_parties_and_decisions(support_client, settings):
    dispute = disputed_transaction(settings)
    page = support_client.get(reverse("admin:escrow_dispute_change", args=[dispute.pk]))
    html = page.content.decode()
    assert page.status_code == 200
    for text in ("Timeline", "The bike has a cracked frame.", "It was fine when I listed it.",
                 "Paid into escrow", "Dispute opened", "Item not as described",
                 "Ledger: Buyer funds held", "$100.00 CAD", "The parties and their history",
                 'id="decide-refund"', 'id="decide-release"', 'id="decide-split"'):
        assert text in html, text
    assert "10000" not in html.replace(str(dispute.pk), "")


def test_refund_needs_a_confirmation_with_a_note(support_client, support_user, settings):
    dispute = disputed_transaction(settings)
    url = decide_url("escrow_dispute", dispute.pk, "refund")
    # the confirmation page restates the money movement
    page = support_client.get(url).content.decode()
    assert "Refund $100.00 CAD to the buyer" in page
    # without a note nothing happens
    page = support_client.post(url, {"confirm": "yes", "note": " "})
    assert page.status_code == 200 and "Write a note" in page.content.decode()
    assert Dispute.objects.get(pk=dispute.pk).status == "open"
    # with a note it is refunded and audited
    done = support_client.post(url, {"confirm": "yes", "note": "cracked frame in photos"})
    assert done.status_code == 302
    assert done["Location"] == reverse("admin:escrow_dispute_change", args=[dispute.pk])
    assert Dispute.objects.get(pk=dispute.pk).status == "refunded"
    entry = AuditEntry.objects.get(action="dispute.resolve_refunded")
    assert entry.actor == support_user and entry.reason == "cracked frame in photos"
    # and the button is gone; the decide URL says it no longer applies
    html = support_client.get(reverse("admin:escrow_dispute_change",
                                      args=[dispute.pk])).content.decode()
    assert 'id="decide-refund"' not in html
    again = support_client.post(url, {"confirm": "yes", "note": "again"}, follow=True)
    assert "no longer applies" in again.content.decode()


def test_split_previews_then_confirms(support_client, support_user, settings, monkeypatch):
    calls = []
    real = SimulatedGateway.create_partial_refund
    monkeypatch.setattr(SimulatedGateway, "create_partial_refund",
                        lambda self, txn, amount_cents: calls.append(amount_cents)
                        or real(self, txn, amount_cents=amount_cents))
    dispute = disputed_transaction(settings)
    txn = dispute.transaction
    url = decide_url("escrow_dispute", dispute.pk, "split")
    # preview: the movement in money, no decision yet
    preview = support_client.post(url, {"refund": "30.00", "note": "both at fault",
                                        "confirm": "no"}).content.decode()
    payout = 7000 - txn.fee_cents - txn.escrow_fee_cents
    assert "Refund $30.00 CAD to the buyer" in preview and "30%" in preview
    assert "Release the rest, $70.00 CAD" in preview
    assert f"${payout // 100}.{payout % 100:02d} CAD is paid out to the seller" in preview
    assert 'id="confirm"' in preview
    assert Dispute.objects.get(pk=dispute.pk).status == "open" and calls == []
    # a confirm without the preview step does nothing
    support_client.post(url, {"refund": "30.00", "note": "x", "confirm": "yes"})
    assert Dispute.objects.get(pk=dispute.pk).status == "open"
    # an amount that isn't a split is refused on the page
    bad = support_client.post(url, {"refund": "100.00", "note": "x", "confirm": "no"})
    assert "less than the 10000 cents held" in bad.content.decode()
    assert 'id="confirm"' not in bad.content.decode()
    # confirm
    done = support_client.post(url, {"refund": "30.00", "note": "both at fault",
                                     "confirm": "yes", "previewed": "yes"}, follow=True)
    assert "Dispute resolved with a split: $30.00 CAD refunded" in done.content.decode()
    txn.refresh_from_db()
    assert txn.status == "released" and txn.refunded_cents == 3000
    assert Dispute.objects.get(pk=dispute.pk).status == "split"
    assert calls == [3000]
    assert LedgerEntry.objects.filter(transaction=txn, kind="split").count() == 5
    assert_books_balanced()
    assert AuditEntry.objects.filter(action="dispute.resolve_split", actor=support_user,
                                     reason="both at fault").exists()


def test_transaction_page_decides_its_open_dispute(support_client, settings):
    dispute = disputed_transaction(settings)
    url = reverse("admin:escrow_transaction_change", args=[dispute.transaction_id])
    html = support_client.get(url).content.decode()
    assert 'id="decide-release"' in html and "Timeline" in html
    support_client.post(decide_url("escrow_transaction", dispute.transaction_id, "release"),
                        {"confirm": "yes", "note": "seller showed delivery proof"})
    assert Dispute.objects.get(pk=dispute.pk).status == "released"
    assert Transaction.objects.get(pk=dispute.transaction_id).status == "released"


def test_suspend_and_reinstate_on_the_user_page(support_client, support_user):
    seller = UserFactory(display_name="Sam Seller")
    ListingFactory(seller=seller)
    page = support_client.get(reverse("admin:accounts_user_change", args=[seller.pk]))
    assert 'id="decide-suspend"' in page.content.decode()
    confirm = support_client.get(decide_url("accounts_user", seller.pk, "suspend"))
    assert "1 active listing(s) are paused" in confirm.content.decode()
    support_client.post(decide_url("accounts_user", seller.pk, "suspend"),
                        {"confirm": "yes", "note": "counterfeit goods"})
    seller.refresh_from_db()
    assert seller.status == User.Status.SUSPENDED and seller.status_reason == "counterfeit goods"
    support_client.post(decide_url("accounts_user", seller.pk, "reinstate"),
                        {"confirm": "yes", "note": "appeal accepted"})
    seller.refresh_from_db()
    assert seller.status == User.Status.ACTIVE
    assert list(AuditEntry.objects.filter(object_id=str(seller.pk))
                .values_list("action", flat=True).order_by("created_at")) == [
        "user.suspend", "user.reinstate"]


def test_remove_listing_on_its_page(support_client):
    listing = ListingFactory(title="Fake watch")
    confirm = support_client.get(decide_url("listings_listing", listing.pk, "remove"))
    assert "Remove “Fake watch”" in confirm.content.decode()
    support_client.post(decide_url("listings_listing", listing.pk, "remove"),
                        {"confirm": "yes", "note": "counterfeit"})
    assert Listing.objects.get(pk=listing.pk).status == Listing.Status.REMOVED
    assert AuditEntry.objects.filter(action__startswith="listing.", reason="counterfeit")\
        .exists()


def test_a_user_without_change_rights_cannot_decide(client, settings):
    viewer = UserFactory(is_staff=True)
    client.force_login(viewer)
    dispute = disputed_transaction(settings)
    assert client.get(decide_url("escrow_dispute", dispute.pk, "refund")).status_code in (
        302, 403)
    assert Dispute.objects.get(pk=dispute.pk).status == "open"


def test_no_add_or_delete_where_nobody_should(support_client, admin_client, settings):
    for model in (IdempotencyRecord, Message, Notification, BlacklistedToken):
        model_admin = admin.site._registry[model]
        request = type("R", (), {"user": User.objects.get(display_name="Admin Ada")})()
        assert not model_admin.has_add_permission(request), model
        assert not model_admin.has_delete_permission(request), model
    # a user with money records has no Delete, even for an admin
    dispute = disputed_transaction(settings, with_messages=False)
    buyer_page = admin_client.get(reverse("admin:accounts_user_change",
                                          args=[dispute.transaction.buyer_id]))
    assert "deletelink" not in buyer_page.content.decode()
    assert admin_client.post(reverse("admin:accounts_user_delete",
                                     args=[dispute.transaction.buyer_id]),
                             {"post": "yes"}).status_code == 403
    # support sees no Delete on any user
    plain = UserFactory()
    page = support_client.get(reverse("admin:accounts_user_change", args=[plain.pk]))
    assert "deletelink" not in page.content.decode()
    # a user without money records can be deleted by an admin
    page = admin_client.get(reverse("admin:accounts_user_change", args=[plain.pk]))
    assert "deletelink" in page.content.decode()


def test_labels_view_site_and_money_in_lists(support_client, settings):
    disputed_transaction(settings, with_messages=False)
    index = support_client.get(reverse("admin:index")).content.decode()
    for wrong in ("Ledger entrys", "Watchs", "Phone otps"):
        assert wrong not in index
    assert 'href="/v1/docs/"' in index
    page = support_client.get(reverse("admin:escrow_transaction_changelist")).content.decode()
    assert "$100.00 CAD" in page


def test_user_search_by_last_four_digits(support_client):
    match = UserFactory(phone_number="+14165550142", display_name="Pat")
    UserFactory(phone_number="+14165550199", display_name="Other")
    url = reverse("admin:accounts_user_changelist")
    for term in ("0142", "…0142"):
        html = support_client.get(url, {"q": term}).content.decode()
        assert str(match.pk)[:8] in html and ">Other<" not in html
    assert User.objects.get(pk=match.pk).phone_last4_index
    # the last four digits are not stored in clear
    assert "0142" not in (User.objects.filter(pk=match.pk)
                          .values_list("phone_last4_index", flat=True).get())


def test_dashboard_series_from_the_database(support_client, settings):
    from escrow.dashboard import dashboard_series

    disputed_transaction(settings, with_messages=False)
    series = dashboard_series()
    assert len(series["labels_days"]) == 30 and len(series["labels_hours"]) == 720
    assert series["sales_per_day"][-1] == 1 and series["gmv_per_day"][-1] == 100.0
    assert series["disputes_opened"][-1] == 1 and series["disputes_resolved"][-1] == 0
    html = support_client.get(reverse("admin:index")).content.decode()
    assert 'id="console-series"' in html and "chart.umd.min.js" in html
    assert "cdn" not in html.lower()




def test_bulk_resolve_without_a_note_does_nothing(support_client, settings):
    dispute = disputed_transaction(settings, with_messages=False)
    response = support_client.post(reverse("admin:escrow_dispute_changelist"), {
        "action": "resolve_refund", "_selected_action": [str(dispute.pk)], "reason": "",
        "index": 0}, follow=True)
    assert "Type a reason" in response.content.decode()
    assert Dispute.objects.get(pk=dispute.pk).status == "open"


def test_timeline_shows_listing_and_chat_images_and_provider_events(support_client, settings):
    from escrow.models import PaymentEvent
    from listings.models import ListingImage

    dispute = disputed_transaction(settings, with_messages=False)
    txn = dispute.transaction
    ListingImage.objects.create(listing=txn.listing, image="listings/2026/12/bike.jpg")
    Message.objects.create(transaction=txn, sender=txn.buyer, message_type="image",
                           image="chat/2026/12/crack.jpg", content="")
    PaymentEvent.objects.create(event_id="evt_console_1", type="payment_intent.succeeded",
                                payload={"data": {"object": {"id": txn.payment_intent_id}}})
    html = support_client.get(reverse("admin:escrow_dispute_change",
                                      args=[dispute.pk])).content.decode()
    assert "listings/2026/12/bike.jpg" in html and "chat/2026/12/crack.jpg" in html
    assert "Provider event payment_intent.succeeded" in html and "evt_console_1" in html


def test_chat_is_hidden_once_the_dispute_is_resolved(support_client, settings):
    dispute = disputed_transaction(settings)
    support_client.post(decide_url("escrow_dispute", dispute.pk, "release"),
                        {"confirm": "yes", "note": "delivered as described"})
    html = support_client.get(reverse("admin:escrow_transaction_change",
                                      args=[dispute.transaction_id])).content.decode()
    assert "The bike has a cracked frame." not in html
    assert "the chat is shown while a dispute is open" in html
    assert "Resolved: released" in html
