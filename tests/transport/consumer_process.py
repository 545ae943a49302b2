"""A registration gateway in its own process, so a test can SIGKILL it in the middle of a batch.

Usage: python -m tests.transport.consumer_process '<json config>'; prints "ready" once consuming.
Each batch is slowed down (10 ms a message, before storing) so that the kill lands mid-run.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from tests.gateways import REGISTRATION
from tests.transport.harness import settings_for, transport_gateway


async def main(config: dict) -> None:
    settings = settings_for(Path(config["data_dir"]), nodes=[REGISTRATION], token=config["token"], gateway_id="reg",
                            amqp_url=config["amqp_url"], database_url=config["database_url"])
    gateway = transport_gateway(settings)
    assert gateway.inbox is not None
    receive = gateway.inbox._receive_batch

    async def slow(deliveries):
        await asyncio.sleep(0.01 * len(deliveries))
        return await receive(deliveries)

    gateway.inbox._receive_batch = slow
    await gateway.start()
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
