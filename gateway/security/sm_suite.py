"""The 国密 suite ``sm2-sm3-sm4gcm``: SM2 encryption of a fresh SM4 key, SM4-GCM, SM2/SM3 signature.

Key transport follows the digital envelope of GB/T 35275 / GM/T 0010: a fresh 16-byte SM4 key and
12-byte GCM nonce are encrypted to the recipient's SM2 encryption key (GB/T 32918.4, C1||C3||C2), and
travel in the header's ``epk`` field. The body is SM4-GCM with the header as associated data. The
sender signs with SM2 (SM3, default ID) over the same bytes as in every suite.
"""

from __future__ import annotations

import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from gateway.security import sm2
from gateway.security.errors import EnvelopeError
from gateway.security.suites import SM2, SM_SUITE_ID, RecipientKey, Rng, SenderKey, b64d, b64e

KEY_LEN, NONCE_LEN, TAG_LEN = 16, 12, 16


class SmSuite:
    suite_id = SM_SUITE_ID
    signing_alg = SM2
    encryption_alg = SM2

    def agree_sender(self, recipient: RecipientKey, rng: Rng | None = None) -> tuple[str, bytes]:
        if not sm2.is_sm2_public(recipient.public):
            raise ValueError(f"suite {self.suite_id} needs an SM2 recipient key")
        draw = rng or os.urandom
        key_material = draw(KEY_LEN + NONCE_LEN)
        wrapped = sm2.encrypt(sm2.public_bytes(recipient.public), key_material, rng=draw)
        return b64e(wrapped), key_material

    def agree_recipient(self, private: Any, epk: str, recipient_public_raw: bytes) -> bytes:
        if not sm2.is_sm2_private(private):
            raise EnvelopeError("malformed_header", "the key transport does not match the recipient key")
        try:
            key_material = sm2.decrypt(private, b64d(epk))
        except sm2.Sm2Error:
            raise EnvelopeError("decrypt_failed", "the wrapped content key does not decrypt") from None
        if len(key_material) != KEY_LEN + NONCE_LEN:
            raise EnvelopeError("decrypt_failed", "the wrapped content key has the wrong length")
        return key_material

    def encrypt(self, key_material: bytes, aad: bytes, plaintext: bytes) -> bytes:
        enc = Cipher(algorithms.SM4(key_material[:KEY_LEN]), modes.GCM(key_material[KEY_LEN:])).encryptor()
        enc.authenticate_additional_data(aad)
        return enc.update(plaintext) + enc.finalize() + enc.tag

    def decrypt(self, key_material: bytes, aad: bytes, ciphertext: bytes) -> bytes:
        if len(ciphertext) < TAG_LEN:
            raise EnvelopeError("decrypt_failed", "ciphertext shorter than its tag")
        body, tag = ciphertext[:-TAG_LEN], ciphertext[-TAG_LEN:]
        dec = Cipher(algorithms.SM4(key_material[:KEY_LEN]), modes.GCM(key_material[KEY_LEN:], tag)).decryptor()
        dec.authenticate_additional_data(aad)
        try:
            return dec.update(body) + dec.finalize()
        except InvalidTag:
            raise EnvelopeError("decrypt_failed", "ciphertext does not decrypt (tampered, or not for this key)") from None

    def sign(self, sender: SenderKey, data: bytes) -> bytes:
        if not sm2.is_sm2_private(sender.private):
            raise ValueError(f"suite {self.suite_id} needs an SM2 signing key")
        return sm2.sign(sender.private, data)

    def verify(self, public: Any, signature: bytes, data: bytes) -> None:
        if not sm2.is_sm2_public(public):
            raise EnvelopeError("unknown_sender_key", "the sender's key does not belong to this suite")
        if not sm2.verify(public, signature, data):
            raise EnvelopeError("bad_signature", "signature does not verify with the sender's key")
