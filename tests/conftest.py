"""Shared fixtures: the real broker and database (see tests/services.py), keys made per test."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.workflow.calendar import WorkingDayCalendar
from gateway.workflow.data_files import DEFAULT_CALENDAR_FILE, DEFAULT_DEADLINES_FILE, load_calendar, load_deadline_rules
from gateway.workflow.deadlines import DeadlineRuleSet
from tests import services


@pytest.fixture(scope="session")
def amqp_url() -> Iterator[str]:
    try:
        with services.rabbitmq_url() as url:
            yield url
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    try:
        with services.postgres_url() as url:
            yield url
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)


async def _admin(server_url: str, statement: str) -> None:
    admin = create_async_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await admin.dispose()


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    name = f"gw_test_{uuid.uuid4().hex[:12]}"
    # Sync fixture with its own short-lived loop, so both sync and async tests and fixtures can use it.
    asyncio.run(_admin(postgres_server_url, f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(postgres_server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_admin(postgres_server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each connected test runs on the embedded default and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture(scope="session")
def real_calendar() -> WorkingDayCalendar:
    """The shipped working-day calendar: the chinesecalendar package plus schemas/calendar."""
    return load_calendar(DEFAULT_CALENDAR_FILE)


@pytest.fixture(scope="session")
def rules() -> DeadlineRuleSet:
    """The shipped deadline rule-set (schemas/workflow/deadlines.json)."""
    return load_deadline_rules(DEFAULT_DEADLINES_FILE)


@pytest.fixture
def run_token() -> str:
    """Unique exchange/queue names per test, so tests never read each other's traffic."""
    return secrets.token_hex(4)


# Markers say which services a test talks to, derived from the fixtures it uses (issue 25), so that
# `-m "not database and not broker and not browser"` selects exactly the tests that need none.
_SERVICE_MARKS = ("database", "broker", "browser")
_POSTGRES_FIXTURES = {"postgres_url", "postgres_server_url"}


def services_used(item: pytest.Item) -> set[str]:
    """The service marks a collected test earns by its fixtures (and the parameters they run with)."""
    names = set(getattr(item, "fixturenames", ()))
    callspec = getattr(item, "callspec", None)
    params = callspec.params if callspec is not None else {}
    used = set()
    # database_url (and the migration tests' own url fixtures) take PostgreSQL by a "postgresql" parameter.
    if names & _POSTGRES_FIXTURES or "postgresql" in params.values():
        used.add("database")
    # A cluster test talks to brokers of its own (tests/cluster): not the shared one, but never service-free.
    if "amqp_url" in names or item.get_closest_marker("cluster") is not None:
        used.add("broker")
    if "browser" in names:
        used.add("browser")
    return used


@pytest.hookimpl(tryfirst=True)  # before -m deselects by them
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    derived = {item.nodeid: services_used(item) for item in items}
    # An explicit service mark (a module's pytestmark, a class's, a parameter's) that the fixtures do not
    # bear out is dropped: it sits on a node shared by items that may need it and items that do not, so it
    # is dropped from every node and each item gets its own derived marks back.
    for item in items:
        for node in item.listchain():
            node.own_markers[:] = [m for m in node.own_markers if m.name not in _SERVICE_MARKS]
    for item in items:
        for name in sorted(derived[item.nodeid]):
            item.add_marker(name)
