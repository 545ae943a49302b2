"""A hosted township node: its code, its keys, and the cipher that keeps its stored bodies private."""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.security.at_rest import StorageCipher
from gateway.security.keys import NodeKeyring


@dataclass(frozen=True)
class HostedNode:
    keyring: NodeKeyring
    storage: StorageCipher = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "storage", StorageCipher.for_private_key(self.keyring.encryption_kid, self.keyring.encryption)
        )

    @property
    def code(self) -> str:
        return self.keyring.township


def storage_context(node: str, direction: str, message_id: str) -> bytes:
    """Binds a stored body to its row, so a body copied onto another row does not decrypt."""
    return f"{node}|{direction}|{message_id}".encode()
