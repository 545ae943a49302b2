"""Encryption of stored bodies and pseudonyms of citizen IDs, so a database backup shows nothing personal.

Each node derives its storage key from its own encryption private key (HKDF), so there is no extra
secret to distribute, and the stored blob names the key it was sealed with, so rotated keys still read
old rows as long as the keyring keeps them.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

BLOB_VERSION = b"\x01"


class AtRestError(Exception):
    pass


class StorageCipher:
    def __init__(self, kid: str, private_raw: bytes) -> None:
        okm = HKDF(algorithm=hashes.SHA256(), length=64, salt=None, info=b"township-gateway/at-rest/v1").derive(private_raw)
        self.kid = kid
        self._aead = AESGCM(okm[:32])
        self._pseudonym_key = okm[32:]

    @classmethod
    def for_private_key(cls, kid: str, private_key: object) -> StorageCipher:
        raw = private_key.private_bytes(  # type: ignore[attr-defined]
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        return cls(kid, raw)

    def seal(self, plaintext: bytes, context: bytes) -> bytes:
        nonce = os.urandom(12)
        kid = bytes.fromhex(self.kid)
        return BLOB_VERSION + bytes([len(kid)]) + kid + nonce + self._aead.encrypt(nonce, plaintext, context)

    def open(self, blob: bytes, context: bytes) -> bytes:
        if blob[:1] != BLOB_VERSION:
            raise AtRestError("unknown at-rest blob version")
        klen = blob[1]
        kid = blob[2 : 2 + klen].hex()
        if kid != self.kid:
            raise AtRestError(f"blob sealed with key {kid}, this cipher holds {self.kid}")
        nonce = blob[2 + klen : 14 + klen]
        return self._aead.decrypt(nonce, blob[14 + klen :], context)

    def pseudonym(self, citizen_id: str) -> str:
        return hmac.new(self._pseudonym_key, citizen_id.upper().encode(), hashlib.sha256).hexdigest()
