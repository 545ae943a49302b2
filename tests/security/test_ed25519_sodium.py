"""Ed25519 through libsodium (gateway/security/ed25519_sodium.py) gives OpenSSL's signatures and
OpenSSL's verdicts, for the keys the gateway holds as `cryptography` objects."""

from __future__ import annotations

import os

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from gateway.security import ed25519_sodium


def openssl_accepts(public: Ed25519PublicKey, signature: bytes, data: bytes) -> bool:
    try:
        public.verify(signature, data)
    except InvalidSignature:
        return False
    return True


@pytest.mark.parametrize("size", [0, 1, 700, 70_000])
def test_a_signature_is_byte_for_byte_openssls(size: int) -> None:
    key = Ed25519PrivateKey.generate()
    data = os.urandom(size)
    assert ed25519_sodium.sign(key, data) == key.sign(data)


def test_verdicts_agree_with_openssl_on_good_and_forged_signatures() -> None:
    key, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    data = os.urandom(500)
    good = key.sign(data)
    flipped = bytes([good[0] ^ 1]) + good[1:]
    cases = [
        (key.public_key(), good, data),  # the one good case
        (key.public_key(), flipped, data),
        (key.public_key(), good, data + b"x"),
        (other.public_key(), good, data),
        (key.public_key(), good[:63], data),
        (key.public_key(), good + b"\x00", data),
        (key.public_key(), bytes(64), data),
    ]
    verdicts = [ed25519_sodium.verify(public, signature, signed) for public, signature, signed in cases]
    assert verdicts == [openssl_accepts(public, signature, signed) for public, signature, signed in cases]
    assert verdicts == [True] + [False] * 6


def test_a_new_key_object_for_the_same_key_is_not_confused_with_a_collected_one() -> None:
    """The libsodium twin is found by the key object's identity and kept with it: a key made later at a
    recycled address gets its own twin, never the old key's."""
    data = b"receipt"
    for _ in range(50):
        key = Ed25519PrivateKey.generate()
        signature = ed25519_sodium.sign(key, data)
        assert ed25519_sodium.verify(key.public_key(), signature, data)
        assert signature == key.sign(data)
