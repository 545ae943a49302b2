"""The publish frames the adapter encodes itself are byte for byte the frames pamqp would marshal."""

from __future__ import annotations

import pamqp.frame
import pytest
from pamqp import commands as spec
from pamqp.body import ContentBody
from pamqp.header import ContentHeader

from gateway.adapters.amqp_frames import FRAME_OVERHEAD, PublishFrames, ack_frames

CONTENT_TYPE = "application/vnd.township-gateway.envelope"


def pamqp_frames(channel: int, exchange: str, routing_key: str, message_id: str, kind: str, body: bytes,
                 max_body: int) -> bytes:
    out = pamqp.frame.marshal(spec.Basic.Publish(exchange=exchange, routing_key=routing_key, mandatory=True), channel)
    properties = spec.Basic.Properties(content_type=CONTENT_TYPE, delivery_mode=2, message_id=message_id,
                                       message_type=kind)
    out += pamqp.frame.marshal(ContentHeader(0, len(body), properties), channel)
    for start in range(0, len(body), max_body):
        out += pamqp.frame.marshal(ContentBody(body[start:start + max_body]), channel)
    return out


@pytest.mark.parametrize("size", [0, 1, 700, 4088, 4089, 20_000])
@pytest.mark.parametrize("frame_max", [131_072, 4096])
def test_a_publish_is_encoded_as_pamqp_encodes_it_including_bodies_split_across_frames(size: int, frame_max: int):
    body = bytes(i % 251 for i in range(size))
    max_body = frame_max - FRAME_OVERHEAD
    frames = PublishFrames(7, "township.exchange", CONTENT_TYPE, max_body)

    for routing_key, message_id, kind in [("120101001", "0" * 32, "query"), ("110101001", "回执-1", "receipt")]:
        ours = frames.encode(routing_key, message_id, kind, body)
        assert ours == pamqp_frames(7, "township.exchange", routing_key, message_id, kind, body, max_body)


def test_a_field_longer_than_an_amqp_short_string_is_refused_not_cut():
    frames = PublishFrames(1, "township.exchange", CONTENT_TYPE, 131_064)
    with pytest.raises(ValueError, match="longer than 255 bytes"):
        frames.encode("120101001", "x" * 256, "query", b"body")
    with pytest.raises(ValueError, match="longer than 255 bytes"):
        frames.encode("1" * 200 + "二" * 20, "id", "query", b"body")


def test_acks_are_encoded_as_pamqp_encodes_them_one_frame_per_delivery_never_multiple():
    tags = [1, 2, 255, 70_000, 2**63 - 1]
    expected = b"".join(pamqp.frame.marshal(spec.Basic.Ack(delivery_tag=tag, multiple=False), 3) for tag in tags)
    assert ack_frames(3, tags) == expected
