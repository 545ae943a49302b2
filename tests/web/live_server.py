"""A real gateway serving its pages on a free loopback port, for the browser tests.

One gateway hosts several townships on a real database and the real broker, as a county's gateway
does; uvicorn serves `create_app(gateway)` from a background thread with its own event loop, and the
test (Playwright's sync API, in the main thread) runs coroutines there with `call`.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, TypeVar

import uvicorn

from gateway.api.app import create_app
from gateway.bootstrap import Gateway
from gateway.security.directory import KeyDirectory

from ..gateways import keyrings, real_gateway

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveGateway:
    def __init__(self, townships: list[str], *, amqp_url: str, database_url: str, token: str, data_dir: Path) -> None:
        self.townships = townships
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._args = dict(amqp_url=amqp_url, database_url=database_url, token=token, data_dir=data_dir)
        self.loop = asyncio.new_event_loop()
        self.gateway: Gateway | None = None
        self._server: uvicorn.Server | None = None
        self._thread = threading.Thread(target=self._run, name="live-gateway", daemon=True)
        self._started = threading.Event()
        self._error: BaseException | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported to the test by start()
            self._error = exc
            self._started.set()

    async def _serve(self) -> None:
        rings = keyrings(*self.townships)
        directory = KeyDirectory.from_keyrings(rings.values())
        self.gateway = real_gateway(list(rings.values()), directory, gateway_id="web", **self._args)  # type: ignore[arg-type]
        await self.gateway.start()
        config = uvicorn.Config(create_app(self.gateway), host="127.0.0.1", port=self.port, log_level="warning",
                                lifespan="on")
        self._server = uvicorn.Server(config)
        serving = asyncio.ensure_future(self._server.serve())
        while not self._server.started and not serving.done():
            await asyncio.sleep(0.02)
        self._started.set()
        try:
            await serving
        finally:
            await self.gateway.stop()
            await self.gateway.broker.delete_topology()
            if self.gateway.engine is not None:
                await self.gateway.engine.dispose()

    def start(self) -> LiveGateway:
        self._thread.start()
        self._started.wait(120)
        if self._error is not None:
            raise RuntimeError(f"the gateway did not start: {self._error!r}") from self._error
        if self._server is None or not self._server.started:
            raise RuntimeError("the gateway did not start within 120 s")
        return self

    def call(self, coro: Awaitable[T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)  # type: ignore[arg-type]

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        self._thread.join(60)

    def __getattr__(self, name: str) -> Any:  # convenience: live.service, live.store
        return getattr(self.gateway, name)
