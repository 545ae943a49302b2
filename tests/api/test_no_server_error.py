"""No route answers with a server error, whatever a client sends (issue 11, item 7).

schemathesis generates requests for every operation of the app's own OpenAPI document — valid ones,
and ones that break each declared type, bound and media type — and each is sent to the app of a
gateway on SQLite (the broker is the in-memory fake: nothing here claims delivery). Any 5xx fails.
The gateway holds a sent and a received message, so the read routes have something to render.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from schemathesis import GenerationMode
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from gateway.access.deps import flat_routes, route_permissions
from gateway.access.permissions import Permission
from gateway.access.principal import Role
from gateway.adapters.fakes import FakeBroker
from gateway.api.app import create_app
from gateway.bootstrap import build_gateway
from gateway.clock import FakeClock
from gateway.exchange.nodes import HostedNode
from gateway.security.directory import KeyDirectory
from gateway.settings import Settings
from tests.access.helpers import bearer_token
from tests.gateways import NOT_FOUND, REGISTRATION, RESIDENCE, T0, TEST_HOSTS, fake_gateway, keyrings, sample_query

# Each operation is called by a user whose role has the permission it declares (a clerk of the
# residence township for the township routes), so requests reach the route, not only the sign-in check.
WHO: dict[Permission, tuple[Role, str]] = {
    Permission.SIGNED_IN: (Role.CLERK, RESIDENCE),
    Permission.NODE_SUBMIT: (Role.CLERK, RESIDENCE),
    Permission.NODE_READ: (Role.CLERK, RESIDENCE),
    Permission.NODE_ANSWER: (Role.CLERK, RESIDENCE),
    Permission.NODE_WITHDRAW: (Role.CLERK, RESIDENCE),
    Permission.NODE_IMPORT: (Role.CLERK, RESIDENCE),
    Permission.REGION_READ: (Role.SUPERVISOR, "11"),
    Permission.OPERATE: (Role.OPERATOR, ""),
    Permission.AUDIT_READ: (Role.AUDITOR, ""),
    Permission.ACCOUNTS_MANAGE: (Role.ADMIN, ""),
}
BASE_URL = "http://gw"
# Answers that are not crashes: 503 from /health when the broker or database is down, 501 from the
# poison re-drive on a broker without a poison queue (the in-memory one here).
DELIBERATE = {501, 503}
EXAMPLES = 15  # per operation: the whole run stays well under a minute


class RunningApp:
    """A gateway on SQLite and its app, driven on an event loop of its own (hypothesis tests are sync)."""

    def __init__(self, data_dir: Path) -> None:
        self.loop = asyncio.new_event_loop()
        rings = keyrings(RESIDENCE, REGISTRATION)
        settings_ = Settings(nodes=sorted(rings), data_dir=data_dir, allowed_hosts=TEST_HOSTS, tick_interval_s=0,
                             database_url=f"sqlite+aiosqlite:///{data_dir / 'gateway.db'}")
        self.gateway = build_gateway(
            settings_, clock=FakeClock(T0), broker=FakeBroker(),
            nodes={code: HostedNode(ring) for code, ring in rings.items()},
            directory=KeyDirectory.from_keyrings(rings.values()),
        )
        self.app = create_app(self.gateway)
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url=BASE_URL)
        self.run(self._seed())
        self.tokens = {who: self.run(bearer_token(self.gateway, *who)) for who in set(WHO.values())}
        self.permission = {(m, r.path_format): route_permissions(r)[0]
                           for r in flat_routes(self.app.routes) for m in getattr(r, "methods", None) or ()}

    def headers(self, operation: Any) -> dict[str, str]:
        permission = self.permission.get((operation.method.upper(), operation.path), Permission.PUBLIC)
        if permission is Permission.PUBLIC:
            return {}
        return {"Authorization": f"Bearer {self.tokens[WHO[permission]]}"}

    async def _seed(self) -> None:
        await self.gateway.start(relay=False)
        query = await self.gateway.service.submit(RESIDENCE, sample_query())
        await self.gateway.relay.run_once()  # the gateway hosts both townships: delivered to itself
        await self.gateway.service.answer(REGISTRATION, query.message_id, NOT_FOUND)
        await self.gateway.relay.run_once()

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        self.run(self.client.aclose())
        self.run(self.gateway.stop())
        self.loop.close()


@pytest.fixture(scope="module")
def running_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    app = RunningApp(tmp_path_factory.mktemp("schemathesis"))
    yield app
    app.close()


def _negatable(spec: dict[str, Any], path: str, method: str) -> bool:
    # An operation whose document declares a body or a typed, bounded parameter: invalid requests exist.
    op = spec["paths"][path][method.lower()]
    return "requestBody" in op or any(
        set(p.get("schema", {})) - {"type", "title"} or p.get("schema", {}).get("type") != "string"
        for p in op.get("parameters", [])
    )


def _cases() -> list[Any]:
    # The document does not depend on the gateway: any gateway's app gives it.
    spec = create_app(fake_gateway(keyrings(RESIDENCE, REGISTRATION))).openapi()
    out = []
    for result in schemathesis.openapi.from_dict(spec).get_all_operations():
        op = result.ok()
        out.append(pytest.param(op, GenerationMode.POSITIVE, id=f"{op.label} valid"))
        if _negatable(spec, op.path, op.method):
            out.append(pytest.param(op, GenerationMode.NEGATIVE, id=f"{op.label} invalid"))
    return out


def _sendable(value: Any) -> Any:
    """A multipart part as a client can send it: text, bytes or a file. A generated number or null in
    a file field (bare, or as the content of a (filename, content, …) tuple) is sent as its text:
    httpx cannot stream anything else, and the failure would be the client's, not a route's."""
    if isinstance(value, tuple):
        return (value[0], _sendable(value[1]), *value[2:]) if len(value) > 1 else value
    if isinstance(value, (str, bytes)) or hasattr(value, "read"):
        return value
    return str(value).encode()


@pytest.mark.parametrize(("operation", "mode"), _cases())
def test_no_route_answers_with_a_server_error(operation: Any, mode: GenerationMode, running_app: RunningApp) -> None:
    # schemathesis's own pytest plugin does not run on this pytest (9); its strategies do, driven here:
    # "valid" requests follow the document, "invalid" ones break a declared type, bound or media type.
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def check(case: schemathesis.Case) -> None:
        kwargs = case.as_transport_kwargs(base_url=BASE_URL, headers=running_app.headers(operation))
        request = {k: v for k, v in kwargs.items() if k in ("method", "url", "headers", "params", "content", "json", "files")}
        if isinstance(request.get("files"), dict):
            request["files"] = {name: _sendable(value) for name, value in request["files"].items()}
        elif isinstance(request.get("files"), list):
            request["files"] = [(name, _sendable(value)) for name, value in request["files"]]
        if isinstance(kwargs.get("data"), dict):  # a form (the sign-in routes)
            request["data"] = kwargs["data"]
        elif "data" in kwargs:  # raw bytes (CSV, xlsx, or a body in a media type the route refuses)
            request["content"] = kwargs["data"]
        response = running_app.run(running_app.client.request(**request))
        running_app.run(response.request.aread())  # a multipart body is a stream: read, so the check can see it
        if response.status_code in DELIBERATE:
            return
        case.validate_response(response, checks=[not_a_server_error])

    check()
