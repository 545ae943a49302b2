"""The wire format: canonical, versioned bytes for one message.

`{"v":2,"body":{...}}` as UTF-8 JSON with sorted keys, no whitespace, absent optional fields
left out. Version 2 added the completeness rules of issue 13 (rule 四 fields or not_applicable,
checked_sources, village-level addresses, the statistical year, the 婚育证明 issue date) and the
notification fields direction and learned_on; version 1 bodies still decode, with those rules
off and the new fields at their defaults, because stored and in-flight messages must stay readable. The same record always gives the same bytes, so signatures and duplicate detection
can work on the bytes. `decode` raises only CodecError, whatever it is given.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from pydantic import ValidationError

from gateway.codec.error_paths import codec_error_from
from gateway.codec.errors import CodecError, FieldError
from gateway.codec.messages import MESSAGE_ADAPTER, Feedback, Message, Notification, Query, Withdrawal
from gateway.codec.rules import submission_context
from gateway.workflow.calendar import WorkingDayCalendar

WIRE_VERSION = 2
SUPPORTED_VERSIONS = frozenset({1, 2})
MAX_WIRE_BYTES = 256 * 1024  # a message is a few KB; anything this large is not one

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False).encode


def encode(msg: Message) -> bytes:
    if not isinstance(msg, (Query, Notification, Feedback, Withdrawal)):
        raise CodecError.single("", f"cannot encode {type(msg).__name__}: not a message")
    body = msg.model_dump(mode="json", exclude_none=True)
    return _dumps({"v": WIRE_VERSION, "body": body}).encode("utf-8")


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Two values for one key would make the bytes mean different things to different parsers.
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        dup = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise ValueError(f"duplicate key {dup!r}")
    return obj


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def decode(
    data: bytes,
    *,
    today: date | None = None,
    accepted_on: date | None = None,
    calendar: WorkingDayCalendar | None = None,
    submission_working_days: int | None = None,
) -> Message:
    """Validate wire bytes. `accepted_on` is the day (China time) the sender's gateway accepted the
    message, for rules relative to acceptance (statistical year, certificate validity); without it,
    the reference date. `calendar` and `submission_working_days` as for `parse_message`."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise CodecError.single("", "wire data must be bytes")
    if len(data) > MAX_WIRE_BYTES:
        raise CodecError.single("", f"wire data larger than {MAX_WIRE_BYTES} bytes")
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CodecError.single("", f"not UTF-8 (byte {exc.start})") from None
    try:
        doc = json.loads(text, object_pairs_hook=_reject_duplicate_keys, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise CodecError.single("", f"not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise CodecError.single("", "must be an object {\"v\": …, \"body\": …}")
    extra = sorted(set(doc) - {"v", "body"})
    errors = [FieldError(k, "unknown field") for k in extra]
    v = doc.get("v")
    if "v" not in doc:
        errors.append(FieldError("v", "required"))
    elif type(v) is not int or v not in SUPPORTED_VERSIONS:
        errors.append(FieldError("v", f"unsupported wire version {v!r} (this gateway reads {sorted(SUPPORTED_VERSIONS)})"))
    if "body" not in doc:
        errors.append(FieldError("body", "required"))
    elif not isinstance(doc["body"], dict):
        errors.append(FieldError("body", "must be a message object (with kind)"))
    if errors:
        raise CodecError(errors)
    context: dict[str, Any] = {"wire_version": v}
    if today:
        context["today"] = today
    if accepted_on:
        context["accepted_on"] = accepted_on
    context.update(submission_context(calendar, submission_working_days))
    try:
        return MESSAGE_ADAPTER.validate_python(doc["body"], context=context)
    except ValidationError as exc:
        raise codec_error_from(exc) from None
    except RecursionError:
        raise CodecError.single("body", "nested too deeply") from None
