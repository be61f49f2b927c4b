from __future__ import annotations

import datetime as dt

import pytest
from pydantic import BaseModel, ValidationError

from ari_agent.integrations.contracts import (
    CONTRACTS,
    TOOL_CONTRACTS,
    FaqRequest,
    GetAppointmentRequest,
    LookupOrderRequest,
    LookupOrderResponse,
    RescheduleAppointmentRequest,
    VerifyIdentityRequest,
    VerifyIdentityResponse,
    get_contract,
)
from ari_agent.integrations.http_adapter import check_response


def test_every_tool_has_a_request_and_a_response_contract() -> None:
    for tool in ("lookup_order", "get_appointment", "confirm_appointment", "reschedule_appointment",
                 "verify_identity", "unlock_account", "faq"):
        req, resp = TOOL_CONTRACTS[tool]
        assert issubclass(CONTRACTS[req], BaseModel) and issubclass(CONTRACTS[resp], BaseModel)
    with pytest.raises(KeyError, match="known:"):
        get_contract("NoSuchContract")


def test_requests_coerce_spoken_numbers_but_refuse_unknown_keys() -> None:
    assert LookupOrderRequest.model_validate({"order_number": 4567}).order_number == "4567"
    with pytest.raises(ValidationError):
        LookupOrderRequest.model_validate({"order_number": "45 67"})
    with pytest.raises(ValidationError, match="Extra inputs"):
        LookupOrderRequest.model_validate({"order_number": "4567", "note": "x"})
    with pytest.raises(ValidationError):
        LookupOrderRequest.model_validate({})


def test_customer_lookups_need_an_id_or_a_phone() -> None:
    assert GetAppointmentRequest.model_validate({"phone": "+1 (555) 123-0001"}).phone == "+15551230001"
    with pytest.raises(ValidationError, match="customer_id or phone"):
        GetAppointmentRequest.model_validate({})
    with pytest.raises(ValidationError, match="phone number"):
        GetAppointmentRequest.model_validate({"phone": "call me"})


def test_identity_needs_a_claim_and_a_proof() -> None:
    ok = VerifyIdentityRequest.model_validate({"customer_id": "C-1001", "postcode": "sw1a 1aa"})
    assert ok.postcode == "SW1A1AA"
    VerifyIdentityRequest.model_validate({"phone": "+15551230001", "date_of_birth": "1985-04-12"})
    with pytest.raises(ValidationError, match="postcode or date_of_birth"):
        VerifyIdentityRequest.model_validate({"customer_id": "C-1001"})
    with pytest.raises(ValidationError, match="customer_id or phone"):
        VerifyIdentityRequest.model_validate({"postcode": "SW1A1AA"})


def test_reschedule_parses_dates_and_times() -> None:
    r = RescheduleAppointmentRequest.model_validate(
        {"appointment_id": "A-100", "new_date": "2030-01-02", "new_time": "10:30"})
    assert r.new_date == dt.date(2030, 1, 2) and r.new_time == dt.time(10, 30)
    with pytest.raises(ValidationError):
        RescheduleAppointmentRequest.model_validate({"appointment_id": "A-100", "new_date": "next tuesday",
                                                      "new_time": "10:30"})


def test_faq_topic_is_normalised() -> None:
    assert FaqRequest.model_validate({"topic": " Opening Hours "}).topic == "opening_hours"


def test_a_matching_response_is_returned_as_plain_json() -> None:
    data, reason = check_response(LookupOrderResponse, {
        "order_number": "4567", "status": "shipped", "eta": "2026-11-26", "carrier": "UPS",
        "items": [{"name": "Headphones", "quantity": 1}], "warehouse": "ignored extra field"})
    assert reason == ""
    assert data == {"order_number": "4567", "status": "shipped", "eta": "2026-11-26", "carrier": "UPS",
                    "items": [{"name": "Headphones", "quantity": 1}]}


@pytest.mark.parametrize("body", [
    {"order_number": "4567", "status": "teleported"},
    {"order_number": "4567", "status": "shipped", "eta": "soon"},
    {"order_number": "4567", "status": "shipped", "items": [{"name": "", "quantity": 0}]},
    {"status": "shipped"},
    ["not", "an", "object"],
    None,
])
def test_a_response_off_contract_is_a_reason_not_a_crash(body: object) -> None:
    data, reason = check_response(LookupOrderResponse, body)
    assert data is None and reason


def test_identity_response_must_be_consistent() -> None:
    assert check_response(VerifyIdentityResponse, {"verified": True, "level": "none", "customer_id": "C-1"})[0] is None
    assert check_response(VerifyIdentityResponse, {"verified": False, "level": "basic"})[0] is None
    assert check_response(VerifyIdentityResponse, {"verified": False, "level": "none"})[0] == {
        "verified": False, "level": "none", "customer_id": None}
