"""The HTTP edge of `gateway serve`: how uvicorn is configured, and what it does not do by itself.

uvicorn has a keep-alive timeout (`timeout_keep_alive`: an idle connection between requests), a cap on
requests served at once (`limit_concurrency`: 503 beyond) and a bound on a request head's size (h11's
`max_incomplete_event_size`), but no timeout for reading a request head: its keep-alive timer is
cancelled by the first byte that arrives, so a client that sends one header line every few seconds
holds its connection for ever, and 20,000 of them exhaust the process's file descriptors (issue 24:
`/health` stopped answering). Nor does it cap open connections: `limit_concurrency` answers 503 only
once a request head has arrived, which a slow client never completes.

So the HTTP protocol here is uvicorn's h11 protocol with two additions, through its public interface
(`uvicorn.Config(http=…)` takes a protocol class):

* **head deadline** (GATEWAY_HTTP_HEADER_TIMEOUT_S): from the moment a connection opens, or a response
  on it ends, it has that long to send a whole request head; otherwise it gets a 408 and is closed.
  Request bodies are not timed here (a clerk's 20 MB upload on a slow line is legitimate; the body
  size is bounded by `limits.RequestLimits`).
* **connection cap** (GATEWAY_HTTP_MAX_CONNECTIONS): when a new connection would pass it, the oldest
  connection still waiting for its request head is closed, so a flood of slow connections makes room
  for a real client instead of locking it out; when every connection is busy with a request, the new
  one is closed.

Behind the shipped nginx (deploy/nginx/gateway.conf) the same is done at the proxy
(`client_header_timeout`, `limit_conn`), and only nginx connects to the gateway.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("gateway.http")

TIMEOUT_RESPONSE = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a request-head deadline and a connection cap (see the module)."""

    header_timeout_s: float = 10.0
    max_connections: int = 1000

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.head_deadline: asyncio.TimerHandle | None = None
        self.waiting_since: float | None = None  # when it started waiting for a request head; None: serving one

    # --- uvicorn's protocol interface --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # type: ignore[override]
        super().connection_made(transport)  # type: ignore[arg-type]
        self.await_head()
        if len(self.connections) > self.max_connections:
            self.make_room()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.waiting_since is not None and self.conn.their_state is not h11.IDLE:
            self.head_arrived()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.transport.is_closing():
            return
        # The next request on this keep-alive connection has the same time for its head.
        self.await_head()
        if self.conn.their_state is not h11.IDLE:  # it was pipelined and is here already
            self.head_arrived()

    def connection_lost(self, exc: Exception | None) -> None:
        self.head_arrived()
        super().connection_lost(exc)

    # --- the additions ----------------------------------------------------------------------------

    def await_head(self) -> None:
        self.head_arrived()
        self.waiting_since = self.loop.time()
        self.head_deadline = self.loop.call_later(self.header_timeout_s, self.head_too_slow)

    def head_arrived(self) -> None:
        if self.head_deadline is not None:
            self.head_deadline.cancel()
            self.head_deadline = None
        self.waiting_since = None

    def head_too_slow(self) -> None:
        self.head_deadline = None
        self.waiting_since = None
        log.warning("closed a connection that sent no whole request head within %.0f s "
                    "(GATEWAY_HTTP_HEADER_TIMEOUT_S)", self.header_timeout_s)
        self.shut(TIMEOUT_RESPONSE)

    def make_room(self) -> None:
        waiting = [c for c in self.connections
                   if isinstance(c, GuardedH11Protocol) and c is not self and c.waiting_since is not None]
        if waiting:
            oldest = min(waiting, key=lambda c: c.waiting_since or 0.0)
            log.warning("%d HTTP connections open (GATEWAY_HTTP_MAX_CONNECTIONS=%d): closed the one waiting "
                        "longest for a request head", len(self.connections), self.max_connections)
            oldest.shut(TIMEOUT_RESPONSE)
        else:
            log.warning("%d HTTP connections open, all serving requests (GATEWAY_HTTP_MAX_CONNECTIONS=%d): "
                        "closed the new one", len(self.connections), self.max_connections)
            self.shut(b"")

    def shut(self, last_words: bytes) -> None:
        self.head_arrived()
        if not self.transport.is_closing():
            if last_words:
                self.transport.write(last_words)
            self.transport.close()
        # Counted free at once: the transport's own callback comes on a later turn of the loop.
        self.connections.discard(self)


def guarded_protocol(*, header_timeout_s: float, max_connections: int) -> type[GuardedH11Protocol]:
    """The protocol class for `uvicorn.Config(http=…)`, with this server's limits."""
    return type("GuardedH11Protocol", (GuardedH11Protocol,),
                {"header_timeout_s": header_timeout_s, "max_connections": max_connections})


def uvicorn_config(app: Any, settings: Any, *, host: str, port: int) -> Any:
    """uvicorn's configuration for `gateway serve`, every limit from the settings (README: Settings)."""
    import uvicorn

    return uvicorn.Config(
        app, host=host, port=port,
        ssl_certfile=settings.http_tls_cert, ssl_keyfile=settings.http_tls_key,
        http=guarded_protocol(header_timeout_s=settings.http_header_timeout_s,
                              max_connections=settings.http_max_connections),
        timeout_keep_alive=settings.http_keep_alive_s,
        limit_concurrency=settings.http_limit_concurrency,
        h11_max_incomplete_event_size=settings.http_max_header_bytes,
        # X-Forwarded-For/-Proto believed from these proxies only (the client address audited, the
        # scheme that makes cookies Secure and turns HSTS on).
        proxy_headers=True,
        forwarded_allow_ips=list(settings.forwarded_allow_ips),
        # uvicorn's loggers propagate to the gateway's root handler, whose repeat limit (log_limits)
        # then covers them too.
        log_config=None,
        server_header=False,
    )
