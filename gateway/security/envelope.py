"""The envelope: a clear routing header with nothing personal, and a signed, encrypted body.

Wire layout (all integers big-endian)::

    b"TXG1" | u16 header_len | header | u32 ct_len | ciphertext | u16 sig_len | signature

The header is canonical JSON (sorted keys, no whitespace, UTF-8). It is the AEAD associated data,
so a changed header makes decryption fail; the sender signs ``SIG_CONTEXT + header + ciphertext``,
so a changed byte anywhere is caught by the signature before any decryption is attempted.

The full specification, with test vectors, is docs/envelope.md.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass, fields as dataclass_fields
from datetime import datetime

from gateway.security.encoding import parse_stamp, sha256_hex, utc_stamp
from gateway.security.errors import EnvelopeError
from gateway.security.suites import SUITES, DEFAULT_SUITE_ID, RecipientKey, Rng, SenderKey

__all__ = [
    "Envelope",
    "EnvelopeHeader",
    "OpenedEnvelope",
    "open_envelope",
    "parse_envelope",
    "seal",
    "seal_for",
    "utc_stamp",
    "verify_envelope",
]

MAGIC = b"TXG1"
PROTOCOL_VERSION = 1
SIG_CONTEXT = b"township-gateway/envelope/v1\x00"
MAX_ENVELOPE_BYTES = 1 << 20  # a record is a few KiB; anything near a MiB is abuse, refuse it early


_TOKEN = r"[\x21-\x7e]"  # printable ASCII, no spaces
# What each header field may hold. The routing header is stored beside every message and every
# refusal (columns of 9 to 64 characters): a field that does not fit is refused here, with its own
# reason, before anything tries to store it.
HEADER_FIELD_FORMS: dict[str, tuple[str, re.Pattern[str]]] = {
    "suite": ("1-64 printable ASCII characters", re.compile(f"{_TOKEN}{{1,64}}")),
    "message_id": ("1-64 printable ASCII characters", re.compile(f"{_TOKEN}{{1,64}}")),
    "kind": ("1-16 lowercase letters or '_'", re.compile(r"[a-z_]{1,16}")),
    "sender": ("a 9-digit township code", re.compile(r"[0-9]{9}")),
    "recipient": ("a 9-digit township code", re.compile(r"[0-9]{9}")),
    "created_at": ("a UTC timestamp of at most 40 characters", re.compile(f"{_TOKEN}{{1,40}}")),
    "sender_kid": ("1-64 printable ASCII characters", re.compile(f"{_TOKEN}{{1,64}}")),
    "recipient_kid": ("1-64 printable ASCII characters", re.compile(f"{_TOKEN}{{1,64}}")),
    "epk": ("1-512 printable ASCII characters", re.compile(f"{_TOKEN}{{1,512}}")),
}


@dataclass(frozen=True)
class EnvelopeHeader:
    v: int
    suite: str
    message_id: str
    kind: str
    sender: str
    recipient: str
    created_at: str  # ISO 8601 UTC, "Z" suffix, microseconds
    sender_kid: str
    recipient_kid: str
    epk: str  # ephemeral public key, base64url, suite-specific

    def to_bytes(self) -> bytes:
        # Every field is a str or an int: a shallow dict gives the same JSON as asdict without its deep
        # copy, which was ~5 % of a gateway's CPU per message (docs/transport.md).
        fields = {name: getattr(self, name) for name in _HEADER_FIELDS}
        return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    @property
    def created(self) -> datetime:
        try:
            return parse_stamp(self.created_at)
        except ValueError:
            raise EnvelopeError("malformed_header", "created_at is not a UTC timestamp") from None

    @classmethod
    def from_bytes(cls, raw: bytes) -> EnvelopeHeader:
        try:
            obj = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise EnvelopeError("malformed_header", f"header is not UTF-8 JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise EnvelopeError("malformed_header", "header is not a JSON object")
        expected = set(cls.__dataclass_fields__)
        if set(obj) != expected:
            missing, extra = expected - set(obj), set(obj) - expected
            # The known names that are missing, and only how many unknown ones: a key name is the
            # sender's text, and the quarantine's detail is read by operators (never echo it).
            raise EnvelopeError("malformed_header", f"header fields: missing {sorted(missing)}, {len(extra)} unknown")
        if type(obj["v"]) is not int or obj["v"] != PROTOCOL_VERSION:  # not True, not 1.0
            version = obj["v"] if type(obj["v"]) is int and abs(obj["v"]) < 10**6 else f"of type {type(obj['v']).__name__}"
            raise EnvelopeError("unknown_version", f"envelope version {version} is not supported")
        for name in expected - {"v"}:
            if not isinstance(obj[name], str):
                raise EnvelopeError("malformed_header", f"header.{name} must be a string")
        for name in sorted(expected - {"v"}):
            rule, form = HEADER_FIELD_FORMS[name]
            if form.fullmatch(obj[name]) is None:
                # The rule, never the value: a forged field may be megabytes, or carry anything.
                raise EnvelopeError("malformed_header", f"header.{name} must be {rule} ({len(obj[name])} characters)")
        header = cls(**obj)
        if header.to_bytes() != raw:
            # Only the canonical form is signed; any other spelling of the same header is refused.
            raise EnvelopeError("malformed_header", "header is not in canonical form")
        return header


_HEADER_FIELDS = tuple(f.name for f in dataclass_fields(EnvelopeHeader))


@dataclass(frozen=True)
class Envelope:
    header: EnvelopeHeader
    header_bytes: bytes
    ciphertext: bytes
    signature: bytes

    def to_bytes(self) -> bytes:
        return b"".join(
            (
                MAGIC,
                struct.pack(">H", len(self.header_bytes)),
                self.header_bytes,
                struct.pack(">I", len(self.ciphertext)),
                self.ciphertext,
                struct.pack(">H", len(self.signature)),
                self.signature,
            )
        )

    def signed_bytes(self) -> bytes:
        return SIG_CONTEXT + self.header_bytes + self.ciphertext

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the wire bytes: what receipts, replay records and the archive refer to."""
        return sha256_hex(self.to_bytes())


@dataclass(frozen=True)
class OpenedEnvelope:
    header: EnvelopeHeader
    plaintext: bytes


def parse_envelope(data: bytes) -> Envelope:
    """Split the wire bytes into their parts; checks framing only, not the signature."""
    if len(data) > MAX_ENVELOPE_BYTES:
        raise EnvelopeError("oversized", f"envelope is {len(data)} bytes, limit {MAX_ENVELOPE_BYTES}")
    if data[:4] != MAGIC:
        raise EnvelopeError("bad_magic", "not a township-gateway envelope (magic bytes differ)")
    pos = 4
    try:
        (hlen,) = struct.unpack_from(">H", data, pos)
        pos += 2
        header_bytes = data[pos : pos + hlen]
        if len(header_bytes) != hlen:
            raise struct.error
        pos += hlen
        (clen,) = struct.unpack_from(">I", data, pos)
        pos += 4
        ciphertext = data[pos : pos + clen]
        if len(ciphertext) != clen:
            raise struct.error
        pos += clen
        (slen,) = struct.unpack_from(">H", data, pos)
        pos += 2
        signature = data[pos : pos + slen]
        if len(signature) != slen:
            raise struct.error
        pos += slen
    except struct.error:
        raise EnvelopeError("truncated", "envelope is truncated") from None
    if pos != len(data):
        raise EnvelopeError("trailing_bytes", f"{len(data) - pos} unexpected bytes after the signature")
    return Envelope(EnvelopeHeader.from_bytes(header_bytes), header_bytes, ciphertext, signature)


def seal(
    *,
    plaintext: bytes,
    message_id: str,
    kind: str,
    sender: SenderKey,
    recipient: RecipientKey,
    created_at: datetime,
    suite_id: str = DEFAULT_SUITE_ID,
    rng: Rng | None = None,
) -> bytes:
    """Seal ``plaintext`` for ``recipient``. ``rng`` replaces the system RNG for test vectors only."""
    suite = SUITES[suite_id]
    epk, key_material = suite.agree_sender(recipient, rng)
    header = EnvelopeHeader(
        v=PROTOCOL_VERSION,
        suite=suite_id,
        message_id=message_id,
        kind=kind,
        sender=sender.township,
        recipient=recipient.township,
        created_at=utc_stamp(created_at),
        sender_kid=sender.kid,
        recipient_kid=recipient.kid,
        epk=epk,
    )
    header_bytes = header.to_bytes()
    ciphertext = suite.encrypt(key_material, header_bytes, plaintext)
    unsigned = Envelope(header, header_bytes, ciphertext, b"")
    signature = suite.sign(sender, unsigned.signed_bytes())
    return Envelope(header, header_bytes, ciphertext, signature).to_bytes()


def seal_for(
    *,
    plaintext: bytes,
    message_id: str,
    kind: str,
    keyring: NodeKeyring,
    directory: KeyDirectory,
    recipient: str,
    created_at: datetime,
) -> bytes:
    """Seal with the suite this pair must use and the recipient's current key: what a gateway sends."""
    suite_id = directory.choose_suite(keyring.township, recipient)
    return seal(
        plaintext=plaintext,
        message_id=message_id,
        kind=kind,
        sender=keyring.sender_key(suite_id),
        recipient=directory.recipient_key(recipient, suite_id, at=created_at),
        created_at=created_at,
        suite_id=suite_id,
    )


def verify_envelope(envelope: Envelope, *, directory: KeyDirectory) -> EnvelopeHeader:
    """Check the sender's signature, and that its key was valid at created_at; no decryption.

    What an auditor, or anyone but the recipient, can check.
    """
    header = envelope.header
    suite = SUITES.get(header.suite)
    if suite is None:
        raise EnvelopeError("unknown_suite", f"cipher suite {header.suite!r} is not supported")
    verify_key = directory.verify_key(header.sender, header.sender_kid, at=header.created)
    suite.verify(verify_key, envelope.signature, envelope.signed_bytes())
    return header


def open_envelope(envelope: Envelope, *, keyring: NodeKeyring, directory: KeyDirectory) -> OpenedEnvelope:
    """Verify then decrypt an envelope addressed to ``keyring``'s township.

    The signature is checked before decryption so that forged traffic costs one verify, not an ECDH;
    the suite is checked after it, so that a tampered header is reported as tampering.
    """
    header = envelope.header
    if header.recipient != keyring.township:
        raise EnvelopeError("wrong_recipient", f"addressed to {header.recipient}, not to {keyring.township}")
    suite = SUITES[verify_envelope(envelope, directory=directory).suite]
    directory.check_suite(header.suite, header.sender, header.recipient)
    directory.check_recipient_key(header.recipient, header.recipient_kid, at=header.created)
    private, public_raw = keyring.decryption_key(header.recipient_kid)
    key_material = suite.agree_recipient(private, header.epk, public_raw)
    return OpenedEnvelope(header, suite.decrypt(key_material, envelope.header_bytes, envelope.ciphertext))


from gateway.security.directory import KeyDirectory  # noqa: E402  (import cycle: directory uses suites only)
from gateway.security.keys import NodeKeyring  # noqa: E402
