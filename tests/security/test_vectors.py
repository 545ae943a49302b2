"""The known-answer vectors in docs/test-vectors are what the code produces, and they open."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from gateway.security import sm2
from gateway.security.envelope import open_envelope, parse_envelope
from gateway.security.keys import NodeKeyring
from gateway.security.receipts import verify_receipt
from gateway.security.suites import DEFAULT_SUITE_ID, SM_SUITE_ID
from gateway.security.vectors import build_vector, fixed_keyrings

VECTORS = Path(__file__).resolve().parents[2] / "docs" / "test-vectors"


def load(suite_id: str) -> dict:
    return json.loads((VECTORS / f"{suite_id}.json").read_text())


def keys_from_vector(v: dict) -> tuple[NodeKeyring, NodeKeyring]:
    """Rebuild the keys from the hex in the file alone, as an outside implementer would."""
    s, r = v["sender"], v["recipient"]
    if v["suite"] == DEFAULT_SUITE_ID:
        sig = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(s["signing_private_hex"]))
        enc = X25519PrivateKey.from_private_bytes(bytes.fromhex(r["encryption_private_hex"]))
        rsig = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(v["receipt"]["signer_signing_private_hex"]))
        return NodeKeyring(s["township"], sig, X25519PrivateKey.generate()), NodeKeyring(r["township"], rsig, enc)
    sig = sm2.private_key_from_scalar(int(s["signing_private_hex"], 16))
    enc = sm2.private_key_from_scalar(int(r["encryption_private_hex"], 16))
    rsig = sm2.private_key_from_scalar(int(v["receipt"]["signer_signing_private_hex"], 16))
    filler = Ed25519PrivateKey.generate(), X25519PrivateKey.generate()
    return NodeKeyring(s["township"], *filler, sig, sm2.generate_private_key()), NodeKeyring(r["township"], *filler, rsig, enc)


@pytest.mark.parametrize("suite_id", [DEFAULT_SUITE_ID, SM_SUITE_ID])
def test_sealing_the_vector_inputs_reproduces_the_published_bytes(suite_id: str) -> None:
    published, fresh = load(suite_id), build_vector(suite_id)
    assert fresh["unsigned_prefix_hex"] == published["unsigned_prefix_hex"]
    assert fresh["header_utf8"] == published["header_utf8"]
    assert fresh["ciphertext_hex"] == published["ciphertext_hex"]
    if published["signature_deterministic"]:
        assert fresh["envelope_hex"] == published["envelope_hex"]
        assert fresh["receipt"]["receipt_hex"] == published["receipt"]["receipt_hex"]


@pytest.mark.parametrize("suite_id", [DEFAULT_SUITE_ID, SM_SUITE_ID])
def test_the_published_envelope_opens_with_the_published_keys(suite_id: str) -> None:
    from gateway.security.directory import KeyDirectory

    v = load(suite_id)
    sender, recipient = keys_from_vector(v)
    directory = KeyDirectory.from_keyrings([sender, recipient]).with_suites(recipient.township, [suite_id]).with_suites(sender.township, [suite_id])
    data = bytes.fromhex(v["envelope_hex"])
    opened = open_envelope(parse_envelope(data), keyring=recipient, directory=directory)
    assert opened.plaintext.decode() == v["plaintext_utf8"]
    assert verify_receipt(bytes.fromhex(v["receipt"]["receipt_hex"]), data, directory).envelope_sha256 == v["envelope_sha256"]


def test_vector_keys_are_the_fixed_ones() -> None:
    v = load(SM_SUITE_ID)
    sender, _ = fixed_keyrings()
    assert sm2.public_bytes(sender.sm2_signing.public_key()).hex() == v["sender"]["signing_public_hex"]


def test_sm3_matches_the_standards_example() -> None:
    # GB/T 32905 example 1.
    assert sm2.sm3(b"abc").hex() == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"


def test_sm2_encryption_round_trips_and_detects_a_changed_byte() -> None:
    key = sm2.generate_private_key()
    wrapped = sm2.encrypt(sm2.public_bytes(key.public_key()), b"k" * 28)
    assert sm2.decrypt(key, wrapped) == b"k" * 28
    with pytest.raises(sm2.Sm2Error):
        sm2.decrypt(key, wrapped[:-1] + bytes([wrapped[-1] ^ 1]))


def test_sm2_encryption_interoperates_with_an_independent_implementation() -> None:
    smcrypto = pytest.importorskip("smcryptopy.sm2")  # Rust implementation; C1||C3||C2 without the 04 prefix
    key = sm2.generate_private_key()
    d_hex = f"{key.private_numbers().private_value:064x}"
    ours = sm2.encrypt(sm2.public_bytes(key.public_key()), b"interop-content-key-28-bytes")
    assert smcrypto.decrypt(ours[1:], d_hex) == b"interop-content-key-28-bytes"
    theirs = smcrypto.encrypt(b"the other way round", smcrypto.pk_from_sk(d_hex))
    assert sm2.decrypt(key, b"\x04" + theirs) == b"the other way round"


def test_sm2_signature_verifies_with_openssl(tmp_path) -> None:
    import shutil
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("no openssl binary")
    key = sm2.generate_private_key()
    (tmp_path / "key.pem").write_bytes(sm2.private_pem(key, None))
    (tmp_path / "data").write_bytes(b"signed by tongsuopy")
    (tmp_path / "sig").write_bytes(sm2.sign(key, b"signed by tongsuopy"))
    subprocess.run(["openssl", "pkey", "-in", tmp_path / "key.pem", "-pubout", "-out", tmp_path / "pub.pem"], check=True, capture_output=True)
    result = subprocess.run(
        ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", tmp_path / "pub.pem", "-rawin", "-in", tmp_path / "data",
         "-sigfile", tmp_path / "sig", "-digest", "sm3", "-pkeyopt", "distid:1234567812345678"],
        capture_output=True,
    )
    if b"SM2" in result.stderr and b"unsupported" in result.stderr.lower():
        pytest.skip("this openssl has no SM2")
    assert result.returncode == 0, result.stderr
