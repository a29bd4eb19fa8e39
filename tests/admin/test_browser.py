"""The staff console in a real browser: Playwright for Python driving Debian's Chromium.

A support user logs in, opens the open-disputes queue from the dashboard, reads the dispute
(screenshot saved to artifacts/), refunds it with a reason, and finds the refund in the audit
log. Skips with a reason when Playwright or Chromium is missing (CI installs both).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from accounts.roles import SUPPORT, user_set_role
from biddt.core.models import AuditEntry
from escrow.models import Dispute, Transaction
from tests.admin.conftest import disputed_transaction
from tests.factories import UserFactory

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
PHONE, PASSWORD = "+14165550142", "support-pw-for-tests"


def chromium_path() -> str | None:
    explicit = os.environ.get("BIDDT_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).exists() else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def browser(monkeypatch):
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="playwright (requirements-dev.txt) not installed")
    executable = chromium_path()
    if executable is None:
        pytest.skip("Chromium not found: `apt-get install chromium` (CI does) or set "
                    "BIDDT_CHROMIUM")
    # Playwright's sync API runs an event loop in this thread (in a greenlet); the test's own
    # ORM calls are still synchronous, which Django allows with this flag (Playwright docs).
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=executable, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-dev-shm-usage"])
        try:
            yield browser
        finally:
            browser.close()
            # ORM calls made while Playwright's loop ran used their own (context-local)
            # connection: close it, or the test database can't be dropped at the end.
            from django.db import connections

            connections.close_all()


@pytest.fixture
def console_data(settings):
    """A support user and a disputed transaction with a thread, made before the browser
    starts (its event loop would refuse the channel-layer sends these writes make)."""
    staff = UserFactory(phone_number=PHONE, display_name="Support Sue")
    staff.set_password(PASSWORD)
    staff.save()
    user_set_role(user=staff, role=SUPPORT)
    return staff, disputed_transaction(settings)


def test_support_refunds_a_dispute_and_the_audit_log_shows_it(console_data, browser,
                                                               live_server):
    # given a support user and a disputed transaction with a message thread
    staff, dispute = console_data
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(15_000)

    # when they log in to the console
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", PHONE)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")
    # and open the dispute queue from the dashboard, then the dispute
    page.click("#staff-queues >> text=Open disputes")
    page.wait_for_url("**/admin/escrow/dispute/?status__exact=open")
    page.click("#result_list tbody tr th a")
    page.wait_for_url(re.compile(rf"/admin/escrow/dispute/{dispute.pk}/change/"))
    assert page.is_visible("text=The bike has a cracked frame.")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dispute_page.png"), full_page=True)

    # and refund it from the list with a reason
    page.goto(f"{live_server.url}/admin/escrow/dispute/?status__exact=open")
    page.check(f"#result_list input[name=_selected_action][value='{dispute.pk}']")
    page.select_option("select[name=action]", "resolve_refund")
    page.fill("input[name=reason]", "Photos show the frame was cracked")
    page.click("button[name=index], button.button[type=submit]")
    page.wait_for_selector("ul.messagelist li.success")
    assert "1 dispute(s) resolved: refunded." in page.inner_text("ul.messagelist")

    # then the money went back and the audit log shows who did it and why
    dispute.refresh_from_db()
    assert dispute.status == Dispute.Status.REFUNDED
    assert Transaction.objects.get(pk=dispute.transaction_id).status == "refunded"
    assert AuditEntry.objects.filter(action="dispute.resolve_refunded", actor=staff).exists()
    page.goto(f"{live_server.url}/admin/core/auditentry/")
    table = page.inner_text("#result_list")
    assert "dispute.resolve_refunded" in table
    assert "Support Sue" in table
    assert "Photos show the frame was cracked" in table
    page.screenshot(path=str(ARTIFACTS / "audit_log.png"), full_page=True)
