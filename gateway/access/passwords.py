"""Passwords: Argon2id hashes (argon2-cffi, the reference implementation) and the complexity rule."""

from __future__ import annotations

import asyncio
import string

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# argon2-cffi's defaults are RFC 9106's second recommended option for Argon2id (64 MiB, t=3, p=4):
# a hash costs tens of milliseconds on an idle core, by design.
PRODUCTION_HASHER = PasswordHasher()
_hasher = PRODUCTION_HASHER
MIN_LENGTH = 10
MIN_CLASSES = 3
_dummy: dict[int, str] = {}  # a hash verified when the username is unknown, so a miss costs the same


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


def check_complexity(password: str) -> None:
    classes = sum((
        any(c in string.ascii_lowercase for c in password),
        any(c in string.ascii_uppercase for c in password),
        any(c in string.digits for c in password),
        any(not c.isalnum() for c in password),
    ))
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"a password needs at least {MIN_LENGTH} characters")
    if classes < MIN_CLASSES:
        raise WeakPassword("a password needs three of: lower-case letters, upper-case letters, digits, symbols")


def hash_password(password: str) -> str:
    check_complexity(password)
    return _hasher.hash(password)


def _verify(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _dummy_hash(), password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches; ``None`` (no such user) costs the same and is always False.

    Argon2 takes tens of milliseconds of CPU by design: it runs in a thread, off the event loop."""
    return await asyncio.to_thread(_verify, password_hash, password)
