"""Signed receipts bind the recipient to the exact envelope bytes it received."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gateway.security.errors import EnvelopeError
from gateway.security.receipts import (
    BUNDLE_MAGIC,
    MAX_BUNDLE,
    RECEIPT_MAGIC,
    bundle_receipts,
    make_receipt,
    parse_receipt,
    sign_receipt,
    split_bundle,
    verify_receipt,
)

from .conftest import NOW, RECIPIENT, SENDER, World


def test_receipt_verifies_against_the_envelope_it_was_made_for(world: World) -> None:
    envelope = world.seal()
    receipt = verify_receipt(make_receipt(envelope, world.recipient, NOW), envelope, world.directory)
    assert (receipt.sender, receipt.recipient, receipt.message_id, receipt.suite) == (RECIPIENT, SENDER, "m-1", world.suite_id)


def test_receipt_carries_nothing_personal(world: World) -> None:
    envelope = world.seal("测试人 11010119900101001X".encode())
    receipt = make_receipt(envelope, world.recipient, NOW)
    assert receipt.startswith(RECEIPT_MAGIC)
    assert "测试人".encode() not in receipt and b"11010119900101001X" not in receipt


def test_receipt_for_other_bytes_is_refused(world: World) -> None:
    envelope, other = world.seal(message_id="a"), world.seal(message_id="b")
    with pytest.raises(EnvelopeError) as caught:
        verify_receipt(make_receipt(envelope, world.recipient, NOW), other, world.directory)
    assert caught.value.reason == "receipt_mismatch"


def test_tampered_receipt_is_refused(world: World) -> None:
    envelope = world.seal()
    receipt = make_receipt(envelope, world.recipient, NOW)
    later = receipt.replace(b"2025-03-18T08", b"2025-03-19T08")
    with pytest.raises(EnvelopeError) as caught:
        verify_receipt(later, envelope, world.directory)
    assert caught.value.reason == "bad_signature"


def test_receipt_signed_by_someone_else_is_refused(world: World) -> None:
    envelope = world.seal()
    with pytest.raises(EnvelopeError) as caught:
        make_receipt(envelope, world.other, NOW)
    assert caught.value.reason == "wrong_recipient"


def test_receipt_signed_after_the_signers_key_was_revoked_is_refused(world: World) -> None:
    envelope = world.seal()
    receipt = make_receipt(envelope, world.recipient, NOW)
    kid = parse_receipt(receipt)[0].kid
    directory = world.directory.with_revocation(RECIPIENT, kid, at=NOW - timedelta(seconds=1))
    with pytest.raises(EnvelopeError) as caught:
        verify_receipt(receipt, envelope, directory)
    assert caught.value.reason == "revoked_key"


@pytest.mark.parametrize("cut", [2, 5, 20, -1])
def test_truncated_receipt_is_refused(world: World, cut: int) -> None:
    envelope = world.seal()
    receipt = make_receipt(envelope, world.recipient, NOW)
    with pytest.raises(EnvelopeError) as caught:
        verify_receipt(receipt[:cut], envelope, world.directory)
    assert caught.value.reason in {"bad_magic", "truncated"}


def test_a_bundle_gives_back_each_receipt_byte_for_byte(world: World) -> None:
    receipts = [make_receipt(world.seal(message_id=f"m-{i}"), world.recipient, NOW) for i in range(3)]
    bundle = bundle_receipts(receipts)
    assert bundle.startswith(BUNDLE_MAGIC)
    assert split_bundle(bundle) == receipts


@pytest.mark.parametrize(("cut", "reason"), [
    (lambda b: b[:-1], "truncated"),
    (lambda b: b + b"\x00", "trailing_bytes"),
    (lambda b: BUNDLE_MAGIC + b"\x00\x00", "malformed_bundle"),
    (lambda b: RECEIPT_MAGIC + b[4:], "bad_magic"),
])
def test_a_malformed_bundle_is_refused_with_its_reason(world: World, cut, reason) -> None:
    bundle = bundle_receipts([make_receipt(world.seal(), world.recipient, NOW)])
    with pytest.raises(EnvelopeError) as caught:
        split_bundle(cut(bundle))
    assert caught.value.reason == reason


def test_a_bundle_holds_at_most_max_bundle_receipts() -> None:
    with pytest.raises(ValueError):
        bundle_receipts([b"x"] * (MAX_BUNDLE + 1))


def test_the_receipt_given_back_with_its_bytes_is_the_one_they_hold(world: World) -> None:
    envelope = world.seal()
    receipt, data = sign_receipt(envelope, world.recipient, NOW)
    assert parse_receipt(data)[0] == receipt == verify_receipt(data, envelope, world.directory)
