"""The SM2 library the 国密 suite runs on: which build it is, that it interoperates, what reaches it."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import version
from pathlib import Path

import smcryptopy.sm2 as smcrypto  # the dev extra's independent (Rust) SM2
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from gateway.cli.keys_cmds import app
from gateway.security import sm2
from gateway.security.suites import DEFAULT_SUITE_ID, SM_SUITE_ID, backend_versions

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
MESSAGE = b"township exchange: signed bytes of an envelope"


def _d_hex(key) -> str:
    return f"{key.private_numbers().private_value:064x}"


def _pk_hex(key) -> str:
    return sm2.public_bytes(key.public_key())[1:].hex()  # smcryptopy takes x || y without the 04


def test_the_sm2_backend_names_the_package_the_tongsuo_release_and_its_openssl_base() -> None:
    line = sm2.backend_version()
    assert re.fullmatch(r"tongsuopy \S+ \(Tongsuo \d+\.\d+\.\d+, reports OpenSSL \d\.\d\.\d\w* .+\)", line), line
    assert f"tongsuopy {version('tongsuopy')} " in line


def test_the_suite_runs_on_the_tongsuopy_release_pyproject_pins() -> None:
    deps = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    pin = next(d for d in deps if d.startswith("tongsuopy"))
    assert pin == f"tongsuopy=={version('tongsuopy')}"


def test_gateway_keys_backends_prints_the_library_of_each_suite() -> None:
    result = CliRunner().invoke(app, ["backends"])
    assert result.exit_code == 0, result.output
    lines = dict(line.split(": ", 1) for line in result.output.splitlines())
    assert lines == backend_versions()
    assert lines[SM_SUITE_ID].startswith(f"SM2: tongsuopy {version('tongsuopy')} (Tongsuo ")
    assert lines[DEFAULT_SUITE_ID].startswith(f"cryptography {version('cryptography')} (OpenSSL ")


def test_sm2_signatures_verify_with_an_independent_implementation_both_ways() -> None:
    key = sm2.generate_private_key()
    ours = sm2.sign(key, MESSAGE)
    assert smcrypto.verify(sm2.DEFAULT_ID, MESSAGE, ours, _pk_hex(key))
    theirs = smcrypto.sign(sm2.DEFAULT_ID, MESSAGE, _d_hex(key))
    assert sm2.verify(key.public_key(), theirs, MESSAGE)
    assert not sm2.verify(key.public_key(), theirs, MESSAGE + b".")


def test_a_signature_made_under_another_user_id_does_not_verify() -> None:
    # The user ID enters the signed digest through Z (GB/T 32918.2 §5.5); ours is the default ID.
    key = sm2.generate_private_key()
    other_id = smcrypto.sign(b"110101001@township", MESSAGE, _d_hex(key))
    assert not sm2.verify(key.public_key(), other_id, MESSAGE)
    assert not smcrypto.verify(b"110101001@township", MESSAGE, sm2.sign(key, MESSAGE), _pk_hex(key))


def _integer(value: bytes) -> bytes:
    return b"\x02" + bytes([len(value)]) + value


def test_a_signature_not_in_canonical_der_is_refused() -> None:
    key = sm2.generate_private_key()
    good = sm2.sign(key, MESSAGE)
    r, s = decode_dss_signature(good)
    r_min = r.to_bytes((r.bit_length() + 8) // 8, "big")  # minimal two's-complement: leading 00 iff top bit set
    s_min = s.to_bytes((s.bit_length() + 8) // 8, "big")
    body = _integer(r_min) + _integer(s_min)
    assert b"\x30" + bytes([len(body)]) + body == good  # the construction below starts from the real one
    padded = _integer(b"\x00" + r_min) + _integer(s_min)
    variants = {
        "trailing byte": good + b"\x00",
        "long-form length": b"\x30\x81" + bytes([len(body)]) + body,
        "r padded with a zero byte": b"\x30" + bytes([len(padded)]) + padded,
        "r = n": encode_dss_signature(sm2.SM2_ORDER, s),
        "r = 0": encode_dss_signature(0, s),
        "s = n + s": encode_dss_signature(r, sm2.SM2_ORDER + s),
        "raw r || s": r.to_bytes(32, "big") + s.to_bytes(32, "big"),
        "empty": b"",
    }
    seen = _RecordingKey(key.public_key())
    assert sm2.verify(seen, good, MESSAGE)
    accepted = [name for name, sig in variants.items() if sm2.verify(seen, sig, MESSAGE)]
    assert accepted == []
    # Tongsuo would refuse these too; the point is that its 1.1.1-era DER decoder never sees them.
    assert seen.handed_to_tongsuo == [good]


class _RecordingKey:
    """Stands in front of a tongsuopy public key and records the signatures passed through to it."""

    def __init__(self, public) -> None:
        self._public, self.handed_to_tongsuo = public, []

    def verify(self, signature: bytes, data: bytes, algorithm) -> None:
        self.handed_to_tongsuo.append(signature)
        self._public.verify(signature, data, algorithm)


_KEY = sm2.generate_private_key()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_arbitrary_signature_bytes_are_a_refusal_never_an_exception(signature: bytes) -> None:
    assert sm2.verify(_KEY.public_key(), signature, MESSAGE) is False
