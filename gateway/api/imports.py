"""Bulk entry over HTTP: a township uploads its monthly information cards (CSV or .xlsx, Chinese headers).

Good rows are submitted as queries or notifications exactly as if typed one by one; every bad row comes
back with its row, column and reason; a row the exchange refuses (say, a township no gateway serves) is
reported the same way. Nothing is dropped silently.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request

from gateway.access.audit import Action
from gateway.access.deps import require
from gateway.access.permissions import Permission
from gateway.access.principal import Principal
from gateway.access.views import NodeView
from gateway.codec.bulk_import import import_file
from gateway.codec.errors import CodecError
from gateway.exchange.errors import ExchangeError, InvalidRequest

router = APIRouter()


@router.post("/nodes/{code}/imports")
async def import_cards(
    code: str,
    request: Request,
    principal: Annotated[Principal, require(Permission.NODE_IMPORT)],
    kind: Literal["query", "notification"] = "query",
    filename: str = "cards.csv",
) -> dict[str, Any]:
    """Body: the file's bytes; `filename` tells .csv from .xlsx."""
    gateway = request.app.state.gateway
    view = NodeView.of(gateway, principal, request, code)
    suffix = Path(filename).suffix.lower() or ".csv"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"upload{suffix}"
        path.write_bytes(await request.body())
        report = import_file(path, kind, today=gateway.clock.now().date())
    errors = [{"row": e.row, "column": e.column, "field": e.field, "reason": e.reason} for e in report.errors]
    sent = []
    for good in report.good:
        try:
            stored = await view.submit(good.message.model_dump(mode="json", exclude_none=True))
        except InvalidRequest as exc:
            errors += [{"row": good.row, "column": "", "field": e.path, "reason": e.reason} for e in exc.errors]
        except CodecError as exc:
            errors += [{"row": good.row, "column": "", "field": e.path, "reason": e.reason} for e in exc.errors]
        except ExchangeError as exc:
            errors.append({"row": good.row, "column": "", "field": "", "reason": exc.detail})
        else:
            sent.append({"row": good.row, "message_id": stored.message_id})
    await view.audit(Action.IMPORT, filename[:64], result="ok" if not errors else "partial",
                     detail=f"{kind}: {report.rows_read} rows, {len(sent)} sent, {len(errors)} refused")
    return {
        "rows_read": report.rows_read,
        "sent": sent,
        "errors": sorted(errors, key=lambda e: e["row"]),
        "blank_rows": report.blank_rows,
        "file_errors": report.file_errors,
    }
