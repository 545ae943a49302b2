"""The key directory: every node's public keys, so nodes can verify and encrypt for each other.

Kept as a JSON file for now (``{"nodes": {code: {"signing": {"kid", "public"}, "encryption": {...}}}}``,
public keys as base64url raw bytes).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from gateway.security.errors import EnvelopeError
from gateway.security.keys import NodeKeyring, key_id
from gateway.security.suites import RecipientKey, b64d, b64e, raw_public


@dataclass(frozen=True)
class DirectoryEntry:
    township: str
    signing_public: Ed25519PublicKey
    encryption_public: X25519PublicKey

    @property
    def signing_kid(self) -> str:
        return key_id(self.signing_public)

    @property
    def encryption_kid(self) -> str:
        return key_id(self.encryption_public)


class KeyDirectory:
    def __init__(self, entries: Iterable[DirectoryEntry]) -> None:
        self._entries = {e.township: e for e in entries}

    def __contains__(self, township: str) -> bool:
        return township in self._entries

    def townships(self) -> list[str]:
        return sorted(self._entries)

    def entry(self, township: str) -> DirectoryEntry:
        try:
            return self._entries[township]
        except KeyError:
            raise EnvelopeError("unknown_node", f"township {township} is not in the key directory") from None

    def recipient_key(self, township: str) -> RecipientKey:
        entry = self.entry(township)
        return RecipientKey(township, entry.encryption_kid, entry.encryption_public)

    def verify_key(self, township: str, kid: str, *, at: datetime) -> Ed25519PublicKey:
        if township not in self._entries:
            raise EnvelopeError("unknown_sender", f"sender {township} is not in the key directory")
        entry = self._entries[township]
        if entry.signing_kid != kid:
            raise EnvelopeError("unknown_sender_key", f"sender {township} has no signing key {kid}")
        return entry.signing_public

    @classmethod
    def from_keyrings(cls, keyrings: Iterable[NodeKeyring]) -> KeyDirectory:
        return cls(DirectoryEntry(k.township, k.signing.public_key(), k.encryption.public_key()) for k in keyrings)

    def to_json(self) -> dict[str, Any]:
        return {
            "nodes": {
                code: {
                    "signing": {"kid": e.signing_kid, "public": b64e(raw_public(e.signing_public))},
                    "encryption": {"kid": e.encryption_kid, "public": b64e(raw_public(e.encryption_public))},
                }
                for code, e in sorted(self._entries.items())
            }
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> KeyDirectory:
        entries = []
        for code, node in obj["nodes"].items():
            entries.append(
                DirectoryEntry(
                    code,
                    Ed25519PublicKey.from_public_bytes(b64d(node["signing"]["public"])),
                    X25519PublicKey.from_public_bytes(b64d(node["encryption"]["public"])),
                )
            )
        return cls(entries)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: Path) -> KeyDirectory:
        return cls.from_json(json.loads(path.read_text()))

    def merged(self, other: KeyDirectory) -> KeyDirectory:
        return KeyDirectory([*self._entries.values(), *other._entries.values()])
