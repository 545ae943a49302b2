"""The key directory: every node's public keys with their validity, and the suites each node accepts.

A gateway trusts a directory only when the directory authority (a province or the national root,
Ed25519) has signed it and it has not expired: see ``gateway.security.authority``. This module holds
the directory itself and the rules for choosing a key: which key to encrypt to now, and whether a
signing key was valid at the moment a message says it was created.

File form (JSON)::

    {"directory": {"format": 2, "serial": N, "issued_at": T, "expires": T, "authority": KID,
                   "pairs": {"A|B": SUITE},
                   "nodes": {CODE: {"suites": [SUITE, ...],
                                    "keys": [{"kid", "use": "sig"|"enc", "alg", "public",
                                              "not_before", "not_after", "revoked_at"}]}}},
     "signature": B64URL | null}

Times are UTC stamps or null (open-ended). The older unsigned form ``{"nodes": {CODE: {"signing":
{...}, "encryption": {...}}}}`` is still read, as a directory with no validity limits.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Iterable, Mapping

from gateway.security.encoding import canonical_json, parse_stamp, utc_stamp
from gateway.security.errors import EnvelopeError
from gateway.security.keys import NodeKeyring, key_id
from gateway.security.suites import (
    DEFAULT_SUITE_ID,
    ED25519,
    SUITE_ORDER,
    SUITES,
    X25519,
    RecipientKey,
    b64d,
    b64e,
    key_alg,
    load_public,
    raw_public,
)

FORMAT = 2


@dataclass(frozen=True)
class PublishedKey:
    """One public key of a node, with the period in which it may be used."""

    kid: str
    use: str  # "sig" or "enc"
    alg: str  # "ed25519", "x25519", "sm2"
    public: Any
    not_before: datetime | None = None
    not_after: datetime | None = None
    revoked_at: datetime | None = None

    def refusal_at(self, at: datetime) -> EnvelopeError | None:
        """Why this key may not be used at ``at``, or None when it may."""
        if self.revoked_at is not None and at >= self.revoked_at:
            return EnvelopeError("revoked_key", f"key {self.kid} was revoked at {utc_stamp(self.revoked_at)}")
        if self.not_before is not None and at < self.not_before:
            return EnvelopeError("expired_key", f"key {self.kid} is not valid before {utc_stamp(self.not_before)}")
        if self.not_after is not None and at >= self.not_after:
            return EnvelopeError("expired_key", f"key {self.kid} expired at {utc_stamp(self.not_after)}")
        return None

    def to_json(self) -> dict[str, Any]:
        stamp = lambda t: None if t is None else utc_stamp(t)  # noqa: E731
        return {
            "kid": self.kid,
            "use": self.use,
            "alg": self.alg,
            "public": b64e(raw_public(self.public)),
            "not_before": stamp(self.not_before),
            "not_after": stamp(self.not_after),
            "revoked_at": stamp(self.revoked_at),
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> PublishedKey:
        stamp = lambda t: None if t is None else parse_stamp(t)  # noqa: E731
        public = load_public(obj["alg"], b64d(obj["public"]))
        if key_id(public) != obj["kid"]:
            raise ValueError(f"key id {obj['kid']} does not match its public key")
        if obj["use"] not in ("sig", "enc"):
            raise ValueError(f"key {obj['kid']} has unknown use {obj['use']!r}")
        return cls(obj["kid"], obj["use"], obj["alg"], public, stamp(obj["not_before"]), stamp(obj["not_after"]), stamp(obj["revoked_at"]))


@dataclass(frozen=True)
class DirectoryEntry:
    township: str
    keys: tuple[PublishedKey, ...]
    suites: tuple[str, ...] = (DEFAULT_SUITE_ID,)

    def _current(self, use: str, alg: str) -> PublishedKey:
        # The newest key of that use and algorithm that has not been revoked: what peers use now.
        candidates = [k for k in self.keys if k.use == use and k.alg == alg and k.revoked_at is None]
        if not candidates:
            raise EnvelopeError("unknown_node", f"{self.township} publishes no {alg} {use} key")
        return max(candidates, key=lambda k: (k.not_before is not None, k.not_before or datetime.min))

    @property
    def signing_public(self) -> Any:
        return self._current("sig", ED25519).public

    @property
    def encryption_public(self) -> Any:
        return self._current("enc", X25519).public

    @property
    def signing_kid(self) -> str:
        return self._current("sig", ED25519).kid

    @property
    def encryption_kid(self) -> str:
        return self._current("enc", X25519).kid

    def key(self, kid: str, use: str) -> PublishedKey | None:
        return next((k for k in self.keys if k.kid == kid and k.use == use), None)


def pair_key(a: str, b: str) -> str:
    """Pair preferences hold for both directions, so the pair is named in sorted order."""
    return "|".join(sorted((a, b)))


@dataclass(frozen=True)
class DirectoryMeta:
    serial: int = 0
    issued_at: datetime | None = None
    expires: datetime | None = None
    authority: str | None = None


class KeyDirectory:
    def __init__(
        self,
        entries: Iterable[DirectoryEntry],
        *,
        pairs: Mapping[str, str] | None = None,
        meta: DirectoryMeta | None = None,
    ) -> None:
        self._entries = {e.township: e for e in entries}
        self.pairs: dict[str, str] = dict(pairs or {})
        self.meta = meta or DirectoryMeta()

    def __contains__(self, township: str) -> bool:
        return township in self._entries

    def townships(self) -> list[str]:
        return sorted(self._entries)

    def entry(self, township: str) -> DirectoryEntry:
        try:
            return self._entries[township]
        except KeyError:
            raise EnvelopeError("unknown_node", f"township {township} is not in the key directory") from None

    # --- suites ---------------------------------------------------------------------------------

    def accepted_suites(self, township: str) -> tuple[str, ...]:
        return self.entry(township).suites

    def choose_suite(self, sender: str, recipient: str) -> str:
        """The suite ``sender`` must use for ``recipient``: the pair's configured preference if both
        accept it, else the first suite of the recipient's list that the sender also accepts."""
        theirs = self.accepted_suites(recipient)
        ours = set(self.accepted_suites(sender)) if sender in self else set(SUITE_ORDER)
        preferred = self.pairs.get(pair_key(sender, recipient))
        if preferred is not None and preferred in theirs and preferred in ours:
            return preferred
        for suite_id in theirs:
            if suite_id in ours and suite_id in SUITES:
                return suite_id
        raise EnvelopeError("unaccepted_suite", f"{sender} and {recipient} share no cipher suite")

    def check_suite(self, suite_id: str, sender: str, recipient: str) -> None:
        """Refuse an envelope sealed with a suite the recipient does not accept, or with another suite
        than the one this pair must use (a downgrade, even to a suite both accept)."""
        if suite_id not in self.accepted_suites(recipient):
            raise EnvelopeError("unaccepted_suite", f"{recipient} does not accept suite {suite_id!r}")
        expected = self.choose_suite(sender, recipient)
        if suite_id != expected:
            raise EnvelopeError("downgrade", f"{sender} → {recipient} must use {expected}, not {suite_id}")

    # --- keys -----------------------------------------------------------------------------------

    def recipient_key(self, township: str, suite_id: str = DEFAULT_SUITE_ID, *, at: datetime | None = None) -> RecipientKey:
        """The key to encrypt to now: the newest usable encryption key of the suite's algorithm."""
        entry = self.entry(township)
        alg = SUITES[suite_id].encryption_alg
        candidates = [k for k in entry.keys if k.use == "enc" and k.alg == alg]
        if at is not None:
            usable = [k for k in candidates if k.refusal_at(at) is None]
            if not usable and candidates:
                raise max(candidates, key=_newest).refusal_at(at)  # type: ignore[misc]
            candidates = usable
        else:
            candidates = [k for k in candidates if k.revoked_at is None]
        if not candidates:
            raise EnvelopeError("unaccepted_suite", f"{township} publishes no {alg} encryption key")
        chosen = max(candidates, key=_newest)
        return RecipientKey(township, chosen.kid, chosen.public)

    def verify_key(self, township: str, kid: str, *, at: datetime) -> Any:
        """The sender's signing key ``kid``, provided it was valid (and not revoked) at ``at``."""
        if township not in self._entries:
            raise EnvelopeError("unknown_sender", f"sender {township} is not in the key directory")
        key = self._entries[township].key(kid, "sig")
        if key is None:
            raise EnvelopeError("unknown_sender_key", f"sender {township} has no signing key {kid}")
        refusal = key.refusal_at(at)
        if refusal is not None:
            raise refusal
        return key.public

    def check_recipient_key(self, township: str, kid: str, *, at: datetime) -> None:
        """The recipient's own key ``kid`` must have been usable when the message was created."""
        key = self.entry(township).key(kid, "enc")
        if key is None:
            raise EnvelopeError("unknown_recipient_key", f"{township} publishes no encryption key {kid}")
        refusal = key.refusal_at(at)
        if refusal is not None:
            raise refusal

    # --- building and changing ------------------------------------------------------------------

    @classmethod
    def from_keyrings(
        cls, keyrings: Iterable[NodeKeyring], *, not_before: datetime | None = None, not_after: datetime | None = None
    ) -> KeyDirectory:
        return cls(_entry_for(k, not_before=not_before, not_after=not_after) for k in keyrings)

    def with_entry(self, entry: DirectoryEntry) -> KeyDirectory:
        return KeyDirectory([*(e for e in self._entries.values() if e.township != entry.township), entry], pairs=self.pairs, meta=self.meta)

    def with_node(self, keyring: NodeKeyring, *, at: datetime | None = None, suites: Iterable[str] | None = None) -> KeyDirectory:
        """Publish a new node's current keys, valid from ``at``."""
        return self.with_entry(_entry_for(keyring, not_before=at, suites=suites))

    def with_rotation(self, keyring: NodeKeyring, *, at: datetime, grace: timedelta) -> KeyDirectory:
        """Publish ``keyring``'s (new) keys from ``at``; end the old ones.

        Old signing keys end at ``at``: messages created before it still verify. Old encryption keys
        end at ``at + grace``: senders switch to the new key at once, but messages sealed to the old
        one before the rotation may still be in a queue, and open until the grace period ends.
        """
        old = self.entry(keyring.township)
        new_kids = {key_id(public) for _, _, public in keyring.public_keys()}
        ended = []
        for k in old.keys:
            if k.kid in new_kids:
                continue
            end = at if k.use == "sig" else at + grace
            ended.append(k if k.not_after is not None and k.not_after <= end else replace(k, not_after=end))
        fresh = _entry_for(keyring, not_before=at, suites=old.suites)
        return self.with_entry(DirectoryEntry(keyring.township, tuple(ended) + fresh.keys, old.suites))

    def with_revocation(self, township: str, kid: str, *, at: datetime) -> KeyDirectory:
        """Mark key ``kid`` revoked from ``at`` (the time the key is believed compromised)."""
        entry = self.entry(township)
        if not any(k.kid == kid for k in entry.keys):
            raise KeyError(f"{township} has no key {kid}")
        keys = tuple(replace(k, revoked_at=at) if k.kid == kid else k for k in entry.keys)
        return self.with_entry(replace(entry, keys=keys))

    def with_suites(self, township: str, suites: Iterable[str]) -> KeyDirectory:
        suites = tuple(suites)
        unknown = [s for s in suites if s not in SUITES]
        if unknown:
            raise ValueError(f"unknown suites {unknown}")
        return self.with_entry(replace(self.entry(township), suites=suites))

    def with_pair_preference(self, a: str, b: str, suite_id: str | None) -> KeyDirectory:
        pairs = dict(self.pairs)
        if suite_id is None:
            pairs.pop(pair_key(a, b), None)
        else:
            pairs[pair_key(a, b)] = suite_id
        return KeyDirectory(self._entries.values(), pairs=pairs, meta=self.meta)

    def with_meta(self, meta: DirectoryMeta) -> KeyDirectory:
        return KeyDirectory(self._entries.values(), pairs=self.pairs, meta=meta)

    def merged(self, other: KeyDirectory) -> KeyDirectory:
        return KeyDirectory([*self._entries.values(), *other._entries.values()], pairs={**self.pairs, **other.pairs}, meta=self.meta)

    # --- serialisation --------------------------------------------------------------------------

    def document(self) -> dict[str, Any]:
        """The part the authority signs."""
        stamp = lambda t: None if t is None else utc_stamp(t)  # noqa: E731
        return {
            "format": FORMAT,
            "serial": self.meta.serial,
            "issued_at": stamp(self.meta.issued_at),
            "expires": stamp(self.meta.expires),
            "authority": self.meta.authority,
            "pairs": dict(sorted(self.pairs.items())),
            "nodes": {
                code: {"suites": list(e.suites), "keys": [k.to_json() for k in sorted(e.keys, key=_key_order)]}
                for code, e in sorted(self._entries.items())
            },
        }

    def document_bytes(self) -> bytes:
        return canonical_json(self.document())

    def to_json(self, signature: bytes | None = None) -> dict[str, Any]:
        return {"directory": self.document(), "signature": None if signature is None else b64e(signature)}

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> KeyDirectory:
        if doc.get("format") != FORMAT:
            raise ValueError(f"directory format {doc.get('format')!r} is not supported")
        stamp = lambda t: None if t is None else parse_stamp(t)  # noqa: E731
        entries = [
            DirectoryEntry(code, tuple(PublishedKey.from_json(k) for k in node["keys"]), tuple(node["suites"]))
            for code, node in doc["nodes"].items()
        ]
        meta = DirectoryMeta(int(doc["serial"]), stamp(doc["issued_at"]), stamp(doc["expires"]), doc.get("authority"))
        return cls(entries, pairs=doc.get("pairs") or {}, meta=meta)

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> KeyDirectory:
        """Read either file form, without checking any signature (see ``authority.verify_directory``)."""
        if "directory" in obj:
            return cls.from_document(obj["directory"])
        entries = []
        for code, node in obj["nodes"].items():  # the first, unsigned form
            keys = (
                PublishedKey(node["signing"]["kid"], "sig", ED25519, load_public(ED25519, b64d(node["signing"]["public"]))),
                PublishedKey(node["encryption"]["kid"], "enc", X25519, load_public(X25519, b64d(node["encryption"]["public"]))),
            )
            entries.append(DirectoryEntry(code, keys))
        return cls(entries)

    def save(self, path: Path, signature: bytes | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_json(signature), indent=2, sort_keys=True, ensure_ascii=False) + "\n")
        tmp.replace(path)

    @classmethod
    def load(
        cls,
        path: Path,
        *,
        authority: Any | None = None,
        now: datetime | None = None,
        max_age: timedelta | None = None,
        min_serial: int | None = None,
    ) -> KeyDirectory:
        """Read a directory file. With ``authority`` (the authority's Ed25519 public key, or several)
        and ``now``, refuse it unless it is signed by that authority and fresh: what a gateway must do."""
        obj = json.loads(path.read_text())
        if authority is None:
            return cls.from_json(obj)
        if now is None:
            raise ValueError("checking a directory needs the current time")
        from gateway.security.authority import verify_directory

        return verify_directory(obj, authority, now=now, max_age=max_age, min_serial=min_serial)


def _newest(k: PublishedKey) -> tuple[bool, datetime]:
    return (k.not_before is not None, k.not_before or datetime.min)


def _key_order(k: PublishedKey) -> tuple[str, str, str, str]:
    return (k.use, k.alg, "" if k.not_before is None else utc_stamp(k.not_before), k.kid)


def _entry_for(
    keyring: NodeKeyring,
    *,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    suites: Iterable[str] | None = None,
) -> DirectoryEntry:
    keys = tuple(
        PublishedKey(key_id(public), use, key_alg(public), public, not_before, not_after) for use, _, public in keyring.public_keys()
    )
    return DirectoryEntry(keyring.township, keys, tuple(suites) if suites is not None else tuple(keyring.suites()))
