"""`decode` refuses anything that is not a valid message with CodecError, and nothing else."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.codec import CodecError, decode, encode, parse_message

from . import strategies as s
from .conftest import TODAY


def decode_refuses_or_succeeds(data: bytes) -> None:
    try:
        decode(data, today=TODAY)
    except CodecError as err:
        assert err.errors and all(isinstance(e.reason, str) and e.reason for e in err.errors)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=2000))
def test_random_bytes_raise_only_codec_error(data: bytes) -> None:
    decode_refuses_or_succeeds(data)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(encode(parse_message(draw(s.messages), today=TODAY)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "delete"]))
        i = draw(st.integers(0, len(data) - 1))
        if op == "flip":
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "cut":
            del data[i:]
        elif op == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete" and data:
            del data[i]
        if not data:
            break
    return bytes(data)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_encodings_raise_only_codec_error(data: bytes) -> None:
    decode_refuses_or_succeeds(data)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)


@st.composite
def structurally_mutated(draw: st.DrawFn) -> bytes:
    body: dict[str, Any] = json.loads(encode(parse_message(draw(s.messages), today=TODAY)))["body"]
    target = body
    if "person" in body and draw(st.booleans()):
        target = body["person"]
    key = draw(st.sampled_from(sorted(target)) | st.text(max_size=10))
    target[key] = draw(json_values)
    return json.dumps({"v": draw(st.sampled_from([1, 1, 1, 0, 2, "1", None])), "body": body}).encode()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(structurally_mutated())
def test_wrong_values_in_valid_structure_raise_only_codec_error(data: bytes) -> None:
    decode_refuses_or_succeeds(data)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\xff\xfe", ": not UTF-8"),
        (b"{", ": not JSON"),
        (b"[]", ': must be an object {"v": …, "body": …}'),
        (b'{"v":1}', "body: required"),
        (b'{"v":1,"body":{},"x":1}', "x: unknown field"),
        (b'{"v":true,"body":{}}', "v: unsupported wire version True"),
        (b'{"v":1,"v":1,"body":{}}', "duplicate key 'v'"),
        (b'{"v":1,"body":{"kind":"query","kind":"feedback"}}', "duplicate key 'kind'"),
        (b'{"v":1,"body":NaN}', "NaN is not JSON"),
        (b'{"v":1,"body":' + b"[" * 100000 + b"]" * 100000 + b"}", "not JSON"),
        (b'{"v":1,"body":"' + b"a" * 300000 + b'"}', ": wire data larger than 262144 bytes"),
        (b'{"v":1,"body":{"kind":"feedback","in_reply_to":"a","result":"found","birth_date":"1990-01-01",'
         b'"children":{"sons":1' + b"0" * 5000 + b',"daughters":0}}}', "not JSON"),
        (b'{"v":1,"body":[1]}', "body: must be a message object (with kind)"),
        (b'{"v":1,"body":{}}', "kind: required"),
    ],
)
def test_specific_bad_payloads_are_refused_with_a_reason(data: bytes, expected: str) -> None:
    with pytest.raises(CodecError) as err:
        decode(data, today=TODAY)
    text = "\n".join(f"{e.path}: {e.reason}" for e in err.value.errors)
    assert expected in text


def test_lone_surrogate_in_a_name_is_refused() -> None:
    body = {"kind": "query", "residence_township": "110101001", "registration_township": "410102001",
            "person": {"citizen_id": "11010519491231002X", "name": "\ud800"}}
    data = json.dumps({"v": 1, "body": body}).encode()
    with pytest.raises(CodecError) as err:
        decode(data, today=TODAY)
    assert err.value.errors[0].path == "query.person.name"
