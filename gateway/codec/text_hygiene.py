"""Text that can be shown to a clerk and written to a spreadsheet without tricking either.

Two jobs, both pure:

* `check_text` refuses what a name or a free-text field must never hold: control characters (and lone
  surrogates, and the line/paragraph separators U+2028/U+2029 that split a line in most viewers),
  bidirectional embedding / override / isolate controls (they make ``李伟‮gnp.exe`` read
  backwards, the "Trojan Source" trick), and values made only of invisible characters (a name of
  three zero-width spaces is blank to the eye but not to ``min_length``).
* `spreadsheet_cell` neutralises a value the gateway writes to CSV or .xlsx so that a spreadsheet
  program never runs it as a formula (``=HYPERLINK(…)``, ``+cmd|…``, ``@SUM(…)``, ``-1+1``): it is
  prefixed with an apostrophe, which Excel and LibreOffice show as text. Every CSV/xlsx writer of
  the gateway goes through it (`gateway scores --csv`, the import templates).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import Any

# C0 and C1 controls (tab and newline included: no field of a record is multi-line), lone surrogates
# (JSON's \ud800 escapes produce them; they cannot be encoded back to UTF-8), U+2028/U+2029.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029]")
# Unicode bidi controls (UAX #9): embeddings and overrides U+202A–U+202E, isolates U+2066–U+2069,
# and the implicit marks LRM, RLM and ALM. Chinese names and addresses need none of them.
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")
# Characters that draw nothing although they are not format characters or spaces: Hangul fillers,
# the braille blank, the Mongolian vowel separator, the combining grapheme joiner, variation selectors.
_INVISIBLE_EXTRA = frozenset("\u115f\u1160\u3164\uffa0\u2800\u180e\u034f") | frozenset(
    chr(c) for c in (*range(0xFE00, 0xFE10), *range(0xE0100, 0xE01F0))
)
_INVISIBLE_CATEGORIES = frozenset({"Cf", "Zs", "Zl", "Zp", "Cc"})

# What a spreadsheet reads as the start of a formula (OWASP "CSV injection"): = + - @, and tab / CR,
# which some programs skip before looking for one.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class TextProblem(ValueError):
    """Why a text value is refused; the message is the reason shown at the field."""


def _invisible(ch: str) -> bool:
    return ch in _INVISIBLE_EXTRA or unicodedata.category(ch) in _INVISIBLE_CATEGORIES


def check_text(value: str) -> str:
    """The value itself when it is clean; otherwise `TextProblem` with the reason (never the value)."""
    if m := _CONTROL.search(value):
        raise TextProblem(f"must not contain control characters (U+{ord(m.group()):04X} at position {m.start() + 1})")
    if m := _BIDI.search(value):
        raise TextProblem(
            f"must not contain bidirectional text controls (U+{ord(m.group()):04X} at position {m.start() + 1})"
        )
    # The first character decides for almost every value (visible): no generator for the rest then.
    if value and _invisible(value[0]) and all(_invisible(ch) for ch in value):
        raise TextProblem("must contain visible characters (this value is made only of invisible ones)")
    return value


def spreadsheet_cell(value: Any) -> Any:
    """A cell value safe to write to CSV or .xlsx: text that a spreadsheet would run as a formula is
    prefixed with an apostrophe; anything else (numbers, dates, other text) is returned unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def spreadsheet_row(values: Iterable[Any]) -> list[Any]:
    return [spreadsheet_cell(v) for v in values]
