"""Bounds on every HTTP request, checked before a route parses anything.

* **Body size** (413): 1 MiB for a JSON record, 20 MiB for an import upload (settings
  ``GATEWAY_MAX_BODY_BYTES``, ``GATEWAY_MAX_IMPORT_BYTES``). A declared Content-Length over the limit is
  refused before a byte is read; a chunked body without one is counted as it streams and refused the
  moment it passes the limit, so no route ever holds more than the limit in memory.
* **Media type** (415): a state-changing route takes only its own media types — JSON for records, CSV or
  xlsx for imports (declared with `upload`); a POST without a body (the operator's re-drive) takes no
  Content-Type or JSON. A browser form (``application/x-www-form-urlencoded``, ``text/plain``) posted from
  another site therefore never reaches a route.
* **Parameters** (422): `Limit` bounds ``?limit=`` to 1–1000; `bounded_path_params` bounds every path
  parameter (a township code is 9 digits, any other id at most 64 characters) for every route at once,
  so route signatures stay as they are.

Starlette's own ``RequestBodyLimitMiddleware`` fixes a route's limit when the route is declared; the
limits here come from the settings of the gateway the app serves and say which limit was passed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MIB = 1024 * 1024
JSON = "application/json"
CSV = "text/csv"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
IMPORT_MEDIA_TYPES = (CSV, XLSX)
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
UPLOAD_KEY = "x-upload-media-types"
MAX_ID_LENGTH = 64

Limit = Annotated[int, Query(ge=1, le=1000, description="how many items at most (1–1000)")]


def upload(media_types: tuple[str, ...], description: str) -> dict[str, Any]:
    """`openapi_extra` for a route whose body is a file: documents its media types (so clients and the
    property test send them) and marks it for the upload size limit and media-type check."""
    return {
        UPLOAD_KEY: list(media_types),
        "requestBody": {
            "required": True,
            "description": description,
            "content": {t: {"schema": {"type": "string", "format": "binary"}} for t in media_types},
        },
    }


FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"


def form(*, files: bool = False) -> dict[str, Any]:
    """`openapi_extra` for a page route that reads an HTML form itself (`await request.form()`): the
    media type a browser posts it with (a form with a file: multipart, under the import size limit)."""
    if files:
        schema = {"type": "object", "properties": {"file": {"type": "string", "format": "binary"},
                                                   "kind": {"type": "string", "enum": ["query", "notification"]},
                                                   "csrf_token": {"type": "string"}},
                  "required": ["file", "csrf_token"], "additionalProperties": False}
        return {UPLOAD_KEY: [MULTIPART], "requestBody": {"required": True, "content": {MULTIPART: {"schema": schema}}}}
    schema = {"type": "object", "properties": {"csrf_token": {"type": "string"}}, "required": ["csrf_token"]}
    return {"requestBody": {"required": True, "content": {FORM: {"schema": schema}}}}


class BodyTooLarge(HTTPException):
    # An HTTPException: FastAPI re-raises these from its body parsing, so the 413 reaches the client
    # instead of becoming "There was an error parsing the body" (400).
    def __init__(self, limit: int, setting: str) -> None:
        super().__init__(413, f"request body too large: the limit is {limit} bytes ({setting})")


def media_type(headers: Headers) -> str | None:
    value = headers.get("content-type")
    return value.split(";", 1)[0].strip().lower() if value else None


@dataclass(frozen=True, slots=True)
class _Operation:
    path: str  # a regular expression of the route's paths, anchored
    method: str
    media_types: tuple[str, ...]  # empty: the operation takes no body
    upload: bool


def _operations(app: Any) -> list[_Operation]:
    """Every operation's body media types, read from the app's own OpenAPI document (the public view of
    its routes, sub-routers included): JSON for a Body parameter, a form's type for Form parameters, the
    declared types for an `upload`."""
    out = []
    for template, item in app.openapi().get("paths", {}).items():
        pattern = "^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)) + "$"
        for method, op in item.items():
            if not isinstance(op, dict):
                continue
            content = (op.get("requestBody") or {}).get("content") or {}
            out.append(_Operation(pattern, method.upper(), tuple(content), UPLOAD_KEY in op))
    return out


def _by_method(ops: list[_Operation]) -> dict[str, tuple[re.Pattern[str], list[_Operation]]]:
    """One pattern per method, the method's operations as alternatives in the document's order: the
    first that matches wins, as in a scan of the list, but in one regular-expression match per request
    instead of one per operation (a linear scan of every route was ≈ 40 µs of each request)."""
    grouped: dict[str, list[_Operation]] = {}
    for op in ops:
        grouped.setdefault(op.method, []).append(op)
    return {
        method: (re.compile("|".join(f"(?P<o{i}>{op.path})" for i, op in enumerate(group))), group)
        for method, group in grouped.items()
    }


class RequestLimits:
    """Pure ASGI middleware: body size and media type, per operation."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, max_import_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_import_bytes = max_import_bytes
        self._routes: dict[str, tuple[re.Pattern[str], list[_Operation]]] | None = None

    def _operation(self, scope: Scope) -> _Operation | None:
        if self._routes is None:
            self._routes = _by_method(_operations(scope["app"]))
        found = self._routes.get(scope["method"])
        if found is None:
            return None
        pattern, ops = found
        match = pattern.match(scope["path"])
        return None if match is None else ops[int(match.lastgroup[1:])]  # type: ignore[index]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        op = self._operation(scope)
        upload = op is not None and op.upload
        limit, setting = (
            (self.max_import_bytes, "GATEWAY_MAX_IMPORT_BYTES") if upload else (self.max_body_bytes, "GATEWAY_MAX_BODY_BYTES")
        )

        if scope["method"] in STATE_CHANGING:
            refusal = _media_refusal(op, headers)
            if refusal is not None:
                await JSONResponse({"detail": refusal}, status_code=415)(scope, receive, send)
                return

        declared = headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                await JSONResponse({"detail": "Content-Length must be a whole number"}, status_code=400)(scope, receive, send)
                return
            if int(declared) > limit:
                await JSONResponse({"detail": BodyTooLarge(limit, setting).detail}, status_code=413)(scope, receive, send)
                return

        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit, setting)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except BodyTooLarge as exc:
            # Reached here only when no exception handler turned it into the response already.
            if started:
                raise
            await JSONResponse({"detail": exc.detail}, status_code=413)(scope, receive, send)


def _media_refusal(op: _Operation | None, headers: Headers) -> str | None:
    got = media_type(headers)
    has_body = headers.get("content-length", "0") != "0" or "transfer-encoding" in headers
    if got is None and not has_body:
        return None  # nothing sent: a route that needs a body says so itself (422)
    if op is not None and op.media_types:
        accepted = list(op.media_types)
    else:
        # No body expected (or a route the document does not list): JSON is fine.
        if got == JSON:
            return None
        accepted = [JSON]
    if got in accepted:
        return None
    shown = f"{got!r}" if got else "none"
    return f"unsupported media type {shown}: this route accepts {' or '.join(accepted)} (set Content-Type)"


async def bounded_path_params(request: Request) -> None:
    """An app-wide dependency: every path parameter is bounded before a route sees it (async: FastAPI
    would run a plain def in a worker thread, a thread hand-off on every request)."""
    errors = []
    for name, value in request.path_params.items():
        if not isinstance(value, str):
            continue
        if name == "code":
            if len(value) != 9 or not value.isdigit():
                errors.append({"type": "value_error", "loc": ("path", name), "msg": "must be a 9-digit township code",
                               "input": value[:MAX_ID_LENGTH]})
        elif len(value) > MAX_ID_LENGTH:
            errors.append({"type": "value_error", "loc": ("path", name),
                           "msg": f"must have at most {MAX_ID_LENGTH} characters", "input": value[:MAX_ID_LENGTH]})
    if errors:
        raise RequestValidationError(errors)
