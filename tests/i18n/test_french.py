"""French (issue 20): error `detail`s follow Accept-Language, codes never change; what is
sent to a user later (notification, push, e-mail, system chat line) is in their language,
with French plurals and money (`100,00 $`)."""

from __future__ import annotations

import pytest
from django.core import mail
from django.test import TestCase
from django.utils import translation

from accounts.models import Device, User
from bidding.services import _announce_closed, bid_outbid_notify, bid_place
from biddt.i18n import Money, format_money
from chat.models import Message
from escrow.services import dispute_open
from notifications.models import Notification
from notifications.push import InMemoryBackend
from tests.conftest import bearer
from tests.factories import ListingFactory, UserFactory, sold_transaction

pytestmark = pytest.mark.django_db

NBSP = "\u00a0"


@pytest.fixture(autouse=True)
def _outbox():
    InMemoryBackend.outbox.clear()
    yield
    InMemoryBackend.outbox.clear()


def french(**kwargs):
    return UserFactory(language="fr", **kwargs)


# --- money and plurals ------------------------------------------------------------------------

def test_money_is_formatted_the_canadian_way_in_each_language():
    assert format_money(10000, language="en") == "$100.00"
    assert format_money(10000, language="fr") == f"100,00{NBSP}$"
    assert format_money(123456750, language="fr").replace("\u202f", " ") \
        .replace(NBSP, " ") == "1 234 567,50 $"
    with translation.override("fr"):
        assert f"{Money(2550)}" == f"25,50{NBSP}$"
    with translation.override("en"):
        assert str(Money(2550)) == "$25.50"


# --- error details: Accept-Language, codes unchanged --------------------------------------------

@pytest.mark.parametrize("header", ["fr", "fr-CA", "fr-CA,fr;q=0.9,en;q=0.8"])
def test_a_domain_error_detail_is_french_and_its_code_is_not(api, user, header):
    listing = ListingFactory(seller=user)
    response = api.post(f"/v1/listings/{listing.pk}/bids", {"amount_cents": 1000},
                        format="json", HTTP_AUTHORIZATION=bearer(user),
                        HTTP_ACCEPT_LANGUAGE=header)
    assert response.status_code == 409
    assert response.json()["errors"][0] == {
        "code": "own_listing", "attr": None,
        "detail": "Vous ne pouvez pas enchérir sur votre propre annonce."}
    assert response["Content-Language"] == "fr"
    assert "Accept-Language" in response["Vary"]


def test_english_stays_the_default_and_for_other_languages(api, user):
    listing = ListingFactory(seller=user)
    for header in (None, "en-CA", "de-DE,de;q=0.9"):
        extra = {"HTTP_ACCEPT_LANGUAGE": header} if header else {}
        response = api.post(f"/v1/listings/{listing.pk}/bids", {"amount_cents": 1000},
                            format="json", HTTP_AUTHORIZATION=bearer(user), **extra)
        assert response.json()["errors"][0] == {
            "code": "own_listing", "attr": None, "detail": "You can't bid on your own listing."}


def test_bid_too_low_in_french_keeps_its_machine_field(api, user):
    listing = ListingFactory(starting_price_cents=5000)
    response = api.post(f"/v1/listings/{listing.pk}/bids", {"amount_cents": 1000},
                        format="json", HTTP_AUTHORIZATION=bearer(user),
                        HTTP_ACCEPT_LANGUAGE="fr-CA")
    item = response.json()["errors"][0]
    assert item["code"] == "bid_too_low" and item["minimum_next_bid_cents"] == 5000
    assert item["detail"].startswith("L’offre doit être d’au moins 5000 cents.")


def test_validation_and_auth_errors_are_french_too(api, user):
    response = api.patch("/v1/users/me", {"language": "de"}, format="json",
                         HTTP_AUTHORIZATION=bearer(user), HTTP_ACCEPT_LANGUAGE="fr")
    item = response.json()["errors"][0]
    assert item["code"] == "invalid_choice" and item["attr"] == "language"
    assert "n’est pas un choix valide" in item["detail"] or "choix valide" in item["detail"]
    unauth = api.get("/v1/users/me", HTTP_ACCEPT_LANGUAGE="fr")
    assert unauth.status_code == 401
    assert unauth.json()["errors"][0]["code"] == "not_authenticated"
    assert unauth.json()["errors"][0]["detail"] != "Authentication credentials were not provided."


@pytest.mark.parametrize("header", ["Bearer not-a-token", "Bearer a b"])
def test_a_bad_token_is_refused_in_french(api, header):
    # simplejwt's own texts: its French catalog leaves some fuzzy; ours gives them all
    response = api.get("/v1/users/me", HTTP_AUTHORIZATION=header, HTTP_ACCEPT_LANGUAGE="fr")
    assert response.status_code == 401
    (item,) = response.json()["errors"]
    assert item["code"] == "token_not_valid"
    assert item["detail"].startswith(("Le jeton", "L’en-tête")), item["detail"]


def test_a_refresh_of_a_revoked_token_is_refused_in_french(api, user):
    from rest_framework_simplejwt.tokens import RefreshToken

    refresh = RefreshToken.for_user(user)
    refresh.blacklist()
    response = api.post("/v1/auth/refresh", {"refresh": str(refresh)}, format="json",
                        HTTP_ACCEPT_LANGUAGE="fr")
    assert response.status_code == 401
    (item,) = response.json()["errors"]
    assert item["code"] == "token_not_valid"
    assert item["detail"].startswith("Le jeton"), item["detail"]


def test_the_closure_refusal_is_french_for_a_french_request(api):
    txn = sold_transaction()
    response = api.delete("/v1/users/me", HTTP_AUTHORIZATION=bearer(txn.buyer),
                          HTTP_ACCEPT_LANGUAGE="fr")
    item = response.json()["errors"][0]
    assert item["code"] == "account_has_open_obligations"
    assert item["detail"].startswith("Vous avez une vente ou un achat en cours.")


# --- what is sent later: the recipient's language -------------------------------------------------

def test_outbid_notification_push_and_email_are_in_the_users_french():
    leader = french(email="claire@example.com")
    Device.objects.create(user=leader, token="tok-fr", token_index="idx-tok-fr",
                          platform="ios")
    listing = ListingFactory(title="Vélo de route", starting_price_cents=1000)
    bid_place(listing_id=listing.pk, bidder=leader, amount_cents=1000)
    bid_place(listing_id=listing.pk, bidder=UserFactory(), amount_cents=2500)
    with translation.override("en"), TestCase.captureOnCommitCallbacks(execute=True):
        bid_outbid_notify(listing_id=listing.pk, user_id=leader.pk, seq=2)

    note = Notification.objects.get(user=leader, type="outbid")
    assert note.title == "Votre offre a été dépassée"
    assert note.body == (f"Quelqu’un a offert davantage pour «{NBSP}Vélo de route{NBSP}». "
                         f"Le prix est maintenant de 10,50{NBSP}$.")
    (tokens, message), = InMemoryBackend.outbox
    assert tokens == ["tok-fr"]
    assert (message.title, message.body) == (note.title, note.body)
    assert message.data["type"] == "outbid"  # machine fields never translated


def test_an_email_is_written_in_french_for_a_french_user(settings):
    settings.BIDDT_PAYMENT_WINDOW_HOURS = 48
    user = french(email="claire@example.com", display_name="Claire")
    listing = ListingFactory(title="Lampe")
    with translation.override("en"), TestCase.captureOnCommitCallbacks(execute=True):
        _announce_closed(listing, buyer_id=user.pk, final_price=10000, bidder_ids=[])
    note = Notification.objects.get(user=user, type="won")
    assert note.title == f"Vous avez gagné{NBSP}!"
    assert f"10{NBSP}" not in note.body and f"100,00{NBSP}$" in note.body
    assert "Payez dans un délai de 48 heures." in note.body
    (email,) = [m for m in mail.outbox if m.to == ["claire@example.com"]]
    assert email.subject == f"Biddt{NBSP}: Vous avez gagné{NBSP}!"
    assert email.body.startswith("Bonjour Claire,")
    assert "Ouvrez l’application Biddt pour voir les détails." in email.body
    html = email.alternatives[0][0]
    assert "Vous recevez ce courriel" in html


def test_each_recipient_of_one_event_reads_their_own_language(settings):
    settings.BIDDT_PAYMENT_WINDOW_HOURS = 1  # the singular: "1 heure" / "1 hour"
    fr_buyer, en_bidder = french(), UserFactory()
    seller = french()
    listing = ListingFactory(seller=seller, title="Chaise")
    with TestCase.captureOnCommitCallbacks(execute=True):
        _announce_closed(listing, buyer_id=fr_buyer.pk, final_price=100,
                         bidder_ids=[fr_buyer.pk, en_bidder.pk])
    titles = dict(Notification.objects.filter(dedupe_key__endswith=str(listing.pk))
                  .values_list("user_id", "title"))
    assert titles[fr_buyer.pk] == f"Vous avez gagné{NBSP}!"
    assert titles[en_bidder.pk] == "Auction ended"
    assert titles[seller.pk] == "Votre article est vendu"
    won = Notification.objects.get(user=fr_buyer, type="won").body
    assert won == (f"«{NBSP}Chaise{NBSP}» est à vous pour 1,00{NBSP}$. "
                   "Payez dans un délai de 1 heure.")


def test_plural_forms_in_french(settings):
    from django.utils.translation import ngettext

    from bidding.services import auction_ending_soon_notify  # noqa: F401 - the same texts
    with translation.override("fr"):
        assert ngettext("Ending in %(count)d minute", "Ending in %(count)d minutes", 1) \
            % {"count": 1} == "Se termine dans 1 minute"
        assert ngettext("Ending in %(count)d minute", "Ending in %(count)d minutes", 5) \
            % {"count": 5} == "Se termine dans 5 minutes"
        # French counts 0 and 1 as singular.
        assert ngettext("Ending in %(count)d hour", "Ending in %(count)d hours", 0) \
            % {"count": 0} == "Se termine dans 0 heure"


def test_system_chat_lines_follow_the_parties_languages():
    both_fr = sold_transaction(buyer=french(), seller=french())
    mixed = sold_transaction(buyer=UserFactory(), seller=french())
    from escrow.models import Transaction
    for txn in (both_fr, mixed):
        Transaction.objects.filter(pk=txn.pk).update(status="in_escrow")
        dispute_open(transaction_id=txn.pk, user=txn.buyer, reason="broken")
    french_line = ("Un litige a été ouvert. L’argent reste en séquestre jusqu’à ce que notre "
                   "équipe le règle.")
    english_line = ("A dispute was opened. The money stays in escrow until staff resolve it.")
    assert Message.objects.get(transaction=both_fr, sender=None).content == french_line
    # One line both parties read: the seller's French first, then the buyer's English.
    assert Message.objects.get(transaction=mixed, sender=None).content == \
        f"{french_line}\n{english_line}"
    assert User.objects.filter(language="fr").count() == 3


def test_a_second_chance_offer_reaches_a_french_runner_up_in_french():
    from escrow.services import second_chance
    from notifications.models import Notification
    from tests.bidding.second_chance_helpers import unpaid_auction

    winner, runner_up = UserFactory(), french()
    listing, _txn = unpaid_auction([(runner_up, 1000, 2500), (winner, 3000, None)])
    # when the seller offers it to the runner-up, who reads French
    offer = second_chance.second_chance_offer_create(user=listing.seller, listing_id=listing.pk)
    # then the offer's notification is French, with the price in French money
    note = Notification.objects.get(user=runner_up, type="second_chance_offer")
    assert note.title == "Une seconde chance d’acheter"
    assert f"{offer.amount_cents // 100},00\xa0$" in note.body and "si vous acceptez" in note.body


def test_the_new_endpoints_refuse_in_french(api):
    from discovery.services import MAX_SAVED_SEARCHES, saved_search_create

    user = UserFactory()
    for i in range(MAX_SAVED_SEARCHES):
        saved_search_create(user=user, data={"name": f"s{i}", "notify": False})
    api.force_authenticate(user)
    # when a French app saves one search too many
    response = api.post("/v1/saved-searches", {"name": "one more", "notify": True},
                        format="json", HTTP_ACCEPT_LANGUAGE="fr-CA")
    # then the refusal is French and its code is not
    assert response.status_code == 409
    (item,) = response.json()["errors"]
    assert item["code"] == "too_many_saved_searches"
    assert item["detail"].startswith(f"Au plus {MAX_SAVED_SEARCHES} recherches enregistrées")
