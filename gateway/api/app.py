"""The HTTP API for township clerks (and, later, supervisors): submit, read the inbox, answer.

Request bodies are validated by the codec, not by FastAPI, so a clerk gets the codec's precise paths
(``query.person.citizen_id: check character should be 7``) in the usual 422 shape.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from enum import Enum
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from starlette.middleware.trustedhost import TrustedHostMiddleware

from gateway.access import oidc_routes
from gateway.access import routes as access_routes
from gateway.access.csrf import LoginCsrfCookie
from gateway.access.deps import check_routes, require
from gateway.access.permissions import Permission
from gateway.access.principal import Principal
from gateway.access.views import NodeView
from gateway.api import audit
from gateway.api import docs
from gateway.api import import_worker, imports, input_hygiene, limits
from gateway.api import operator
from gateway.api import pages
from gateway.api import regions
from gateway.api.bodies import FeedbackBody, NotificationBody, QueryBody
from gateway.api.security_headers import SecurityHeaders
from gateway.bootstrap import Gateway
from gateway.web import install_pages
from gateway.codec.errors import CodecError, FieldError
from gateway.exchange.errors import AlreadyAnswered, ExchangeError, InvalidRequest, UnknownMessage
from gateway.exchange.records import Direction, Status, StoredMessage
from gateway.tracking.serialization import CASE, REMINDER, TASK


class InboxStatus(str, Enum):
    RECEIVED = "received"  # awaiting this township's answer
    ANSWERED = "answered"


# Answers and withdrawals of this township's own messages (or of those it received): shown with those
# (their status says answered or withdrawn), not listed.
_FEEDBACK = frozenset({"feedback", "withdrawal"})


async def get_gateway(request: Request) -> Gateway:
    # async, as every dependency here: FastAPI runs a plain ``def`` dependency in a worker thread, a
    # thread hand-off per request for a function that only reads an attribute.
    return request.app.state.gateway


GatewayDep = Annotated[Gateway, Depends(get_gateway)]
Public = Annotated[Principal | None, require(Permission.PUBLIC)]
SignedIn = Annotated[Principal, require(Permission.SIGNED_IN)]
Submitter = Annotated[Principal, require(Permission.NODE_SUBMIT)]
Reader = Annotated[Principal, require(Permission.NODE_READ)]
Answerer = Annotated[Principal, require(Permission.NODE_ANSWER)]
Withdrawer = Annotated[Principal, require(Permission.NODE_WITHDRAW)]
Operator = Annotated[Principal, require(Permission.OPERATE)]


def _field_errors(errors: list[FieldError]) -> list[dict[str, Any]]:
    return [{"loc": ["body", *e.path.split(".")] if e.path else ["body"], "msg": e.reason, "type": "value_error"}
            for e in errors]


def render(
    gateway: Gateway, m: StoredMessage, *, body: bool = True, receipted: dict[str, Any] | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "message_id": m.message_id,
        "kind": m.kind,
        "direction": m.direction.value,
        "sender": m.sender,
        "recipient": m.recipient,
        "in_reply_to": m.in_reply_to,
        "created_at": m.created_at.isoformat(),
        "accepted_at": m.accepted_at.isoformat(),
        "status": m.status.value,
        "answered_by": m.answered_by,
        "answered_at": m.answered_at.isoformat() if m.answered_at else None,
        "result": m.result,
    }
    if m.direction is Direction.OUT:
        at = (receipted or {}).get(m.message_id)
        out["receipted_at"] = at.isoformat() if at else None
        if at and m.status is Status.SENT:
            out["status"] = "receipted"
    if body:
        out["body"] = gateway.service.read_body(m).model_dump(mode="json")
    return out


async def _receipted(gateway: Gateway, sent: list[StoredMessage]) -> dict[str, Any]:
    receipts = gateway.service.receipts
    if receipts is None:
        return {}
    return await receipts.received_for([m.message_id for m in sent if m.direction is Direction.OUT])


def create_app(gateway: Gateway) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        check_routes(app.routes)  # again at start-up: routers included after create_app are covered too
        # The import workers live as long as the server: stopped and waited for when it stops.
        async with import_worker.shared(settings.import_workers, settings.import_worker_memory_mb).running():
            yield

    # The API description is for signed-in users only (below); FastAPI's own routes would be public.
    app = FastAPI(title="Township exchange gateway", version="0.1.0", lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url=None,
                  dependencies=[Depends(limits.bounded_path_params)],
                  # FastAPI's own OpenTelemetry hooks: the gateway configures no exporter, and leaving
                  # them on made every request ask the environment for a provider (≈ 3 % of the demo's
                  # CPU). An older FastAPI keeps the argument in `extra` and ignores it.
                  telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False})
    app.state.gateway = gateway
    settings = gateway.settings
    app.add_middleware(LoginCsrfCookie)
    # Inside the request limits (the body it reads is bounded by them), before every route.
    app.add_middleware(input_hygiene.InputHygiene)
    app.add_middleware(limits.RequestLimits, max_body_bytes=settings.max_body_bytes,
                       max_import_bytes=settings.max_import_bytes)
    # Added last, so it runs first: a request for another host name is refused before anything else.
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=settings.allowed_hosts)
    # Outside even that: the refusals get no-store, CSP, nosniff … too.
    app.add_middleware(SecurityHeaders, hsts_max_age_s=settings.hsts_max_age_s)
    app.include_router(access_routes.router)
    app.include_router(oidc_routes.router)
    app.include_router(imports.router)

    @app.exception_handler(CodecError)
    async def codec_error(_: Request, exc: CodecError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": _field_errors(exc.errors)})

    @app.exception_handler(InvalidRequest)
    async def invalid_request(_: Request, exc: InvalidRequest) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": _field_errors(exc.errors)})

    @app.exception_handler(AlreadyAnswered)
    async def already_answered(_: Request, exc: AlreadyAnswered) -> JSONResponse:
        # The clerk who lost the race learns which answer won, to show it instead of theirs.
        return JSONResponse(status_code=409, content={"detail": exc.detail, "answered_by": exc.answered_by})

    @app.exception_handler(ExchangeError)
    async def exchange_error(_: Request, exc: ExchangeError) -> JSONResponse:
        return JSONResponse(status_code=exc.status, content={"detail": exc.detail})

    @app.get("/health")
    async def health(gw: GatewayDep, _: Public) -> JSONResponse:
        """Public, so it says only whether all is well; operators see why at /operator/health."""
        report = await gw.health()
        return JSONResponse(status_code=200 if report["status"] == "ok" else 503, content={"status": report["status"]})

    @app.get("/nodes")
    async def nodes(gw: GatewayDep, _: SignedIn) -> list[str]:
        return sorted(gw.service.nodes)

    @app.post("/nodes/{code}/queries", status_code=202)
    async def submit_query(code: str, payload: QueryBody, gw: GatewayDep, principal: Submitter, request: Request) -> dict[str, Any]:
        view = NodeView.of(gw, principal, request, code)
        stored = await view.submit({**payload, "kind": payload.get("kind", "query")})
        return render(gw, stored, body=False)

    @app.post("/nodes/{code}/notifications", status_code=202)
    async def submit_notification(code: str, payload: NotificationBody, gw: GatewayDep, principal: Submitter, request: Request) -> dict[str, Any]:
        view = NodeView.of(gw, principal, request, code)
        stored = await view.submit({**payload, "kind": payload.get("kind", "notification")})
        return render(gw, stored, body=False)

    @app.get("/nodes/{code}/inbox")
    async def inbox(code: str, gw: GatewayDep, principal: Reader, request: Request, response: Response,
                    after: pages.After, limit: limits.Limit = 100, status: InboxStatus | None = None) -> list[dict[str, Any]]:
        """Received queries and notifications, newest first; `status=received`: only those awaiting an
        answer. A longer list continues at the `Link: rel="next"` header's address."""
        view = NodeView.of(gw, principal, request, code)
        page = await view.message_page(Direction.IN, limit=limit, after=after, except_kinds=_FEEDBACK,
                                       statuses=frozenset({Status(status.value)}) if status else None)
        await view.audit_reads(page.messages)
        pages.link_next(request, response, page.next)
        return [render(gw, m) for m in page.messages]

    @app.get("/nodes/{code}/sent")
    async def sent(code: str, gw: GatewayDep, principal: Reader, request: Request, response: Response,
                   after: pages.After, limit: limits.Limit = 100) -> list[dict[str, Any]]:
        """Sent queries and notifications with their status, newest first; a longer list continues at
        the `Link: rel="next"` header's address."""
        view = NodeView.of(gw, principal, request, code)
        page = await view.message_page(Direction.OUT, limit=limit, after=after, except_kinds=_FEEDBACK)
        receipted = await _receipted(gw, page.messages)
        await view.audit_reads(page.messages)
        pages.link_next(request, response, page.next)
        return [render(gw, m, receipted=receipted) for m in page.messages]

    @app.get("/nodes/{code}/messages/{message_id}")
    async def message(code: str, message_id: str, gw: GatewayDep, principal: Reader, request: Request) -> dict[str, Any]:
        view = NodeView.of(gw, principal, request, code)
        for direction in (Direction.OUT, Direction.IN):
            stored = await view.find(direction, message_id)
            if stored is not None:
                out = render(gw, stored, receipted=await _receipted(gw, [stored]))
                read = [stored]
                if stored.answered_by:
                    reply_dir = Direction.IN if direction is Direction.OUT else Direction.OUT
                    reply = await view.find(reply_dir, stored.answered_by)
                    out["feedback"] = render(gw, reply) if reply else None
                    read += [reply] if reply else []
                await view.audit_reads(read)
                return out
        raise UnknownMessage(f"{code} has no message {message_id}")

    @app.post("/nodes/{code}/inbox/{message_id}/feedback", status_code=202)
    async def answer(code: str, message_id: str, payload: FeedbackBody, gw: GatewayDep, principal: Answerer,
                     request: Request) -> dict[str, Any]:
        stored = await NodeView.of(gw, principal, request, code).answer(message_id, payload)
        return render(gw, stored, body=False)

    @app.post("/nodes/{code}/sent/{message_id}/withdraw", status_code=202)
    async def withdraw(code: str, message_id: str, gw: GatewayDep, principal: Withdrawer,
                       request: Request) -> dict[str, Any]:
        """Withdraw a query this township sent, before any reply: the withdrawal goes to the registration
        township's gateway, which closes the case as withdrawn (not counted). 409 once a reply is linked
        to the query (the reply stands) or when it was withdrawn already; audited either way."""
        stored = await NodeView.of(gw, principal, request, code).withdraw(message_id)
        return render(gw, stored, body=False)

    @app.get("/nodes/{code}/cases")
    async def cases(code: str, gw: GatewayDep, _: Reader) -> list[dict[str, Any]]:
        """The open queries and notifications this township must answer, with their deadlines and states."""
        gw.service.node(code)
        if gw.tracker is None:
            return []
        found = await gw.tracker.store.open_cases(registration_township=code)
        return [CASE.dump_python(c, mode="json") for c in sorted(found, key=lambda c: c.deadline.due_at)]

    @app.get("/nodes/{code}/tasks")
    async def tasks(code: str, gw: GatewayDep, _: Reader) -> list[dict[str, Any]]:
        """Re-verification tasks: queries answered 查无此人 that this township must visit again and correct."""
        gw.service.node(code)
        if gw.tracker is None:
            return []
        return [TASK.dump_python(t, mode="json") for t in await gw.tracker.store.tasks(code)]

    @app.get("/nodes/{code}/reminders")
    async def reminders(code: str, gw: GatewayDep, _: Reader) -> list[dict[str, Any]]:
        """Due-soon and overdue notices the gateway sent this township."""
        gw.service.node(code)
        if gw.tracker is None:
            return []
        return [{"sent_at": at.isoformat(), **REMINDER.dump_python(r, mode="json")}
                for at, r in await gw.tracker.store.reminders(code)]

    @app.get("/quarantine")
    async def quarantine(gw: GatewayDep, _: Operator, limit: limits.Limit = 100) -> list[dict[str, Any]]:
        return [
            {"id": q.id, "received_at": q.received_at.isoformat(), "reason": q.reason, "detail": q.detail,
             "message_id": q.message_id, "sender": q.sender, "recipient": q.recipient, "kind": q.kind,
             "envelope_sha256": q.envelope_sha256, "size": q.whole_size,
             "kept_bytes": len(q.raw), "truncated": q.truncated}
            for q in await gw.store.list_quarantine(limit)
        ]

    @app.get("/stats")
    async def stats(gw: GatewayDep, _: Operator) -> dict[str, Any]:
        c = await gw.store.counts()
        return {"sent": c.sent, "received": c.received, "answered": c.answered,
                "outbox_pending": c.outbox_pending, "quarantined": c.quarantined}

    install_pages(app)  # the HTML pages (gateway/web): before the operator API, so /operator is the page
    app.include_router(operator.router)
    app.include_router(regions.router)
    app.include_router(audit.router)
    docs.install(app)
    check_routes(app.routes)
    import_worker.shared(settings.import_workers, settings.import_worker_memory_mb).start()
    # Built now, not on the first request: limits.RequestLimits reads each route's media types from it.
    app.openapi()
    return app
