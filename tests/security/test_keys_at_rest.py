"""Private keys at rest: encrypted with a passphrase, permission-checked, never in a message or log."""

from __future__ import annotations

import logging
import os

import pytest

from gateway.security.keys import KeyFileError, generate_keyring, load_keyring, rotate_keyring, save_keyring
from gateway.security.keystore import FileKeyStore, InMemoryKeyStore

PASSPHRASE = b"correct horse battery staple 2025"


def secrets_of(keyring) -> list[bytes]:
    from cryptography.hazmat.primitives import serialization

    out = []
    for key in (keyring.signing, keyring.encryption):
        out.append(key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()))
    for key in (keyring.sm2_signing, keyring.sm2_encryption):
        out.append(key.private_numbers().private_value.to_bytes(32, "big"))
    return out


def test_keys_saved_with_a_passphrase_are_encrypted_and_load_back(tmp_path) -> None:
    keyring = generate_keyring("110101001", sm2=True)
    save_keyring(keyring, tmp_path, PASSPHRASE)
    for path in (tmp_path / "110101001").glob("*.pem"):
        assert b"ENCRYPTED PRIVATE KEY" in path.read_bytes()
        assert os.stat(path).st_mode & 0o777 == 0o600
    loaded = load_keyring("110101001", tmp_path, PASSPHRASE)
    assert secrets_of(loaded) == secrets_of(keyring)


def test_retired_keys_survive_a_save_and_load(tmp_path) -> None:
    rotated = rotate_keyring(generate_keyring("110101001", sm2=True))
    save_keyring(rotated, tmp_path, PASSPHRASE)
    loaded = load_keyring("110101001", tmp_path, PASSPHRASE)
    assert len(loaded.retired) == 2
    for old in rotated.retired:
        from gateway.security.keys import key_id

        assert loaded.decryption_key(key_id(old.public_key()))


def test_wrong_passphrase_is_refused_without_echoing_it(tmp_path) -> None:
    save_keyring(generate_keyring("110101001", sm2=True), tmp_path, PASSPHRASE)
    with pytest.raises(KeyFileError) as caught:
        load_keyring("110101001", tmp_path, b"guess-Xq7")
    assert "guess-Xq7" not in str(caught.value) and PASSPHRASE.decode() not in str(caught.value)


def test_key_file_readable_by_others_is_refused_at_start_up(tmp_path) -> None:
    save_keyring(generate_keyring("110101001"), tmp_path)
    os.chmod(tmp_path / "110101001" / "signing.pem", 0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        load_keyring("110101001", tmp_path)


def test_key_folder_open_to_others_is_refused(tmp_path) -> None:
    save_keyring(generate_keyring("110101001"), tmp_path)
    os.chmod(tmp_path / "110101001", 0o755)
    with pytest.raises(KeyFileError, match="chmod 700"):
        load_keyring("110101001", tmp_path)


def test_key_material_never_appears_in_repr_errors_or_logs(tmp_path, caplog) -> None:
    keyring = generate_keyring("110101001", sm2=True)
    store = FileKeyStore(tmp_path, PASSPHRASE)
    store.save(keyring)
    caplog.set_level(logging.DEBUG)
    logging.getLogger("gateway").info("loaded %r from %r / %s", keyring, store, keyring)
    with pytest.raises(KeyFileError) as caught:
        FileKeyStore(tmp_path, b"wrong").load("110101001")
    texts = [repr(keyring), str(keyring), repr(store), str(caught.value), caplog.text]
    for text in texts:
        assert PASSPHRASE.decode() not in text
        for secret in secrets_of(keyring):
            assert secret.hex() not in text and secret.hex().upper() not in text


def test_in_memory_key_store_round_trips() -> None:
    store, keyring = InMemoryKeyStore(), generate_keyring("110101001")
    store.save(keyring)
    assert store.load("110101001") is keyring
    with pytest.raises(KeyFileError):
        store.load("999")
