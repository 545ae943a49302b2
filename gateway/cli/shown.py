"""Text from the database shown on an operator's terminal: control characters as visible escapes.

A username, a filename or a header field can carry an ESC sequence (``\\x1b[1A\\x1b[2K`` moves the cursor
up and erases the line) that would draw a forged line in ``gateway audit list``; NUL, CR and the other
C0 and C1 controls, DEL and the bidirectional controls are shown as ``\\x1b``- or ``\\u202e``-style
escapes instead, so every record is one line that says what it holds. (``--json`` output is escaped by
JSON itself.)
"""

from __future__ import annotations

import re

import typer

_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c\\\\]")


def _escape(match: re.Match[str]) -> str:
    ch = match.group()
    if ch == "\\":
        return "\\\\"  # so that a literal "\x1b" typed by someone cannot pass for an escape
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escaped(text: str) -> str:
    return _UNSAFE.sub(_escape, text)


def echo_line(text: str) -> None:
    typer.echo(escaped(text))
