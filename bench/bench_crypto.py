"""Seal and open per message per core for both suites, beside `openssl speed` for the same primitives.

    python bench/bench_crypto.py [--seconds 1.0] [--size 1024]

Everything runs in this one process (one core); `openssl speed` runs in the same invocation so the
figures come from the same machine state. OpenSSL 3.0 has no SM4-GCM in `speed`, so SM4-CTR stands
in for the cipher part (GCM adds GHASH on top).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import time
from datetime import datetime, timezone
from typing import Callable

from gateway.security import sm2
from gateway.security.directory import KeyDirectory
from gateway.security.envelope import open_envelope, parse_envelope, seal
from gateway.security.keys import generate_keyring
from gateway.security.suites import DEFAULT_SUITE_ID, SM_SUITE_ID, SUITES, backend_versions


def rate(fn: Callable[[], object], seconds: float) -> float:
    fn()
    n, start = 0, time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(20):
            fn()
        n += 20
        now = time.perf_counter()
        if now >= deadline:
            return n / (now - start)


def cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def openssl_speed(seconds: int, size: int) -> dict[str, float]:
    """ops/s from `openssl speed -mr`; ciphers and hashes as operations on ``size``-byte buffers."""
    exe = shutil.which("openssl")
    if exe is None:
        return {}
    out: dict[str, float] = {}

    def run(*args: str) -> list[str]:
        proc = subprocess.run([exe, "speed", "-mr", "-seconds", str(seconds), *args], capture_output=True, text=True)
        return [line for line in proc.stdout.splitlines() if line.startswith("+F")]

    for line in run("ed25519", "ecdhx25519", "sm2"):
        parts = line.split(":")
        if parts[0] == "+F5":  # ECDH: index, bits, ops/s, s/op
            out["x25519 exchange"] = float(parts[3])
        elif parts[0] in ("+F6", "+F7"):  # EdDSA / SM2: index, bits, name, sign/s, verify/s
            name = "ed25519" if parts[3] == "Ed25519" else "sm2"
            out[f"{name} sign"], out[f"{name} verify"] = float(parts[4]), float(parts[5])
    for evp, label in (("aes-256-gcm", "aes-256-gcm"), ("sm4-ctr", "sm4 (ctr; gcm n/a)"), ("sm3", "sm3"), ("sha256", "sha256")):
        for line in run("-bytes", str(size), "-evp", evp):
            parts = line.split(":")
            if parts[0] == "+F":
                out[f"{label} {size}B"] = float(parts[3]) / size
    return out


def python_primitives(seconds: float, size: int) -> dict[str, float]:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    data = os.urandom(size)
    ed, x1, x2 = Ed25519PrivateKey.generate(), X25519PrivateKey.generate(), X25519PrivateKey.generate()
    sig, x2pub = ed.sign(data), x2.public_key()
    sk = sm2.generate_private_key()
    sm2_sig, sm2_pub_raw = sm2.sign(sk, data), sm2.public_bytes(sk.public_key())
    wrapped = sm2.encrypt(sm2_pub_raw, b"k" * 28)
    aes, key16, nonce = AESGCM(os.urandom(32)), os.urandom(16), os.urandom(12)

    def sm4gcm() -> bytes:
        enc = Cipher(algorithms.SM4(key16), modes.GCM(nonce)).encryptor()
        return enc.update(data) + enc.finalize()

    def digest(algorithm: hashes.HashAlgorithm) -> Callable[[], bytes]:
        def run() -> bytes:
            h = hashes.Hash(algorithm)
            h.update(data)
            return h.finalize()

        return run

    return {
        "ed25519 sign": rate(lambda: ed.sign(data), seconds),
        "ed25519 verify": rate(lambda: ed.public_key().verify(sig, data), seconds),
        "x25519 exchange": rate(lambda: x1.exchange(x2pub), seconds),
        "sm2 sign": rate(lambda: sm2.sign(sk, data), seconds),
        "sm2 verify": rate(lambda: sm2.verify(sk.public_key(), sm2_sig, data), seconds),
        "sm2 encrypt (28B key)": rate(lambda: sm2.encrypt(sm2_pub_raw, b"k" * 28), seconds),
        "sm2 decrypt (28B key)": rate(lambda: sm2.decrypt(sk, wrapped), seconds),
        f"aes-256-gcm {size}B": rate(lambda: aes.encrypt(nonce, data, None), seconds),
        f"sm4 (ctr; gcm n/a) {size}B": rate(sm4gcm, seconds),  # python column: SM4-GCM itself
        f"sm3 {size}B": rate(digest(hashes.SM3()), seconds),
        f"sha256 {size}B": rate(digest(hashes.SHA256()), seconds),
    }


def suite_rates(suite_id: str, seconds: float, size: int) -> tuple[float, float]:
    sender, recipient = generate_keyring("110101001", sm2=True), generate_keyring("310115002", sm2=True)
    directory = KeyDirectory.from_keyrings([sender, recipient]).with_suites("310115002", [suite_id]).with_suites("110101001", [suite_id])
    now = datetime(2025, 3, 18, tzinfo=timezone.utc)
    plaintext = os.urandom(size)
    sender_key, recipient_key = sender.sender_key(suite_id), directory.recipient_key("310115002", suite_id)
    counter = iter(range(10**9))

    def do_seal() -> bytes:
        return seal(plaintext=plaintext, message_id=f"m-{next(counter)}", kind="query", sender=sender_key,
                    recipient=recipient_key, created_at=now, suite_id=suite_id)

    sample = do_seal()
    return rate(do_seal, seconds), rate(lambda: open_envelope(parse_envelope(sample), keyring=recipient, directory=directory), seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--size", type=int, default=1024, help="plaintext / buffer size in bytes")
    args = parser.parse_args()

    print(f"CPU: {cpu_model()} ({os.cpu_count()} logical cores; all figures for one core)")
    ossl = subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout.strip() if shutil.which("openssl") else "none"
    for suite_id, line in backend_versions().items():
        print(f"{suite_id}: {line}")
    print(f"openssl binary: {ossl}\n")

    print(f"{'suite':40s} {'seal/s':>10s} {'open/s':>10s}   ({args.size}-byte plaintext)")
    for suite_id in (DEFAULT_SUITE_ID, SM_SUITE_ID):
        if suite_id in SUITES:
            s, o = suite_rates(suite_id, args.seconds, args.size)
            print(f"{suite_id:40s} {s:10,.0f} {o:10,.0f}")

    py = python_primitives(args.seconds, args.size)
    speed = openssl_speed(max(1, round(args.seconds)), args.size)
    print(f"\n{'primitive (ops/s)':32s} {'in-process':>12s} {'openssl speed':>14s}")
    for name, value in py.items():
        other = speed.get(name)
        print(f"{name:32s} {value:12,.0f} {('%14s' % f'{other:,.0f}') if other else '%14s' % '-'}")


if __name__ == "__main__":
    main()
