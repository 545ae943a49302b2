"""Known-answer test vectors for every suite, from fixed keys and a fixed RNG stream.

``python -m gateway.security.vectors docs/test-vectors`` rewrites the files; the tests check that the
code still produces them byte for byte (and that the files open). All values are fictitious.

The RNG stream is ``SHA-256(seed || u32 counter)`` for counter = 0, 1, …, concatenated; a suite
draws from it in the order docs/envelope.md gives.
"""

from __future__ import annotations

import hashlib
import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from gateway.security.directory import KeyDirectory
from gateway.security.encoding import canonical_json
from gateway.security.envelope import parse_envelope, seal
from gateway.security.keys import NodeKeyring, key_id
from gateway.security.receipts import make_receipt
from gateway.security.suites import DEFAULT_SUITE_ID, SM_SUITE_ID, raw_public

SENDER, RECIPIENT = "110101001", "310115002"
MESSAGE_ID = "01J00000000000000000000001"
CREATED_AT = datetime(2025, 3, 18, 2, 30, 0, 123456, tzinfo=timezone.utc)
RECEIVED_AT = datetime(2025, 3, 18, 2, 30, 5, tzinfo=timezone.utc)
PLAINTEXT = canonical_json(
    {"kind": "query", "subject": {"name": "测试人", "citizen_id": "11010119900101001X"}, "note": "test vector, fictitious"}
)


class CounterRng:
    """A deterministic byte stream for test vectors only: SHA-256(seed || u32 counter) blocks."""

    def __init__(self, seed: bytes) -> None:
        self.seed, self.counter, self.buffer = seed, 0, b""
        self.drawn: list[bytes] = []

    def __call__(self, n: int) -> bytes:
        while len(self.buffer) < n:
            self.buffer += hashlib.sha256(self.seed + self.counter.to_bytes(4, "big")).digest()
            self.counter += 1
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        self.drawn.append(out)
        return out


def _seed(label: str) -> bytes:
    return hashlib.sha256(b"township-gateway/test-vector/" + label.encode()).digest()


def _sm2_key(label: str) -> Any:
    from gateway.security import sm2

    return sm2.private_key_from_scalar(int.from_bytes(_seed(label), "big") % (sm2.SM2_ORDER - 1) + 1)


def fixed_keyrings() -> tuple[NodeKeyring, NodeKeyring]:
    def ring(township: str) -> NodeKeyring:
        return NodeKeyring(
            township,
            Ed25519PrivateKey.from_private_bytes(_seed(f"{township}/ed25519")),
            X25519PrivateKey.from_private_bytes(_seed(f"{township}/x25519")),
            _sm2_key(f"{township}/sm2-signing"),
            _sm2_key(f"{township}/sm2-encryption"),
        )

    return ring(SENDER), ring(RECIPIENT)


def _private_hex(private: Any) -> str:
    if isinstance(private, (Ed25519PrivateKey, X25519PrivateKey)):
        from cryptography.hazmat.primitives import serialization

        return private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()).hex()
    return f"{private.private_numbers().private_value:064x}"  # SM2: the scalar d, 32 bytes big-endian


def build_vector(suite_id: str) -> dict[str, Any]:
    sender, recipient = fixed_keyrings()
    directory = KeyDirectory.from_keyrings([sender, recipient]).with_suites(SENDER, [suite_id]).with_suites(RECIPIENT, [suite_id])
    rng = CounterRng(_seed(f"rng/{suite_id}"))
    recipient_key = directory.recipient_key(RECIPIENT, suite_id)
    envelope = seal(
        plaintext=PLAINTEXT,
        message_id=MESSAGE_ID,
        kind="query",
        sender=sender.sender_key(suite_id),
        recipient=recipient_key,
        created_at=CREATED_AT,
        suite_id=suite_id,
        rng=rng,
    )
    parsed = parse_envelope(envelope)
    unsigned_len = len(envelope) - len(parsed.signature) - 2  # up to the u16 sig_len: DER SM2 signatures vary in length
    signing = sender.signing_key(suite_id)
    encryption = recipient.encryption_key(suite_id)
    deterministic = suite_id == DEFAULT_SUITE_ID
    vector: dict[str, Any] = {
        "suite": suite_id,
        "description": "seal(plaintext) from the sender's signing key, the recipient's encryption key and the RNG stream below",
        "sender": {
            "township": SENDER,
            "signing_alg": "ed25519" if deterministic else "sm2",
            "signing_private_hex": _private_hex(signing),
            "signing_public_hex": raw_public(signing.public_key()).hex(),
            "signing_kid": key_id(signing.public_key()),
        },
        "recipient": {
            "township": RECIPIENT,
            "encryption_alg": "x25519" if deterministic else "sm2",
            "encryption_private_hex": _private_hex(encryption),
            "encryption_public_hex": raw_public(encryption.public_key()).hex(),
            "encryption_kid": recipient_key.kid,
        },
        "rng": {"seed_hex": rng.seed.hex(), "draws_hex": [d.hex() for d in rng.drawn]},
        "message_id": MESSAGE_ID,
        "kind": "query",
        "created_at": CREATED_AT.isoformat(),
        "plaintext_utf8": PLAINTEXT.decode(),
        "header_utf8": parsed.header_bytes.decode(),
        "ciphertext_hex": parsed.ciphertext.hex(),
        "signature_deterministic": deterministic,
        "unsigned_prefix_hex": envelope[:unsigned_len].hex(),
        "envelope_hex": envelope.hex(),
        "envelope_sha256": hashlib.sha256(envelope).hexdigest(),
    }
    receipt = make_receipt(envelope, recipient, RECEIVED_AT)
    vector["receipt"] = {
        "received_at": RECEIVED_AT.isoformat(),
        "signer_signing_private_hex": _private_hex(recipient.signing_key(suite_id)),
        "signer_signing_public_hex": raw_public(recipient.signing_key(suite_id).public_key()).hex(),
        "receipt_hex": receipt.hex(),
    }
    return vector


def write_vectors(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for suite_id in (DEFAULT_SUITE_ID, SM_SUITE_ID):
        path = folder / f"{suite_id}.json"
        path.write_text(json.dumps(build_vector(suite_id), indent=2, ensure_ascii=False) + "\n")
        written.append(path)
    return written


if __name__ == "__main__":
    for p in write_vectors(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/test-vectors")):
        print(p)
