"""The directory authority: an Ed25519 key (province or national root) that signs the key directory.

A gateway holds the authority's public key (configured, never fetched with the directory) and
accepts a directory only when that key signed it, it has not expired, it is not older than
``max_age`` and its serial is not lower than the one already held (no rollback to an old directory
that still lists a revoked key as good).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Iterable, Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from gateway.private_paths import private_dir
from gateway.security.directory import DirectoryMeta, KeyDirectory
from gateway.security.encoding import canonical_json
from gateway.security.errors import EnvelopeError
from gateway.security.keys import KeyFileError, check_permissions, key_id
from gateway.security.suites import b64d, b64e

DIRECTORY_CONTEXT = b"township-gateway/directory/v2\x00"


@dataclass(frozen=True)
class Authority:
    name: str
    private: Ed25519PrivateKey

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    @property
    def kid(self) -> str:
        return key_id(self.public)

    def __repr__(self) -> str:
        return f"Authority(name={self.name!r}, kid={self.kid!r})"


def new_authority(name: str) -> Authority:
    return Authority(name, Ed25519PrivateKey.generate())


def sign_directory(directory: KeyDirectory, authority: Authority, *, issued_at: datetime, valid_for: timedelta) -> dict[str, Any]:
    """The signed file form of ``directory``, with a serial one above the one it had."""
    meta = DirectoryMeta(directory.meta.serial + 1, issued_at, issued_at + valid_for, authority.kid)
    signed = directory.with_meta(meta)
    signature = authority.private.sign(DIRECTORY_CONTEXT + signed.document_bytes())
    return signed.to_json(signature)


def verify_directory(
    obj: Mapping[str, Any],
    authority: Ed25519PublicKey | Iterable[Ed25519PublicKey],
    *,
    now: datetime,
    max_age: timedelta | None = None,
    min_serial: int | None = None,
) -> KeyDirectory:
    trusted = [authority] if isinstance(authority, Ed25519PublicKey) else list(authority)
    if "directory" not in obj or not obj.get("signature"):
        raise EnvelopeError("unsigned_directory", "the key directory carries no authority signature")
    doc = obj["directory"]
    if not isinstance(doc, Mapping):
        raise EnvelopeError("bad_directory", "the key directory is malformed")
    signed_bytes = DIRECTORY_CONTEXT + canonical_json(doc)
    signature = b64d(obj["signature"])
    by = [a for a in trusted if key_id(a) == doc.get("authority")]
    if not by:
        raise EnvelopeError("bad_directory_signature", f"directory signed by {doc.get('authority')!r}, not a trusted authority")
    try:
        by[0].verify(signature, signed_bytes)
    except InvalidSignature:
        raise EnvelopeError("bad_directory_signature", "the key directory's signature does not verify") from None
    try:
        directory = KeyDirectory.from_document(doc)
    except (KeyError, TypeError, ValueError) as exc:
        raise EnvelopeError("bad_directory", f"the key directory is malformed: {exc}") from None
    meta = directory.meta
    if meta.issued_at is None or meta.expires is None:
        raise EnvelopeError("bad_directory", "a signed directory must say when it was issued and when it expires")
    if now >= meta.expires:
        raise EnvelopeError("stale_directory", f"the key directory expired at {doc['expires']}")
    if now < meta.issued_at - timedelta(minutes=5):
        raise EnvelopeError("stale_directory", f"the key directory is issued in the future ({doc['issued_at']})")
    if max_age is not None and now - meta.issued_at > max_age:
        raise EnvelopeError("stale_directory", f"the key directory was issued at {doc['issued_at']}, older than {max_age}")
    if min_serial is not None and meta.serial < min_serial:
        raise EnvelopeError("stale_directory", f"directory serial {meta.serial} is older than the one held ({min_serial})")
    return directory


# --- files ---------------------------------------------------------------------------------------


def save_authority(authority: Authority, path: Path, passphrase: bytes | None = None) -> Path:
    """Write the private key (0600) and, beside it, ``<name>.pub`` with the public key for gateways."""
    private_dir(path.parent)
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    )
    pem = authority.private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    pub_path = path.with_suffix(".pub")
    pub_path.write_text(b64e(authority.public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)) + "\n")
    return pub_path


def load_authority(path: Path, passphrase: bytes | None = None) -> Authority:
    if not path.exists():
        raise KeyFileError(f"missing authority key {path}; run `gateway keys authority init`")
    check_permissions(path)
    try:
        private = serialization.load_pem_private_key(path.read_bytes(), password=passphrase or None)
    except Exception:
        raise KeyFileError(f"cannot load authority key {path}: wrong passphrase or not a PKCS#8 PEM key") from None
    if not isinstance(private, Ed25519PrivateKey):
        raise KeyFileError(f"authority key {path} is not an Ed25519 key")
    return Authority(path.stem, private)


def load_authority_public(path: Path) -> Ed25519PublicKey:
    """The authority's public key as a gateway is configured with it (base64url raw, one line)."""
    try:
        return Ed25519PublicKey.from_public_bytes(b64d(path.read_text().strip()))
    except (ValueError, EnvelopeError):
        raise KeyFileError(f"{path} is not an Ed25519 public key (base64url raw)") from None
