"""Fixtures for the security tests: two townships with keys for both suites, a directory, a clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest

from gateway.security.directory import KeyDirectory
from gateway.security.envelope import seal
from gateway.security.keys import NodeKeyring, generate_keyring
from gateway.security.suites import DEFAULT_SUITE_ID, SM_SUITE_ID

SUITE_IDS = [DEFAULT_SUITE_ID, SM_SUITE_ID]
NOW = datetime(2025, 3, 18, 8, 0, tzinfo=timezone.utc)
KEYS_FROM = NOW - timedelta(days=30)
SENDER, RECIPIENT, OTHER = "110101001", "310115002", "440305003"


@dataclass
class World:
    suite_id: str
    sender: NodeKeyring
    recipient: NodeKeyring
    other: NodeKeyring
    directory: KeyDirectory

    def seal(self, plaintext: bytes = b'{"query":"fictitious"}', *, message_id: str = "m-1", created_at: datetime = NOW, **kw) -> bytes:
        recipient_key = kw.pop("recipient_key", None) or self.directory.recipient_key(RECIPIENT, self.suite_id, at=created_at)
        sender_key = kw.pop("sender_key", None) or self.sender.sender_key(self.suite_id)
        return seal(
            plaintext=plaintext,
            message_id=message_id,
            kind=kw.pop("kind", "query"),
            sender=sender_key,
            recipient=recipient_key,
            created_at=created_at,
            suite_id=self.suite_id,
            **kw,
        )


@pytest.fixture(scope="session")
def keyrings() -> tuple[NodeKeyring, NodeKeyring, NodeKeyring]:
    return generate_keyring(SENDER, sm2=True), generate_keyring(RECIPIENT, sm2=True), generate_keyring(OTHER, sm2=True)


@pytest.fixture(params=SUITE_IDS)
def world(request: pytest.FixtureRequest, keyrings) -> World:
    suite_id = request.param
    sender, recipient, other = keyrings
    directory = KeyDirectory.from_keyrings([sender, recipient, other], not_before=KEYS_FROM)
    for code in (SENDER, RECIPIENT, OTHER):
        directory = directory.with_suites(code, [suite_id])
    return World(suite_id, sender, recipient, other, directory)
