"""Every valid record survives the wire unchanged, and its bytes depend only on the record."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.codec import decode, encode, parse_message

from . import strategies as s
from .conftest import TODAY


def _roundtrip(obj: dict[str, Any]) -> None:
    msg = parse_message(obj, today=TODAY)
    data = encode(msg)
    assert decode(data, today=TODAY) == msg
    assert encode(decode(data, today=TODAY)) == data


@settings(max_examples=150, deadline=None)
@given(s.queries())
def test_query_round_trips(obj: dict[str, Any]) -> None:
    _roundtrip(obj)


@settings(max_examples=150, deadline=None)
@given(s.notifications())
def test_notification_round_trips(obj: dict[str, Any]) -> None:
    _roundtrip(obj)


@settings(max_examples=150, deadline=None)
@given(s.found_feedback())
def test_found_feedback_round_trips(obj: dict[str, Any]) -> None:
    _roundtrip(obj)


@settings(max_examples=100, deadline=None)
@given(s.not_found_feedback())
def test_no_such_person_feedback_round_trips(obj: dict[str, Any]) -> None:
    _roundtrip(obj)


@settings(max_examples=100, deadline=None)
@given(s.messages, st.randoms(use_true_random=False))
def test_encoding_does_not_depend_on_the_order_fields_were_given(obj: dict[str, Any], rnd: Any) -> None:
    items = list(obj.items())
    rnd.shuffle(items)
    assert encode(parse_message(dict(items), today=TODAY)) == encode(parse_message(obj, today=TODAY))


@settings(max_examples=100, deadline=None)
@given(s.messages)
def test_wire_bytes_are_compact_sorted_utf8_json_with_version(obj: dict[str, Any]) -> None:
    data = encode(parse_message(obj, today=TODAY))
    doc = json.loads(data.decode("utf-8"))
    assert doc["v"] == 2 and set(doc) == {"v", "body"}
    assert data == json.dumps(doc, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()
