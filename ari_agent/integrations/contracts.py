"""Typed request/response contracts of the demo tools.

A request contract checks what the conversation engine sends before anything leaves the process
(extra keys are refused: they are an engine bug). A response contract checks what the backend sent
back (extra keys are dropped: backends grow fields) — a response that does not match is an error
result for the engine (``contract_violation``), never a crash.

Tools name their contracts in the ``tools:`` config by the class name (``LookupOrderRequest``); a
tool whose name is in :data:`TOOL_CONTRACTS` gets its pair by default.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Identifier = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_-]+$")]


class RequestContract(BaseModel):
    """What the engine may send: strict about keys, lenient about ``4567`` vs ``"4567"``."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True, coerce_numbers_to_str=True)


class ResponseContract(BaseModel):
    """What a backend must answer: required fields typed, unknown fields ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True, coerce_numbers_to_str=True)


def _normalise_phone(v: str | None) -> str | None:
    if v is None:
        return None
    digits = re.sub(r"[\s().-]", "", v)
    if not re.fullmatch(r"\+?[0-9]{5,16}", digits):
        raise ValueError("a phone number is 5-16 digits, optionally starting with +")
    return digits


# ---------------------------------------------------------------- orders


class LookupOrderRequest(RequestContract):
    order_number: Annotated[str, Field(min_length=1, max_length=20, pattern=r"^[A-Za-z0-9-]+$")]


class OrderItem(ResponseContract):
    name: str = Field(min_length=1)
    quantity: int = Field(1, ge=1)


class LookupOrderResponse(ResponseContract):
    order_number: str
    status: Literal["processing", "shipped", "out_for_delivery", "delivered", "cancelled"]
    eta: dt.date | None = None
    carrier: str | None = None
    items: list[OrderItem] = Field(default_factory=list)


# ---------------------------------------------------------------- appointments


class GetAppointmentRequest(RequestContract):
    """The caller's next appointment, by customer id or by phone number (one of them)."""

    customer_id: Identifier | None = None
    phone: str | None = None

    @field_validator("phone")
    @classmethod
    def _phone(cls, v: str | None) -> str | None:
        return _normalise_phone(v)

    @model_validator(mode="after")
    def _one_key(self) -> GetAppointmentRequest:
        if self.customer_id is None and self.phone is None:
            raise ValueError("customer_id or phone is required")
        return self


class Appointment(ResponseContract):
    appointment_id: str
    customer_id: str
    date: dt.date
    time: dt.time
    status: Literal["booked", "confirmed", "cancelled"]
    description: str = ""


class GetAppointmentResponse(Appointment):
    pass


class ConfirmAppointmentRequest(RequestContract):
    appointment_id: Identifier


class ConfirmAppointmentResponse(Appointment):
    pass


class RescheduleAppointmentRequest(RequestContract):
    appointment_id: Identifier
    new_date: dt.date
    new_time: dt.time

    @field_validator("new_time")
    @classmethod
    def _whole_minutes(cls, v: dt.time) -> dt.time:
        return v.replace(second=0, microsecond=0, tzinfo=None)


class RescheduleAppointmentResponse(Appointment):
    pass


# ---------------------------------------------------------------- identity and accounts


class VerifyIdentityRequest(RequestContract):
    """Who the caller says they are (customer id or phone) and what proves it (postcode or DOB)."""

    customer_id: Identifier | None = None
    phone: str | None = None
    postcode: Annotated[str, Field(min_length=2, max_length=10)] | None = None
    date_of_birth: dt.date | None = None

    @field_validator("phone")
    @classmethod
    def _phone(cls, v: str | None) -> str | None:
        return _normalise_phone(v)

    @field_validator("postcode")
    @classmethod
    def _postcode(cls, v: str | None) -> str | None:
        return None if v is None else re.sub(r"\s+", "", v).upper()

    @model_validator(mode="after")
    def _claim_and_proof(self) -> VerifyIdentityRequest:
        if self.customer_id is None and self.phone is None:
            raise ValueError("customer_id or phone is required")
        if self.postcode is None and self.date_of_birth is None:
            raise ValueError("postcode or date_of_birth is required")
        return self


class IdentityRecordRequest(RequestContract):
    """Whose record holds the codes the caller is then asked for (``verification.record``)."""

    customer_id: Identifier


class IdentityRecordResponse(ResponseContract):
    """The codes on record, checked against the caller's audio; never said to the caller."""

    postcode: Annotated[str, Field(min_length=2, max_length=10)] | None = None


class VerifyIdentityResponse(ResponseContract):
    verified: bool
    level: Literal["none", "basic", "full"]
    customer_id: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> VerifyIdentityResponse:
        if self.verified and (self.customer_id is None or self.level == "none"):
            raise ValueError("a verified identity needs a customer_id and a level above none")
        if not self.verified and self.level != "none":
            raise ValueError("an unverified identity has level none")
        return self


class UnlockAccountRequest(RequestContract):
    customer_id: Identifier


class UnlockAccountResponse(ResponseContract):
    customer_id: str
    locked: Literal[False]
    was_locked: bool


# ---------------------------------------------------------------- FAQ


class FaqRequest(RequestContract):
    topic: Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[a-z_]+$")]

    @field_validator("topic", mode="before")
    @classmethod
    def _lower(cls, v: Any) -> Any:
        return v.strip().lower().replace(" ", "_") if isinstance(v, str) else v


class FaqResponse(ResponseContract):
    topic: str
    answer: str = Field(min_length=1)


# ---------------------------------------------------------------- messages


class SendConfirmationRequest(RequestContract):
    """A confirmation message (SMS) of an appointment, to the phone number on the customer's account;
    the backend words it from its own record of the appointment."""

    customer_id: Identifier
    appointment_id: Identifier
    channel: Literal["sms"] = "sms"


class SendConfirmationResponse(ResponseContract):
    message_id: int
    customer_id: str
    appointment_id: str
    channel: Literal["sms"]
    to: str  # the number, masked: +1******0001
    text: str


# ---------------------------------------------------------------- generic write (tests, demos)


class RecordWriteRequest(RequestContract):
    """A write with no business meaning: the exactly-once tests count these."""

    reference: Annotated[str, Field(min_length=1, max_length=80)]
    payload: dict[str, Any] = Field(default_factory=dict)


class RecordWriteResponse(ResponseContract):
    write_id: int
    reference: str
    idempotency_key: str


# ---------------------------------------------------------------- registry

_ALL: tuple[type[BaseModel], ...] = (
    LookupOrderRequest, LookupOrderResponse,
    GetAppointmentRequest, GetAppointmentResponse,
    ConfirmAppointmentRequest, ConfirmAppointmentResponse,
    RescheduleAppointmentRequest, RescheduleAppointmentResponse,
    VerifyIdentityRequest, VerifyIdentityResponse,
    IdentityRecordRequest, IdentityRecordResponse,
    UnlockAccountRequest, UnlockAccountResponse,
    FaqRequest, FaqResponse,
    SendConfirmationRequest, SendConfirmationResponse,
    RecordWriteRequest, RecordWriteResponse,
)

CONTRACTS: Mapping[str, type[BaseModel]] = {cls.__name__: cls for cls in _ALL}

# tool name -> (request contract, response contract)
TOOL_CONTRACTS: Mapping[str, tuple[str, str]] = {
    "lookup_order": ("LookupOrderRequest", "LookupOrderResponse"),
    "get_appointment": ("GetAppointmentRequest", "GetAppointmentResponse"),
    "confirm_appointment": ("ConfirmAppointmentRequest", "ConfirmAppointmentResponse"),
    "reschedule_appointment": ("RescheduleAppointmentRequest", "RescheduleAppointmentResponse"),
    "verify_identity": ("VerifyIdentityRequest", "VerifyIdentityResponse"),
    "identity_record": ("IdentityRecordRequest", "IdentityRecordResponse"),
    "unlock_account": ("UnlockAccountRequest", "UnlockAccountResponse"),
    "faq": ("FaqRequest", "FaqResponse"),
    "send_confirmation": ("SendConfirmationRequest", "SendConfirmationResponse"),
    "record_write": ("RecordWriteRequest", "RecordWriteResponse"),
}


def get_contract(name: str) -> type[BaseModel]:
    """The contract class called ``name``; KeyError names the known ones."""
    try:
        return CONTRACTS[name]
    except KeyError:
        raise KeyError(f"unknown contract {name!r} (known: {', '.join(sorted(CONTRACTS))})") from None
