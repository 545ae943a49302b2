"""Signed delivery receipts: the recipient's proof that it received exactly these envelope bytes.

A receipt is its own small signed structure, not an envelope: it carries nothing personal, so it
needs no encryption, and a distinct magic keeps the two from ever being confused. Wire form
(integers big-endian)::

    b"TXR1" | u16 body_len | body | u16 sig_len | signature

The body is canonical JSON ``{"v": 1, "suite", "message_id", "envelope_sha256", "sender",
"recipient", "received_at", "kid"}`` where ``sender`` is the township that received the envelope
and now signs, ``recipient`` the one that sent it. The signature is over
``RECEIPT_CONTEXT + body`` with the signer's key of the envelope's suite.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass, fields
from datetime import datetime

from gateway.security.directory import KeyDirectory
from gateway.security.encoding import canonical_json, parse_stamp, utc_stamp
from gateway.security.envelope import parse_envelope
from gateway.security.errors import EnvelopeError
from gateway.security.keys import NodeKeyring
from gateway.security.suites import SUITES

RECEIPT_MAGIC = b"TXR1"
BUNDLE_MAGIC = b"TXB1"
MAX_BUNDLE = 1000  # receipts in one bundle (a consumer batch holds at most a few hundred deliveries)
RECEIPT_VERSION = 1
RECEIPT_CONTEXT = b"township-gateway/receipt/v1\x00"
RECEIPT_KIND = "receipt"  # the broker message kind receipts travel under


@dataclass(frozen=True)
class Receipt:
    v: int
    suite: str
    message_id: str
    envelope_sha256: str
    sender: str
    recipient: str
    received_at: str
    kid: str

    @property
    def received(self) -> datetime:
        return parse_stamp(self.received_at)

    def to_bytes(self) -> bytes:
        # Every field is a str or an int: a shallow dict gives the same JSON as dataclasses.asdict
        # without its recursive deep copy (asdict was the largest own cost of a gateway with receipts).
        return canonical_json({name: getattr(self, name) for name in _RECEIPT_FIELDS})


_RECEIPT_FIELDS = tuple(f.name for f in fields(Receipt))


def make_receipt(envelope_bytes: bytes, keyring: NodeKeyring, received_at: datetime) -> bytes:
    """Sign a receipt for an envelope addressed to ``keyring``'s township (verify it first)."""
    return sign_receipt(envelope_bytes, keyring, received_at)[1]


def sign_receipt(
    envelope_bytes: bytes, keyring: NodeKeyring, received_at: datetime, *, envelope_sha256: str | None = None
) -> tuple[Receipt, bytes]:
    """``make_receipt``, also giving the receipt itself (no need to parse what was just made); a caller
    that has the envelope's SHA-256 already (the inbox computed it) passes it in."""
    header = parse_envelope(envelope_bytes).header
    if header.recipient != keyring.township:
        raise EnvelopeError("wrong_recipient", f"addressed to {header.recipient}, not to {keyring.township}")
    signer = keyring.sender_key(header.suite)
    receipt = Receipt(
        v=RECEIPT_VERSION,
        suite=header.suite,
        message_id=header.message_id,
        envelope_sha256=envelope_sha256 or hashlib.sha256(envelope_bytes).hexdigest(),
        sender=keyring.township,
        recipient=header.sender,
        received_at=utc_stamp(received_at),
        kid=signer.kid,
    )
    body = receipt.to_bytes()
    signature = SUITES[header.suite].sign(signer, RECEIPT_CONTEXT + body)
    return receipt, RECEIPT_MAGIC + struct.pack(">H", len(body)) + body + struct.pack(">H", len(signature)) + signature


def parse_receipt(data: bytes) -> tuple[Receipt, bytes, bytes]:
    """(receipt, body bytes, signature): framing and form only, no signature check."""
    if data[:4] != RECEIPT_MAGIC:
        raise EnvelopeError("bad_magic", "not a township-gateway receipt (magic bytes differ)")
    try:
        (blen,) = struct.unpack_from(">H", data, 4)
        body = data[6 : 6 + blen]
        (slen,) = struct.unpack_from(">H", data, 6 + blen)
        signature = data[8 + blen : 8 + blen + slen]
        if len(body) != blen or len(signature) != slen:
            raise struct.error
    except struct.error:
        raise EnvelopeError("truncated", "receipt is truncated") from None
    if 8 + blen + slen != len(data):
        raise EnvelopeError("trailing_bytes", "unexpected bytes after the receipt signature")
    try:
        obj = json.loads(body.decode("utf-8"))
        receipt = Receipt(**obj)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError, TypeError):
        raise EnvelopeError("malformed_receipt", "receipt body is not a receipt object") from None
    if receipt.to_bytes() != body or type(receipt.v) is not int or receipt.v != RECEIPT_VERSION:
        raise EnvelopeError("malformed_receipt", "receipt body is not canonical version-1 JSON")
    if not all(isinstance(getattr(receipt, f), str) for f in Receipt.__dataclass_fields__ if f != "v"):
        raise EnvelopeError("malformed_receipt", "receipt fields must be strings")
    try:
        receipt.received
    except ValueError:
        raise EnvelopeError("malformed_receipt", "received_at is not a UTC timestamp") from None
    return receipt, body, signature


def bundle_receipts(receipts: list[bytes]) -> bytes:
    """Several receipts in one broker message: ``b"TXB1" | u16 count | count × (u16 len | receipt)``.

    Each receipt inside stays a whole, separately signed TXR1 receipt (kept and archived as its own
    bytes); the bundle is framing only, so one publish and one delivery carry the receipts that one
    township signed for another in one consumer batch, instead of one each."""
    if not 1 <= len(receipts) <= MAX_BUNDLE:
        raise ValueError(f"a bundle holds 1 to {MAX_BUNDLE} receipts, not {len(receipts)}")
    parts = [BUNDLE_MAGIC, struct.pack(">H", len(receipts))]
    for receipt in receipts:
        parts += [struct.pack(">H", len(receipt)), receipt]
    return b"".join(parts)


def split_bundle(data: bytes) -> list[bytes]:
    """The receipts of a bundle (framing only: each is parsed and verified on its own afterwards)."""
    if data[:4] != BUNDLE_MAGIC:
        raise EnvelopeError("bad_magic", "not a township-gateway receipt bundle (magic bytes differ)")
    try:
        (count,) = struct.unpack_from(">H", data, 4)
        offset, receipts = 6, []
        for _ in range(count):
            (length,) = struct.unpack_from(">H", data, offset)
            receipt = data[offset + 2 : offset + 2 + length]
            if len(receipt) != length:
                raise struct.error
            receipts.append(receipt)
            offset += 2 + length
    except struct.error:
        raise EnvelopeError("truncated", "receipt bundle is truncated") from None
    if not 1 <= count <= MAX_BUNDLE:
        raise EnvelopeError("malformed_bundle", f"a bundle holds 1 to {MAX_BUNDLE} receipts, not {count}")
    if offset != len(data):
        raise EnvelopeError("trailing_bytes", "unexpected bytes after the last receipt of the bundle")
    return receipts


def verify_receipt(receipt_bytes: bytes, envelope_bytes: bytes, directory: KeyDirectory) -> Receipt:
    """Check that the envelope's recipient signed a receipt for exactly these envelope bytes."""
    receipt, body, signature = parse_receipt(receipt_bytes)
    header = parse_envelope(envelope_bytes).header
    if receipt.envelope_sha256 != hashlib.sha256(envelope_bytes).hexdigest():
        raise EnvelopeError("receipt_mismatch", "the receipt is for other envelope bytes")
    if (receipt.message_id, receipt.sender, receipt.recipient, receipt.suite) != (
        header.message_id,
        header.recipient,
        header.sender,
        header.suite,
    ):
        raise EnvelopeError("receipt_mismatch", "the receipt names another message, party or suite")
    suite = SUITES.get(receipt.suite)
    if suite is None:
        raise EnvelopeError("unknown_suite", f"cipher suite {receipt.suite!r} is not supported")
    public = directory.verify_key(receipt.sender, receipt.kid, at=receipt.received)
    suite.verify(public, signature, RECEIPT_CONTEXT + body)
    return receipt
