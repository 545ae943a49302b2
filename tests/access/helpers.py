"""Signing in from tests: make a user in the gateway's account database and get a token or a client.

    token = await bearer_token(gateway, Role.CLERK, RESIDENCE)
    async with signed_in_client(gateway, Role.CLERK, RESIDENCE) as http: ...
    async with browser_client(gateway, Role.CLERK, RESIDENCE) as (http, csrf): ...  # cookie session

A gateway built on the in-memory fakes has no database; ``ensure_access`` gives it an account
database of its own (SQLite in a temporary folder), so the fakes' tests can sign in too.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import tempfile
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Literal

import httpx
from argon2 import PasswordHasher, Type

from gateway.access import passwords, totp
from gateway.access.audit_files import AuditFiles
from gateway.access.principal import Role
from gateway.access.service import AccessService
from gateway.adapters.sql.engine import create_engine, create_schema
from gateway.api.app import create_app
from gateway.bootstrap import Gateway, build_access

PASSWORD = "Correct-Horse-42"
# Argon2id still, with the smallest cost: production's 64 MiB x 3 passes take over a second per hash
# on the test machine's shared cores. test_sign_in checks the production parameters separately.
TEST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1, type=Type.ID)
passwords.use_hasher(TEST_HASHER)


class CountingHasher(PasswordHasher):
    """The tests' Argon2id, counting its verifies: the lock race counts how many passwords were checked."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1, type=Type.ID)
        self.calls = 0
        self._lock = threading.Lock()  # verifies run in threads

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        with self._lock:
            self.calls += 1
        return super().verify(hash, password)


@contextlib.contextmanager
def counting_verifies() -> Iterator[CountingHasher]:
    hasher = CountingHasher()
    passwords.use_hasher(hasher)
    try:
        yield hasher
    finally:
        passwords.use_hasher(TEST_HASHER)
_names = itertools.count(1)


async def ensure_access(gateway: Gateway) -> AccessService:
    if gateway.access is None:
        folder = Path(tempfile.mkdtemp(prefix="gw-access-"))
        engine = create_engine(f"sqlite+aiosqlite:///{folder / 'accounts.db'}")
        await create_schema(engine)
        gateway.access = build_access(engine, gateway.clock, frozenset(gateway.service.nodes),
                                      audit_files=AuditFiles.in_folder(folder))
    return gateway.access


async def add_user(gateway: Gateway, role: Role, scope: str = "", *, username: str | None = None,
                   password: str = PASSWORD) -> tuple[str, str | None]:
    """Create a user; returns (username, TOTP secret or None)."""
    access = await ensure_access(gateway)
    username = username or f"{role.value}{next(_names)}"
    new = await access.add_user(username, role, scope, password, actor="cli")
    return username, new.user.totp_secret


def current_otp(gateway: Gateway, secret: str | None) -> str:
    return totp.code_at(secret, gateway.clock.now()) if secret else ""


async def bearer_token(gateway: Gateway, role: Role, scope: str = "", *, username: str | None = None) -> str:
    """A fresh user of ``role`` signed in; its bearer token."""
    access = await ensure_access(gateway)
    name, secret = await add_user(gateway, role, scope, username=username)
    signed = await access.sign_in(name, PASSWORD, current_otp(gateway, secret), source="test")
    return signed.token


@contextlib.asynccontextmanager
async def signed_in_client(gateway: Gateway, role: Role, scope: str = "", *, base_url: str = "http://gw",
                           app: object | None = None, timeout: float = 5.0) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on ``create_app(gateway)`` (or ``app``) sending a new user's bearer token."""
    token = await bearer_token(gateway, role, scope)
    transport = httpx.ASGITransport(app=app or create_app(gateway))  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url=base_url, timeout=timeout,
                                 headers={"Authorization": f"Bearer {token}"}) as http:
        yield http


def login_csrf(http: httpx.AsyncClient) -> str:
    """The pre-session CSRF token: the double-submit cookie the /login page sets (or one we set)."""
    token = http.cookies.get("gw_login_csrf")
    if token is None:
        token = "test-login-csrf-token"
        http.cookies.set("gw_login_csrf", token)
    return token


@contextlib.asynccontextmanager
async def browser_client(gateway: Gateway, role: Role, scope: str = "", *, base_url: str = "https://gw",
                         app: object | None = None) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """A client signed in through ``POST /login`` (session cookie); yields it and its CSRF token."""
    name, secret = await add_user(gateway, role, scope)
    transport = httpx.ASGITransport(app=app or create_app(gateway))  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url=base_url) as http:
        response = await http.post("/login", data={
            "username": name, "password": PASSWORD, "otp": current_otp(gateway, secret),
            "csrf_token": login_csrf(http), "next": "/",
        })
        assert response.status_code == 303 and response.headers["location"] == "/", response.headers
        session = http.cookies.get("gw_session")
        assert session, "no session cookie after signing in"
        from gateway.access.csrf import session_csrf

        yield http, session_csrf(session)


def location_error(response: httpx.Response) -> str | None:
    match = re.search(r"[?&]error=([a-z_]+)", response.headers.get("location", ""))
    return match.group(1) if match else None
