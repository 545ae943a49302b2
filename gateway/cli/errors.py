"""One line for an operator when a `gateway` command cannot do its job: what is wrong and how to fix it.

Every command runs inside ``GatewayGroup.invoke``: a misconfiguration, an unreachable database or
broker, or a missing key ends the command with that line on stderr and a non-zero exit (2: fix the
configuration; 3: a service does not answer; 1: anything else), never a traceback unless the global
``--debug`` option asks for one.
"""

from __future__ import annotations

import re
from types import TracebackType

import click
import typer
from typer.core import TyperGroup

CONFIGURATION = 2
UNREACHABLE = 3
OTHER = 1

_DATABASE_MODULES = ("sqlalchemy", "asyncpg", "aiosqlite", "sqlite3", "alembic", "gateway.adapters.sql")
_BROKER_MODULES = ("aio_pika", "aiormq", "pamqp", "gateway.adapters.amqp")


class GatewayGroup(TyperGroup):
    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except (typer.Exit, click.exceptions.Exit, click.ClickException, click.Abort, KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:
            if ctx.params.get("debug"):
                raise
            line, code = explain(exc)
            typer.echo(line, err=True)
            raise typer.Exit(code) from None


def explain(exc: BaseException) -> tuple[str, int]:
    """The operator's line for an error, and the exit code."""
    from pydantic import ValidationError

    from gateway.node_setup import SetupError
    from gateway.security.keys import KeyFileError

    from gateway.adapters.amqp import BrokerRightsMissing

    if isinstance(exc, (SetupError, KeyFileError)):
        return _one_line(str(exc)), CONFIGURATION
    if isinstance(exc, BrokerRightsMissing):  # the broker answered: it refused a right, it is not unreachable
        return _one_line(str(exc)), OTHER
    if isinstance(exc, ValidationError):
        problems = "; ".join(
            f"GATEWAY_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors(include_url=False)
        )
        return _one_line(f"configuration error: {problems}; fix the variable (environment or gateway.env)"), CONFIGURATION
    origin = _origin(exc)
    cause = _one_line(_root_cause(exc), 200)
    if origin == "database":
        return (f"cannot reach the database {_database_url()}: {cause}; check GATEWAY_DATABASE_URL and that the "
                "database server is running (PostgreSQL: pg_ctlcluster … main start)"), UNREACHABLE
    if origin == "broker":
        return (f"cannot reach RabbitMQ at {_amqp_url()}: {cause}; check GATEWAY_AMQP_URL and that the broker "
                "is running (rabbitmq-server -detached)"), UNREACHABLE
    return f"error: {type(exc).__name__}: {cause} (run `gateway --debug …` for the traceback)", OTHER


def _origin(exc: BaseException) -> str | None:
    """Which service an error came from, by the modules its traceback (or its causes') went through."""
    import aiormq.exceptions
    import sqlalchemy.exc

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, sqlalchemy.exc.SQLAlchemyError):
            return "database"
        if isinstance(current, aiormq.exceptions.AMQPError):
            return "broker"
        modules = _modules(current.__traceback__)
        if any(m.startswith(_BROKER_MODULES) for m in modules):
            return "broker"
        if any(m.startswith(_DATABASE_MODULES) for m in modules):
            return "database"
        current = current.__cause__ or current.__context__
    return None


def _modules(tb: TracebackType | None) -> list[str]:
    out = []
    while tb is not None:
        out.append(str(tb.tb_frame.f_globals.get("__name__", "")))
        tb = tb.tb_next
    return out


def _root_cause(exc: BaseException) -> str:
    current, seen = exc, set()
    while (current.__cause__ or current.__context__) is not None and id(current) not in seen:
        seen.add(id(current))
        current = current.__cause__ or current.__context__  # type: ignore[assignment]
    text = str(current) or type(current).__name__
    return re.sub(r"\(Background on this error at: [^)]*\)", "", text)


def _one_line(text: str, limit: int = 400) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _database_url() -> str:
    try:
        from sqlalchemy.engine import make_url

        from gateway.settings import Settings

        return make_url(Settings().resolved_database_url).render_as_string(hide_password=True)
    except Exception:
        return "(GATEWAY_DATABASE_URL)"


def _amqp_url() -> str:
    try:
        from gateway.settings import Settings

        return re.sub(r"//([^:/@]*):[^@/]*@", r"//\1:***@", Settings().amqp_url)
    except Exception:
        return "(GATEWAY_AMQP_URL)"
