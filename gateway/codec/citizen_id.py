"""Citizen identity numbers (GB 11643-1999): structure, check character, legacy upgrade.

Pure functions. Which region prefixes are known is asked of a callable so the rules stay
testable without the division registry; the default asks the registry.
"""

from __future__ import annotations

from collections.abc import Callable
import re
from dataclasses import dataclass, field
from datetime import date
from operator import mul

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARACTERS = "10X98765432"
# GB 11643 birth years carry the century as 18, 19 or 20; anything earlier cannot be a date
# the standard encodes (the standard's own example number is born in 1880).
EARLIEST_BIRTH_YEAR = 1800


_WELL_FORMED = re.compile(r"[0-9]{17}[0-9X]")
_DIGITS15 = re.compile(r"[0-9]{15}")
_ASCII_DIGITS = frozenset("0123456789")


def check_character(first17: str) -> str:
    """ISO 7064 MOD 11-2 check character over the first 17 digits."""
    if len(first17) != 17:
        raise ValueError("the check character is computed over exactly 17 digits")
    return CHECK_CHARACTERS[sum(map(mul, map(int, first17), WEIGHTS)) % 11]


def upgrade_legacy(number15: str) -> str:
    """GB 11643-1999 transition rule: 15-digit numbers (1984–1999) omit the century of the
    birth year and the check character. Insert "19" before the two-digit year and append the
    check character; the result is what the holder's 18-character number became."""
    if not _DIGITS15.fullmatch(number15):
        raise ValueError("a legacy number is exactly 15 digits")
    first17 = number15[:6] + "19" + number15[6:]
    return first17 + check_character(first17)


@dataclass(frozen=True, slots=True)
class IdInspection:
    """What the rules found about one number.

    `malformed` problems (length, characters) can never be confirmed away: such a value is not
    an identity number at all. `doubtful` problems (region, date, check character) are the
    logic errors a sender may explicitly confirm (GB 11643 numbers stay valid for life, and
    the national platform listed these as errors to confirm rather than hard refusals).
    `notes` never refuse a number; they are shown to the operator.
    """

    number: str  # normalised: upper-case X, legacy numbers upgraded to 18 characters
    malformed: tuple[str, ...] = ()
    doubtful: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    birth_date: date | None = None
    sex: str | None = None  # GB/T 2261.1 code: "1" male, "2" female
    upgraded_from: str | None = None
    problems: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "problems", self.malformed + self.doubtful)

    @property
    def valid(self) -> bool:
        return not self.problems


def normalise(raw: str) -> tuple[str, str | None, tuple[str, ...]]:
    """Upper-case the check character and upgrade a 15-digit legacy number; report what makes
    the value no identity number at all. Returns (number, upgraded_from, malformed)."""
    number = raw.strip().upper()
    if _WELL_FORMED.fullmatch(number):
        return number, None, ()
    if len(number) == 15:
        if not _DIGITS15.fullmatch(number):
            return number, None, ("a 15-digit legacy number must be digits only",)
        return upgrade_legacy(number), number, ()
    if len(number) != 18:
        return number, None, (f"must be 18 characters (or a 15-digit legacy number), got {len(number)}",)
    malformed = [
        f"character {i + 1} ({c!r}) must be a digit"
        + (" ('X' is allowed only as the last character)" if c == "X" else "")
        for i, c in enumerate(number[:17])
        if c not in _ASCII_DIGITS
    ]
    if not (number[17] in _ASCII_DIGITS or number[17] == "X"):
        malformed.append(f"character 18 ({number[17]!r}) must be a digit or 'X'")
    return number, None, tuple(malformed)


def _default_province_known(prefix: str) -> bool:
    from gateway.codec.divisions import registry

    return registry().id_province_known(prefix)


def _default_county_known(prefix: str) -> bool:
    from gateway.codec.divisions import registry

    return registry().id_county_known(prefix)


def inspect(
    raw: str,
    *,
    today: date | None = None,
    province_known: Callable[[str], bool] | None = None,
    county_known: Callable[[str], bool] | None = None,
) -> IdInspection:
    """Apply every GB 11643 rule to `raw` and report all findings (never raises)."""
    number, upgraded_from, malformed = normalise(raw)
    if malformed:
        return IdInspection(number, malformed=malformed)

    doubtful: list[str] = []
    notes: list[str] = []
    province_known = province_known or _default_province_known
    county_known = county_known or _default_county_known
    if not province_known(number[:2]):
        doubtful.append(f"unknown region: no province code {number[:2]}")
    elif not county_known(number[:6]):
        # Counties are merged and renamed often and an ID stays valid for life, so an unknown
        # county under a known province is noted, not refused.
        notes.append(f"region {number[:6]} is not a county code in the registry (possibly retired)")

    birth: date | None = None
    digits = number[6:14]
    try:
        birth = date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        doubtful.append(f"impossible birth date {digits}")
    else:
        if birth.year < EARLIEST_BIRTH_YEAR:
            doubtful.append(f"impossible birth date {digits} (before {EARLIEST_BIRTH_YEAR})")
            birth = None
        elif today is not None and birth > today:
            doubtful.append(f"birth date {digits} is in the future")
            birth = None

    expected = check_character(number[:17])
    if number[17] != expected:
        doubtful.append(f"wrong check character {number[17]!r}, expected {expected!r}")

    sex = "1" if int(number[16]) % 2 else "2"
    return IdInspection(
        number,
        doubtful=tuple(doubtful),
        notes=tuple(notes),
        birth_date=birth,
        sex=sex,
        upgraded_from=upgraded_from,
    )


def passes(number: str, today: date | None = None) -> tuple[date, str] | None:
    """Fast path for the common case: a normalised 18-character number that passes every
    refusing rule gives (birth date, sex code); anything else gives None and the caller asks
    `inspect` for the reasons. Must agree with `inspect(...).valid` (tested)."""
    if number[17] != check_character(number[:17]) or not _default_province_known(number[:2]):
        return None
    try:
        birth = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return None
    if birth.year < EARLIEST_BIRTH_YEAR or (today is not None and birth > today):
        return None
    return birth, ("1" if number[16] in "13579" else "2")
