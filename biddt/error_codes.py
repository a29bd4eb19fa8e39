"""The error codes of the API, by HTTP status, for the schema's per-operation enums.

`GET /v1/schema/` declares, for each error response of each operation, the `code` of the
error item as an enum of the codes that operation can answer (API.md "The contract as
documents"): the codes every operation shares at that status (`GENERIC`), plus the domain
codes the operation declares. An operation declares its domain codes in its description,
where people read them (``409 `listing_has_bids` ...``); `DOMAIN` says which status each
domain code comes with. tests/biddt/test_error_codes.py checks that every code the code base
raises is listed here.
"""

from __future__ import annotations

import re

# Codes any operation may answer at the status (the framework's and the project's own).
GENERIC: dict[str, tuple[str, ...]] = {
    # DRF's field validation codes, the project's parse and body checks.
    "400": ("invalid", "required", "null", "blank", "max_length", "min_length", "max_value",
            "min_value", "max_string_length", "invalid_choice", "not_a_list", "not_a_dict",
            "empty", "no_name", "invalid_image", "max_digits", "max_decimal_places",
            "max_whole_digits", "date", "datetime", "make_aware", "overflow",
            "surrogate_characters_not_allowed", "null_characters_not_allowed", "unique",
            "does_not_exist", "incorrect_type", "parse_error", "invalid_idempotency_key"),
    "401": ("not_authenticated", "token_not_valid"),
    "403": ("permission_denied", "account_suspended"),
    "404": ("not_found",),
    "405": ("method_not_allowed",),
    "406": ("not_acceptable",),
    "409": ("conflict",),
    "413": ("request_too_large",),
    "415": ("unsupported_media_type",),
    "422": ("idempotency_key_reused",),
    "429": ("throttled",),
    "500": ("error",),
    "503": ("service_unavailable",),
}

# Domain codes (API.md) and the status each is answered with.
DOMAIN: dict[str, str] = {
    **dict.fromkeys((
        "invalid_price", "invalid_duration", "invalid_image", "invalid_code", "code_expired",
        "invalid_cursor", "email_taken", "too_many_attempts", "invalid_score",
        "invalid_safe_zone", "invalid_phone_number", "invalid_meetup_time", "invalid_location",
        "location_required", "invalid_max", "invalid_signature", "invalid_event",
        "invalid_video", "invalid_price_range", "out_of_range", "reserved",
    ), "400"),
    **dict.fromkeys((
        "own_listing", "listing_not_editable", "listing_has_bids", "retraction_not_allowed",
        "listing_not_sold", "listing_not_draft", "listing_not_active", "fixed_price_listing",
        "code_already_used", "buy_now_unavailable", "bid_too_low", "auction_ended",
        "already_reported", "already_rated", "invalid_state", "too_many_saved_searches",
        "no_runner_up", "second_chance_unavailable", "account_has_open_obligations",
        "dispute_busy",
    ), "409"),
}

_QUOTED = re.compile(r"`([a-z][a-z0-9_]*)`")


# A cursor-paginated list refuses a cursor it didn't issue.
PAGINATED = {"400": ("invalid_cursor",)}


def operation_codes(status: str, description: str, *, paginated: bool = False) -> list[str]:
    """The codes an operation answers at `status`: the generic ones (and a paginated list's),
    and the domain codes its description names."""
    declared = {code for code in _QUOTED.findall(description or "")
                if DOMAIN.get(code) == status}
    extra = PAGINATED.get(status, ()) if paginated else ()
    return sorted({*GENERIC.get(status, ()), *extra, *declared})
