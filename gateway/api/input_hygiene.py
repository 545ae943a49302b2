"""Control characters and NUL refused at every input, before any route (and so any database call) runs.

A NUL byte reached PostgreSQL (which refuses it in text: a 500, some of them with no audit record) and
an ESC sequence in a username or a filename reached the audit trail verbatim, where a terminal listing
drew a forged line. No value the gateway takes needs a control character — no record field is
multi-line — so a request carrying one anywhere is refused with 422 in FastAPI's shape, naming where:

* the path (its percent-decoded form) and every query parameter's name and value;
* a JSON body's every key and string value (escaped ``\\u0000`` forms included: they are decoded and
  walked), and an HTML form's (``application/x-www-form-urlencoded``) every field.

C0 controls (tab, CR and LF included), DEL and C1 controls are refused. File uploads (CSV, xlsx,
multipart) are binary and are not scanned here; an upload's filename comes as a query parameter (API)
or in its multipart part, which the page route checks itself (`refusal_of`).

The sign-in forms' bodies (``POST /auth/token``, ``POST /login``) are left to the sign-in itself, which
must answer every refusal alike (a 422 here would tell a caller more than a wrong password does) and
keeps the name tried out of the audit trail's control characters; their path and query are checked.

The body is read here at most up to the limits of `gateway.api.limits.RequestLimits`, which wraps this
middleware, and handed on to the route unchanged.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.api.limits import FORM, JSON, media_type

SIGN_IN_PATHS = frozenset({"/auth/token", "/login"})
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
# Bytes that may hide a control character in a JSON body: an escape, or one written raw (C0 and DEL
# raw inside a string are refused by the JSON parser anyway; C1 is U+0080–U+009F, UTF-8 C2 80–C2 9F).
_JSON_SUSPECT = re.compile(rb"[\\\x00-\x1f\x7f]|\xc2[\x80-\x9f]")
_QUERY_SUSPECT = re.compile(rb"[%\x00-\x1f\x7f]")


def refusal_of(value: str) -> str | None:
    """Why ``value`` is refused, or None: the character and its position, never the value."""
    m = _CONTROL.search(value)
    return None if m is None else f"must not contain control characters (U+{ord(m.group()):04X} at position {m.start() + 1})"


def _error(loc: list[Any], msg: str) -> dict[str, Any]:
    return {"type": "value_error", "loc": loc, "msg": msg}


def _pairs(raw: bytes) -> list[tuple[str, str]]:
    return parse_qsl(raw.decode("latin-1"), keep_blank_values=True, encoding="utf-8", errors="replace")


def _in_pairs(where: str, pairs: list[tuple[str, str]]) -> list[dict[str, Any]]:
    errors = []
    for name, value in pairs:
        shown = name if refusal_of(name) is None else "?"
        for text in (name, value):
            if (why := refusal_of(text)) is not None:
                errors.append(_error([where, shown], why))
                break
    return errors


def _in_json(value: Any, loc: list[Any], errors: list[dict[str, Any]]) -> None:
    if len(errors) >= 20:  # enough to say what is wrong; a body of a million bad keys is not walked
        return
    if isinstance(value, str):
        if (why := refusal_of(value)) is not None:
            errors.append(_error(loc, why))
    elif isinstance(value, dict):
        for key, item in value.items():
            if (why := refusal_of(key)) is not None:
                errors.append(_error([*loc, "?"], f"a key {why}"))
                continue
            _in_json(item, [*loc, key], errors)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _in_json(item, [*loc, index], errors)


def body_refusals(kind: str | None, body: bytes) -> list[dict[str, Any]]:
    if kind == JSON:
        if not _JSON_SUSPECT.search(body):
            return []
        try:
            document = json.loads(body)
        except (ValueError, RecursionError):
            return []  # not JSON: the route refuses it with its own 422
        errors: list[dict[str, Any]] = []
        _in_json(document, ["body"], errors)
        return errors
    if kind == FORM:
        return _in_pairs("body", _pairs(body)) if _QUERY_SUSPECT.search(body) else []
    return []


class InputHygiene:
    """Pure ASGI middleware: 422 for a control character in the path, the query or a JSON / form body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        errors = []
        if (why := refusal_of(scope["path"])) is not None:
            errors.append(_error(["path"], why))
        query: bytes = scope.get("query_string", b"")
        if query and _QUERY_SUSPECT.search(query):
            errors.extend(_in_pairs("query", _pairs(query)))
        if errors:
            await JSONResponse({"detail": errors}, status_code=422)(scope, receive, send)
            return
        kind = media_type(Headers(scope=scope))
        if kind not in (JSON, FORM) or scope["path"] in SIGN_IN_PATHS:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: let the app see it
                replay: list[Message] = [message]
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                body = b"".join(chunks)
                replay = [{"type": "http.request", "body": body, "more_body": False}]
                if errors := body_refusals(kind, body):
                    await JSONResponse({"detail": errors}, status_code=422)(scope, receive, send)
                    return
                break

        async def replayed() -> Message:
            return replay.pop(0) if replay else await receive()

        await self.app(scope, replayed, send)
