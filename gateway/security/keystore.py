"""Where a node's private keys live: the ``KeyStore`` port, a file store and an in-memory fake.

An HSM or a secrets manager plugs in by implementing the same two methods.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from gateway.security.keys import NodeKeyring, load_keyring, save_keyring


class KeyStore(Protocol):
    def load(self, township: str) -> NodeKeyring: ...
    def save(self, keyring: NodeKeyring) -> None: ...


class FileKeyStore:
    """PKCS#8 PEM files under ``keys_dir``, encrypted with ``passphrase`` when one is given."""

    def __init__(self, keys_dir: Path, passphrase: bytes | None = None) -> None:
        self.keys_dir = keys_dir
        self._passphrase = passphrase

    def load(self, township: str) -> NodeKeyring:
        return load_keyring(township, self.keys_dir, self._passphrase)

    def save(self, keyring: NodeKeyring) -> None:
        save_keyring(keyring, self.keys_dir, self._passphrase)

    def __repr__(self) -> str:  # the passphrase must never reach a log line
        return f"FileKeyStore(keys_dir={str(self.keys_dir)!r}, encrypted={self._passphrase is not None})"


class InMemoryKeyStore:
    def __init__(self) -> None:
        self._keyrings: dict[str, NodeKeyring] = {}

    def load(self, township: str) -> NodeKeyring:
        try:
            return self._keyrings[township]
        except KeyError:
            from gateway.security.keys import KeyFileError

            raise KeyFileError(f"no keys for {township}") from None

    def save(self, keyring: NodeKeyring) -> None:
        self._keyrings[keyring.township] = keyring
