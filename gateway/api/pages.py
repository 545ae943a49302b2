"""Paged lists over HTTP: the ``?after=`` cursor a client passes, and the ``Link: rel="next"`` header
that gives it the next page's address (RFC 8288), so a list's body stays the plain JSON array it was.

A client follows ``Link`` until a response has none::

    url = f"/nodes/{code}/inbox?status=received&limit=1000"
    while url:
        response = await http.get(url)
        ...response.json()...
        url = response.links.get("next", {}).get("url")
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError

from gateway.access.paging import BadCursor, Cursor

__all__ = ["After", "link_next"]


async def _after(
    after: Annotated[str | None, Query(max_length=40, description=(
        "where this page starts: the `after` of the previous response's `Link: <…>; rel=\"next\"` "
        "header (an opaque cursor); omitted: the newest"))] = None,
) -> Cursor | None:
    if after is None:
        return None
    try:
        return Cursor.parse(after)
    except BadCursor as exc:
        raise RequestValidationError([{"type": "value_error", "loc": ("query", "after"), "msg": str(exc),
                                       "input": after}]) from None


After = Annotated[Cursor | None, Depends(_after)]


def link_next(request: Request, response: Response, following: Cursor | None) -> None:
    """Point ``response`` at the page after this one: the same query with ``after`` moved on."""
    if following is None:
        return
    query = [(k, v) for k, v in request.query_params.multi_items() if k != "after"]
    query.append(("after", following.token()))
    response.headers["Link"] = f'<{request.url.path}?{urlencode(query)}>; rel="next"'
