"""Phone numbers never reach a log: every handler carries PhoneNumberRedactingFilter."""

from __future__ import annotations

import io
import logging
import re
import uuid
from logging.config import dictConfig

import pytest
from django.conf import settings

from biddt.crypto import log_hash
from biddt.logging import PhoneNumberRedactingFilter, redact_phone_numbers

E164 = "+14165550100"
DIGIT_SPELLINGS = ("4165550100", "416-555-0100", "416 555 0100", "5550100")


@pytest.fixture
def capture():
    """A logger whose only handler has the filter; returns (logger, read-output)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(PhoneNumberRedactingFilter())
    logger = logging.getLogger(f"tests.redaction.{uuid.uuid4().hex}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    yield logger, stream.getvalue
    logger.removeHandler(handler)


def assert_no_phone(output: str) -> None:
    for spelling in DIGIT_SPELLINGS:
        assert spelling not in output, output
    assert not re.search(r"\d{7,}", output), output


@pytest.mark.parametrize(
    ("msg", "args"),
    [
        pytest.param(f"code sent to {E164}", (), id="in-msg"),
        pytest.param("code sent to %s", (E164,), id="as-arg"),
        pytest.param("code sent to %(phone)s", ({"phone": E164},), id="as-mapping-arg"),
        pytest.param("code sent to +1 416-555-0100", (), id="spaced-and-dashed"),
        pytest.param("code sent to +1 (416) 555-0100", (), id="parentheses"),
        pytest.param("code sent to %s", ("4165550100",), id="bare-digits"),
        pytest.param("login phone=%s ok", (E164,), id="after-equals"),
    ],
)
def test_phone_number_is_replaced_by_its_hash(capture, msg, args):
    # given a logger behind a handler with the filter
    logger, output = capture
    # when a phone number is logged, in the message or as an argument
    logger.info(msg, *args)
    # then only phone#<hash> appears, never the digits
    text = output()
    assert "phone#" in text
    assert re.search(r"phone#[0-9a-f]{12}\b", text), text
    assert_no_phone(text)


def test_hash_is_stable_and_keyed(capture):
    logger, output = capture
    # when the same number is logged in two spellings of the international form
    logger.info("a %s", E164)
    logger.info("b %s", "+1 416-555-0100")
    # then both lines carry the same hash, the keyed log hash of the E.164 form
    hashes = re.findall(r"phone#([0-9a-f]{12})", output())
    assert hashes == [log_hash(E164)] * 2


@pytest.mark.parametrize(
    "text",
    [
        "auction ends 2026-11-24 at 18:30:00",
        "ends_at=2026-11-24T18:30:00+00:00",
        "bid 12500 cents (max 1250000)",
        f"listing {uuid.UUID('12345678-1234-5678-1234-567812345678')}",
        "listing 550e8400-e29b-41d4-a716-446655440000 closed",
        "version 1.2.3 port 6379 pid 12345",
        f"hex {uuid.UUID(int=12345678901234567890).hex}",
    ],
)
def test_dates_amounts_and_uuids_are_untouched(capture, text):
    logger, output = capture
    # when a line without phone numbers is logged
    logger.info("%s", text)
    # then it is written exactly as given
    assert output() == f"INFO {text}\n"


def test_any_bare_run_of_10_to_15_digits_counts_as_a_phone_number(capture):
    # The filter errs on the side of hiding: a national number has no other mark.
    logger, output = capture
    logger.info("ids %s %s %s", "123456789", "1234567890", "1234567890123456")
    assert output() == f"INFO ids 123456789 phone#{log_hash('+1234567890')} 1234567890123456\n"


def test_exception_text_is_redacted(capture):
    # given an exception whose message carries a phone number
    logger, output = capture
    try:
        raise ValueError(f"no account for {E164}")
    except ValueError:
        # when it is logged with its traceback
        logger.exception("lookup failed for %s", E164)
    # then neither the message nor the traceback shows the number
    text = output()
    assert "Traceback" in text
    assert "ValueError: no account for phone#" in text
    assert_no_phone(text)


def test_redaction_is_idempotent():
    # A record may pass several handlers, each with the filter: the hash must survive
    # a second pass unchanged, even when it happens to be all digits.
    numbers = (f"+1416555{n:04d}" for n in range(10_000))
    all_digit = next(n for n in numbers if log_hash(n).isdigit())
    once = redact_phone_numbers(f"call {all_digit} and {E164}")
    assert redact_phone_numbers(once) == once
    assert once == f"call phone#{log_hash(all_digit)} and phone#{log_hash(E164)}"


def test_configured_console_handler_has_the_filter():
    # given the project's LOGGING setting
    handler_conf = settings.LOGGING["handlers"]["console"]
    filter_conf = settings.LOGGING["filters"][handler_conf["filters"][0]]
    # then the console handler (the root logger's) carries the redacting filter
    assert filter_conf["()"] == "biddt.logging.PhoneNumberRedactingFilter"
    assert settings.LOGGING["root"]["handlers"] == ["console"]
    for name, handler in settings.LOGGING["handlers"].items():
        assert "redact_phones" in handler.get("filters", []), name


@pytest.fixture
def configured_stream():
    """The project's LOGGING applied to the root logger, its console handler writing to a
    buffer (returned); the root logger is restored afterwards."""
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        dictConfig(settings.LOGGING)
        [console] = [h for h in root.handlers
                     if any(isinstance(f, PhoneNumberRedactingFilter) for f in h.filters)]
        console.setStream(stream)
        yield stream
    finally:
        for handler in root.handlers[:]:
            if handler not in saved[0]:
                root.removeHandler(handler)
        for handler in saved[0]:
            if handler not in root.handlers:
                root.addHandler(handler)
        root.setLevel(saved[1])


def test_configured_logging_redacts_end_to_end(configured_stream):
    # given the project's LOGGING applied to a fresh root logger, writing to a buffer
    # when application code logs a phone number
    logging.getLogger("accounts.services").warning("sms to %s failed", E164)
    # then the configured handler writes the hash only
    text = configured_stream.getvalue()
    assert f"sms to phone#{log_hash(E164)} failed" in text
    assert_no_phone(text)


def test_number_after_a_hash_sign_is_still_redacted(capture):
    logger, output = capture
    logger.info("call back #%s", "4165550100")
    assert output() == f"INFO call back #phone#{log_hash('+4165550100')}\n"


@pytest.mark.django_db
@pytest.mark.parametrize(("num_proxies", "forwarded", "expected"), [
    (0, "203.0.113.7", "127.0.0.1"),            # no proxy trusted: the peer
    (1, "203.0.113.7", "203.0.113.7"),          # one proxy: the address it saw
    (1, "198.51.100.1, 203.0.113.7", "203.0.113.7"),  # a spoofed first hop is ignored
])
def test_request_log_lines_carry_the_ip_the_throttles_see(client, settings, num_proxies,
                                                            forwarded, expected):
    import structlog
    from rest_framework.settings import api_settings

    # given BIDDT_NUM_PROXIES proxies in front
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": num_proxies}
    api_settings.reload()
    try:
        # when a request is logged
        with structlog.testing.capture_logs(
                processors=[structlog.contextvars.merge_contextvars]) as logs:
            client.get("/healthz", HTTP_X_FORWARDED_FOR=forwarded, REMOTE_ADDR="127.0.0.1")
    finally:
        api_settings.reload()
    # then its lines name the client as the throttles would
    started = [e for e in logs if e["event"] == "request_started"]
    assert started and started[0]["ip"] == expected


@pytest.mark.parametrize(("msg", "args"), [
    pytest.param("%s", ("Your Biddt code is 220578. It expires in 10 minutes.",), id="sms-body"),
    pytest.param("[sms to %s] Your Biddt code is 220578", (E164,), id="old-console-line"),
    pytest.param("verify code=%s", ("220578",), id="code-equals"),
    pytest.param("codes: 220578", (), id="plural"),
])
def test_a_login_code_in_a_message_is_masked(capture, msg, args):
    # defence in depth: nothing should log a code, but a line that does is masked
    logger, output = capture
    logger.info(msg, *args)
    text = output()
    assert "220578" not in text, text
    assert "******" in text
    assert_no_phone(text)


def test_six_digit_numbers_away_from_a_code_are_kept(capture):
    logger, output = capture
    logger.info("bid 220578 cents on listing 7")
    assert output() == "INFO bid 220578 cents on listing 7\n"


def test_a_code_field_of_a_structured_event_is_masked():
    from biddt.logging import redact_event

    event = redact_event(None, "info", {"event": "otp checked", "code": "220578",
                                        "amount": "220578"})
    assert event == {"event": "otp checked", "code": "******", "amount": "220578"}


def test_console_sms_backend_logs_neither_number_nor_code(caplog, capsys):
    from accounts.sms import ConsoleBackend

    # when the development backend "sends" a login code
    with caplog.at_level(logging.INFO, logger="accounts.sms"):
        ConsoleBackend().send(to=E164, body="Your Biddt code is 220578. It expires soon.")
    # then one log line says so, with the number's hash and the code masked, and nothing
    # is printed
    printed = capsys.readouterr()
    assert printed.out == printed.err == ""
    [record] = [r for r in caplog.records if r.name == "accounts.sms"]
    line = record.getMessage()
    assert f"phone#{log_hash(E164)}" in line and "code is ******" in line
    assert "220578" not in line
    assert_no_phone(line)


@pytest.mark.django_db
def test_one_line_per_request_and_no_django_request_warning_for_a_4xx(client, configured_stream):
    # given the project's LOGGING applied to a fresh root logger, writing to a buffer
    # when a request answers 201 and another a 4xx (an unknown listing: 404)
    missing = f"/v1/listings/{uuid.uuid4()}"
    ok = client.get("/healthz")
    refused = client.get(missing)
    # then each wrote exactly one line, its `request_finished`; no "Not Found: ..." line
    # from django.request repeats the 4xx, and `request_started` stays below INFO
    assert ok.status_code == 200 and refused.status_code == 404
    lines = configured_stream.getvalue().splitlines()
    assert [line for line in lines if "/healthz" in line] == [
        line for line in lines if "request_finished" in line and "/healthz" in line]
    assert len([line for line in lines if "/healthz" in line]) == 1, lines
    about_missing = [line for line in lines if missing in line]
    assert len(about_missing) == 1 and "request_finished" in about_missing[0], lines
    assert "404" in about_missing[0] and "request_started" not in configured_stream.getvalue()
