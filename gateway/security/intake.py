"""The receiving side's checks in order: framing, time window, duplicate, signature and decryption,
replay. Every refusal is recorded as a security event before it is raised.

Why this order: the window check and the duplicate look-up need only the header and are cheap; an
identical redelivery needs no second verification (its bytes were verified the first time); the id
is claimed only after the signature verified, so forged traffic cannot burn a sender's ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gateway.security.directory import KeyDirectory
from gateway.security.envelope import EnvelopeHeader, OpenedEnvelope, open_envelope, parse_envelope
from gateway.security.encoding import sha256_hex
from gateway.security.errors import EnvelopeError
from gateway.security.keys import NodeKeyring
from gateway.security.replay import ReplayPolicy, SecurityEvent, SecurityEvents, SeenMessages, Verdict, check_window, judge


@dataclass(frozen=True)
class Intake:
    verdict: Verdict
    header: EnvelopeHeader
    envelope_sha256: str
    opened: OpenedEnvelope | None  # None for a duplicate: it was processed the first time


async def receive(
    data: bytes,
    *,
    keyring: NodeKeyring,
    directory: KeyDirectory,
    seen: SeenMessages,
    events: SecurityEvents,
    now: datetime,
    policy: ReplayPolicy = ReplayPolicy(),
) -> Intake:
    digest = sha256_hex(data)
    header: EnvelopeHeader | None = None
    try:
        envelope = parse_envelope(data)
        header = envelope.header
        check_window(header.created, now, policy)
        if judge(digest, await seen.lookup(header.sender, header.message_id)) is Verdict.DUPLICATE:
            return Intake(Verdict.DUPLICATE, header, digest, None)
        opened = open_envelope(envelope, keyring=keyring, directory=directory)
        verdict = judge(digest, await seen.claim(header.sender, header.message_id, digest, now))
        return Intake(verdict, header, digest, opened if verdict is Verdict.NEW else None)
    except EnvelopeError as refusal:
        await events.record(
            SecurityEvent(
                at=now,
                reason=refusal.reason,
                detail=refusal.detail,
                sender=header.sender if header else None,
                message_id=header.message_id if header else None,
                envelope_sha256=digest,
            )
        )
        raise
