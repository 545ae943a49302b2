"""Cipher suites: the primitives an envelope is sealed with, chosen per node pair.

The default suite uses the primitives of eDelivery AS4 2.0's main profile: X25519 key agreement with
a fresh ephemeral key per message, HKDF-SHA256, AES-256-GCM with the header as associated data and
an Ed25519 signature by the sender over header and ciphertext.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from gateway.security.errors import EnvelopeError

DEFAULT_SUITE_ID = "x25519-hkdf-sha256-aes256gcm-ed25519"


@dataclass(frozen=True)
class SenderKey:
    """The sender's signing key, as the sealing side holds it."""

    township: str
    kid: str
    private: Any


@dataclass(frozen=True)
class RecipientKey:
    """The recipient's public encryption key, as the directory publishes it."""

    township: str
    kid: str
    public: Any


def b64e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def b64d(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError):
        raise EnvelopeError("malformed_header", "a base64 field is not valid base64url") from None


class Suite(Protocol):
    suite_id: str

    def agree_sender(self, recipient: RecipientKey) -> tuple[str, bytes]: ...
    def agree_recipient(self, private: Any, epk: str, recipient_public_raw: bytes) -> bytes: ...
    def encrypt(self, key_material: bytes, aad: bytes, plaintext: bytes) -> bytes: ...
    def decrypt(self, key_material: bytes, aad: bytes, ciphertext: bytes) -> bytes: ...
    def sign(self, sender: SenderKey, data: bytes) -> bytes: ...
    def verify(self, public: Any, signature: bytes, data: bytes) -> None: ...


def raw_public(public: Any) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


class X25519Ed25519Suite:
    suite_id = DEFAULT_SUITE_ID
    _info = b"township-gateway/v1/" + DEFAULT_SUITE_ID.encode()

    def _derive(self, shared: bytes, epk_raw: bytes, recipient_raw: bytes) -> bytes:
        # Key and nonce both come from HKDF: the ephemeral key is fresh per message, so the pair
        # never repeats, and no nonce needs to travel in the header.
        return HKDF(algorithm=hashes.SHA256(), length=44, salt=epk_raw + recipient_raw, info=self._info).derive(shared)

    def agree_sender(self, recipient: RecipientKey) -> tuple[str, bytes]:
        eph = X25519PrivateKey.generate()
        epk_raw = raw_public(eph.public_key())
        shared = eph.exchange(recipient.public)
        return b64e(epk_raw), self._derive(shared, epk_raw, raw_public(recipient.public))

    def agree_recipient(self, private: X25519PrivateKey, epk: str, recipient_public_raw: bytes) -> bytes:
        epk_raw = b64d(epk)
        try:
            shared = private.exchange(X25519PublicKey.from_public_bytes(epk_raw))
        except ValueError:
            raise EnvelopeError("malformed_header", "ephemeral key is not a valid X25519 public key") from None
        return self._derive(shared, epk_raw, recipient_public_raw)

    def encrypt(self, key_material: bytes, aad: bytes, plaintext: bytes) -> bytes:
        return AESGCM(key_material[:32]).encrypt(key_material[32:], plaintext, aad)

    def decrypt(self, key_material: bytes, aad: bytes, ciphertext: bytes) -> bytes:
        try:
            return AESGCM(key_material[:32]).decrypt(key_material[32:], ciphertext, aad)
        except InvalidTag:
            raise EnvelopeError("decrypt_failed", "ciphertext does not decrypt (tampered, or not for this key)") from None

    def sign(self, sender: SenderKey, data: bytes) -> bytes:
        return sender.private.sign(data)

    def verify(self, public: Ed25519PublicKey, signature: bytes, data: bytes) -> None:
        try:
            public.verify(signature, data)
        except InvalidSignature:
            raise EnvelopeError("bad_signature", "signature does not verify with the sender's key") from None


SUITES: dict[str, Suite] = {DEFAULT_SUITE_ID: X25519Ed25519Suite()}


def new_signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def new_encryption_key() -> X25519PrivateKey:
    return X25519PrivateKey.generate()
