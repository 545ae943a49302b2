"""Sign-in, sessions, API tokens and account changes: the rules, over the account store and the audit
trail, on the gateway's clock (so lock-out and idle expiry are tested with a fake one)."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import ipaddress
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.access import passwords, totp
from gateway.access.audit import Action, AuditEntry
from gateway.access.principal import SCOPE_LENGTHS, Principal, Role
from gateway.access.text import printable
from gateway.access.throttle import SignInThrottle, ThrottleLimits, Throttled, Ticket
from gateway.access.totp_sealing import SealError, TotpSealer, is_sealed
from gateway.adapters.sql.account_store import Claim, NoSuchUser, SqlAccountStore, TokenRow, UserExists, UserRow
from gateway.adapters.sql.audit_store import SqlAuditTrail
from gateway.clock import Clock

log = logging.getLogger(__name__)
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_FAILURES = 5
LOCK_FOR = timedelta(minutes=15)
SESSION_IDLE = timedelta(minutes=30)
SESSION_LIFETIME = timedelta(hours=12)
SECOND_FACTOR_ROLES = frozenset({Role.OPERATOR, Role.AUDITOR, Role.ADMIN})

__all__ = ["AccessService", "SignInRefused", "SignedIn", "Identity", "NewUser", "UserExists", "NoSuchUser",
           "InvalidAccount", "SignInPolicy", "Throttled"]


@dataclass(frozen=True)
class SignInPolicy:
    """The numbers of sign-in (settings ``GATEWAY_SIGN_IN_*`` and ``GATEWAY_SESSION_MAX_HOURS``)."""

    max_failures: int = MAX_FAILURES  # attempts without a sign-in before the account locks
    lock_for: timedelta = LOCK_FOR
    session_idle: timedelta = SESSION_IDLE
    session_lifetime: timedelta = SESSION_LIFETIME  # a session ends this long after sign-in, however used
    throttle: ThrottleLimits | None = ThrottleLimits()  # None: no throttle (tests of the account lock alone)
    # Where operators, auditors and admins may sign in from (empty: anywhere). From elsewhere their
    # attempts check and count nothing, so an outsider can neither guess nor lock those accounts.
    admin_networks: tuple[IPNetwork, ...] = ()

    def admits_admin_from(self, source: str) -> bool:
        if not self.admin_networks:
            return True
        try:
            address = ipaddress.ip_address(source)
        except ValueError:
            return False  # not an address (no peer): not one of the networks
        return any(address in network for network in self.admin_networks)


class SignInRefused(Exception):
    """Why a sign-in failed, as one of the codes the /login page renders."""

    CODES = ("bad_credentials", "locked", "otp_required", "otp_wrong", "disabled",
             # through the identity provider (gateway/access/oidc.py)
             "oidc_failed", "oidc_role", "oidc_scope", "oidc_second_factor", "oidc_username")

    def __init__(self, code: str, reason: str = "") -> None:
        assert code in self.CODES
        super().__init__(code)
        self.code = code
        self.reason = reason  # for the audit trail and the log: never a personal value


@dataclass(frozen=True)
class Identity:
    """Who the identity provider says signed in, its claims already mapped (gateway/access/oidc.py)."""

    issuer: str
    subject: str
    username: str
    role: Role
    scope: str


class InvalidAccount(ValueError):
    """A bad role, scope or password for a new or changed account; the message says which."""


@dataclass(frozen=True)
class SignedIn:
    principal: Principal
    token: str  # shown once: the database keeps only its SHA-256
    expires_in: int  # seconds of idleness after which the session ends


@dataclass(frozen=True)
class NewUser:
    user: UserRow
    otpauth_uri: str | None  # printed once by `gateway users add`


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class AccessService:
    def __init__(self, store: SqlAccountStore, audit: SqlAuditTrail, clock: Clock, *,
                 hosted_townships: frozenset[str] | None = None, policy: SignInPolicy | None = None,
                 sealer: TotpSealer | None = None) -> None:
        self.store = store
        self.audit = audit
        self.clock = clock
        self.hosted_townships = hosted_townships  # a clerk's township must be one of them (None: any)
        self.policy = policy or SignInPolicy()
        self.throttle = SignInThrottle(self.policy.throttle) if self.policy.throttle is not None else None
        self.sealer = sealer or TotpSealer.ephemeral()

    # -- signing in -------------------------------------------------------------------------------

    async def sign_in(self, username: str, password: str, otp: str = "", *, source: str) -> SignedIn:
        """Sign in, or raise ``SignInRefused`` (or ``Throttled``: too many attempts from ``source``).

        Every refusal before the password is known to be right answers ``bad_credentials``, for a
        known name and an unknown one, locked or not, the right password included while locked: the
        answer tells an attacker nothing. The audit trail records what really happened."""
        now = self.clock.now()
        ticket = (self.throttle.admit(source, username, now, elapsed_s=time.monotonic())
                  if self.throttle is not None else None)
        try:
            signed = await self._check(username, password, otp, source=source, now=now, ticket=ticket)
        finally:
            if ticket is not None:
                ticket.done()
        return signed

    async def _check(self, username: str, password: str, otp: str, *, source: str, now: datetime,
                     ticket: Ticket | None) -> SignedIn:
        policy = self.policy
        user = await self.store.get_user(username)
        shown = printable(username)  # as tried, escaped: never a control character in the trail

        async def refuse(code: str, *, answer: str | None = None, extra: list[AuditEntry] | None = None,
                         detail: str = "") -> SignInRefused:
            entries = [AuditEntry(Action.SIGN_IN, shown, user.role.value if user else "", source, result=code,
                                  detail=detail)]
            await self.audit.record_many(entries + (extra or []))
            return SignInRefused(answer or code)

        if user is not None and user.role in SECOND_FACTOR_ROLES and not policy.admits_admin_from(source):
            await asyncio.sleep(passwords.typical_verify_seconds())  # answered like a checked wrong password
            raise await refuse("outside_networks", answer="bad_credentials",
                               detail="source outside GATEWAY_SIGN_IN_ADMIN_NETWORKS")
        locked_now: list[AuditEntry] = []
        if user is not None:
            # The attempt is claimed before its password is checked: one conditional UPDATE, so of
            # any number of concurrent attempts at most ``max_failures`` are verified per lock window.
            claim = await self.store.claim_attempt(user.id, now, limit=policy.max_failures, lock_for=policy.lock_for)
            if claim is Claim.REFUSED:
                # Locked: no password is checked, but the answer takes as long as a check would.
                await asyncio.sleep(passwords.typical_verify_seconds())
                raise await refuse("locked", answer="bad_credentials")
            if claim is Claim.LAST:
                locked_now.append(AuditEntry(
                    Action.ACCOUNT_LOCKED, shown, user.role.value, source, object_id=shown, result="locked",
                    detail=f"{policy.max_failures} attempts without a sign-in; locked for {policy.lock_for}"))
        if not await passwords.verify_password(user.password_hash if user else None, password):
            raise await refuse("bad_credentials", extra=locked_now)
        assert user is not None
        if user.disabled:
            raise await refuse("disabled", extra=locked_now)
        if user.role in SECOND_FACTOR_ROLES:
            # The claim stays counted: the answer ``otp_required`` tells that the password was right,
            # so these attempts are limited like any other.
            if not otp.strip():
                raise await refuse("otp_required", extra=locked_now)
            unreadable = ""
            try:
                secret = self.sealer.open(user.totp_secret, user.username) if user.totp_secret else None
            except SealError as exc:
                # Another passphrase or a lost key file: the operator must see why codes stopped working.
                log.error("the TOTP secret of %s does not open: %s", user.username, exc)
                secret, unreadable = None, str(exc)[:500]
            step = totp.matching_step(secret, otp, now) if secret else None
            if step is None or not await self.store.use_totp_step(user.id, step):
                raise await refuse("otp_wrong", extra=locked_now, detail=unreadable)
        await self.store.record_success(user.id)
        if ticket is not None:
            ticket.succeeded()  # a success does not count against its address
        return await self._open_session(user, source)

    async def _open_session(self, user: UserRow, source: str, *, detail: str = "") -> SignedIn:
        """The one way a sign-in ends, by password or through the identity provider: a new session."""
        token = secrets.token_urlsafe(32)
        credential_id = await self.store.create_credential(user.id, "session", token_sha256(token), self.clock.now())
        principal = Principal(user.username, user.role, user.scope, session_id=str(credential_id))
        await self.audit.record(AuditEntry(Action.SIGN_IN, user.username, user.role.value, source,
                                           object_id=str(credential_id), detail=detail))
        return SignedIn(principal, token, int(self.policy.session_idle.total_seconds()))

    async def sign_in_identity(self, identity: Identity, *, source: str) -> SignedIn:
        """Sign in someone the identity provider vouched for (its second factor already checked).

        The account is made on the first sign-in and linked to the issuer and subject; each sign-in
        sets its role and scope to the claims, so the provider stays the authority. A local
        administrator can still disable it (``gateway users disable``)."""
        via = f"oidc {identity.issuer}"[:200]
        try:
            scope = self.check_scope(identity.role, identity.scope)
        except InvalidAccount as exc:
            raise await self.refuse_identity(identity.username, "oidc_scope", f"{via}: {exc}", source) from None
        try:
            user = await self.store.upsert_oidc_user(identity.issuer, identity.subject, identity.username,
                                                     identity.role, scope, self.clock.now())
        except UserExists:
            raise await self.refuse_identity(identity.username, "oidc_username",
                                             f"{via}: the name belongs to another account", source) from None
        if user.disabled:
            raise await self.refuse_identity(user.username, "disabled", via, source, role=user.role.value)
        return await self._open_session(user, source, detail=via)

    async def refuse_identity(self, username: str, code: str, reason: str, source: str, *, role: str = "") -> SignInRefused:
        """Record a refused sign-in through the identity provider; the exception to raise."""
        await self.audit.record(AuditEntry(Action.SIGN_IN, printable(username), role, source, result=code,
                                           detail=printable(reason, 500)))
        return SignInRefused(code, reason)

    async def authenticate(self, token: str) -> Principal | None:
        return await self.store.use_credential(token_sha256(token), self.clock.now(), idle=self.policy.session_idle,
                                               lifetime=self.policy.session_lifetime)

    async def sign_out(self, token: str, principal: Principal, *, source: str) -> None:
        await self.store.revoke_credential(token_sha256(token), self.clock.now())
        await self.audit.record(AuditEntry(Action.SIGN_OUT, principal.username, principal.role.value, source,
                                           object_id=principal.session_id or ""))

    # -- accounts (the CLI, as an administrator or on an empty database) --------------------------

    def check_scope(self, role: Role, scope: str) -> str:
        scope = scope.strip()
        lengths = SCOPE_LENGTHS[role]
        if len(scope) not in lengths or (scope and not scope.isdigit()):
            want = " or ".join(f"a {n}-digit" for n in sorted(lengths) if n) or "no"
            raise InvalidAccount(f"a {role.value} takes {want} --scope")
        if role is Role.CLERK and self.hosted_townships is not None and scope not in self.hosted_townships:
            raise InvalidAccount(f"township {scope} is not hosted by this gateway")
        return scope

    async def add_user(self, username: str, role: Role, scope: str, password: str, *, actor: str, source: str = "cli") -> NewUser:
        if not username or len(username) > 64 or not all(c.isalnum() or c in "._-@" for c in username):
            raise InvalidAccount("a username is 1 to 64 letters, digits or . _ - @")
        scope = self.check_scope(role, scope)
        try:
            password_hash = passwords.hash_password(password)
        except passwords.WeakPassword as exc:
            raise InvalidAccount(str(exc)) from None
        secret = totp.new_secret() if role in SECOND_FACTOR_ROLES else None
        sealed = self.sealer.seal(secret, username) if secret else None
        user = await self.store.add_user(username, role, scope, password_hash, sealed, self.clock.now())
        await self._audit_account(Action.USER_ADD, actor, source, username, detail=f"role {role.value} scope {scope or '-'}")
        # The caller sees the secret in clear once (as the otpauth URI); the database holds it sealed.
        return NewUser(dataclasses.replace(user, totp_secret=secret), totp.provisioning_uri(secret, username) if secret else None)

    async def unlock(self, username: str, *, actor: str, source: str = "cli") -> None:
        """Lift a lock and forget the failures (the way back in for a locked admin: ``gateway users unlock``)."""
        await self.store.unlock(username)
        if self.throttle is not None:
            self.throttle.clear(username)
        await self._audit_account(Action.USER_UNLOCK, actor, source, username)

    async def seal_clear_totp_secrets(self) -> int:
        """Seal the TOTP secrets an earlier release stored in clear; how many were sealed."""
        sealed = 0
        for user in await self.store.list_users():
            if user.totp_secret and not is_sealed(user.totp_secret):
                try:
                    value = self.sealer.seal(user.totp_secret, user.username)
                except OSError as exc:  # the key file cannot be made here (another user, read-only)
                    log.warning("TOTP secrets left in clear: %s", exc)
                    return sealed
                if await self.store.replace_totp_secret(user.id, user.totp_secret, value):
                    sealed += 1
        return sealed

    async def set_disabled(self, username: str, disabled: bool, *, actor: str, source: str = "cli") -> None:
        await self.store.set_disabled(username, disabled, self.clock.now())
        await self._audit_account(Action.USER_DISABLE if disabled else Action.USER_ENABLE, actor, source, username)

    async def reset_password(self, username: str, password: str, *, actor: str, source: str = "cli") -> None:
        try:
            password_hash = passwords.hash_password(password)
        except passwords.WeakPassword as exc:
            raise InvalidAccount(str(exc)) from None
        await self.store.set_password(username, password_hash, self.clock.now())
        await self._audit_account(Action.USER_RESET_PASSWORD, actor, source, username)

    async def remove_user(self, username: str, *, actor: str, source: str = "cli") -> None:
        await self.store.remove_user(username)
        await self._audit_account(Action.USER_REMOVE, actor, source, username)

    async def issue_token(self, username: str, days: int, *, actor: str, source: str = "cli", label: str = "") -> tuple[int, str]:
        if not 1 <= days <= 366:
            raise InvalidAccount("--days is 1 to 366")
        user = await self.store.get_user(username)
        if user is None:
            raise NoSuchUser(f"no user {username!r}")
        if user.disabled:
            raise InvalidAccount(f"user {username!r} is disabled")
        now = self.clock.now()
        token = secrets.token_urlsafe(32)
        token_id = await self.store.create_credential(user.id, "api", token_sha256(token), now,
                                                      expires_at=now + timedelta(days=days), label=label[:64])
        await self._audit_account(Action.TOKEN_ISSUE, actor, source, username, detail=f"token {token_id}, {days} days")
        return token_id, token

    async def revoke_token(self, token_id: int, *, actor: str, source: str = "cli") -> None:
        owner = await self.store.revoke_token_id(token_id, self.clock.now())
        if owner is None:
            raise NoSuchUser(f"no live token {token_id}")
        await self._audit_account(Action.TOKEN_REVOKE, actor, source, owner, detail=f"token {token_id}")

    async def list_tokens(self, username: str | None = None) -> list[TokenRow]:
        return await self.store.list_tokens(username)

    async def _audit_account(self, action: str, actor: str, source: str, username: str, *, detail: str = "") -> None:
        actor_row = None if actor.startswith("cli") or actor == "demo" else await self.store.get_user(actor)
        await self.audit.record(AuditEntry(action, actor, actor_row.role.value if actor_row else "", source,
                                           object_id=username, detail=detail))
