"""Operator commands: `gateway quarantine …`, `gateway outbox status`, `gateway queues …`, `gateway topology export`.

They build the gateway from the settings (GATEWAY_* / gateway.env) without starting its consumers or
relay, and use the same views as the HTTP routes in gateway/api/operator.py.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from gateway.cli.shown import echo_line

quarantine_app = typer.Typer(no_args_is_help=True, help="Refused messages: list, inspect, re-drive after a fix.")
outbox_app = typer.Typer(no_args_is_help=True, help="Messages committed but not yet confirmed by the broker.")
queues_app = typer.Typer(no_args_is_help=True, help="Broker queues: consumer lag, the poison queue.")
topology_app = typer.Typer(no_args_is_help=True, help="The RabbitMQ topology as broker definitions.")

T = TypeVar("T")


def _run(action: Callable[[Any], Awaitable[T]]) -> T:
    """Build the gateway from the settings, run one action on it, and close what it opened."""
    from gateway.adapters.sql.direct_pg import dispose
    from gateway.bootstrap import build_gateway
    from gateway.settings import Settings

    async def go() -> T:
        gateway = build_gateway(Settings())
        try:
            return await action(gateway)
        finally:
            if gateway.engine is not None:
                await dispose(gateway.engine)

    return asyncio.run(go())


def _print(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2))


@quarantine_app.command("list")
def quarantine_list(
    limit: Annotated[int, typer.Option(help="how many, newest first")] = 50,
    unresolved: Annotated[bool, typer.Option(help="only those not yet resolved")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Quarantined messages with their reasons."""
    from gateway.api.operator import quarantine_view

    async def action(gw: Any) -> list[dict[str, Any]]:
        return [quarantine_view(q) for q in await gw.store.list_quarantine(limit) if not (unresolved and q.resolved)]

    rows = _run(action)
    if as_json:
        _print(rows)
        return
    for r in rows:
        state = "resolved" if r["resolved"] else ("re-driven" if r["redriven_at"] else "open")
        echo_line(f"{r['id']:>6}  {r['received_at'][:19]}  {r['reason']:<24} {state:<9} "
                   f"{r['sender'] or '?'}→{r['recipient'] or '?'}  {r['message_id'] or r['envelope_sha256'][:16]}")
    typer.echo(f"{len(rows)} quarantined")


@quarantine_app.command("show")
def quarantine_show(item_id: int) -> None:
    """One quarantined message: reason, detail, header fields, size and the head of its (encrypted) bytes."""
    from gateway.api.operator import quarantine_view

    async def action(gw: Any) -> dict[str, Any] | None:
        item = await gw.store.get_quarantine(item_id)
        return None if item is None else quarantine_view(item, detail=True)

    row = _run(action)
    if row is None:
        typer.echo(f"no quarantined message {item_id}", err=True)
        raise typer.Exit(1)
    _print(row)


async def _audit(gw: Any, object_id: str, result: str, detail: str = "") -> None:
    """A re-drive from the command line is audited like one over HTTP (user ``cli:<os user>``)."""
    if gw.access is None or gw.engine is None:
        return
    from gateway.access.audit import Action, AuditEntry
    from gateway.adapters.sql.engine import create_schema
    from gateway.cli.access_cmds import actor

    await create_schema(gw.engine)  # a database from before the audit trail gets its tables first
    await gw.access.audit.record(AuditEntry(Action.REDRIVE, actor(), "", "cli", object_id=object_id, result=result,
                                            detail=detail))


@quarantine_app.command("redrive")
def quarantine_redrive(item_id: int) -> None:
    """Run the stored bytes through verification and storage again (e.g. after the sender's key was added)."""
    from gateway.exchange.redrive import NotQuarantined, RedriveRefused, redrive_quarantined

    async def action(gw: Any) -> Any:
        try:
            result = await redrive_quarantined(gw.service, gw.store, gw.clock, item_id)
        except NotQuarantined:
            await _audit(gw, f"quarantine {item_id}", "not_found")
            raise
        await _audit(gw, f"quarantine {item_id}", result.result, result.reason or "")
        return result

    try:
        result = _run(action)
    except (NotQuarantined, RedriveRefused) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    _print({"id": result.item_id, "result": result.result, "reason": result.reason, "detail": result.detail})
    raise typer.Exit(0 if result.result in ("stored", "duplicate") else 1)


@outbox_app.command("status")
def outbox_status() -> None:
    """Backlog: pending, due now, retrying, the oldest pending message and the last error."""
    from gateway.api.operator import backlog_view

    async def action(gw: Any) -> dict[str, Any]:
        return backlog_view(await gw.store.outbox_backlog(gw.clock.now()))

    _print(_run(action))


@queues_app.command("status")
def queues_status() -> None:
    """Ready messages and consumers of this gateway's inbox (consumer lag) and of the poison queue."""
    from gateway.api.operator import queues_view

    _print(_run(queues_view))


@queues_app.command("redrive-poison")
def queues_redrive_poison(limit: Annotated[int, typer.Option(help="move at most this many")] = 1000) -> None:
    """Move messages from the poison queue back to their townships' inbox (after the cause was fixed)."""

    async def action(gw: Any) -> int:
        moved = await gw.broker.redrive_poison(limit)
        await _audit(gw, "poison", "ok", f"moved {moved}")
        return moved

    _print({"moved": _run(action)})


@topology_app.command("export")
def topology_export(
    out: Annotated[Path | None, typer.Option(help="write here instead of standard output")] = None,
    townships_file: Annotated[Path | None, typer.Option(
        help="one township code per line (default: GATEWAY_NODES)")] = None,
    federate: Annotated[list[str], typer.Option(
        help="NAME=AMQP_URI of another province's cluster to federate from (repeatable)")] = [],  # noqa: B006
    user: Annotated[str | None, typer.Option(
        help="also define this gateway's broker user, with least rights (publish to the exchange, read its queue)")] = None,
    password_file: Annotated[Path | None, typer.Option(
        help="the user's password, from this file (only its salted hash is written)")] = None,
) -> None:
    """This gateway's exchanges, queues and bindings in the format of `rabbitmqctl import_definitions`."""
    from gateway.adapters.topology import (
        Topology,
        federation_definitions,
        gateway_permissions,
        merge_definitions,
        user_definitions,
    )
    from gateway.settings import Settings

    settings = Settings()
    codes = settings.nodes
    if townships_file is not None:
        codes = [line.strip() for line in townships_file.read_text().splitlines() if line.strip()]
    definitions = Topology(settings.exchange, settings.queue_name).definitions(codes)
    if federate:
        upstreams = dict(item.split("=", 1) for item in federate)
        definitions.update(federation_definitions(upstreams, exchange=settings.exchange))
    if user is not None:
        if password_file is None:
            typer.echo("--user needs --password-file", err=True)
            raise typer.Exit(2)
        topology = Topology(settings.exchange, settings.queue_name)
        password = password_file.read_text().strip()
        definitions = merge_definitions(definitions, user_definitions({user: (password, gateway_permissions(topology))}))
    text = json.dumps(definitions, ensure_ascii=False, indent=2) + "\n"
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text)
        typer.echo(f"wrote {out}: {len(definitions['queues'])} queues, {len(definitions['bindings'])} bindings",
                   err=True)
