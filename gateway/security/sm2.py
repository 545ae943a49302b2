"""SM2 (GB/T 32918) through Tongsuo, the OpenSSL fork that the `tongsuopy` wheel links statically.

`tongsuopy` gives SM2 key generation, PKCS#8 serialisation and SM2 signatures (SM3 with the default
distinguishing ID ``1234567812345678``, DER-encoded r, s) through a `cryptography`-like API. It has no
SM2 public-key encryption and refuses ECDH on SM2 keys, so the encryption of GB/T 32918.4 is written
here from the curve operations of its low-level binding: that keeps the ephemeral scalar injectable,
which the test vectors need. SM3 comes from `cryptography`.

The binding calls are the only place this project touches a library's low-level API; tongsuopy is
pinned to 1.0.x for that reason (see docs/envelope.md, "Choosing the SM2 library").

Tongsuo 8.3.2 is built on OpenSSL 1.1.1h (2020, out of upstream support). What it is given is kept
narrow on purpose (docs/envelope.md, "What the old library sees"): no TLS, no certificates, no ASN.1
from the network except an SM2 signature, and that one only after ``cryptography`` has decoded it
and it re-encodes to the same bytes.
"""

from __future__ import annotations

import os
from typing import Any, Callable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
import tongsuopy
from tongsuopy.backends.tongsuo.binding import Binding
from tongsuopy.crypto import serialization as ts_serialization
from tongsuopy.crypto.asymciphers import ec
from tongsuopy.crypto import hashes as ts_hashes

Rng = Callable[[int], bytes]

_binding = Binding()
_lib, _ffi = _binding.lib, _binding.ffi

# Curve order n of sm2p256v1 (GB/T 32918.5); the cofactor is 1, so every valid point is in the group.
SM2_ORDER = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
POINT_LEN = 65  # uncompressed: 04 || x || y
DEFAULT_ID = b"1234567812345678"
MAX_SIGNATURE_LEN = 72  # DER SEQUENCE of two INTEGERs below n: 2 + 2 × (2 + 33)


class Sm2Error(ValueError):
    """A malformed SM2 input (bad point, bad ciphertext). Carries no key material."""


def _group() -> Any:
    group = _lib.EC_GROUP_new_by_curve_name(_lib.OBJ_sn2nid(b"SM2"))
    if group == _ffi.NULL:
        raise RuntimeError("Tongsuo has no SM2 curve")
    return _ffi.gc(group, _lib.EC_GROUP_free)


_GROUP = _group()


def backend_version() -> str:
    """The library the SM2 operations run on, for operators and the bench (``gateway keys backends``).

    Tongsuo reports only its OpenSSL base ("OpenSSL 1.1.1h  22 Sep 2020"); its own release is in the
    build prefix the wheel was compiled with (``…/tongsuo8.3.2``), read back from ``OPENSSLDIR``.
    """
    base = _ffi.string(_lib.OpenSSL_version(_lib.OPENSSL_VERSION)).decode(errors="replace")
    built_in = _ffi.string(_lib.OpenSSL_version(_lib.OPENSSL_DIR)).decode(errors="replace")
    marker = built_in.rfind("tongsuo")
    release = built_in[marker + len("tongsuo") :].split("/")[0] if marker >= 0 else "unknown"
    return f"tongsuopy {tongsuopy.__version__} (Tongsuo {release}, reports {' '.join(base.split())})"


def sm3(data: bytes) -> bytes:
    digest = hashes.Hash(hashes.SM3())
    digest.update(data)
    return digest.finalize()


def sm3_kdf(z: bytes, length: int) -> bytes:
    """The key derivation function of GB/T 32918.4 §5.4.3: SM3(Z || ct) for ct = 1, 2, … (32-bit)."""
    out = b""
    counter = 1
    while len(out) < length:
        out += sm3(z + counter.to_bytes(4, "big"))
        counter += 1
    return out[:length]


def generate_private_key() -> Any:
    return ec.generate_private_key(ec.SM2())


def private_key_from_scalar(d: int) -> Any:
    return ec.derive_private_key(d, ec.SM2())


def public_bytes(public: Any) -> bytes:
    return public.public_bytes(ts_serialization.Encoding.X962, ts_serialization.PublicFormat.UncompressedPoint)


def public_from_bytes(raw: bytes) -> Any:
    if len(raw) != POINT_LEN or raw[0] != 4:
        raise Sm2Error("an SM2 public key is a 65-byte uncompressed point")
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SM2(), raw)
    except Exception:  # tongsuopy raises ValueError or its InternalError for points off the curve
        raise Sm2Error("not a point on the SM2 curve") from None


def is_sm2_private(key: Any) -> bool:
    return isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "SM2"


def is_sm2_public(key: Any) -> bool:
    return isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "SM2"


def sign(private: Any, data: bytes) -> bytes:
    """SM2 signature with SM3 and the default ID; randomised per GB/T 32918.2 (not reproducible)."""
    return private.sign(data, ec.ECDSA(ts_hashes.SM3()))


def _canonical_signature(signature: bytes) -> bool:
    """True when ``signature`` is exactly the DER of (r, s) with 1 ≤ r, s < n.

    The signature is the one input from the network that Tongsuo would parse as ASN.1. Decoding it
    first with ``cryptography`` (maintained, Rust DER parser) and passing on only bytes that re-encode
    identically means Tongsuo's 1.1.1-era decoder only ever sees well-formed, minimal input. The
    rule is the one OpenSSL's verify applies anyway (it refuses non-canonical encodings), so no
    signature that verified before is refused now.
    """
    if not 8 <= len(signature) <= MAX_SIGNATURE_LEN:
        return False
    try:
        r, s = decode_dss_signature(signature)
    except ValueError:
        return False
    return 1 <= r < SM2_ORDER and 1 <= s < SM2_ORDER and encode_dss_signature(r, s) == signature


def verify(public: Any, signature: bytes, data: bytes) -> bool:
    if not _canonical_signature(signature):
        return False
    try:
        public.verify(signature, data, ec.ECDSA(ts_hashes.SM3()))
    except Exception:
        # A malformed DER signature surfaces as tongsuopy's InternalError, not InvalidSignature:
        # every failure is the same refusal to the caller.
        return False
    return True


# --- SM2 public-key encryption, GB/T 32918.4-2016, ciphertext C1 || C3 || C2 ---------------------


def _bn(value: int) -> Any:
    raw = value.to_bytes(32, "big")
    bn = _lib.BN_bin2bn(raw, len(raw), _ffi.NULL)
    return _ffi.gc(bn, _lib.BN_clear_free)


def _point_from_bytes(raw: bytes) -> Any:
    point = _ffi.gc(_lib.EC_POINT_new(_GROUP), _lib.EC_POINT_free)
    if len(raw) != POINT_LEN or raw[0] != 4 or _lib.EC_POINT_oct2point(_GROUP, point, raw, len(raw), _ffi.NULL) != 1:
        _lib.ERR_clear_error()
        raise Sm2Error("not a point on the SM2 curve")
    if _lib.EC_POINT_is_at_infinity(_GROUP, point):
        raise Sm2Error("point at infinity")
    return point


def _point_bytes(point: Any) -> bytes:
    buf = _ffi.new("unsigned char[]", POINT_LEN)
    n = _lib.EC_POINT_point2oct(_GROUP, point, _lib.POINT_CONVERSION_UNCOMPRESSED, buf, POINT_LEN, _ffi.NULL)
    if n != POINT_LEN:
        raise Sm2Error("point at infinity")
    return bytes(_ffi.buffer(buf, POINT_LEN))


def _mul(scalar: int, point: Any | None) -> bytes:
    """[scalar]point, or [scalar]G when point is None; returns the uncompressed encoding."""
    result = _ffi.gc(_lib.EC_POINT_new(_GROUP), _lib.EC_POINT_free)
    k = _bn(scalar)
    if point is None:
        ok = _lib.EC_POINT_mul(_GROUP, result, k, _ffi.NULL, _ffi.NULL, _ffi.NULL)
    else:
        ok = _lib.EC_POINT_mul(_GROUP, result, _ffi.NULL, point, k, _ffi.NULL)
    if ok != 1:
        _lib.ERR_clear_error()
        raise Sm2Error("SM2 point multiplication failed")
    return _point_bytes(result)


def _scalar(rng: Rng) -> int:
    while True:
        k = int.from_bytes(rng(32), "big")
        if 1 <= k < SM2_ORDER:
            return k


def encrypt(recipient_public_raw: bytes, message: bytes, rng: Rng | None = None) -> bytes:
    """SM2 encryption of a short message (here: a content key); ``rng`` is injectable for test vectors."""
    rng = rng or os.urandom
    pb = _point_from_bytes(recipient_public_raw)
    while True:
        k = _scalar(rng)
        c1 = _mul(k, None)
        xy2 = _mul(k, pb)[1:]
        t = sm3_kdf(xy2, len(message))
        if any(t):  # the standard redraws k when the KDF output is all zero
            break
    c2 = bytes(a ^ b for a, b in zip(message, t))
    c3 = sm3(xy2[:32] + message + xy2[32:])
    return c1 + c3 + c2


def decrypt(private: Any, ciphertext: bytes) -> bytes:
    if len(ciphertext) <= POINT_LEN + 32:
        raise Sm2Error("SM2 ciphertext too short")
    c1, c3, c2 = ciphertext[:POINT_LEN], ciphertext[POINT_LEN : POINT_LEN + 32], ciphertext[POINT_LEN + 32 :]
    d = private.private_numbers().private_value
    xy2 = _mul(d, _point_from_bytes(c1))[1:]
    t = sm3_kdf(xy2, len(c2))
    if not any(t):
        raise Sm2Error("SM2 ciphertext rejected")
    message = bytes(a ^ b for a, b in zip(c2, t))
    if sm3(xy2[:32] + message + xy2[32:]) != c3:
        raise Sm2Error("SM2 ciphertext does not check (C3 differs)")
    return message


def private_pem(private: Any, passphrase: bytes | None) -> bytes:
    encryption = ts_serialization.BestAvailableEncryption(passphrase) if passphrase else ts_serialization.NoEncryption()
    return private.private_bytes(ts_serialization.Encoding.PEM, ts_serialization.PrivateFormat.PKCS8, encryption)


def load_private_pem(pem: bytes, passphrase: bytes | None) -> Any:
    return ts_serialization.load_pem_private_key(pem, password=passphrase or None)
