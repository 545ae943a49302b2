"""Gateways for the transport fault tests: keys on disk (so a second process can load them), real broker.

One data directory holds the keys of both townships and the signed key directory, as `gateway init`
leaves them; every gateway of a test, in this process or a subprocess, loads its nodes from there.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import func, select

from gateway.adapters.amqp import AmqpBroker
from gateway.adapters.sql.tables import messages, quarantine
from gateway.adapters.topology import Topology
from gateway.bootstrap import Gateway, build_gateway
from gateway.node_setup import init_nodes
from gateway.settings import Settings
from tests.gateways import REGISTRATION, RESIDENCE

DELIVERY_LIMIT = 3  # small, so a poison message reaches the poison queue within seconds


def settings_for(data_dir: Path, *, nodes: list[str], token: str, gateway_id: str, amqp_url: str,
                 database_url: str) -> Settings:
    return Settings(
        gateway_id=f"{gateway_id}-{token}",
        exchange=f"fault-{token}.exchange",
        nodes=nodes,
        data_dir=data_dir,
        database_url=database_url,
        amqp_url=amqp_url,
        key_passphrase=None,
        tick_interval_s=0,
    )


def init_keys(data_dir: Path, token: str, amqp_url: str, database_url: str) -> None:
    init_nodes(settings_for(data_dir, nodes=[RESIDENCE, REGISTRATION], token=token, gateway_id="init",
                            amqp_url=amqp_url, database_url=database_url), datetime.now(timezone.utc))


def transport_gateway(settings: Settings, *, failure_pause_s: float = 0.2, **kwargs) -> Gateway:
    broker = AmqpBroker(
        settings.amqp_url,
        Topology(settings.exchange, settings.queue_name, delivery_limit=DELIVERY_LIMIT),
        prefetch=settings.prefetch,
        publish_timeout_s=5.0,
        failure_pause_s=failure_pause_s,
    )
    return build_gateway(settings, broker=broker, **kwargs)


async def stored_incoming(gateway: Gateway, node: str) -> tuple[int, int]:
    """(rows, distinct message ids) received by ``node``: equal when nothing took effect twice."""
    assert gateway.engine is not None
    async with gateway.engine.connect() as conn:
        row = (await conn.execute(
            select(func.count(), func.count(messages.c.message_id.distinct()))
            .where(messages.c.node == node, messages.c.direction == "in", messages.c.kind != "feedback")
        )).one()
    return row[0], row[1]


async def quarantined(gateway: Gateway) -> int:
    assert gateway.engine is not None
    async with gateway.engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(quarantine))).scalar_one()


async def eventually(check: Callable[[], Awaitable[bool]], timeout_s: float, poll_s: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(poll_s)
    return await check()
