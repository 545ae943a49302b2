"""One connect function for every PostgreSQL pool of a gateway (SQLAlchemy's and ``direct_pg``'s).

Given several hosts (``?host=db1:5432&host=db2:5432&target_session_attrs=read-write``), asyncpg tries
them in turn under ONE connect timeout for all (asyncpg issue 1155): a hung first host — its processes
stopped, its port still accepting — uses it up, the new primary is never tried, and the gateway waits
for the old primary to come back. Here each host gets a short timeout of its own and must take writes
(``target_session_attrs``, ``read-write`` unless the URL says otherwise); the host that answered last
is tried first next time, so a hung host costs one timeout per failover, not one per connection.
Every host that failed is logged (host, port and the kind of error; nothing else).

A URL with one host connects exactly as asyncpg always did (its own timeout, no session check).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import asyncpg
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

PER_HOST_TIMEOUT_S = 3.0  # a loopback or LAN connect takes milliseconds; a hung host never answers
_DIALECT_ONLY = {"prepared_statement_cache_size", "prepared_statement_name_func", "async_fallback", "async_creator_fn"}


def connect_arguments(url: str) -> dict[str, Any]:
    """asyncpg.connect's keyword arguments for a SQLAlchemy URL (as the asyncpg dialect makes them)."""
    args, kwargs = PGDialect_asyncpg().create_connect_args(make_url(url))
    if args:
        raise TypeError("positional connect arguments are not supported")
    return dict(kwargs)


def hosts_of(kwargs: Mapping[str, Any]) -> list[tuple[str, int | None]]:
    """The (host, port) pairs, in the URL's order; one port given applies to every host."""
    hosts = kwargs.get("host")
    ports = kwargs.get("port")
    host_list = list(hosts) if isinstance(hosts, (list, tuple)) else [hosts]
    if isinstance(ports, (list, tuple)):
        if len(ports) != len(host_list):
            raise ValueError(f"{len(host_list)} hosts but {len(ports)} ports")
        port_list = [int(p) if p is not None else None for p in ports]
    else:
        port_list = [int(ports) if ports is not None else None] * len(host_list)
    return list(zip(host_list, port_list))


class WritableConnector:
    """``await connector()`` gives an asyncpg connection to the first host that takes writes."""

    def __init__(self, kwargs: Mapping[str, Any], *, per_host_timeout_s: float = PER_HOST_TIMEOUT_S) -> None:
        self._kwargs = {k: v for k, v in kwargs.items() if k not in _DIALECT_ONLY}
        self._hosts = hosts_of(self._kwargs)
        self._per_host_timeout_s = per_host_timeout_s
        self._first = 0  # index of the host that answered last

    @classmethod
    def for_url(cls, url: str, **options: Any) -> WritableConnector:
        return cls(connect_arguments(url), **options)

    @property
    def several_hosts(self) -> bool:
        return len(self._hosts) > 1

    async def __call__(self) -> asyncpg.Connection:
        if not self.several_hosts:
            return await asyncpg.connect(**self._kwargs)
        base = {k: v for k, v in self._kwargs.items() if k not in ("host", "port", "timeout", "target_session_attrs")}
        attrs = self._kwargs.get("target_session_attrs") or "read-write"
        order = [*range(self._first, len(self._hosts)), *range(self._first)]
        last: BaseException | None = None
        for index in order:
            host, port = self._hosts[index]
            try:
                conn = await asyncpg.connect(host=host, port=port, timeout=self._per_host_timeout_s,
                                             target_session_attrs=attrs, **base)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.TargetServerAttributeNotMatched) as exc:
                # (TimeoutError is an OSError; a standby is TargetServerAttributeNotMatched.)
                log.warning("database host %s:%s not used (%s); trying the next", host, port, type(exc).__name__)
                last = exc
                continue
            self._first = index
            return conn
        assert last is not None
        raise last
