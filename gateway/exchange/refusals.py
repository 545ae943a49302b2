"""What a quarantine record keeps of a refused message: bounded, and without personal values.

The whole body is kept only up to a prefix (``GATEWAY_QUARANTINE_PREFIX_BYTES``, 64 KiB by default)
with the full size and SHA-256 beside it, so a publisher cannot fill the disk. The ``detail`` names
field paths and the rule each broke, never the values: the codec's reasons quote what they refused
("wrong check character 'X'", "birth date 19900517 is in the future"), so quoted text, parenthesised
text and digit runs are replaced before a reason reaches the quarantine. Header fields that do not fit
their column are not stored (the parser refuses them as ``malformed_header`` first; this is the
safety net that keeps the quarantine insert itself from failing).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from gateway.codec.errors import CodecError

DEFAULT_PREFIX_BYTES = 64 * 1024
MAX_DETAIL_CHARS = 2000
_MAX_ENTRY_CHARS = 160
_ELIDED = "…"

_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"|“[^”]*”|‘[^’]*’")
_BRACKETED = re.compile(r"\([^()]*\)|（[^（）]*）|\[[^\[\]]*\]")
_DIGITS = re.compile(r"\d[\d\-:.TZ+]*\d|\d")  # numbers, dates, ID numbers, timestamps
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")

# The reasons the gateway gives a refusal (EnvelopeError and the service's own): what a page may name
# when it says why a re-drive was refused again. A reason missing here is simply not named.
REFUSAL_REASONS = frozenset({
    "bad_directory", "bad_directory_signature", "bad_magic", "bad_signature", "decrypt_failed", "downgrade",
    "expired_key", "future", "invalid_record", "kind_mismatch", "malformed_bundle", "malformed_header",
    "malformed_receipt", "not_hosted", "oversized", "receipt_mismatch", "replay", "reply_from_wrong_township",
    "resubmission_unchanged", "revoked_key", "route_mismatch", "stale", "stale_directory", "trailing_bytes",
    "truncated", "unaccepted_suite", "unknown_node", "unknown_recipient_key", "unknown_reference", "unknown_sender",
    "unknown_sender_key", "unknown_suite", "unknown_version", "unsigned_directory", "wrong_recipient",
})

# Column widths of the quarantine's header fields (gateway/adapters/sql/tables.py).
HEADER_COLUMN_WIDTHS = {"message_id": 64, "sender": 9, "recipient": 9, "kind": 16}


def rule_of(reason: str) -> str:
    """A codec reason with the values it quotes taken out: what rule, not what value."""
    text = _QUOTED.sub(_ELIDED, reason)
    text = _BRACKETED.sub(f"({_ELIDED})", text)
    text = _DIGITS.sub(_ELIDED, text)
    return bound(text, _MAX_ENTRY_CHARS)


def codec_detail(exc: CodecError) -> str:
    """``path: rule`` per problem; paths are the record's field names, bounded."""
    entries = [f"{bound(e.path, 100)}: {rule_of(e.reason)}" if e.path else rule_of(e.reason) for e in exc.errors]
    return bound("; ".join(entries), MAX_DETAIL_CHARS)


def bound(text: str, limit: int = MAX_DETAIL_CHARS) -> str:
    """One line of at most ``limit`` characters (control characters and NUL, which PostgreSQL's text
    refuses, become spaces)."""
    text = _CONTROL.sub(" ", text)
    return text if len(text) <= limit else text[: limit - 1] + _ELIDED


def header_field(header: Any, name: str) -> str | None:
    value = getattr(header, name, None)
    if not isinstance(value, str) or len(value) > HEADER_COLUMN_WIDTHS[name]:
        return None
    return value


# --- how much of the quarantine a sender may fill ------------------------------------------------------

SIGNED = "signed"
UNSIGNED = "unsigned"
ANY = "*"  # the tally's budget rows: all senders of a bucket, or all reasons of a sender


@dataclass(frozen=True)
class QuarantineCaps:
    """How many refusals the quarantine stores; every refusal beyond is counted, not stored.

    Anyone with a broker account can publish to a gateway's inbox, so unauthenticated junk (no valid
    signature of a township the directory knows) has its own small bucket, whatever sender it claims;
    a correctly signed message refused for a rule is a peer's mistake worth keeping, with more room and
    a longer keep. Each bucket has a rate (rows stored per UTC hour, in all and per sender) and a size
    (rows kept); at its size, rows older than its keep are deleted to make room."""

    signed_rows: int = 10_000
    signed_per_hour: int = 1_000
    signed_per_sender_per_hour: int = 200
    signed_keep_days: int = 90
    unsigned_rows: int = 1_000
    unsigned_per_hour: int = 100
    unsigned_per_sender_per_hour: int = 20
    unsigned_keep_days: int = 7

    def rows(self, bucket: str) -> int:
        return self.signed_rows if bucket == SIGNED else self.unsigned_rows

    def per_hour(self, bucket: str) -> int:
        return self.signed_per_hour if bucket == SIGNED else self.unsigned_per_hour

    def per_sender_per_hour(self, bucket: str) -> int:
        return self.signed_per_sender_per_hour if bucket == SIGNED else self.unsigned_per_sender_per_hour

    def keep_days(self, bucket: str) -> int:
        return self.signed_keep_days if bucket == SIGNED else self.unsigned_keep_days


@dataclass(frozen=True)
class RefusalCount:
    """One row of the tally: refusals seen in one UTC hour for one bucket, sender and reason."""

    hour: str
    bucket: str
    sender: str
    reason: str
    refused: int
    stored: int

    @property
    def counted_only(self) -> int:
        return self.refused - self.stored


def bucket_of(authenticated: bool | None) -> str:
    """Rows kept before the distinction (None) count as signed: they were kept under the old rules."""
    return UNSIGNED if authenticated is False else SIGNED


def key_of_refusal(item: Any) -> tuple[str, str, str, str]:
    """A quarantine item's tally key: UTC hour, bucket, sender ("" none) and reason."""
    sender = item.sender if item.sender and item.sender_known else ""
    return hour_of(item.received_at), bucket_of(item.authenticated), sender, item.reason


def hour_of(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H")
