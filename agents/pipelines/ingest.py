"""Validate a micro-batch of raw Kafka records against an event contract.

Pure functions, no Kafka: the agents hand in raw records and get back the valid
events and the dead letters (original bytes, where they came from, and why).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar, cast

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from agents.pipelines.fast_events import decoder, from_contract
from fireline.errors import EventError

E = TypeVar("E")

# Reasons are metric label values: a small fixed set, never free text.
REASON_OVERSIZED = "oversized"
REASON_NOT_UTF8 = "not_utf8"
REASON_NOT_JSON = "not_json"
REASON_MISSING_FIELD = "missing_field"
REASON_NOT_FINITE = "not_finite"
REASON_WRONG_TYPE = "wrong_type"
REASON_INVALID_VALUE = "invalid_value"
REASON_NOT_OBJECT = "not_object"
REASONS = frozenset(
    {
        REASON_OVERSIZED,
        REASON_NOT_UTF8,
        REASON_NOT_JSON,
        REASON_MISSING_FIELD,
        REASON_NOT_FINITE,
        REASON_WRONG_TYPE,
        REASON_INVALID_VALUE,
        REASON_NOT_OBJECT,
    }
)


class RawRecord(Protocol):
    """One consumed Kafka record, as bytes, with its position.

    aiokafka's ConsumerRecord satisfies it, so the hot path hands records over
    without copying them into objects of our own.
    """

    @property
    def topic(self) -> str: ...  # noqa: D102
    @property
    def partition(self) -> int: ...  # noqa: D102
    @property
    def offset(self) -> int: ...  # noqa: D102
    @property
    def key(self) -> bytes | None: ...  # noqa: D102
    @property
    def value(self) -> bytes | None: ...  # noqa: D102


@dataclass(slots=True)
class Record:
    """A RawRecord of our own, for tests and tools."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record that broke its contract: the original bytes and why."""

    record: RawRecord
    reason: str
    detail: str


@dataclass(slots=True)
class Validated(Generic[E]):
    """The outcome of validating one micro-batch."""

    events: list[E]
    dead: list[DeadLetter]


class Validator(Generic[E]):
    """Validates records for one event type: a pydantic contract, or a fast twin of one.

    Each record is parsed on its own: joining a batch into one JSON array would
    be faster but lets one crafted record bleed into its neighbour, so a bad
    event could take a good one with it. For a twin
    (agents/pipelines/fast_events.py) a record is first decoded by msgspec
    (~1-3 µs, no pydantic object); what that path does not accept goes through
    the twin's pydantic contract, which accepts it (and it becomes a twin) or
    gives the dead letter its reason.
    """

    def __init__(self, model: type[E], max_bytes: int) -> None:
        """``model``: a pydantic event model, or a twin (which names its ``contract``)."""
        contract: type[BaseModel] | None = getattr(model, "contract", None)
        self.model = model
        self.contract = contract or cast("type[BaseModel]", model)
        self.max_bytes = max_bytes
        # skips a wrapper layer
        self._validate_json = self.contract.__pydantic_validator__.validate_json
        self._fast = decoder(model) if contract is not None else None

    def validate(self, records: Sequence[RawRecord]) -> Validated[E]:
        """Validate a batch; each bad record becomes a dead letter, the rest go on."""
        out: Validated[E] = Validated([], [])
        events, dead = out.events, out.dead
        fast = self._fast
        for record in records:
            value = record.value
            if fast is not None and value is not None and len(value) <= self.max_bytes:
                event = fast(value)
                if event is not None:
                    events.append(event)
                    continue
            try:
                events.append(self._validate_contract(record))
            except EventError as rejected:
                dead.append(DeadLetter(record, rejected.reason, rejected.detail))
        return out

    def validate_one(self, record: RawRecord) -> E:
        """Validate one record or raise ``EventError`` with its reason and detail."""
        value = record.value
        if self._fast is not None and value is not None and len(value) <= self.max_bytes:
            event = self._fast(value)
            if event is not None:
                return event
        return self._validate_contract(record)

    def _validate_contract(self, record: RawRecord) -> E:
        """The contract's verdict: the event (as ``model``) or ``EventError``."""
        value = record.value
        if value is None or not value:
            raise EventError(REASON_NOT_JSON, "empty message value (expected a JSON object)")
        if len(value) > self.max_bytes:
            raise EventError(
                REASON_OVERSIZED,
                f"message is {len(value)} bytes, over the limit of {self.max_bytes}",
            )
        try:
            event = self._validate_json(value)
        except ValidationError as exc:
            raise _classify(exc, value, self.contract.__name__) from None
        if self._fast is not None:
            return from_contract(self.model, event)
        return cast("E", event)


_TYPE_ERRORS = {
    "float_type",
    "int_type",
    "string_type",
    "dict_type",
    "bool_type",
    "list_type",
    "model_type",
    "union_tag_invalid",
}


def _classify(exc: ValidationError, value: bytes, model_name: str) -> EventError:
    errors = exc.errors(include_url=False)
    first = errors[0]
    kind = first["type"]
    if kind == "json_invalid":
        try:
            value.decode("utf-8")
        except UnicodeDecodeError as err:
            return EventError(REASON_NOT_UTF8, f"not UTF-8: invalid byte at position {err.start}")
        return EventError(
            REASON_NOT_JSON, f"not JSON: {first['msg'].removeprefix('Invalid JSON: ')}"
        )
    if kind == "model_type" and not first["loc"]:
        return EventError(REASON_NOT_OBJECT, f"expected a JSON object for {model_name}")
    kinds = {_kind(e) for e in errors}
    if "missing" in kinds:
        reason = REASON_MISSING_FIELD
    elif "finite_number" in kinds:
        reason = REASON_NOT_FINITE
    elif kinds & _TYPE_ERRORS:
        reason = REASON_WRONG_TYPE
    else:
        reason = REASON_INVALID_VALUE
    detail = "; ".join(_describe(e) for e in errors[:5])
    return EventError(reason, f"{model_name}: {detail}")


def _kind(error: ErrorDetails) -> str:
    """The error type, with the timestamp union's one custom type split by its input."""
    if error["type"] != "timestamp":
        return error["type"]
    value = error["input"]
    if isinstance(value, str):
        return "value_error"
    if isinstance(value, float) and not math.isfinite(value):
        return "finite_number"
    return "float_type"


def _describe(error: ErrorDetails) -> str:
    loc = ".".join(str(p) for p in error["loc"]) or "<event>"
    if error["type"] == "missing":
        return f"{loc}: {error['msg']}"
    shown = repr(error["input"])
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"{loc}: {error['msg']}, got {shown}"
