"""Passwords: Argon2id hashes (argon2-cffi, the reference implementation), the complexity rule and
the common-password block-list (zxcvbn's list of the 30,000 most common passwords)."""

from __future__ import annotations

import asyncio
import functools
import string
import time

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# argon2-cffi's defaults are RFC 9106's second recommended option for Argon2id (64 MiB, t=3, p=4):
# a hash costs tens of milliseconds on an idle core, by design.
PRODUCTION_HASHER = PasswordHasher()
_hasher = PRODUCTION_HASHER
MIN_LENGTH = 10
MIN_CLASSES = 3
_dummy: dict[int, str] = {}  # a hash verified when the username is unknown, so a miss costs the same
# How long a verify takes here (a moving average): a refusal that checks no password (a locked
# account) waits as long, so the time of the answer does not tell that the account is locked.
_verify_seconds = 0.05


def use_hasher(hasher: PasswordHasher) -> None:
    """Tests only: a cheaper Argon2id (the suite hashes hundreds of passwords on two shared cores).
    Hashes made with other parameters still verify: the parameters are inside each hash."""
    global _hasher
    _hasher = hasher


def _dummy_hash() -> str:
    key = id(_hasher)
    if key not in _dummy:
        _dummy[key] = _hasher.hash("not-a-password-anyone-has")
    return _dummy[key]


class WeakPassword(ValueError):
    """The password breaks the complexity rule; the message says how (never the password)."""


@functools.cache
def common_passwords() -> frozenset[str]:
    """zxcvbn's ranked list of common passwords (from leaked-password corpora), lower case."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


def is_common(password: str) -> bool:
    """On the block-list as typed (case ignored), or once the digits and symbols around it are
    taken away: ``Password123`` and ``Sunshine!2024`` are ``password`` and ``sunshine`` with the
    decoration every guessing tool tries first."""
    lowered = password.casefold()
    core = lowered.strip(string.digits + string.punctuation + string.whitespace)
    common = common_passwords()
    return lowered in common or (len(core) >= 4 and core in common)


def check_complexity(password: str) -> None:
    classes = sum((
        any(c in string.ascii_lowercase for c in password),
        any(c in string.ascii_uppercase for c in password),
        any(c in string.digits for c in password),
        any(not c.isalnum() for c in password),
    ))
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"密码至少需要 {MIN_LENGTH} 个字符 (a password needs at least {MIN_LENGTH} characters)")
    if classes < MIN_CLASSES:
        raise WeakPassword("密码须包含小写字母、大写字母、数字、符号中的至少三类"
                           " (a password needs three of: lower-case letters, upper-case letters, digits, symbols)")
    if is_common(password):
        raise WeakPassword("这是常见密码（在常见密码表中），很容易被猜中，请换一个"
                           " (a common password: it is on the block-list of common passwords)")


def hash_password(password: str) -> str:
    check_complexity(password)
    return _hasher.hash(password)


def _verify(password_hash: str | None, password: str) -> bool:
    global _verify_seconds
    started = time.perf_counter()
    try:
        return _hasher.verify(password_hash or _dummy_hash(), password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    finally:
        _verify_seconds = 0.9 * _verify_seconds + 0.1 * (time.perf_counter() - started)


def typical_verify_seconds() -> float:
    return _verify_seconds


async def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches; ``None`` (no such user) costs the same and is always False.

    Argon2 takes tens of milliseconds of CPU by design: it runs in a thread, off the event loop."""
    return await asyncio.to_thread(_verify, password_hash, password)
