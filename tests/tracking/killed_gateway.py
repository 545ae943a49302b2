"""A gateway in its own process, killed between an answer's commit and its tracking.

Usage: python -m tests.tracking.killed_gateway '<json config>'. It hosts both townships on the real
broker and the given database, submits a query, waits until it has arrived over RabbitMQ and opened
its case, prints "received <query id>", and answers it. The answer is committed (message, outbox row,
the query's claim) by the product's own code; its tracking then reaches the case store, which here
never answers: the process prints "tracking <query id>" and waits there for the test's SIGKILL. Only
the case store is the test's (the composition root takes one for that); nothing in the product is.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from gateway.adapters.sql.case_store import SqlCaseStore
from gateway.adapters.sql.engine import create_engine
from gateway.adapters.sql.receipt_store import SqlReceiptStore
from gateway.adapters.sql.store import SqlMessageStore
from gateway.exchange.records import Direction
from tests.gateways import FOUND, REGISTRATION, RESIDENCE, sample_query
from tests.transport.harness import eventually, settings_for, transport_gateway


class CaseStoreGoneWhileTracking(SqlCaseStore):
    """The case store stops answering when the tracker comes to record a reply."""

    async def answer_contexts(self, case_ids: Sequence[str]):  # type: ignore[no-untyped-def]
        print("tracking", *case_ids, flush=True)
        await asyncio.Event().wait()


async def main(config: dict) -> None:
    settings = settings_for(Path(config["data_dir"]), nodes=[RESIDENCE, REGISTRATION], token=config["token"],
                            gateway_id="both", amqp_url=config["amqp_url"], database_url=config["database_url"])
    engine = create_engine(settings.resolved_database_url)
    gateway = transport_gateway(settings, store=SqlMessageStore(engine), case_store=CaseStoreGoneWhileTracking(engine),
                                receipt_store=SqlReceiptStore(engine))
    await gateway.start()
    query = await gateway.service.submit(RESIDENCE, sample_query())

    async def case_opened() -> bool:
        return (await gateway.store.find(REGISTRATION, Direction.IN, query.message_id) is not None
                and await gateway.tracker.store.get_case(query.message_id) is not None)

    assert await eventually(case_opened, 30), "the query never arrived"
    print("received", query.message_id, flush=True)
    await gateway.service.answer(REGISTRATION, query.message_id, FOUND)  # never returns: killed in its tracking


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
