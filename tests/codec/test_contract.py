"""The contract the service layer relies on: parse, encode, decode, and errors with paths."""

from __future__ import annotations

import pytest

from gateway.codec import CodecError, Feedback, Query, decode, encode, parse_message

from .conftest import TODAY, found_dict, not_found_dict, notification_dict, query_dict


@pytest.mark.parametrize("make", [query_dict, found_dict, not_found_dict, notification_dict])
def test_valid_message_survives_encode_and_decode_unchanged(make) -> None:
    msg = parse_message(make(), today=TODAY)
    assert decode(encode(msg), today=TODAY) == msg


def test_encoding_is_canonical_and_versioned() -> None:
    msg = parse_message(query_dict(), today=TODAY)
    data = encode(msg)
    assert data.startswith(b'{"body":{') and data.endswith(b',"v":2}')
    assert b" " not in data.replace("王秀兰".encode(), b"")
    assert encode(parse_message(query_dict(), today=TODAY)) == data


def test_negative_son_count_is_refused_at_its_path() -> None:
    bad = found_dict(children={"sons": -1, "daughters": 0})
    with pytest.raises(CodecError) as err:
        parse_message(bad, today=TODAY)
    assert [(e.path, e.reason) for e in err.value.errors] == [("feedback.children.sons", "must be ≥ 0")]
    assert "feedback.children.sons: must be ≥ 0" in str(err.value)


def test_codec_error_is_a_value_error() -> None:
    assert issubclass(CodecError, ValueError)


def test_parse_message_picks_the_model_by_kind() -> None:
    assert isinstance(parse_message(query_dict(), today=TODAY), Query)
    assert isinstance(parse_message(found_dict(), today=TODAY), Feedback)


def test_unknown_wire_version_is_refused() -> None:
    with pytest.raises(CodecError) as err:
        decode(b'{"v":3,"body":{}}')
    assert err.value.errors[0].path == "v"
