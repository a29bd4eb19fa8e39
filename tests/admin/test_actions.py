"""Each staff action through the admin's own views (changelist POST with `action` and
`_selected_action`), its effects, its audit entry, and who may run it."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import User, Wallet
from bidding.models import Bid
from biddt.core.models import AuditEntry
from escrow.models import Dispute, LedgerEntry, Transaction
from listings.models import Listing, ListingReport
from tests.admin.conftest import disputed_transaction, released_transaction
from tests.factories import ListingFactory, UserFactory, sold_transaction

pytestmark = pytest.mark.django_db(transaction=False)


def run_action(client, model: str, action: str, pks, reason: str = "", follow=False):
    url = reverse(f"admin:{model}_changelist")
    return client.post(url, {"action": action, "_selected_action": [str(pk) for pk in pks],
                             "reason": reason, "index": 0}, follow=follow)


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


# --- suspend / reinstate ----------------------------------------------------------------------

def test_support_suspends_a_user_pauses_listings_closes_sockets_and_audits(
        support_client, support_user, sent_events, django_capture_on_commit_callbacks):
    # given a seller with an active listing that has a bid
    seller = UserFactory()
    listing = ListingFactory(seller=seller)
    # when support suspends them with a reason
    with django_capture_on_commit_callbacks(execute=True):
        response = run_action(support_client, "accounts_user", "suspend_users", [seller.pk],
                              reason="selling counterfeit goods")
    assert response.status_code == 302
    # then the account is suspended, the listing is paused (still active, hidden), the
    # sockets were told to close, and the audit log has who/what/before/after/why
    seller.refresh_from_db()
    assert seller.status == User.Status.SUSPENDED
    assert seller.status_reason == "selling counterfeit goods"
    listing.refresh_from_db()
    assert listing.status == Listing.Status.ACTIVE
    assert (f"user.{seller.pk}", {"type": "ws.close"}) in sent_events
    entry = AuditEntry.objects.get(action="user.suspend")
    assert entry.actor == support_user
    assert entry.object_id == str(seller.pk)
    assert entry.before == {"status": "active"}
    assert entry.after["status"] == "suspended"
    assert entry.reason == "selling counterfeit goods"


def test_paused_listing_is_hidden_and_refuses_bids_until_reinstated(
        support_client, api, settings):
    from bidding.services import bid_place
    from biddt.errors import Conflict

    seller = UserFactory()
    listing = ListingFactory(seller=seller)
    bidder = UserFactory()
    run_action(support_client, "accounts_user", "suspend_users", [seller.pk], reason="spam")
    assert api.get(f"/v1/listings/{listing.pk}").status_code == 404
    with pytest.raises(Conflict) as err:
        bid_place(listing_id=listing.pk, bidder=bidder, amount_cents=1000)
    assert err.value.get_codes() == "listing_not_active"
    # reinstated: visible and biddable again, nothing else was rewritten
    run_action(support_client, "accounts_user", "reinstate_users", [seller.pk], reason="ok")
    assert api.get(f"/v1/listings/{listing.pk}").status_code == 200
    placed = bid_place(listing_id=listing.pk, bidder=bidder, amount_cents=1000)
    assert placed.is_leading
    assert AuditEntry.objects.filter(action="user.reinstate").count() == 1


def test_suspend_needs_a_reason(support_client):
    target = UserFactory()
    response = run_action(support_client, "accounts_user", "suspend_users", [target.pk],
                          follow=True)
    assert any("reason" in m for m in messages_of(response))
    target.refresh_from_db()
    assert target.status == User.Status.ACTIVE
    assert not AuditEntry.objects.exists()


def test_support_cannot_suspend_staff(support_client, admin_user):
    run_action(support_client, "accounts_user", "suspend_users", [admin_user.pk], reason="x")
    admin_user.refresh_from_db()
    assert admin_user.status == User.Status.ACTIVE


# --- roles and permissions ----------------------------------------------------------------

def test_support_gets_403_editing_a_user_or_groups(support_client, support_user):
    target = UserFactory()
    url = reverse("admin:accounts_user_change", args=[target.pk])
    assert support_client.get(url).status_code == 200  # read-only view
    response = support_client.post(url, {"display_name": "x", "is_staff": "on",
                                         "is_superuser": "on"})
    assert response.status_code == 403
    target.refresh_from_db()
    assert not target.is_staff
    assert support_client.get(reverse("admin:auth_group_changelist")).status_code == 403
    assert support_client.post(reverse("admin:auth_group_add"),
                               {"name": "sneaky"}).status_code == 403
    # and support can't make themselves admin either
    own = reverse("admin:accounts_user_change", args=[support_user.pk])
    assert support_client.post(own, {"is_superuser": "on"}).status_code == 403


def test_admin_changes_a_role_and_it_is_audited(admin_client, admin_user):
    from django.contrib.auth.models import Group

    target = UserFactory(display_name="Future support")
    support = Group.objects.get(name="support")
    url = reverse("admin:accounts_user_change", args=[target.pk])
    response = admin_client.post(url, {
        "display_name": "Future support", "is_active": "on", "is_staff": "on",
        "groups": [support.pk],
    })
    assert response.status_code == 302, response.content.decode()[:3000]
    target.refresh_from_db()
    assert target.is_staff and target.groups.filter(name="support").exists()
    entry = AuditEntry.objects.get(action="user.role_change")
    assert entry.actor == admin_user
    assert entry.before == {"is_staff": False, "is_superuser": False, "groups": []}
    assert entry.after == {"is_staff": True, "is_superuser": False, "groups": ["support"]}


def test_plain_user_and_anonymous_are_kept_out(client):
    assert client.get("/admin/").status_code == 302  # to the login page
    user = UserFactory()
    client.force_login(user)
    assert client.get(reverse("admin:escrow_dispute_changelist")).status_code == 302


def test_money_fields_are_read_only_everywhere(admin_client, settings):
    dispute = disputed_transaction(settings)
    txn = dispute.transaction
    page = admin_client.get(reverse("admin:escrow_transaction_change", args=[txn.pk]))
    form_fields = page.context["adminform"].form.fields
    for name in ["amount_cents", "fee_cents", "escrow_fee_cents", "total_charged_cents",
                 "seller_payout_cents", "status", "payout_status"]:
        assert name not in form_fields
    listing_page = admin_client.get(reverse("admin:listings_listing_change",
                                            args=[txn.listing_id]))
    listing_fields = listing_page.context["adminform"].form.fields
    for name in ["starting_price_cents", "reserve_price_cents", "buy_now_price_cents",
                 "current_price_cents", "leader_max_cents", "status"]:
        assert name not in listing_fields
    bid_admin_fields = admin_client.get(reverse("admin:bidding_bid_changelist"))
    assert bid_admin_fields.status_code == 200


# --- listings -----------------------------------------------------------------------------------

def test_support_removes_a_listing_voids_bids_notifies_bidders_and_audits(
        support_client, support_user, sent_events, django_capture_on_commit_callbacks):
    from bidding.services import bid_place
    from notifications.models import Notification

    listing = ListingFactory()
    a, b = UserFactory(), UserFactory()
    bid_place(listing_id=listing.pk, bidder=a, amount_cents=1000)
    bid_place(listing_id=listing.pk, bidder=b, amount_cents=1500)
    report = ListingReport.objects.create(listing=listing, reporter=a, reason="scam")
    with django_capture_on_commit_callbacks(execute=True):
        run_action(support_client, "listings_listing", "remove_listings", [listing.pk],
                   reason="stolen goods")
    listing.refresh_from_db()
    assert listing.status == Listing.Status.REMOVED
    assert listing.status_reason == "stolen goods"
    assert not Bid.objects.filter(listing=listing, status=Bid.Status.ACTIVE).exists()
    assert Bid.objects.filter(listing=listing, status=Bid.Status.VOIDED).count() >= 2
    notified = set(Notification.objects.filter(dedupe_key=f"removed:{listing.pk}")
                   .values_list("user_id", flat=True))
    assert {a.pk, b.pk, listing.seller_id} <= notified
    ended = [p for g, p in sent_events if g == f"listing.{listing.pk}"
             and p.get("type") == "auction_ended"]
    assert ended and ended[-1]["status"] == "removed"
    report.refresh_from_db()
    assert report.status == ListingReport.Status.ACTIONED
    entry = AuditEntry.objects.get(action="listing.remove")
    assert entry.actor == support_user
    assert entry.before["status"] == "active" and entry.after["status"] == "removed"
    assert entry.after["bids_voided"] >= 2


def test_report_queue_dismiss_and_remove(support_client):
    listing = ListingFactory()
    r1 = ListingReport.objects.create(listing=listing, reporter=UserFactory(), reason="scam")
    other = ListingFactory()
    r2 = ListingReport.objects.create(listing=other, reporter=UserFactory(), reason="other")
    run_action(support_client, "listings_listingreport", "dismiss_reports", [r2.pk],
               reason="fine")
    r2.refresh_from_db()
    assert r2.status == ListingReport.Status.DISMISSED
    run_action(support_client, "listings_listingreport", "remove_reported_listings", [r1.pk],
               reason="scam confirmed")
    listing.refresh_from_db()
    assert listing.status == Listing.Status.REMOVED
    assert set(AuditEntry.objects.values_list("action", flat=True)) == {
        "report.dismiss", "listing.remove"}
    page = support_client.get(reverse("admin:listings_listing_changelist"),
                              {"reported": "any"})
    assert page.status_code == 200


def test_listing_page_shows_bid_history_inline(admin_client):
    from bidding.services import bid_place

    listing = ListingFactory()
    bid_place(listing_id=listing.pk, bidder=UserFactory(display_name="Bidder Bo"),
              amount_cents=1000)
    page = admin_client.get(reverse("admin:listings_listing_change", args=[listing.pk]))
    assert page.status_code == 200
    assert "Bidder Bo" in page.content.decode()


# --- escrow -----------------------------------------------------------------------------------

def test_support_refunds_a_dispute_through_admin(support_client, support_user, settings):
    dispute = disputed_transaction(settings)
    run_action(support_client, "escrow_dispute", "resolve_refund", [dispute.pk],
               reason="photos show damage")
    dispute.refresh_from_db()
    assert dispute.status == Dispute.Status.REFUNDED
    assert dispute.resolution_note == "photos show damage"
    txn = Transaction.objects.get(pk=dispute.transaction_id)
    assert txn.status == Transaction.Status.REFUNDED
    assert LedgerEntry.objects.filter(transaction=txn, kind="refund").exists()
    entry = AuditEntry.objects.get(action="dispute.resolve_refunded")
    assert entry.actor == support_user
    assert entry.before["transaction_status"] == "disputed"
    assert entry.after["transaction_status"] == "refunded"


def test_support_releases_a_dispute_through_admin(support_client, settings):
    dispute = disputed_transaction(settings)
    run_action(support_client, "escrow_dispute", "resolve_release", [dispute.pk],
               reason="buyer changed their mind")
    dispute.refresh_from_db()
    assert dispute.status == Dispute.Status.RELEASED
    assert Transaction.objects.get(pk=dispute.transaction_id).status == "released"
    assert AuditEntry.objects.filter(action="dispute.resolve_released").count() == 1


def test_message_thread_shows_only_while_a_dispute_is_open(support_client, settings):
    dispute = disputed_transaction(settings)
    txn_url = reverse("admin:escrow_transaction_change", args=[dispute.transaction_id])
    dispute_url = reverse("admin:escrow_dispute_change", args=[dispute.pk])
    assert "cracked frame" in support_client.get(txn_url).content.decode()
    assert "cracked frame" in support_client.get(dispute_url).content.decode()
    run_action(support_client, "escrow_dispute", "resolve_release", [dispute.pk], reason="ok")
    assert "cracked frame" not in support_client.get(txn_url).content.decode()
    assert "cracked frame" not in support_client.get(dispute_url).content.decode()


def test_transaction_without_dispute_hides_the_thread(admin_client):
    from chat.models import Message

    txn = sold_transaction()
    Message.objects.create(transaction=txn, sender=txn.buyer, content="private words")
    page = admin_client.get(reverse("admin:escrow_transaction_change", args=[txn.pk]))
    assert page.status_code == 200
    assert "private words" not in page.content.decode()


def test_support_cancels_an_unpaid_sale(support_client, support_user):
    txn = sold_transaction()
    run_action(support_client, "escrow_transaction", "cancel_unpaid", [txn.pk],
               reason="buyer asked to cancel")
    txn.refresh_from_db()
    assert txn.status == Transaction.Status.CANCELLED
    assert Listing.objects.get(pk=txn.listing_id).status == Listing.Status.UNSOLD
    entry = AuditEntry.objects.get(action="transaction.cancel_unpaid")
    assert entry.actor == support_user
    assert entry.before == {"status": "pending_payment"}
    assert not LedgerEntry.objects.filter(transaction=txn).exists()


def test_cancel_refuses_a_paid_sale(support_client, settings):
    dispute = disputed_transaction(settings, with_messages=False)
    response = run_action(support_client, "escrow_transaction", "cancel_unpaid",
                          [dispute.transaction_id], reason="x", follow=True)
    assert Transaction.objects.get(pk=dispute.transaction_id).status == "disputed"
    assert any("skipped" in m for m in messages_of(response))
    assert not AuditEntry.objects.filter(action="transaction.cancel_unpaid").exists()


def test_support_resends_a_failed_payout(support_client, settings, monkeypatch,
                                         django_capture_on_commit_callbacks):
    from escrow import tasks

    txn = released_transaction(settings)
    Wallet.objects.create(user=txn.seller, status=Wallet.Status.ACTIVE,
                          stripe_account_id="acct_sim_seller")
    Transaction.objects.filter(pk=txn.pk).update(payout_status="failed")
    queued = []
    monkeypatch.setattr(tasks.payout_send, "apply_async",
                        lambda args=(), kwargs=None, **kw: queued.append(args))
    with django_capture_on_commit_callbacks(execute=True):
        run_action(support_client, "escrow_transaction", "resend_payout", [txn.pk],
                   reason="seller fixed their bank account")
    assert queued == [(str(txn.pk),)]
    entry = AuditEntry.objects.get(action="transaction.payout_resend")
    assert entry.before == {"payout_status": "failed"}


def test_resend_payout_skips_unreleased(support_client):
    txn = sold_transaction()
    run_action(support_client, "escrow_transaction", "resend_payout", [txn.pk])
    assert not AuditEntry.objects.exists()


# --- dashboard and audit log ----------------------------------------------------------------

def test_dashboard_shows_the_queues(support_client, settings):
    disputed_transaction(settings)
    page = support_client.get(reverse("admin:index"))
    html = page.content.decode()
    assert page.status_code == 200
    assert "Open disputes" in html and "Suspended users" in html
    assert "status__exact=open" in html


def test_audit_log_is_read_only_and_filterable(support_client, support_user, settings):
    dispute = disputed_transaction(settings)
    run_action(support_client, "escrow_dispute", "resolve_refund", [dispute.pk], reason="r")
    entry = AuditEntry.objects.get()
    changelist = reverse("admin:core_auditentry_changelist")
    page = support_client.get(changelist, {"action": "dispute.resolve_refunded"})
    assert page.status_code == 200
    assert "dispute.resolve_refunded" in page.content.decode()
    detail = reverse("admin:core_auditentry_change", args=[entry.pk])
    assert support_client.get(detail).status_code == 200
    assert support_client.post(detail, {"reason": "edited"}).status_code == 403
    assert support_client.post(reverse("admin:core_auditentry_delete",
                                       args=[entry.pk]), {"post": "yes"}).status_code == 403
    entry.refresh_from_db()
    assert entry.reason == "r"
