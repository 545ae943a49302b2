"""`gateway archive …` operator commands: check the hash-chained archive, export evidence for an auditor.

The store comes from ``STORE_FACTORY``, which the composition root sets (tests set a fake).
"""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Annotated, Any, Callable

import typer

from gateway.security.archive import ArchiveStore, StoredRecord, verify_chain

app = typer.Typer(no_args_is_help=True, help="The archive of every envelope and receipt: verify it, export evidence.")

STORE_FACTORY: Callable[[], ArchiveStore] | None = None

DirectoryOption = Annotated[
    Path | None,
    typer.Option("--directory", envvar="GATEWAY_DIRECTORY_PATH", help="Key directory used to check signatures."),
]


def _store() -> ArchiveStore:
    if STORE_FACTORY is None:
        typer.echo("no archive store is configured (gateway.cli.archive_cmds.STORE_FACTORY is unset)", err=True)
        raise typer.Exit(2)
    return STORE_FACTORY()


async def _all(store: ArchiveStore) -> list[StoredRecord]:
    return [r async for r in store.records()]


@app.command("verify")
def verify(
    head: Annotated[str | None, typer.Option("--head", help="Anchored head hash the chain must end at.")] = None,
) -> None:
    """Exit 0 printing `ok: N records` when the chain is intact, 1 with the first broken link otherwise."""
    records = asyncio.run(_all(_store()))
    broken = verify_chain(records, expected_head=head)
    if broken is not None:
        typer.echo(f"broken: {broken}")
        raise typer.Exit(1)
    typer.echo(f"ok: {len(records)} records")
    if records:
        typer.echo(f"head: {records[-1].record.record_hash}")


def _load_directory(path: Path | None) -> Any:
    from gateway.security.directory import KeyDirectory

    if path is None or not path.exists():
        return None
    # The auditor checks signatures against the directory as it is, signed or not: key validity
    # periods in it still decide whether a signature was made with a then-valid key.
    return KeyDirectory.load(path)


def _check(fn: Callable[[], Any]) -> dict[str, Any]:
    from gateway.security.errors import EnvelopeError

    try:
        fn()
    except EnvelopeError as exc:
        return {"ok": False, "reason": exc.reason, "detail": exc.detail}
    return {"ok": True}


def evidence_for(message_id: str, records: list[StoredRecord], directory: Any) -> dict[str, Any]:
    from gateway.security.envelope import parse_envelope, verify_envelope
    from gateway.security.receipts import verify_receipt

    broken = verify_chain(records)
    mine = [r for r in records if r.record.message_id == message_id]
    envelopes = [r for r in mine if r.record.item == "envelope"]
    receipts = [r for r in mine if r.record.item == "receipt"]
    out: dict[str, Any] = {
        "message_id": message_id,
        "chain": {"ok": broken is None, "records": len(records), "first_broken": None if broken is None else str(broken)},
        "envelopes": [],
    }
    for env in envelopes:
        entry: dict[str, Any] = {
            "archive_record": env.record.__dict__,
            "envelope_base64": base64.b64encode(env.data).decode(),
            "envelope_sha256": env.record.sha256,
            "header": _check(lambda: parse_envelope(env.data)) | _header(env.data),
            "signature": {"checked": False} if directory is None else _check(lambda: verify_envelope(parse_envelope(env.data), directory=directory)),
            "receipts": [],
        }
        for rec in receipts:
            if rec.record.sender != env.record.recipient:
                continue
            entry["receipts"].append(
                {
                    "archive_record": rec.record.__dict__,
                    "receipt_base64": base64.b64encode(rec.data).decode(),
                    "verification": {"checked": False} if directory is None else _check(lambda: verify_receipt(rec.data, env.data, directory)),
                }
            )
        out["envelopes"].append(entry)
    return out


def _header(data: bytes) -> dict[str, Any]:
    from gateway.security.envelope import parse_envelope
    from gateway.security.errors import EnvelopeError

    try:
        return {"fields": parse_envelope(data).header.__dict__}
    except EnvelopeError:
        return {}


@app.command("evidence")
def evidence(
    message_id: Annotated[str, typer.Argument(metavar="MESSAGE_ID")],
    out: Annotated[Path | None, typer.Option("--out", help="Write evidence-MESSAGE_ID.json and the raw files into DIR.")] = None,
    directory: DirectoryOption = None,
) -> None:
    """Export an envelope (base64), its receipts and the verification results as JSON, for an auditor."""
    records = asyncio.run(_all(_store()))
    report = evidence_for(message_id, records, _load_directory(directory))
    if not report["envelopes"]:
        typer.echo(f"no archived envelope with message id {message_id}", err=True)
        raise typer.Exit(1)
    text = json.dumps(report, indent=2, ensure_ascii=False, sort_keys=True)
    if out is None:
        typer.echo(text)
        return
    out.mkdir(parents=True, exist_ok=True)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in message_id)
    path = out / f"evidence-{safe}.json"
    path.write_text(text + "\n")
    for i, env in enumerate(report["envelopes"]):
        (out / f"{safe}-{i}.envelope").write_bytes(base64.b64decode(env["envelope_base64"]))
        for j, rec in enumerate(env["receipts"]):
            (out / f"{safe}-{i}-{j}.receipt").write_bytes(base64.b64decode(rec["receipt_base64"]))
    typer.echo(str(path))

