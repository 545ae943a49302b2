"""What every request pays for: no dependency that FastAPI would run in a worker thread (a plain
``def`` dependency is called through the thread pool, a hand-off per request), except the sign-in
form's, which is FastAPI's own class and runs once per sign-in."""

from __future__ import annotations

import inspect

from gateway.access.deps import flat_routes
from gateway.api.app import create_app
from tests.gateways import REGISTRATION, RESIDENCE, fake_gateway, keyrings


def _runs_on_the_loop(call: object) -> bool:
    return inspect.iscoroutinefunction(call) or inspect.iscoroutinefunction(getattr(call, "__call__", None))


def test_every_dependency_of_every_route_runs_on_the_event_loop():
    app = create_app(fake_gateway(keyrings(RESIDENCE, REGISTRATION)))
    threaded: set[tuple[str, str]] = set()
    routes = 0
    for route in flat_routes(app.routes):
        if getattr(route, "dependant", None) is None:
            continue
        routes += 1
        stack = [route.dependant]
        while stack:
            dependant = stack.pop()
            stack.extend(dependant.dependencies)
            if dependant.call is not None and not _runs_on_the_loop(dependant.call):
                threaded.add((route.path, getattr(dependant.call, "__qualname__", repr(dependant.call))))
    assert routes > 50
    assert threaded == {("/auth/token", "OAuth2PasswordRequestForm")}
