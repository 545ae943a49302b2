"""The TOTP second factor (RFC 6238, pyotp): 6 digits, 30-second steps, one step of clock drift allowed."""

from __future__ import annotations

from datetime import datetime

import pyotp

ISSUER = "Township exchange gateway"
STEP_S = 30
DRIFT_STEPS = 1


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, username: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=ISSUER)


def code_at(secret: str, instant: datetime) -> str:
    return pyotp.TOTP(secret).at(instant)


def matching_step(secret: str, code: str, instant: datetime) -> int | None:
    """The time step ``code`` belongs to (within the allowed drift), or None. The caller refuses a
    step already used, so a code seen over someone's shoulder cannot be replayed."""
    code = code.strip()
    if not (len(code) == 6 and code.isdigit()):
        return None
    totp = pyotp.TOTP(secret)
    now_step = int(instant.timestamp()) // STEP_S
    for step in range(now_step - DRIFT_STEPS, now_step + DRIFT_STEPS + 1):
        if pyotp.utils.strings_equal(totp.generate_otp(step), code):
            return step
    return None
