"""The archive chain shows any change to, or removal from, stored history; the CLI reports it."""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import replace

import pytest
from typer.testing import CliRunner

from gateway.cli import archive_cmds
from gateway.security.archive import InMemoryArchiveStore, NewRecord, StoredRecord, archive_bytes, chain_append, verify_chain
from gateway.security.receipts import make_receipt

from .conftest import NOW, RECIPIENT, SENDER, World


def filled_store(world: World, n: int = 3) -> InMemoryArchiveStore:
    store = InMemoryArchiveStore()

    async def fill() -> None:
        for i in range(n):
            env = world.seal(message_id=f"m-{i}")
            await archive_bytes(store, env, direction="received", item="envelope", message_id=f"m-{i}", sender=SENDER, recipient=RECIPIENT, at=NOW)
            receipt = make_receipt(env, world.recipient, NOW)
            await archive_bytes(store, receipt, direction="sent", item="receipt", message_id=f"m-{i}", sender=RECIPIENT, recipient=SENDER, at=NOW)

    asyncio.run(fill())
    return store


def test_an_untouched_chain_verifies(world: World) -> None:
    assert verify_chain(filled_store(world).stored) is None


def test_changed_record_field_breaks_the_chain_there(world: World) -> None:
    store = filled_store(world)
    store.stored[2] = StoredRecord(replace(store.stored[2].record, direction="sent"), store.stored[2].data)
    broken = verify_chain(store.stored)
    assert broken is not None and (broken.seq, broken.reason) == (3, "record_hash")


def test_changed_stored_bytes_break_the_chain_there(world: World) -> None:
    store = filled_store(world)
    store.stored[1] = StoredRecord(store.stored[1].record, store.stored[1].data + b"x")
    broken = verify_chain(store.stored)
    assert broken is not None and (broken.seq, broken.reason) == (2, "data_hash")


def test_deleted_record_is_detected(world: World) -> None:
    store = filled_store(world)
    del store.stored[3]
    broken = verify_chain(store.stored)
    assert broken is not None and (broken.seq, broken.reason) == (4, "seq")


def test_deleted_and_renumbered_record_is_detected(world: World) -> None:
    store = filled_store(world)
    kept = store.stored[:3] + [StoredRecord(replace(s.record, seq=s.record.seq - 1), s.data) for s in store.stored[4:]]
    broken = verify_chain(kept)
    assert broken is not None and broken.seq == 4 and broken.reason in {"prev_hash", "record_hash"}


def test_cut_off_tail_is_detected_against_an_anchored_head(world: World) -> None:
    store = filled_store(world)
    head = store.stored[-1].record.record_hash
    assert verify_chain(store.stored[:-2]) is None  # why the head must be anchored elsewhere
    broken = verify_chain(store.stored[:-2], expected_head=head)
    assert broken is not None and broken.reason == "head"


def test_chain_append_links_each_record_to_the_previous() -> None:
    first = chain_append(None, NewRecord("sent", "envelope", "m", "a", "b", "00" * 32, NOW))
    second = chain_append(first, NewRecord("sent", "envelope", "n", "a", "b", "11" * 32, NOW))
    assert (first.seq, second.seq, second.prev_hash) == (1, 2, first.record_hash)
    assert verify_chain([first, second]) is None


def test_bad_direction_is_refused() -> None:
    with pytest.raises(ValueError):
        NewRecord("sideways", "envelope", "m", "a", "b", "00" * 32, NOW)


@pytest.fixture
def cli_store(world: World, monkeypatch) -> InMemoryArchiveStore:
    store = filled_store(world)
    monkeypatch.setattr(archive_cmds, "STORE_FACTORY", lambda: store)
    return store


def test_cli_verify_prints_ok_and_exits_0_when_intact(cli_store) -> None:
    result = CliRunner().invoke(archive_cmds.app, ["verify"])
    assert result.exit_code == 0 and result.output.startswith("ok: 6 records")


def test_cli_verify_exits_1_with_the_first_broken_link(cli_store) -> None:
    cli_store.stored[4] = StoredRecord(cli_store.stored[4].record, b"changed")
    result = CliRunner().invoke(archive_cmds.app, ["verify"])
    assert result.exit_code == 1 and "seq 5: data_hash" in result.output


def test_cli_evidence_exports_envelope_receipt_and_checks(cli_store, world: World, tmp_path) -> None:
    directory_file = tmp_path / "directory.json"
    world.directory.save(directory_file)
    result = CliRunner().invoke(archive_cmds.app, ["evidence", "m-1", "--directory", str(directory_file)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    (env,) = report["envelopes"]
    assert base64.b64decode(env["envelope_base64"]) == cli_store.stored[2].data
    assert env["signature"] == {"ok": True}
    assert env["receipts"][0]["verification"] == {"ok": True}
    assert report["chain"]["ok"] is True


def test_cli_evidence_writes_files_with_out(cli_store, tmp_path) -> None:
    result = CliRunner().invoke(archive_cmds.app, ["evidence", "m-0", "--out", str(tmp_path / "ev")])
    assert result.exit_code == 0
    assert (tmp_path / "ev" / "evidence-m-0.json").exists()
    assert (tmp_path / "ev" / "m-0-0.envelope").read_bytes() == cli_store.stored[0].data


def test_cli_evidence_for_an_unknown_message_exits_1(cli_store) -> None:
    assert CliRunner().invoke(archive_cmds.app, ["evidence", "nope"]).exit_code == 1


def test_cli_without_a_store_says_so(monkeypatch) -> None:
    monkeypatch.setattr(archive_cmds, "STORE_FACTORY", None)
    result = CliRunner().invoke(archive_cmds.app, ["verify"])
    assert result.exit_code == 2
