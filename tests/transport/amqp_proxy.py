"""A TCP proxy between a gateway and the real broker that can hold back what the broker says.

The broker's side of an AMQP connection is a plain sequence of frames (type, channel, size, payload,
0xCE), so the proxy cuts it at frame boundaries: ``hold()`` keeps the broker's frames (publisher
confirms among them) instead of passing them on, ``inject()`` hands the client a frame of our own (a
``connection.blocked``, as RabbitMQ sends on a memory or disk alarm), ``release()`` passes on what was
held, in order, and the frames that follow; ``drop()`` cuts every connection (a network failure: the
client reconnects through the proxy). The client's side is passed through untouched. Nothing of the
shared broker is reconfigured or restarted: only the connections through this proxy see any of it.
"""

from __future__ import annotations

import asyncio
import struct
from contextlib import suppress

import pamqp.frame
from pamqp import commands as spec


def connection_blocked(reason: str = "low on memory (test)") -> bytes:
    return pamqp.frame.marshal(spec.Connection.Blocked(reason=reason), 0)


def connection_unblocked() -> bytes:
    return pamqp.frame.marshal(spec.Connection.Unblocked(), 0)


class HoldingProxy:
    def __init__(self, broker_host: str, broker_port: int) -> None:
        self.broker = (broker_host, broker_port)
        self.port = 0
        self._server: asyncio.base_events.Server | None = None
        self._holding = False
        self._held: list[bytes] = []
        self._clients: list[asyncio.StreamWriter] = []
        self._upstream: list[asyncio.StreamWriter] = []
        self.connections = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> HoldingProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def url(self, amqp_url: str) -> str:
        from yarl import URL

        return str(URL(amqp_url).with_host("127.0.0.1").with_port(self.port))

    def hold(self) -> None:
        self._holding = True

    def inject(self, frame: bytes) -> None:
        for client in self._clients:
            client.write(frame)

    def release(self) -> None:
        self._holding = False
        held, self._held = self._held, []
        for client in self._clients:
            for frame in held:
                client.write(frame)

    def drop(self) -> None:
        self._held.clear()
        for writer in self._clients + self._upstream:
            writer.transport.abort()
        self._clients.clear()
        self._upstream.clear()

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        broker_reader, broker_writer = await asyncio.open_connection(*self.broker)
        self.connections += 1
        self._clients.append(client_writer)
        self._upstream.append(broker_writer)
        for pump in (self._pass_through(client_reader, broker_writer), self._frames(broker_reader, client_writer)):
            task = asyncio.create_task(pump)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _pass_through(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
        finally:
            writer.close()

    async def _frames(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readexactly(7)
                (size,) = struct.unpack(">I", head[3:])
                frame = head + await reader.readexactly(size + 1)
                if self._holding:
                    self._held.append(frame)
                else:
                    writer.write(frame)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            if writer in self._clients:
                self._clients.remove(writer)
            writer.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for client in list(self._clients):
            client.close()
        for task in list(self._tasks):
            task.cancel()
        with suppress(Exception):
            await asyncio.gather(*self._tasks, return_exceptions=True)
