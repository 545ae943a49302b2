"""Signed receipts bind the recipient to the exact envelope bytes it received."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gateway.security.errors import EnvelopeError
from gateway.security.receipts import RECEIPT_MAGIC, make_receipt, parse_receipt, verify_receipt

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
