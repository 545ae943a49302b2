"""Passwords: Argon2id hashes (argon2-cffi, the reference implementation) and the complexity rule."""

from __future__ import annotations

import asyncio
import string

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# argon2-cffi's defaults are RFC 9106's second recommended option for Argon2id (64 MiB, t=3, p=4).
_HASHER = PasswordHasher()
MIN_LENGTH = 10
MIN_CLASSES = 3
# Verified when the username is unknown, so a miss takes as long as a wrong password.
_DUMMY_HASH = _HASHER.hash("not-a-password-anyone-has")


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
    return _HASHER.hash(password)


def _verify(password_hash: str | None, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches; ``None`` (no such user) costs the same and is always False.

    Argon2 takes tens of milliseconds of CPU by design: it runs in a thread, off the event loop."""
    return await asyncio.to_thread(_verify, password_hash, password)
