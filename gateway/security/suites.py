"""Cipher suites: the primitives an envelope is sealed with, chosen per node pair.

Every suite draws its per-message randomness from an ``rng(n) -> bytes`` that defaults to
``os.urandom``; only the test-vector generator passes a deterministic one.

The default suite uses the primitives of eDelivery AS4 2.0's main profile: X25519 key agreement with
a fresh ephemeral key per message, HKDF-SHA256, AES-256-GCM with the header as associated data and
an Ed25519 signature by the sender over header and ciphertext.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Callable, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from gateway.security import ed25519_sodium
from gateway.security.errors import EnvelopeError

DEFAULT_SUITE_ID = "x25519-hkdf-sha256-aes256gcm-ed25519"
SM_SUITE_ID = "sm2-sm3-sm4gcm"

Rng = Callable[[int], bytes]

# Key algorithms, as the directory and the key files name them.
ED25519, X25519, SM2 = "ed25519", "x25519", "sm2"


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
    signing_alg: str  # the key algorithm of the sender's signing key
    encryption_alg: str  # the key algorithm of the recipient's encryption key

    def agree_sender(self, recipient: RecipientKey, rng: Rng | None = None) -> tuple[str, bytes]: ...
    def agree_recipient(self, private: Any, epk: str, recipient_public_raw: bytes) -> bytes: ...
    def encrypt(self, key_material: bytes, aad: bytes, plaintext: bytes) -> bytes: ...
    def decrypt(self, key_material: bytes, aad: bytes, ciphertext: bytes) -> bytes: ...
    def sign(self, sender: SenderKey, data: bytes) -> bytes: ...
    def verify(self, public: Any, signature: bytes, data: bytes) -> None: ...


def raw_public(public: Any) -> bytes:
    """The bytes the directory publishes: raw for Ed25519/X25519, the uncompressed point for SM2."""
    if isinstance(public, (Ed25519PublicKey, X25519PublicKey)):
        return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    from gateway.security import sm2

    if sm2.is_sm2_public(public):
        return sm2.public_bytes(public)
    raise TypeError(f"not a supported public key: {type(public).__name__}")


def key_alg(key: Any) -> str:
    """The algorithm name of a private or public key."""
    if isinstance(key, (Ed25519PrivateKey, Ed25519PublicKey)):
        return ED25519
    if isinstance(key, (X25519PrivateKey, X25519PublicKey)):
        return X25519
    from gateway.security import sm2

    if sm2.is_sm2_private(key) or sm2.is_sm2_public(key):
        return SM2
    raise TypeError(f"not a supported key: {type(key).__name__}")


def load_public(alg: str, raw: bytes) -> Any:
    try:
        if alg == ED25519:
            return Ed25519PublicKey.from_public_bytes(raw)
        if alg == X25519:
            return X25519PublicKey.from_public_bytes(raw)
        if alg == SM2:
            from gateway.security import sm2

            return sm2.public_from_bytes(raw)
    except ValueError:
        raise ValueError(f"not a valid {alg} public key") from None
    raise ValueError(f"unknown key algorithm {alg!r}")


class X25519Ed25519Suite:
    suite_id = DEFAULT_SUITE_ID
    signing_alg = ED25519
    encryption_alg = X25519
    _info = b"township-gateway/v1/" + DEFAULT_SUITE_ID.encode()

    def _derive(self, shared: bytes, epk_raw: bytes, recipient_raw: bytes) -> bytes:
        # Key and nonce both come from HKDF: the ephemeral key is fresh per message, so the pair
        # never repeats, and no nonce needs to travel in the header.
        return HKDF(algorithm=hashes.SHA256(), length=44, salt=epk_raw + recipient_raw, info=self._info).derive(shared)

    def agree_sender(self, recipient: RecipientKey, rng: Rng | None = None) -> tuple[str, bytes]:
        if not isinstance(recipient.public, X25519PublicKey):
            raise ValueError(f"suite {self.suite_id} needs an X25519 recipient key")
        eph = X25519PrivateKey.from_private_bytes(rng(32)) if rng else X25519PrivateKey.generate()
        epk_raw = raw_public(eph.public_key())
        shared = eph.exchange(recipient.public)
        return b64e(epk_raw), self._derive(shared, epk_raw, raw_public(recipient.public))

    def agree_recipient(self, private: X25519PrivateKey, epk: str, recipient_public_raw: bytes) -> bytes:
        epk_raw = b64d(epk)
        try:
            shared = private.exchange(X25519PublicKey.from_public_bytes(epk_raw))
        except (ValueError, AttributeError):
            # AttributeError: the recipient key held for this kid is not an X25519 key.
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
        if not isinstance(sender.private, Ed25519PrivateKey):
            raise ValueError(f"suite {self.suite_id} needs an Ed25519 signing key")
        return ed25519_sodium.sign(sender.private, data)

    def verify(self, public: Ed25519PublicKey, signature: bytes, data: bytes) -> None:
        if not isinstance(public, Ed25519PublicKey):
            raise EnvelopeError("unknown_sender_key", "the sender's key does not belong to this suite")
        if not ed25519_sodium.verify(public, signature, data):
            raise EnvelopeError("bad_signature", "signature does not verify with the sender's key")


SUITES: dict[str, Suite] = {DEFAULT_SUITE_ID: X25519Ed25519Suite()}

# Preference order when a pair has no configured preference: the first suite both sides accept.
SUITE_ORDER: tuple[str, ...] = (DEFAULT_SUITE_ID, SM_SUITE_ID)


def new_signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def new_encryption_key() -> X25519PrivateKey:
    return X25519PrivateKey.generate()


def backend_versions() -> dict[str, str]:
    """Suite id → the library (and its native build) the suite's primitives run on, for operators."""
    import cryptography
    from cryptography.hazmat.backends.openssl.backend import backend

    versions = {DEFAULT_SUITE_ID: f"cryptography {cryptography.__version__} ({backend.openssl_version_text()})"}
    if SM_SUITE_ID in SUITES:
        from gateway.security import sm2

        # SM3 and SM4-GCM of this suite also come from cryptography; only SM2 runs on Tongsuo.
        versions[SM_SUITE_ID] = f"SM2: {sm2.backend_version()}; SM3, SM4-GCM: cryptography {cryptography.__version__}"
    return versions


def _register_sm_suite() -> None:
    # The 国密 suite needs tongsuopy; without it a node simply cannot accept that suite.
    try:
        from gateway.security.sm_suite import SmSuite
    except ImportError:  # pragma: no cover - tongsuopy is a declared dependency
        return
    SUITES[SM_SUITE_ID] = SmSuite()


_register_sm_suite()
