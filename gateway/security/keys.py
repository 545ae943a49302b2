"""A node's own key pairs: one for signing, one for encryption, kept on disk as PKCS#8 PEM.

Private keys are written with mode 0600 and, when a passphrase is configured, encrypted at rest.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from gateway.security.errors import EnvelopeError
from gateway.security.suites import SenderKey, new_encryption_key, new_signing_key, raw_public

SIGNING_FILE = "signing.pem"
ENCRYPTION_FILE = "encryption.pem"


def key_id(public: Any) -> str:
    """A short, stable name for a public key: the first 16 hex digits of SHA-256 of its raw bytes."""
    return hashlib.sha256(raw_public(public)).hexdigest()[:16]


@dataclass(frozen=True)
class NodeKeyring:
    township: str
    signing: Ed25519PrivateKey
    encryption: X25519PrivateKey

    @property
    def signing_kid(self) -> str:
        return key_id(self.signing.public_key())

    @property
    def encryption_kid(self) -> str:
        return key_id(self.encryption.public_key())

    def sender_key(self) -> SenderKey:
        return SenderKey(self.township, self.signing_kid, self.signing)

    def decryption_key(self, kid: str) -> tuple[X25519PrivateKey, bytes]:
        if kid != self.encryption_kid:
            raise EnvelopeError("unknown_recipient_key", f"no decryption key {kid} at {self.township}")
        return self.encryption, raw_public(self.encryption.public_key())

    def __repr__(self) -> str:  # never let a private key reach a log line
        return f"NodeKeyring(township={self.township!r}, signing_kid={self.signing_kid!r}, encryption_kid={self.encryption_kid!r})"


def generate_keyring(township: str) -> NodeKeyring:
    return NodeKeyring(township, new_signing_key(), new_encryption_key())


def _encryption_for(passphrase: bytes | None) -> serialization.KeySerializationEncryption:
    if passphrase:
        return serialization.BestAvailableEncryption(passphrase)
    return serialization.NoEncryption()


def save_keyring(keyring: NodeKeyring, keys_dir: Path, passphrase: bytes | None = None) -> None:
    node_dir = keys_dir / keyring.township
    node_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    for name, private in ((SIGNING_FILE, keyring.signing), (ENCRYPTION_FILE, keyring.encryption)):
        pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, _encryption_for(passphrase))
        path = node_dir / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)


class KeyFileError(Exception):
    pass


def _read_private(path: Path, passphrase: bytes | None) -> Any:
    if not path.exists():
        raise KeyFileError(f"missing key file {path}; run `gateway init`")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise KeyFileError(f"key file {path} is readable by others (mode {mode:o}); run `chmod 600 {path}`")
    try:
        return serialization.load_pem_private_key(path.read_bytes(), password=passphrase or None)
    except (ValueError, TypeError):
        # cryptography's message can name the failure mode; it never holds key bytes, but keep it terse.
        raise KeyFileError(f"cannot load key file {path}: wrong passphrase or not a PKCS#8 PEM key") from None


def load_keyring(township: str, keys_dir: Path, passphrase: bytes | None = None) -> NodeKeyring:
    node_dir = keys_dir / township
    signing = _read_private(node_dir / SIGNING_FILE, passphrase)
    encryption = _read_private(node_dir / ENCRYPTION_FILE, passphrase)
    if not isinstance(signing, Ed25519PrivateKey) or not isinstance(encryption, X25519PrivateKey):
        raise KeyFileError(f"key files in {node_dir} are not an Ed25519 / X25519 pair")
    return NodeKeyring(township, signing, encryption)
