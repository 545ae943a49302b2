"""Ed25519 signatures computed by libsodium (PyNaCl), for keys held as `cryptography` objects.

Every message costs two Ed25519 verifications (its envelope, and its receipt at the sender) and two
signatures. Measured on this project's 2-core VM: OpenSSL (through `cryptography`) verifies ≈ 10,500
and signs ≈ 32,700 per second on one core, libsodium ≈ 21,000 and ≈ 45,800 — the verifications alone
were ≈ 10 % of a gateway's CPU per message. Ed25519 is deterministic (RFC 8032): libsodium's
signature is byte for byte OpenSSL's, and a signature one accepts the other accepts (libsodium also
refuses a few forms OpenSSL lets through: small-order keys, non-canonical points — never produced by
an honest signer).

Keys stay `cryptography` objects everywhere else (files, the directory, the suites); here each gets
its libsodium twin once, kept with the key it was made from.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

_KEPT = 4096  # keys of a province's directory; a key missed is made again (≈ 2 µs)
_SIGNATURE_BYTES = 64


class _Twins:
    """libsodium keys by the identity of the `cryptography` key (kept alongside, so an id is never
    reused while its entry lives)."""

    def __init__(self) -> None:
        self._by_id: OrderedDict[int, tuple[Any, Any]] = OrderedDict()

    def get(self, key: Any, make: Any) -> Any:
        found = self._by_id.get(id(key))
        if found is not None and found[0] is key:
            return found[1]
        twin = make(key)
        self._by_id[id(key)] = (key, twin)
        if len(self._by_id) > _KEPT:
            self._by_id.popitem(last=False)
        return twin


_VERIFY = _Twins()
_SIGN = _Twins()


def verify(public: Ed25519PublicKey, signature: bytes, data: bytes) -> bool:
    """Whether ``signature`` is ``public``'s over ``data``."""
    if len(signature) != _SIGNATURE_BYTES:
        return False
    key: VerifyKey = _VERIFY.get(public, lambda k: VerifyKey(k.public_bytes_raw()))
    try:
        key.verify(data, signature)
    except BadSignatureError:
        return False
    return True


def sign(private: Ed25519PrivateKey, data: bytes) -> bytes:
    key: SigningKey = _SIGN.get(private, lambda k: SigningKey(k.private_bytes_raw()))
    return key.sign(data).signature
