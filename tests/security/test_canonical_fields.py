"""The receipt body and the archive record hash are built from shallow dicts, not dataclasses.asdict:
the bytes that are signed and hashed must be exactly what asdict gave (old receipts and chains verify)."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone

from gateway.security.archive import ArchiveRecord, NewRecord, chain_append, record_hash, verify_chain
from gateway.security.encoding import canonical_json
from gateway.security.receipts import Receipt


def test_receipt_body_is_the_canonical_json_of_all_its_fields() -> None:
    receipt = Receipt(1, "ed25519-x25519", "m-1", "ab" * 32, "430101001", "430102001", "2026-01-02T03:04:05.000006Z", "k1")
    assert receipt.to_bytes() == canonical_json(dataclasses.asdict(receipt))


def test_chain_append_hashes_what_asdict_hashed() -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=timezone.utc)
    head = None
    records = []
    for i in range(3):
        new = NewRecord("sent", "envelope", f"m-{i}", "430101001", "430102001", f"{i:064x}", at)
        record = chain_append(head, new)
        old_style = dataclasses.asdict(record)
        prev_hash = old_style.pop("prev_hash")
        del old_style["record_hash"]
        assert record.hashed_fields() == old_style
        assert record.record_hash == record_hash(prev_hash, old_style)
        assert record.recorded_at == "2026-01-02T03:04:05.000006Z" and record.seq == i + 1
        records.append(record)
        head = record
    assert verify_chain(records) is None
    # A field changed after the fact still breaks the chain.
    tampered = [records[0], dataclasses.replace(records[1], sender="430101002"), records[2]]
    assert verify_chain(tampered).reason == "record_hash"  # type: ignore[union-attr]
    assert isinstance(records[0], ArchiveRecord)
