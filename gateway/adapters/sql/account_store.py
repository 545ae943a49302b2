"""Accounts and credentials on SQLAlchemy Core. Every decision two requests could race on is one
conditional UPDATE decided by the database: the claim of a sign-in attempt and the lock, the one-time
code's step, the idle expiry of a session (an expired session cannot be brought back by a late request)
and the move of a session's last use (once a minute at most, by one of any concurrent requests).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, bindparam, case, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.access.principal import Principal, Role
from gateway.adapters.sql.access_tables import credentials, users
from gateway.adapters.sql.engine import write_transaction
from gateway.adapters.sql.sqlite_inline import inline_reads, read_rows


# A credential's last use is written only when it is older than this: a request within it reads and
# writes nothing, so the idle time-out (30 minutes) ends a session 29 to 30 minutes after its last request.
TOUCH_AFTER = timedelta(minutes=1)


class UserExists(ValueError):
    pass


class NoSuchUser(LookupError):
    pass


class Claim(enum.Enum):
    """What the claim of a sign-in attempt decided."""

    GRANTED = "granted"  # check the password
    LAST = "last"  # check it: the last attempt of this window, which locked the account
    REFUSED = "refused"  # locked: check nothing


@dataclass(frozen=True)
class UserRow:
    id: int
    username: str
    role: Role
    scope: str
    password_hash: str
    totp_secret: str | None
    totp_last_step: int
    disabled: bool
    failed_attempts: int
    locked_until: datetime | None
    created_at: datetime

    def locked_at(self, now: datetime) -> bool:
        return self.locked_until is not None and _aware(self.locked_until) > now


@dataclass(frozen=True)
class TokenRow:
    id: int
    username: str
    kind: str
    label: str
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


def _aware(instant: datetime) -> datetime:
    # SQLite hands back naive datetimes for timezone-aware columns; they were stored in UTC.
    from datetime import timezone
    return instant if instant.tzinfo else instant.replace(tzinfo=timezone.utc)


def _user(row: object) -> UserRow:
    m = row._mapping  # type: ignore[attr-defined]
    return UserRow(
        id=int(m["id"]), username=m["username"], role=Role(m["role"]), scope=m["scope"], password_hash=m["password_hash"],
        totp_secret=m["totp_secret"], totp_last_step=int(m["totp_last_step"]), disabled=bool(m["disabled"]),
        failed_attempts=int(m["failed_attempts"]), locked_until=_aware(m["locked_until"]) if m["locked_until"] else None,
        created_at=_aware(m["created_at"]),
    )


def _live(now: datetime, idle: timedelta, lifetime: timedelta | None = None):  # type: ignore[no-untyped-def]
    """Not revoked, and a session used within ``idle`` (and younger than ``lifetime``) or an API token
    before its expiry."""
    session = and_(credentials.c.kind == "session", credentials.c.last_used_at > now - idle)
    if lifetime is not None:
        session = and_(session, credentials.c.created_at > now - lifetime)
    return and_(credentials.c.revoked_at.is_(None),
                or_(session, and_(credentials.c.kind == "api", credentials.c.expires_at > now)))


# A credential and its user, by the token's hash: the one statement an authenticated request runs.
_CREDENTIAL_OF_TOKEN = (
    select(credentials.c.id, credentials.c.kind, credentials.c.created_at, credentials.c.last_used_at,
           credentials.c.expires_at, credentials.c.revoked_at, users.c.username, users.c.role, users.c.scope, users.c.disabled)
    .join(users, users.c.id == credentials.c.user_id)
    .where(credentials.c.token_sha256 == bindparam("token"))
)


def _not_locked(now: datetime):  # type: ignore[no-untyped-def]
    return or_(users.c.locked_until.is_(None), users.c.locked_until <= now)


class SqlAccountStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        # Every authenticated request looks its credential up: on SQLite, on the loop's own thread.
        self._inline = inline_reads(engine)

    # -- accounts ---------------------------------------------------------------------------------

    async def add_user(self, username: str, role: Role, scope: str, password_hash: str, totp_secret: str | None,
                       now: datetime) -> UserRow:
        try:
            async with write_transaction(self.engine) as conn:
                await conn.execute(insert(users), {
                    "username": username, "role": role.value, "scope": scope, "password_hash": password_hash,
                    "totp_secret": totp_secret, "totp_last_step": 0, "disabled": False, "failed_attempts": 0,
                    "locked_until": None, "created_at": now, "password_changed_at": now,
                })
        except IntegrityError:
            raise UserExists(f"there is already a user {username!r}") from None
        found = await self.get_user(username)
        assert found is not None
        return found

    async def get_oidc_user(self, issuer: str, subject: str) -> UserRow | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(users).where(users.c.oidc_issuer == issuer,
                                                          users.c.oidc_subject == subject))).first()
        return _user(row) if row else None

    async def upsert_oidc_user(self, issuer: str, subject: str, username: str, role: Role, scope: str,
                               now: datetime) -> UserRow:
        """The account of an identity, made on its first sign-in, its role and scope set to what the
        identity provider says now. Of two first sign-ins at once the unique index keeps one account;
        the other finds it. ``UserExists`` when ``username`` belongs to another account."""
        values = {"role": role.value, "scope": scope}
        async with write_transaction(self.engine) as conn:
            updated = (await conn.execute(
                update(users).where(users.c.oidc_issuer == issuer, users.c.oidc_subject == subject)
                .values(**values).returning(users.c.id))).first()
        if updated is None:
            try:
                async with write_transaction(self.engine) as conn:
                    await conn.execute(insert(users), {
                        "username": username, **values,
                        "password_hash": "!oidc",  # not a PHC string: no password ever matches it
                        "totp_secret": None, "totp_last_step": 0, "disabled": False, "failed_attempts": 0,
                        "locked_until": None, "created_at": now, "password_changed_at": now,
                        "oidc_issuer": issuer, "oidc_subject": subject,
                    })
            except IntegrityError:
                if await self.get_oidc_user(issuer, subject) is None:
                    raise UserExists(f"there is already a user {username!r}") from None
                return await self.upsert_oidc_user(issuer, subject, username, role, scope, now)
        found = await self.get_oidc_user(issuer, subject)
        assert found is not None
        return found

    async def get_user(self, username: str) -> UserRow | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(users).where(users.c.username == username))).first()
        return _user(row) if row else None

    async def list_users(self) -> list[UserRow]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(users).order_by(users.c.username))).all()
        return [_user(r) for r in rows]

    async def count_users(self) -> int:
        return len(await self.list_users())

    async def _update_user(self, username: str, values: dict[str, object], *, revoke_at: datetime | None = None) -> None:
        async with write_transaction(self.engine) as conn:
            result = await conn.execute(update(users).where(users.c.username == username).values(**values)
                                        .returning(users.c.id))
            row = result.first()
            if row is None:
                raise NoSuchUser(f"no user {username!r}")
            if revoke_at is not None:
                await conn.execute(update(credentials)
                                   .where(credentials.c.user_id == row[0], credentials.c.revoked_at.is_(None))
                                   .values(revoked_at=revoke_at))

    async def set_disabled(self, username: str, disabled: bool, now: datetime) -> None:
        # Disabling signs the user out everywhere: every session and API token is revoked.
        await self._update_user(username, {"disabled": disabled}, revoke_at=now if disabled else None)

    async def set_password(self, username: str, password_hash: str, now: datetime) -> None:
        await self._update_user(username, {"password_hash": password_hash, "password_changed_at": now,
                                           "failed_attempts": 0, "locked_until": None}, revoke_at=now)

    async def remove_user(self, username: str) -> None:
        async with write_transaction(self.engine) as conn:
            row = (await conn.execute(select(users.c.id).where(users.c.username == username))).first()
            if row is None:
                raise NoSuchUser(f"no user {username!r}")
            await conn.execute(delete(credentials).where(credentials.c.user_id == row[0]))
            await conn.execute(delete(users).where(users.c.id == row[0]))

    # -- sign-in bookkeeping ----------------------------------------------------------------------

    async def claim_attempt(self, user_id: int, now: datetime, *, limit: int, lock_for: timedelta) -> Claim:
        """Claim one sign-in attempt before its password is checked, counted until a sign-in resets
        the count; the attempt that reaches ``limit`` locks the account (and restarts the count).
        One conditional UPDATE decided by the database: of any number of concurrent attempts at
        most ``limit`` are granted per lock window, the others find the account locked."""
        reaching = users.c.failed_attempts + 1 >= limit
        async with write_transaction(self.engine) as conn:
            row = (await conn.execute(
                update(users).where(users.c.id == user_id, _not_locked(now))
                .values(failed_attempts=case((reaching, 0), else_=users.c.failed_attempts + 1),
                        locked_until=case((reaching, now + lock_for), else_=users.c.locked_until))
                .returning(users.c.locked_until)
            )).first()
        if row is None:
            return Claim.REFUSED
        return Claim.LAST if row[0] is not None and _aware(row[0]) > now else Claim.GRANTED

    async def record_success(self, user_id: int) -> None:
        """A sign-in whose claim was granted succeeded: the count restarts and a lock its own or
        concurrent attempts set is lifted (the owner, with the password and code, is in)."""
        async with write_transaction(self.engine) as conn:
            await conn.execute(update(users).where(users.c.id == user_id).values(failed_attempts=0, locked_until=None))

    async def unlock(self, username: str) -> None:
        await self._update_user(username, {"failed_attempts": 0, "locked_until": None})

    async def replace_totp_secret(self, user_id: int, old: str, new: str) -> bool:
        """Replace a TOTP secret if it is still ``old`` (sealing one stored in clear, once)."""
        async with write_transaction(self.engine) as conn:
            result = await conn.execute(update(users).where(users.c.id == user_id, users.c.totp_secret == old)
                                        .values(totp_secret=new))
        return (result.rowcount or 0) == 1

    async def use_totp_step(self, user_id: int, step: int) -> bool:
        """Claim a one-time code's time step; False when it (or a later one) was used already."""
        async with write_transaction(self.engine) as conn:
            result = await conn.execute(update(users).where(users.c.id == user_id, users.c.totp_last_step < step)
                                        .values(totp_last_step=step))
        return (result.rowcount or 0) == 1

    # -- sessions and API tokens ------------------------------------------------------------------

    async def create_credential(self, user_id: int, kind: str, token_sha256: str, now: datetime, *,
                                expires_at: datetime | None = None, label: str = "") -> int:
        async with write_transaction(self.engine) as conn:
            result = await conn.execute(insert(credentials).returning(credentials.c.id), {
                "token_sha256": token_sha256, "user_id": user_id, "kind": kind, "label": label, "created_at": now,
                "last_used_at": now, "expires_at": expires_at, "revoked_at": None,
            })
            return int(result.scalar_one())

    async def use_credential(self, token_sha256: str, now: datetime, *, idle: timedelta,
                             lifetime: timedelta | None = None, touch_after: timedelta = TOUCH_AFTER) -> Principal | None:
        """The principal of a live credential; None when unknown, revoked, expired (a session idle for
        longer than ``idle`` or older than ``lifetime``, a token past its date) or its user disabled.

        One read decides, so revocation, sign-out and disabling take effect on the next request. The
        last use is written only when it is older than ``touch_after``: the idle time-out needs no
        finer clock, and most requests then write nothing. That write is conditional
        (``touch_credential``): of concurrent requests one moves it, and a credential revoked or
        ended meanwhile is not brought back."""
        rows = await read_rows(self._inline, self.engine, _CREDENTIAL_OF_TOKEN, {"token": token_sha256})
        row = rows[0] if rows else None
        if row is None or row.revoked_at is not None or row.disabled:
            return None
        last_used = _aware(row.last_used_at)
        if row.kind == "session":
            if last_used <= now - idle:
                await self._end_idle_session(token_sha256, now, idle)
                return None
            if lifetime is not None and _aware(row.created_at) <= now - lifetime:
                # Past its absolute lifetime, however busy: ended for good, like an idle one.
                await self.revoke_credential(token_sha256, now)
                return None
        elif row.kind != "api" or row.expires_at is None or _aware(row.expires_at) <= now:
            return None
        if last_used < now - touch_after and not await self.touch_credential(int(row.id), now, idle, touch_after,
                                                                             lifetime=lifetime):
            return None
        return Principal(row.username, Role(row.role), row.scope, session_id=str(row.id))

    async def touch_credential(self, credential_id: int, now: datetime, idle: timedelta,
                               touch_after: timedelta = TOUCH_AFTER, *, lifetime: timedelta | None = None) -> bool:
        """Move a live credential's last use to ``now`` if it is older than ``touch_after``; False when
        the credential is no longer live (revoked, or ended, since it was read)."""
        live = and_(credentials.c.id == credential_id, _live(now, idle, lifetime))
        async with write_transaction(self.engine) as conn:
            # Only forwards, and only once per ``touch_after``: a concurrent request that read the same
            # stale value matches nothing here (on PostgreSQL it waits for the row lock, then re-reads).
            moved = await conn.execute(update(credentials)
                                       .where(live, credentials.c.last_used_at < now - touch_after)
                                       .values(last_used_at=now))
            if (moved.rowcount or 0) == 1:
                return True
            # Nothing moved: touched by a concurrent request (still live), or revoked since the read.
            return (await conn.execute(select(credentials.c.id).where(live))).first() is not None

    async def _end_idle_session(self, token_sha256: str, now: datetime, idle: timedelta) -> None:
        # Found idle too long: ended for good, so a slower request with an earlier clock reading
        # cannot find it still live and refresh it.
        async with write_transaction(self.engine) as conn:
            await conn.execute(update(credentials).where(
                credentials.c.token_sha256 == token_sha256, credentials.c.revoked_at.is_(None),
                credentials.c.kind == "session", credentials.c.last_used_at <= now - idle,
            ).values(revoked_at=now))

    async def revoke_credential(self, token_sha256: str, now: datetime) -> bool:
        async with write_transaction(self.engine) as conn:
            result = await conn.execute(update(credentials)
                                        .where(credentials.c.token_sha256 == token_sha256, credentials.c.revoked_at.is_(None))
                                        .values(revoked_at=now))
        return (result.rowcount or 0) == 1

    async def revoke_token_id(self, token_id: int, now: datetime) -> str | None:
        """Revoke by id (the CLI); the owner's username, or None when there is no such live token."""
        async with write_transaction(self.engine) as conn:
            row = (await conn.execute(update(credentials)
                                      .where(credentials.c.id == token_id, credentials.c.revoked_at.is_(None))
                                      .values(revoked_at=now).returning(credentials.c.user_id))).first()
            if row is None:
                return None
            return (await conn.execute(select(users.c.username).where(users.c.id == row[0]))).scalar_one()

    async def list_tokens(self, username: str | None = None, *, kind: str | None = "api") -> list[TokenRow]:
        query = (select(credentials, users.c.username).join(users, users.c.id == credentials.c.user_id)
                 .order_by(credentials.c.id))
        if username is not None:
            query = query.where(users.c.username == username)
        if kind is not None:
            query = query.where(credentials.c.kind == kind)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [TokenRow(int(m["id"]), m["username"], m["kind"], m["label"], _aware(m["created_at"]),
                         _aware(m["last_used_at"]), _aware(m["expires_at"]) if m["expires_at"] else None,
                         _aware(m["revoked_at"]) if m["revoked_at"] else None)
                for m in (r._mapping for r in rows)]
