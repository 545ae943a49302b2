"""TOTP secrets sealed at rest, so a copy of the database cannot mint one-time codes.

The key is the node keys' passphrase (``GATEWAY_KEY_PASSPHRASE``) stretched with scrypt, or, on a
gateway without one (its private keys are then in clear too, ``GATEWAY_ALLOW_PLAINTEXT_KEYS``), a
random key of its own kept beside the node keys (``<keys_dir>/totp.key``, mode 600). Either way the
key is outside the database. Each sealed value says which key it needs:

    v1p$<base64url(salt 16 | nonce 12 | AES-256-GCM ciphertext and tag)>   the passphrase
    v1k$<base64url(nonce 12 | ciphertext and tag)>                         the key file

The associated data is the account's username, so a sealed secret moved to another row does not open.
A value without a prefix is a secret stored in clear by an earlier release: it is still read, and
``AccessService.seal_clear_totp_secrets`` (run at start-up and by every ``gateway users`` command)
seals it.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

PASSPHRASE_PREFIX = "v1p$"
KEY_FILE_PREFIX = "v1k$"
KEY_FILE_NAME = "totp.key"
# scrypt's interactive-login cost (RFC 7914 §2: N=2^15 needs 32 MiB): derived once per salt and kept.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1


class SealError(Exception):
    """A sealed secret that cannot be opened here (another key, or altered); the message says which."""


def is_sealed(value: str) -> bool:
    return value.startswith((PASSPHRASE_PREFIX, KEY_FILE_PREFIX))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TotpSealer:
    """Seals and opens TOTP secrets with the passphrase, else the gateway's own key."""

    def __init__(self, *, passphrase: bytes | None = None, key_file: Path | None = None, key: bytes | None = None) -> None:
        if passphrase is None and key_file is None and key is None:
            raise ValueError("a TOTP sealer needs a passphrase, a key file or a key")
        self._passphrase = passphrase
        self._key_file = key_file
        self._key = key
        self._salt = os.urandom(16)  # this process seals with one salt: scrypt runs once
        self._derived: dict[bytes, bytes] = {}

    @classmethod
    def ephemeral(cls) -> TotpSealer:
        """A key held only in memory (a gateway built on fakes, in tests): nothing is kept on disk."""
        return cls(key=AESGCM.generate_key(bit_length=256))

    def __repr__(self) -> str:  # never the passphrase or the key
        return f"TotpSealer(passphrase={self._passphrase is not None}, key_file={str(self._key_file) if self._key_file else None!r})"

    def _passphrase_key(self, salt: bytes) -> bytes:
        assert self._passphrase is not None
        if salt not in self._derived:
            if len(self._derived) >= 16:  # salts of other processes' seals: a few, kept bounded
                self._derived.clear()
            self._derived[salt] = Scrypt(salt=salt, length=32, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P).derive(self._passphrase)
        return self._derived[salt]

    def _own_key(self, *, create: bool) -> bytes:
        if self._key is not None:
            return self._key
        assert self._key_file is not None
        if not self._key_file.exists():
            if not create:
                raise SealError(f"the TOTP key file {self._key_file} is missing")
            self._key_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            try:
                fd = os.open(self._key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # made meanwhile by another process: use that one
                pass
            else:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(AESGCM.generate_key(bit_length=256))
        self._key = self._key_file.read_bytes()
        if len(self._key) != 32:
            raise SealError(f"the TOTP key file {self._key_file} does not hold a 256-bit key")
        return self._key

    def seal(self, secret: str, username: str) -> str:
        nonce = os.urandom(12)
        if self._passphrase is not None:
            box = AESGCM(self._passphrase_key(self._salt)).encrypt(nonce, secret.encode(), username.encode())
            return PASSPHRASE_PREFIX + _b64(self._salt + nonce + box)
        box = AESGCM(self._own_key(create=True)).encrypt(nonce, secret.encode(), username.encode())
        return KEY_FILE_PREFIX + _b64(nonce + box)

    def open(self, stored: str, username: str) -> str:
        if not is_sealed(stored):
            return stored  # in clear, from before sealing: sealed by seal_clear_totp_secrets
        try:
            if stored.startswith(PASSPHRASE_PREFIX):
                if self._passphrase is None:
                    raise SealError("this TOTP secret was sealed with GATEWAY_KEY_PASSPHRASE, which is not set")
                raw = _unb64(stored[len(PASSPHRASE_PREFIX):])
                key, nonce, box = self._passphrase_key(raw[:16]), raw[16:28], raw[28:]
            else:
                raw = _unb64(stored[len(KEY_FILE_PREFIX):])
                key, nonce, box = self._own_key(create=False), raw[:12], raw[12:]
            return AESGCM(key).decrypt(nonce, box, username.encode()).decode()
        except (InvalidTag, ValueError) as exc:
            raise SealError("a TOTP secret does not open with this gateway's key (another passphrase, or altered)") from exc
