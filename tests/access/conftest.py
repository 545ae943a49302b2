"""An account database on the real engines (SQLite and PostgreSQL) and a fake clock to move time."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from gateway.access.audit_files import AuditFiles
from gateway.access.service import AccessService
from gateway.adapters.sql.engine import create_engine, create_schema
from gateway.bootstrap import build_access
from gateway.clock import FakeClock
from tests.access import helpers  # noqa: F401  (the tests' cheaper Argon2id)
from tests.gateways import REGISTRATION, RESIDENCE, T0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
async def engine(database_url):
    engine = create_engine(database_url)
    await create_schema(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
def audit_files(tmp_path) -> AuditFiles:
    """The audit key (made, as `gateway init` does) and head checkpoint, outside the database."""
    files = AuditFiles.in_folder(tmp_path / "audit")
    files.create_key()
    return files


@pytest.fixture
async def access(engine, clock, audit_files) -> AsyncIterator[AccessService]:
    yield build_access(engine, clock, frozenset({RESIDENCE, REGISTRATION}), audit_files=audit_files)


@pytest.fixture
async def unthrottled(engine, clock, audit_files) -> AsyncIterator[AccessService]:
    """The account lock alone, without the address throttles in front of it (the tests of the lock)."""
    from gateway.access.service import SignInPolicy
    from gateway.adapters.sql.account_store import SqlAccountStore
    from gateway.adapters.sql.audit_store import SqlAuditTrail

    yield AccessService(SqlAccountStore(engine), SqlAuditTrail(engine, clock, audit_files), clock,
                        hosted_townships=frozenset({RESIDENCE, REGISTRATION}), policy=SignInPolicy(throttle=None))


@pytest.fixture
def counting_hasher():
    from tests.access.helpers import counting_verifies

    with counting_verifies() as hasher:
        yield hasher
