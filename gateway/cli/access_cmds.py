"""`gateway users …`, `gateway tokens …`, `gateway audit …`: accounts, API tokens and the audit trail.

They run on the gateway's database (GATEWAY_DATABASE_URL, or the embedded default), migrated first.
Whoever can run these commands on the gateway's host already holds the database, so the command line
needs no sign-in: that is how the first admin is made on an empty database. Every change is audited
under ``cli:<operating-system user>``.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from typing import Annotated, TypeVar

import typer

from gateway.access.audit import RETENTION
from gateway.access.audit_files import AuditFileError
from gateway.access.principal import Role
from gateway.access.service import AccessService, InvalidAccount, NoSuchUser, UserExists
from gateway.cli.shown import echo_line

users_app = typer.Typer(no_args_is_help=True, help="Accounts: clerks, supervisors, operators, auditors, admins.")
tokens_app = typer.Typer(no_args_is_help=True, help="Long-lived API tokens for other systems.")
audit_app = typer.Typer(no_args_is_help=True, help="The audit trail: list, verify, prune.")

T = TypeVar("T")

PasswordStdin = Annotated[bool, typer.Option("--password-stdin", help="Read the password from standard input.")]


def actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"[:64]
    except Exception:  # no user name (some containers): still recorded as the command line
        return "cli"


def run(work: Callable[[AccessService], Awaitable[T]]) -> T:
    async def main() -> T:
        from gateway.adapters.sql.direct_pg import dispose
        from gateway.adapters.sql.engine import create_engine, create_schema
        from gateway.bootstrap import build_access
        from gateway.clock import SystemClock
        from gateway.settings import Settings

        settings = Settings()
        engine = create_engine(settings.resolved_database_url)
        try:
            await create_schema(engine)
            hosted = frozenset(settings.nodes) if settings.nodes else None
            access = build_access(engine, SystemClock(), hosted, settings=settings)
            try:
                await access.seal_clear_totp_secrets()  # left in clear by an earlier release
                return await work(access)
            finally:
                await access.audit.aclose()  # the head this command wrote, into the checkpoint file
        finally:
            await dispose(engine)

    try:
        return asyncio.run(main())
    except (InvalidAccount, UserExists, NoSuchUser, ValueError, AuditFileError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


def record_cli_event(action: str, *, object_id: str = "", township: str = "", result: str = "ok", detail: str = "") -> bool:
    """Audit a change made by another command (keys): when this host has the gateway's database (set
    by GATEWAY_DATABASE_URL, or the embedded one already made by `gateway init`). The key authority's
    own machine has none; its changes reach the gateways as the signed directory."""
    from gateway.access.audit import AuditEntry
    from gateway.settings import Settings

    settings = Settings()
    if settings.database_url is None and not (settings.data_dir / "gateway.db").exists():
        return False
    run(lambda access: access.audit.record(AuditEntry(action, actor(), "", "cli", object_id=object_id,
                                                      township=township, result=result, detail=detail)))
    return True


def read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return typer.prompt("password", hide_input=True, confirmation_prompt=True)


@users_app.command("add")
def users_add(
    username: str,
    role: Annotated[Role, typer.Option("--role", help="clerk, supervisor, operator, auditor or admin")],
    password_stdin: PasswordStdin = False,
    scope: Annotated[str, typer.Option("--scope", help="clerk: 9-digit township; supervisor: 2/4/6-digit prefix")] = "",
) -> None:
    """Add an account. Operators, auditors and admins get a TOTP secret: its otpauth URI is printed once."""
    password = read_password(password_stdin)
    new = run(lambda access: access.add_user(username, role, scope, password, actor=actor()))
    typer.echo(f"added {new.user.username}: {new.user.role.value}" + (f" {new.user.scope}" if new.user.scope else ""))
    if new.otpauth_uri:
        typer.echo("second factor: add this to an authenticator app now; it is not shown again:")
        typer.echo(new.otpauth_uri)


@users_app.command("list")
def users_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every account: role, scope, state (active, disabled, locked until …)."""
    now = datetime.now(timezone.utc)
    rows = run(lambda access: access.store.list_users())
    for u in rows:
        state = "disabled" if u.disabled else (f"locked until {u.locked_until.isoformat()}" if u.locked_at(now) else "active")
        if as_json:
            typer.echo(json.dumps({"username": u.username, "role": u.role.value, "scope": u.scope, "state": state,
                                   "second_factor": u.totp_secret is not None, "created_at": u.created_at.isoformat()}))
        else:
            echo_line(f"{u.username:24} {u.role.value:10} {u.scope or '-':9} {state}")


@users_app.command("disable")
def users_disable(username: str) -> None:
    """Refuse the account's sign-ins and revoke its sessions and tokens."""
    run(lambda access: access.set_disabled(username, True, actor=actor()))
    typer.echo(f"disabled {username}")


@users_app.command("enable")
def users_enable(username: str) -> None:
    run(lambda access: access.set_disabled(username, False, actor=actor()))
    typer.echo(f"enabled {username}")


@users_app.command("reset-password")
def users_reset_password(username: str, password_stdin: PasswordStdin = False) -> None:
    """Set a new password; clears a lock and revokes the account's sessions and tokens."""
    password = read_password(password_stdin)
    run(lambda access: access.reset_password(username, password, actor=actor()))
    typer.echo(f"password of {username} reset")


@users_app.command("unlock")
def users_unlock(username: str) -> None:
    """Lift a sign-in lock now (the way back in for a locked admin); audited. The password stays."""
    run(lambda access: access.unlock(username, actor=actor()))
    typer.echo(f"unlocked {username}")


@users_app.command("remove")
def users_remove(username: str) -> None:
    """Remove the account and its credentials (its audit records stay)."""
    run(lambda access: access.remove_user(username, actor=actor()))
    typer.echo(f"removed {username}")


@tokens_app.command("issue")
def tokens_issue(
    username: str,
    days: Annotated[int, typer.Option("--days", help="valid for this many days (1 to 366)")],
    label: Annotated[str, typer.Option("--label", help="what the token is for")] = "",
) -> None:
    """Issue an API token for USERNAME; printed once, stored only as its SHA-256."""
    token_id, token = run(lambda access: access.issue_token(username, days, actor=actor(), label=label))
    typer.echo(f"token {token_id} for {username}, valid {days} days (shown once):")
    typer.echo(token)


@tokens_app.command("list")
def tokens_list(username: Annotated[str | None, typer.Argument()] = None) -> None:
    rows = run(lambda access: access.list_tokens(username))
    for t in rows:
        state = f"revoked {t.revoked_at.isoformat()}" if t.revoked_at else f"expires {t.expires_at.isoformat() if t.expires_at else '-'}"
        echo_line(f"{t.id:6} {t.username:24} {t.label or '-':16} last used {t.last_used_at.isoformat()}  {state}")


@tokens_app.command("revoke")
def tokens_revoke(token_id: int) -> None:
    run(lambda access: access.revoke_token(token_id, actor=actor()))
    typer.echo(f"revoked token {token_id}")


def _since(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        instant = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not an ISO 8601 date or instant") from None
    return instant if instant.tzinfo else instant.replace(tzinfo=timezone.utc)


@audit_app.command("list")
def audit_list(
    user: Annotated[str | None, typer.Option("--user", help="only this user's records")] = None,
    since: Annotated[str | None, typer.Option("--since", help="ISO 8601 date or instant (UTC if no offset)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
) -> None:
    """The audit records in order: instant, user, role, source, action, object, township, result."""
    since_at = _since(since)

    async def collect(access: AccessService) -> list:
        return [r async for r in access.audit.records(username=user, since=since_at)]

    for r in run(collect):
        if as_json:
            typer.echo(json.dumps(r.as_json(), ensure_ascii=False))
        else:
            echo_line(f"{r.seq:8} {r.at} {r.username or '-'} {r.role or '-'} {r.source or '-'} {r.action} "
                       f"{r.object_id or '-'} {r.township or '-'} {r.result}" + (f" ({r.detail})" if r.detail else ""))


@audit_app.command("verify")
def audit_verify() -> None:
    """Exit 0 printing `ok: N records` when the chain is intact, 1 with the first broken link otherwise.

    Checked: every record's HMAC under the audit key, its link to the one before, the anchor against
    the prune record that left it, and the chain against the head checkpoint kept outside the database."""
    report = run(lambda access: access.audit.verification())
    if report.broken is not None:
        typer.echo(f"broken: {report.broken}")
        chain = (f"seq {report.anchor_seq} to {report.head_seq}, {report.records} records" if report.records
                 else f"no records (from seq {report.anchor_seq})")
        checkpoint = f"seq {report.checkpoint_seq}" if report.checkpoint_seq is not None else "none"
        typer.echo(f"chain: {chain}; checkpoint: {checkpoint}")
        raise typer.Exit(1)
    typer.echo(f"ok: {report.records} records")


@audit_app.command("prune")
def audit_prune(
    older_than_days: Annotated[int, typer.Option("--older-than-days", min=RETENTION.days,
                                                 help=f"delete records older than this (at least {RETENTION.days})")],
) -> None:
    """Delete records older than the retention; the prune itself is recorded."""
    deleted = run(lambda access: access.audit.prune(timedelta(days=older_than_days), username=actor(), role="", source="cli"))
    typer.echo(f"pruned {deleted} records older than {older_than_days} days")


__all__ = ["users_app", "tokens_app", "audit_app"]
