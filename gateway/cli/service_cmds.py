"""`gateway init`, `gateway serve` and `gateway demo`: setting up, running and showing the gateway."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from typing import Annotated

import typer

from gateway.settings import Settings


def _settings() -> Settings:
    # A refused variable ends the command with one line naming it (gateway/cli/errors.py).
    return Settings()


def init() -> None:
    """Create the database and the keys of the configured township nodes (GATEWAY_NODES)."""
    from datetime import datetime, timezone

    from gateway.bootstrap import init_database
    from gateway.node_setup import init_nodes

    settings = _settings()
    if not settings.nodes:
        typer.echo("no township nodes configured: set GATEWAY_NODES, e.g. GATEWAY_NODES=110101001,110101002", err=True)
        raise typer.Exit(2)
    created = init_nodes(settings, datetime.now(timezone.utc))
    asyncio.run(init_database(settings))
    settings.audit_files.create_key()  # kept if there is one: a new key would orphan the keyed records
    typer.echo(f"database: {settings.resolved_database_url}")
    typer.echo(f"keys: {settings.resolved_keys_dir} (new for {len(created)} of {len(settings.nodes)} nodes)")
    typer.echo(f"directory: {settings.resolved_directory_path}")
    typer.echo(f"audit key: {settings.audit_files.key_path} (back it up apart from the database)")


def _stopped(_signum: int, _frame: object) -> None:
    return None


def serve(
    host: Annotated[str | None, typer.Option(help="HTTP address (default GATEWAY_HTTP_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="HTTP port (default GATEWAY_HTTP_PORT)")] = None,
) -> None:
    """Run the HTTP API, the consumers and the outbox relay for the configured nodes."""
    import uvicorn

    from gateway import log_limits
    from gateway.access.audit_files import AuditFileError
    from gateway.api.app import create_app
    from gateway.api.connections import uvicorn_config
    from gateway.bootstrap import build_gateway
    from gateway.node_setup import load_nodes, refuse_plaintext_keys

    settings = _settings()
    load_nodes(settings)  # nodes configured and their keys readable, before anything connects
    refuse_plaintext_keys(settings)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if (settings.http_tls_cert is None) != (settings.http_tls_key is None):
        typer.echo("configuration error: set both GATEWAY_HTTP_TLS_CERT and GATEWAY_HTTP_TLS_KEY, or neither", err=True)
        raise typer.Exit(2)

    # Taken off again when serve returns: a process that runs serve more than once (the tests) keeps no
    # limit on handlers that outlive it.
    limit = log_limits.install(settings.log_repeats_per_minute)

    async def run() -> None:
        gateway = build_gateway(settings)
        try:
            await gateway.start()
        except AuditFileError as exc:
            typer.echo(f"configuration error: {exc}", err=True)
            raise typer.Exit(2) from None
        config = uvicorn_config(create_app(gateway), settings, host=host or settings.http_host,
                                port=port or settings.http_port)
        try:
            # uvicorn stops on SIGTERM/SIGINT and, once stopped, raises the signal again for the handler
            # that was there before it: Python's default would kill the process right there, before
            # `gateway.stop()` below (the import workers were left running, issue 24). A handler that
            # does nothing lets serve() return instead; uvicorn's own replaces it while it serves.
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, _stopped)
            await uvicorn.Server(config).serve()
        finally:
            await gateway.stop()

    try:
        asyncio.run(run())
    finally:
        log_limits.uninstall(limit)


def demo(
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON summary object and nothing else")] = False,
    townships: Annotated[int, typer.Option("--townships", min=2, help="number of township nodes")] = 4,
    messages: Annotated[int, typer.Option("--messages", min=1, help="number of queries to exchange")] = 8,
    tamper: Annotated[int, typer.Option("--tamper", min=0, help="also inject this many tampered envelopes")] = 0,
) -> None:
    """Start township nodes in one process, run a scripted exchange over RabbitMQ, print what happened."""
    from gateway.demo import run_demo, summary_dict

    settings = _settings()
    logging.basicConfig(level=logging.ERROR if as_json else logging.WARNING)
    echo = (lambda _line: None) if as_json else typer.echo
    try:
        summary = asyncio.run(
            run_demo(amqp_url=settings.amqp_url, townships=townships, messages=messages, tamper=tamper,
                     database_url=settings.database_url, echo=echo)
        )
    except (ConnectionError, OSError) as exc:
        typer.echo(
            f"cannot reach RabbitMQ at {settings.amqp_url}: {exc}\n"
            "start it with `rabbitmq-server -detached` (or `docker compose up -d rabbitmq`)",
            err=True,
        )
        raise typer.Exit(3) from None
    data = summary_dict(summary)
    if as_json:
        sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
    else:
        typer.echo(" ".join(f"{k}={v}" for k, v in data.items()))
    raise typer.Exit(0 if summary.ok else 1)
