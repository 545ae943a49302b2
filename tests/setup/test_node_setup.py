"""`gateway init` and start-up: keys per node, a signed directory, and refusal of one that is not."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from gateway.node_setup import SetupError, init_nodes, load_directory, load_nodes
from gateway.security.errors import EnvelopeError
from gateway.settings import Settings

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc)


def settings(tmp_path: Path, **changes) -> Settings:
    return Settings(nodes=["110101001", "120101001"], data_dir=tmp_path, **changes)


def test_init_makes_keys_for_every_node_and_a_directory_the_gateway_trusts(tmp_path):
    s = settings(tmp_path)
    assert init_nodes(s, NOW) == ["110101001", "120101001"]
    directory = load_directory(s, NOW)
    assert directory.townships() == ["110101001", "120101001"]
    nodes = load_nodes(s)
    assert set(nodes) == {"110101001", "120101001"}
    assert init_nodes(s, NOW) == []  # a second init keeps the keys


def test_private_keys_are_readable_by_their_owner_only(tmp_path):
    s = settings(tmp_path)
    init_nodes(s, NOW)
    for key_file in (tmp_path / "keys").rglob("*.pem"):
        assert key_file.stat().st_mode & 0o077 == 0, key_file


def test_an_altered_directory_is_refused(tmp_path):
    s = settings(tmp_path)
    init_nodes(s, NOW)
    path = s.resolved_directory_path
    doc = json.loads(path.read_text())
    doc["directory"]["serial"] += 1
    path.write_text(json.dumps(doc))
    with pytest.raises(EnvelopeError) as refused:
        load_directory(s, NOW)
    assert refused.value.reason == "bad_directory_signature"


def test_an_expired_directory_is_refused(tmp_path):
    s = settings(tmp_path)
    init_nodes(s, NOW)
    with pytest.raises(EnvelopeError) as refused:
        load_directory(s, NOW + timedelta(days=31))
    assert refused.value.reason == "stale_directory"


def test_without_the_authority_key_the_directory_is_not_trusted(tmp_path):
    s = settings(tmp_path)
    init_nodes(s, NOW)
    s.resolved_authority_pub.unlink()
    with pytest.raises(SetupError, match="GATEWAY_AUTHORITY_PUB"):
        load_directory(s, NOW)
