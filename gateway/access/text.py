"""Text typed by an outsider, made safe to keep and to print: control and format characters (NUL, line
breaks, escape sequences, bidirectional overrides) never reach the audit trail or a listing as such."""

from __future__ import annotations

import unicodedata

# Cc: C0 and C1 controls (NUL, CR, LF, ESC …); Cf: format characters (bidi overrides, zero-width);
# Zl, Zp: the line and paragraph separators; Cs: lone surrogates.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


def has_control_characters(text: str) -> bool:
    return any(unicodedata.category(c) in _UNSAFE_CATEGORIES for c in text)


def printable(text: str, limit: int = 64) -> str:
    """``text`` with every unsafe character (and the backslash) written as an escape, cut to ``limit``
    characters: what a failed sign-in's username is recorded as."""
    out: list[str] = []
    for c in text:
        if c == "\\":
            out.append("\\\\")
        elif unicodedata.category(c) in _UNSAFE_CATEGORIES:
            code = ord(c)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
        else:
            out.append(c)
    shown = "".join(out)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"
