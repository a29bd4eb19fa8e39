"""The staff console's decision pages and dashboard in a real browser (Playwright driving
Debian's Chromium, as test_browser.py): a support user opens a dispute from the dashboard,
reads its timeline, splits it 30/70 through the confirmation page; the dashboard draws its
charts; a support user sees no Delete on users. Screenshots go to artifacts/."""

from __future__ import annotations

import re

import pytest

from accounts.roles import SUPPORT, user_set_role
from biddt.core.models import AuditEntry
from escrow.models import Dispute, LedgerEntry, Transaction
from escrow.payments import SimulatedGateway
from tests.admin.conftest import disputed_transaction
from tests.admin.test_browser import ARTIFACTS, PASSWORD, PHONE, browser  # noqa: F401
from tests.escrow.helpers import assert_books_balanced
from tests.factories import UserFactory

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

WIDTH = 1366


@pytest.fixture
def support_and_dispute(settings):
    staff = UserFactory(phone_number=PHONE, display_name="Support Sue")
    staff.set_password(PASSWORD)
    staff.save()
    user_set_role(user=staff, role=SUPPORT)
    return staff, disputed_transaction(settings)


@pytest.fixture
def provider_refunds(monkeypatch):
    calls = []
    real = SimulatedGateway.create_partial_refund

    def record(self, txn, *, amount_cents):
        calls.append((str(txn.pk), amount_cents))
        return real(self, txn, amount_cents=amount_cents)

    monkeypatch.setattr(SimulatedGateway, "create_partial_refund", record)
    return calls


def log_in(page, base: str) -> None:
    page.goto(f"{base}/admin/login/?next=/admin/")
    page.fill("#id_username", PHONE)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{base}/admin/")


def test_support_splits_a_dispute_30_70_from_its_page(
        support_and_dispute, provider_refunds, live_server,
        browser):  # noqa: F811 (the fixture imported from test_browser)
    staff, dispute = support_and_dispute
    txn = dispute.transaction
    base = live_server.url
    page = browser.new_page(viewport={"width": WIDTH, "height": 900})
    page.set_default_timeout(15_000)
    ARTIFACTS.mkdir(exist_ok=True)

    # when support logs in, the dashboard draws its charts
    log_in(page, base)
    page.wait_for_selector("#console-charts[data-ready=yes]")
    assert page.locator("#console-charts canvas").count() == 5
    page.screenshot(path=str(ARTIFACTS / "console_dashboard.png"), full_page=True)

    # and they open the dispute from the dashboard's queue
    page.click("#staff-queues >> text=Open disputes")
    page.wait_for_url("**/admin/escrow/dispute/?status__exact=open")
    assert "$100.00 CAD" in page.inner_text("#result_list")
    page.click("#result_list tbody tr th a")
    page.wait_for_url(re.compile(rf"/admin/escrow/dispute/{dispute.pk}/change/"))

    # then the page shows the timeline: sale, payment, dispute, ledger, chat
    timeline = page.inner_text("#timeline")
    for text in ("Sold", "Paid into escrow", "Dispute opened", "Item not as described",
                 "Ledger: Buyer funds held", "The bike has a cracked frame.",
                 "It was fine when I listed it."):
        assert text in timeline, text
    parties = page.inner_text("#parties")
    assert str(txn.buyer) in parties and str(txn.seller) in parties
    assert page.is_visible("#decide-split")
    page.screenshot(path=str(ARTIFACTS / "console_dispute_timeline.png"), full_page=True)

    # when they split it: $30.00 back to the buyer, with a note, through the confirmation
    page.click("#decide-split")
    page.wait_for_url(re.compile(rf"/admin/escrow/dispute/{dispute.pk}/decide/split/"))
    page.fill("#id_refund", "30.00")
    page.fill("#id_note", "Both at fault: frame cracked in transit, buyer keeps the bike")
    page.click("#preview")
    page.wait_for_selector("#confirm")
    restated = page.inner_text("#restated")
    assert "Refund $30.00 CAD to the buyer" in restated and "30%" in restated
    assert "Release the rest, $70.00 CAD, to the seller" in restated
    page.screenshot(path=str(ARTIFACTS / "console_split_confirm.png"), full_page=True)
    page.click("#confirm")
    page.wait_for_url(re.compile(rf"/admin/escrow/dispute/{dispute.pk}/change/"))
    page.wait_for_selector("ul.messagelist li.success")
    assert "Dispute resolved with a split: $30.00 CAD refunded to the buyer" in \
        page.inner_text("ul.messagelist")
    assert not page.is_visible("#decide-split")
    page.screenshot(path=str(ARTIFACTS / "console_split_done.png"), full_page=True)

    # then the money moved once and the books balance
    dispute.refresh_from_db()
    assert dispute.status == Dispute.Status.SPLIT
    txn.refresh_from_db()
    assert txn.status == Transaction.Status.RELEASED and txn.refunded_cents == 3000
    assert provider_refunds == [(str(txn.pk), 3000)]
    assert LedgerEntry.objects.filter(transaction=txn, kind="split").count() == 5
    assert_books_balanced()
    # and the audit log shows who, what and why
    assert AuditEntry.objects.filter(action="dispute.resolve_split", actor=staff).exists()
    page.goto(f"{base}/admin/core/auditentry/")
    table = page.inner_text("#result_list")
    assert "dispute.resolve_split" in table and "Support Sue" in table
    assert "Both at fault" in table

    # the transactions list fits a 1366 px screen
    page.goto(f"{base}/admin/escrow/transaction/")
    assert page.evaluate("document.documentElement.scrollWidth") <= WIDTH
    page.screenshot(path=str(ARTIFACTS / "console_transactions.png"), full_page=True)


def test_support_sees_no_delete_on_users(
        support_and_dispute, live_server,
        browser):  # noqa: F811 (the fixture imported from test_browser)
    _, dispute = support_and_dispute
    other = UserFactory(display_name="Plain Paul")
    page = browser.new_page(viewport={"width": WIDTH, "height": 900})
    page.set_default_timeout(15_000)
    log_in(page, live_server.url)
    for user_id in (other.pk, dispute.transaction.buyer_id):
        page.goto(f"{live_server.url}/admin/accounts/user/{user_id}/change/")
        assert page.is_visible("#decide-suspend")
        assert page.locator("a.deletelink").count() == 0
    page.goto(f"{live_server.url}/admin/accounts/user/")
    assert "Delete selected" not in page.inner_text("select[name=action]")
    # and the lists fit a 1366 px screen
    for path in ("accounts/user", "escrow/dispute", "escrow/transaction", "escrow/ledgerentry",
                 "listings/listing", "bidding/bid", "core/auditentry"):
        page.goto(f"{live_server.url}/admin/{path}/")
        assert page.evaluate("document.documentElement.scrollWidth") <= WIDTH, path
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "console_users.png"), full_page=True)
