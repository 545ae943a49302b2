"""Gateways accept a key directory only when the authority signed it and it is fresh."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from gateway.security.authority import new_authority, sign_directory, verify_directory
from gateway.security.directory import KeyDirectory
from gateway.security.errors import EnvelopeError

from .conftest import NOW, World


def signed(world: World, valid_for=timedelta(days=7), issued_at=NOW, authority=None):
    authority = authority or new_authority("national-root")
    return authority, sign_directory(world.directory, authority, issued_at=issued_at, valid_for=valid_for)


def reason(fn) -> str:
    with pytest.raises(EnvelopeError) as caught:
        fn()
    return caught.value.reason


def test_signed_fresh_directory_is_accepted(world: World) -> None:
    authority, obj = signed(world)
    directory = verify_directory(obj, authority.public, now=NOW + timedelta(days=1))
    assert directory.townships() == world.directory.townships() and directory.meta.serial == 1


def test_unsigned_directory_is_refused(world: World) -> None:
    authority, _ = signed(world)
    assert reason(lambda: verify_directory(world.directory.to_json(), authority.public, now=NOW)) == "unsigned_directory"


def test_directory_signed_by_another_key_is_refused(world: World) -> None:
    _, obj = signed(world)
    assert reason(lambda: verify_directory(obj, new_authority("impostor").public, now=NOW)) == "bad_directory_signature"


def test_edited_directory_is_refused(world: World) -> None:
    authority, obj = signed(world)
    code = next(iter(obj["directory"]["nodes"]))
    obj["directory"]["nodes"][code]["keys"][0]["revoked_at"] = None
    obj["directory"]["nodes"][code]["suites"] = ["x25519-hkdf-sha256-aes256gcm-ed25519", "sm2-sm3-sm4gcm"]
    assert reason(lambda: verify_directory(obj, authority.public, now=NOW)) == "bad_directory_signature"


def test_expired_directory_is_refused_as_stale(world: World) -> None:
    authority, obj = signed(world, valid_for=timedelta(days=1))
    assert reason(lambda: verify_directory(obj, authority.public, now=NOW + timedelta(days=1))) == "stale_directory"


def test_directory_older_than_max_age_is_refused(world: World) -> None:
    authority, obj = signed(world, valid_for=timedelta(days=30))
    fn = lambda: verify_directory(obj, authority.public, now=NOW + timedelta(days=3), max_age=timedelta(days=2))  # noqa: E731
    assert reason(fn) == "stale_directory"


def test_rollback_to_an_older_serial_is_refused(world: World) -> None:
    authority, obj = signed(world)
    assert reason(lambda: verify_directory(obj, authority.public, now=NOW, min_serial=2)) == "stale_directory"


def test_load_with_the_authority_checks_the_file(world: World, tmp_path) -> None:
    authority, obj = signed(world)
    (tmp_path / "d.json").write_text(json.dumps(obj))
    assert KeyDirectory.load(tmp_path / "d.json", authority=authority.public, now=NOW).meta.authority == authority.kid
    world.directory.save(tmp_path / "unsigned.json")
    assert reason(lambda: KeyDirectory.load(tmp_path / "unsigned.json", authority=authority.public, now=NOW)) == "unsigned_directory"


def test_signed_directory_round_trips_keys_and_validity(world: World) -> None:
    authority, obj = signed(world)
    directory = verify_directory(obj, [new_authority("other").public, authority.public], now=NOW)
    assert directory.document()["nodes"] == world.directory.document()["nodes"]
