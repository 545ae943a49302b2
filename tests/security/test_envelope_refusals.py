"""Every way an envelope can be wrong is refused, each with its own reason code, in both suites."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gateway.security.envelope import open_envelope, parse_envelope
from gateway.security.errors import EnvelopeError
from gateway.security.keys import generate_keyring
from gateway.security.directory import KeyDirectory

from .conftest import NOW, RECIPIENT, SENDER, World


def refusal(world: World, data: bytes, keyring=None, directory=None) -> str:
    with pytest.raises(EnvelopeError) as caught:
        open_envelope(parse_envelope(data), keyring=keyring or world.recipient, directory=directory or world.directory)
    return caught.value.reason


def flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


def test_a_sealed_envelope_opens_to_its_plaintext(world: World) -> None:
    opened = open_envelope(parse_envelope(world.seal(b"hello")), keyring=world.recipient, directory=world.directory)
    assert opened.plaintext == b"hello"
    assert (opened.header.sender, opened.header.recipient, opened.header.suite) == (SENDER, RECIPIENT, world.suite_id)


def test_the_routing_header_holds_nothing_personal(world: World) -> None:
    header = parse_envelope(world.seal("测试人 11010119900101001X".encode())).header_bytes
    assert "测试人".encode() not in header and b"11010119900101001X" not in header


def test_tampered_ciphertext_is_refused_as_bad_signature(world: World) -> None:
    data = world.seal()
    env = parse_envelope(data)
    at = 4 + 2 + len(env.header_bytes) + 4 + 3
    assert refusal(world, flip(data, at)) == "bad_signature"


def test_tampered_header_is_refused(world: World) -> None:
    data = world.seal(message_id="m-1")
    assert refusal(world, data.replace(b'"m-1"', b'"m-2"')) == "bad_signature"


def test_tampered_signature_is_refused(world: World) -> None:
    data = world.seal()
    assert refusal(world, flip(data, len(data) - 5)) == "bad_signature"


def test_envelope_for_another_township_is_refused(world: World) -> None:
    assert refusal(world, world.seal(), keyring=world.other) == "wrong_recipient"


def test_unknown_sender_is_refused(world: World) -> None:
    stranger = generate_keyring("650102001", sm2=True)
    data = world.seal(sender_key=stranger.sender_key(world.suite_id))
    assert refusal(world, data.replace(SENDER.encode(), b"650102001")) == "unknown_sender"


def test_node_claiming_another_townships_name_is_refused(world: World) -> None:
    from gateway.security.suites import SenderKey

    impostor = world.other.sender_key(world.suite_id)
    with_own_kid = world.seal(sender_key=SenderKey(SENDER, impostor.kid, impostor.private))
    assert refusal(world, with_own_kid) == "unknown_sender_key"
    with_victims_kid = world.seal(sender_key=SenderKey(SENDER, world.sender.sender_key(world.suite_id).kid, impostor.private))
    assert refusal(world, with_victims_kid) == "bad_signature"


def test_message_signed_after_revocation_is_refused(world: World) -> None:
    kid = world.sender.sender_key(world.suite_id).kid
    directory = world.directory.with_revocation(SENDER, kid, at=NOW - timedelta(hours=1))
    assert refusal(world, world.seal(), directory=directory) == "revoked_key"


def test_message_signed_before_revocation_still_opens(world: World) -> None:
    kid = world.sender.sender_key(world.suite_id).kid
    directory = world.directory.with_revocation(SENDER, kid, at=NOW + timedelta(hours=1))
    assert open_envelope(parse_envelope(world.seal()), keyring=world.recipient, directory=directory).plaintext


def test_message_signed_with_an_expired_key_is_refused(world: World) -> None:
    rotated = world.directory.with_rotation(generate_keyring(SENDER, sm2=True), at=NOW - timedelta(days=1), grace=timedelta(days=7))
    assert refusal(world, world.seal(), directory=rotated) == "expired_key"


def test_message_created_before_the_key_was_valid_is_refused(world: World) -> None:
    data = world.seal(created_at=NOW - timedelta(days=60), recipient_key=world.directory.recipient_key(RECIPIENT, world.suite_id))
    assert refusal(world, data) == "expired_key"


def test_truncated_envelope_is_refused(world: World) -> None:
    data = world.seal()
    for cut in (3, 5, 40, len(data) // 2, len(data) - 1):
        with pytest.raises(EnvelopeError) as caught:
            parse_envelope(data[:cut])
        assert caught.value.reason in {"bad_magic", "truncated"}
    with pytest.raises(EnvelopeError) as caught:
        parse_envelope(data[:-1])
    assert caught.value.reason == "truncated"


def test_trailing_bytes_are_refused(world: World) -> None:
    with pytest.raises(EnvelopeError) as caught:
        parse_envelope(world.seal() + b"\x00")
    assert caught.value.reason == "trailing_bytes"


def test_suite_the_recipient_does_not_accept_is_refused(world: World) -> None:
    other_suite = next(s for s in ("x25519-hkdf-sha256-aes256gcm-ed25519", "sm2-sm3-sm4gcm") if s != world.suite_id)
    sealed_with_other = World(other_suite, world.sender, world.recipient, world.other, world.directory.with_suites(SENDER, [world.suite_id, other_suite]))
    data = sealed_with_other.seal(recipient_key=world.directory.recipient_key(RECIPIENT, other_suite))
    assert refusal(world, data) == "unaccepted_suite"


def test_downgrade_to_a_suite_both_accept_but_not_the_chosen_one_is_refused(world: World) -> None:
    other_suite = next(s for s in ("x25519-hkdf-sha256-aes256gcm-ed25519", "sm2-sm3-sm4gcm") if s != world.suite_id)
    # Both accept both suites; the recipient prefers world.suite_id, an attacker-influenced sender uses the other.
    directory = world.directory.with_suites(SENDER, [world.suite_id, other_suite]).with_suites(RECIPIENT, [world.suite_id, other_suite])
    weaker = World(other_suite, world.sender, world.recipient, world.other, directory)
    data = weaker.seal(recipient_key=directory.recipient_key(RECIPIENT, other_suite))
    assert refusal(world, data, directory=directory) == "downgrade"


def test_pair_preference_overrides_the_recipients_order(world: World) -> None:
    other_suite = next(s for s in ("x25519-hkdf-sha256-aes256gcm-ed25519", "sm2-sm3-sm4gcm") if s != world.suite_id)
    directory = (
        world.directory.with_suites(SENDER, [world.suite_id, other_suite])
        .with_suites(RECIPIENT, [world.suite_id, other_suite])
        .with_pair_preference(RECIPIENT, SENDER, other_suite)
    )
    assert directory.choose_suite(SENDER, RECIPIENT) == other_suite
    preferred = World(other_suite, world.sender, world.recipient, world.other, directory)
    data = preferred.seal(recipient_key=directory.recipient_key(RECIPIENT, other_suite))
    assert open_envelope(parse_envelope(data), keyring=world.recipient, directory=directory).header.suite == other_suite


def test_unknown_suite_is_refused(world: World) -> None:
    data = world.seal()
    forged = data.replace(world.suite_id.encode(), b"x" * len(world.suite_id))
    assert refusal(world, forged) == "unknown_suite"


def test_sender_key_of_the_wrong_suite_is_not_used_to_seal(world: World) -> None:
    other_suite = next(s for s in ("x25519-hkdf-sha256-aes256gcm-ed25519", "sm2-sm3-sm4gcm") if s != world.suite_id)
    with pytest.raises(ValueError):
        world.seal(sender_key=world.sender.sender_key(other_suite))


def test_previous_encryption_key_still_decrypts_during_the_grace_period(world: World) -> None:
    from gateway.security.keys import rotate_keyring

    in_flight = world.seal(created_at=NOW)  # sealed to the current key, still queued
    rotated_keys = rotate_keyring(world.recipient)
    directory = world.directory.with_rotation(rotated_keys, at=NOW + timedelta(minutes=1), grace=timedelta(days=7))
    assert open_envelope(parse_envelope(in_flight), keyring=rotated_keys, directory=directory).plaintext
    # After the rotation senders encrypt to the new key, which the rotated keyring also opens.
    fresh = World(world.suite_id, world.sender, rotated_keys, world.other, directory).seal(created_at=NOW + timedelta(minutes=2))
    assert parse_envelope(fresh).header.recipient_kid != parse_envelope(in_flight).header.recipient_kid
    assert open_envelope(parse_envelope(fresh), keyring=rotated_keys, directory=directory).plaintext


def test_message_to_a_retired_key_after_the_grace_period_is_refused(world: World) -> None:
    from gateway.security.keys import rotate_keyring

    rotated_keys = rotate_keyring(world.recipient)
    directory = world.directory.with_rotation(rotated_keys, at=NOW - timedelta(days=10), grace=timedelta(days=7))
    late = world.seal(recipient_key=world.directory.recipient_key(RECIPIENT, world.suite_id))
    assert refusal(world, late, keyring=rotated_keys, directory=directory) == "expired_key"


def test_legacy_directory_file_still_loads(tmp_path, keyrings) -> None:
    import json

    sender, recipient, _ = keyrings
    legacy = {"nodes": {k.township: {"signing": {"kid": k.signing_kid, "public": _b64(k.signing)}, "encryption": {"kid": k.encryption_kid, "public": _b64(k.encryption)}} for k in (sender, recipient)}}
    (tmp_path / "d.json").write_text(json.dumps(legacy))
    directory = KeyDirectory.load(tmp_path / "d.json")
    assert directory.recipient_key(RECIPIENT).kid == recipient.encryption_kid


def _b64(private) -> str:
    from gateway.security.suites import b64e, raw_public

    return b64e(raw_public(private.public_key()))


def test_unknown_header_keys_are_counted_and_their_names_never_echoed(world: World) -> None:
    import json

    from gateway.security.envelope import Envelope

    env = parse_envelope(world.seal())
    fields = json.loads(env.header_bytes)
    hostile = {**fields, "管理员 admin sign_in ok\x1b[2K": "x", "<script>alert(1)</script>": "y"}
    del hostile["epk"]
    forged = Envelope(env.header, json.dumps(hostile).encode(), env.ciphertext, env.signature).to_bytes()
    with pytest.raises(EnvelopeError) as caught:
        parse_envelope(forged)
    assert caught.value.reason == "malformed_header"
    assert caught.value.detail == "header fields: missing ['epk'], 2 unknown"


def test_an_unknown_version_is_named_only_when_it_is_a_small_integer(world: World) -> None:
    import json

    from gateway.security.envelope import Envelope

    env = parse_envelope(world.seal())
    for version, named in ((7, "envelope version 7"), ("<b>9" * 1000, "envelope version of type str")):
        fields = {**json.loads(env.header_bytes), "v": version}
        forged = Envelope(env.header, json.dumps(fields).encode(), env.ciphertext, env.signature).to_bytes()
        with pytest.raises(EnvelopeError) as caught:
            parse_envelope(forged)
        assert caught.value.reason == "unknown_version" and caught.value.detail.startswith(named)
