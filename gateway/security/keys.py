"""A node's own private keys, per suite family, kept on disk as PKCS#8 PEM.

Files in ``KEYS_DIR/<township>/``: ``signing.pem`` and ``encryption.pem`` (Ed25519 / X25519, the
default suite), ``sm2-signing.pem`` and ``sm2-encryption.pem`` (the 国密 suite, optional), and
``retired/<kid>.pem``: encryption keys replaced by a rotation but still held so that messages
sealed to them before the rotation can be opened during the grace period.

Private keys are written with mode 0600 in a 0700 folder and, when a passphrase is configured,
encrypted at rest (PKCS#8 PBES2). Nothing here ever puts key bytes or a passphrase in a message.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from gateway.private_paths import private_dir
from gateway.security.errors import EnvelopeError
from gateway.security.suites import (
    DEFAULT_SUITE_ID,
    ED25519,
    SM2,
    SM_SUITE_ID,
    SUITES,
    X25519,
    SenderKey,
    key_alg,
    new_encryption_key,
    new_signing_key,
    raw_public,
)

SIGNING_FILE = "signing.pem"
ENCRYPTION_FILE = "encryption.pem"
SM2_SIGNING_FILE = "sm2-signing.pem"
SM2_ENCRYPTION_FILE = "sm2-encryption.pem"
RETIRED_DIR = "retired"


def key_id(public: Any) -> str:
    """A short, stable name for a public key: the first 16 hex digits of SHA-256 of its raw bytes."""
    return hashlib.sha256(raw_public(public)).hexdigest()[:16]


@dataclass(frozen=True)
class NodeKeyring:
    township: str
    signing: Ed25519PrivateKey
    encryption: X25519PrivateKey
    sm2_signing: Any | None = None
    sm2_encryption: Any | None = None
    # Encryption keys replaced by a rotation, still held to open messages sealed to them earlier.
    retired: tuple[Any, ...] = field(default=())

    @property
    def signing_kid(self) -> str:
        return key_id(self.signing.public_key())

    @property
    def encryption_kid(self) -> str:
        return key_id(self.encryption.public_key())

    def suites(self) -> list[str]:
        """The suites this node holds keys for, in the default preference order."""
        held = [DEFAULT_SUITE_ID]
        if self.sm2_signing is not None and self.sm2_encryption is not None and SM_SUITE_ID in SUITES:
            held.append(SM_SUITE_ID)
        return held

    def signing_key(self, suite_id: str = DEFAULT_SUITE_ID) -> Any:
        alg = SUITES[suite_id].signing_alg
        key = self.signing if alg == ED25519 else self.sm2_signing
        if key is None:
            raise EnvelopeError("unaccepted_suite", f"{self.township} holds no {alg} signing key for {suite_id}")
        return key

    def encryption_key(self, suite_id: str = DEFAULT_SUITE_ID) -> Any:
        alg = SUITES[suite_id].encryption_alg
        key = self.encryption if alg == X25519 else self.sm2_encryption
        if key is None:
            raise EnvelopeError("unaccepted_suite", f"{self.township} holds no {alg} encryption key for {suite_id}")
        return key

    def sender_key(self, suite_id: str = DEFAULT_SUITE_ID) -> SenderKey:
        key = self.signing_key(suite_id)
        return SenderKey(self.township, key_id(key.public_key()), key)

    def _decryption_keys(self) -> Iterator[Any]:
        yield self.encryption
        if self.sm2_encryption is not None:
            yield self.sm2_encryption
        yield from self.retired

    def decryption_key(self, kid: str) -> tuple[Any, bytes]:
        """The private key for ``kid`` (current or retired) and its public bytes."""
        for private in self._decryption_keys():
            public_raw = raw_public(private.public_key())
            if hashlib.sha256(public_raw).hexdigest()[:16] == kid:
                return private, public_raw
        raise EnvelopeError("unknown_recipient_key", f"no decryption key {kid} at {self.township}")

    def public_keys(self) -> list[tuple[str, str, Any]]:
        """(use, alg, public key) for every current key: what the directory should publish."""
        out: list[tuple[str, str, Any]] = [("sig", ED25519, self.signing.public_key()), ("enc", X25519, self.encryption.public_key())]
        if self.sm2_signing is not None:
            out.append(("sig", SM2, self.sm2_signing.public_key()))
        if self.sm2_encryption is not None:
            out.append(("enc", SM2, self.sm2_encryption.public_key()))
        return out

    def without_retired(self, kids: set[str]) -> NodeKeyring:
        return replace(self, retired=tuple(k for k in self.retired if key_id(k.public_key()) not in kids))

    def __repr__(self) -> str:  # never let a private key reach a log line
        return (
            f"NodeKeyring(township={self.township!r}, signing_kid={self.signing_kid!r}, "
            f"encryption_kid={self.encryption_kid!r}, suites={self.suites()!r}, retired={len(self.retired)})"
        )

    __str__ = __repr__


def generate_keyring(township: str, *, sm2: bool = False) -> NodeKeyring:
    if not sm2:
        return NodeKeyring(township, new_signing_key(), new_encryption_key())
    from gateway.security import sm2 as sm2_keys

    return NodeKeyring(
        township, new_signing_key(), new_encryption_key(), sm2_keys.generate_private_key(), sm2_keys.generate_private_key()
    )


def rotate_keyring(keyring: NodeKeyring) -> NodeKeyring:
    """Fresh keys for every family the node holds; the old encryption keys move to ``retired``.

    Old signing keys are dropped: peers verify with the public keys in the directory, which keeps
    them (with their validity period) as long as messages signed by them can still arrive.
    """
    fresh = generate_keyring(keyring.township, sm2=keyring.sm2_signing is not None)
    old_encryption = [keyring.encryption] + ([keyring.sm2_encryption] if keyring.sm2_encryption is not None else [])
    return replace(fresh, retired=tuple(old_encryption) + keyring.retired)


# --- files ---------------------------------------------------------------------------------------


class KeyFileError(Exception):
    pass


def _pem(private: Any, passphrase: bytes | None) -> bytes:
    if key_alg(private) == SM2:
        from gateway.security import sm2 as sm2_keys

        return sm2_keys.private_pem(private, passphrase)
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    )
    return private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def _write_private(path: Path, private: Any, passphrase: bytes | None) -> None:
    # Write a sibling then rename, so a crash never leaves half a key where a whole one was.
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(_pem(private, passphrase))
    os.replace(tmp, path)


def save_keyring(keyring: NodeKeyring, keys_dir: Path, passphrase: bytes | None = None) -> None:
    node_dir = private_dir(keys_dir / keyring.township)
    files = [(SIGNING_FILE, keyring.signing), (ENCRYPTION_FILE, keyring.encryption)]
    if keyring.sm2_signing is not None:
        files.append((SM2_SIGNING_FILE, keyring.sm2_signing))
    if keyring.sm2_encryption is not None:
        files.append((SM2_ENCRYPTION_FILE, keyring.sm2_encryption))
    for name, private in files:
        _write_private(node_dir / name, private, passphrase)
    retired_dir = node_dir / RETIRED_DIR
    kept = {f"{key_id(k.public_key())}.pem" for k in keyring.retired}
    if keyring.retired:
        retired_dir.mkdir(exist_ok=True, mode=0o700)
        for private in keyring.retired:
            _write_private(retired_dir / f"{key_id(private.public_key())}.pem", private, passphrase)
    if retired_dir.is_dir():
        for stale in retired_dir.glob("*.pem"):
            if stale.name not in kept:
                stale.unlink()  # pruned from the keyring: the grace period is over


def unencrypted_key_files(township: str, keys_dir: Path) -> list[Path]:
    """The node's private key files kept in clear (PKCS#8 without PBES2), retired ones included."""
    node_dir = keys_dir / township
    files = sorted(node_dir.glob("*.pem")) + sorted((node_dir / RETIRED_DIR).glob("*.pem"))
    return [p for p in files if b"-----BEGIN ENCRYPTED PRIVATE KEY-----" not in p.read_bytes()[:200]]


def check_permissions(path: Path) -> None:
    """Refuse a key file or folder that others can read or write."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        kind = "folder" if path.is_dir() else "key file"
        raise KeyFileError(f"{kind} {path} is accessible by others (mode {mode:o}); run `chmod {'700' if path.is_dir() else '600'} {path}`")


def _read_private(path: Path, passphrase: bytes | None) -> Any:
    if not path.exists():
        raise KeyFileError(f"missing key file {path}; run `gateway keys init`")
    check_permissions(path)
    pem = path.read_bytes()
    try:
        if path.name.startswith("sm2-"):
            from gateway.security import sm2 as sm2_keys

            return sm2_keys.load_private_pem(pem, passphrase)
        return serialization.load_pem_private_key(pem, password=passphrase or None)
    except Exception:
        # The libraries' messages can name the failure mode; they hold no key bytes, but keep it terse
        # and never echo what was tried.
        raise KeyFileError(f"cannot load key file {path}: wrong passphrase or not a PKCS#8 PEM key") from None


def _read_retired(path: Path, passphrase: bytes | None) -> Any:
    # A retired key may be X25519 or SM2; the file does not say which, so try both loaders.
    check_permissions(path)
    pem = path.read_bytes()
    try:
        return serialization.load_pem_private_key(pem, password=passphrase or None)
    except Exception:
        pass
    try:
        from gateway.security import sm2 as sm2_keys

        return sm2_keys.load_private_pem(pem, passphrase)
    except Exception:
        raise KeyFileError(f"cannot load key file {path}: wrong passphrase or not a PKCS#8 PEM key") from None


def load_keyring(township: str, keys_dir: Path, passphrase: bytes | None = None) -> NodeKeyring:
    node_dir = keys_dir / township
    if node_dir.is_dir():
        check_permissions(node_dir)
    signing = _read_private(node_dir / SIGNING_FILE, passphrase)
    encryption = _read_private(node_dir / ENCRYPTION_FILE, passphrase)
    if not isinstance(signing, Ed25519PrivateKey) or not isinstance(encryption, X25519PrivateKey):
        raise KeyFileError(f"key files in {node_dir} are not an Ed25519 / X25519 pair")
    sm2_signing = sm2_encryption = None
    if (node_dir / SM2_SIGNING_FILE).exists() or (node_dir / SM2_ENCRYPTION_FILE).exists():
        sm2_signing = _read_private(node_dir / SM2_SIGNING_FILE, passphrase)
        sm2_encryption = _read_private(node_dir / SM2_ENCRYPTION_FILE, passphrase)
    retired_dir = node_dir / RETIRED_DIR
    retired = tuple(_read_retired(p, passphrase) for p in sorted(retired_dir.glob("*.pem"))) if retired_dir.is_dir() else ()
    return NodeKeyring(township, signing, encryption, sm2_signing, sm2_encryption, retired)
