"""Bulk entry over HTTP: a township uploads its monthly information cards (CSV or .xlsx, Chinese headers).

Good rows are submitted as queries or notifications exactly as if typed one by one; every bad row comes
back with its row, column and reason; a row the exchange refuses (say, a township no gateway serves) is
reported the same way. Nothing is dropped silently.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from gateway.access.audit import Action
from gateway.access.deps import require
from gateway.access.permissions import Permission
from gateway.access.principal import Principal
from gateway.access.views import NodeView
from gateway.api import import_worker, limits
from gateway.codec.errors import CodecError
from gateway.exchange.errors import ExchangeError, InvalidRequest
from gateway.workflow.instants import local_date

router = APIRouter()


@dataclass
class ImportOutcome:
    report: import_worker.ParsedImport
    sent: list[dict[str, Any]]  # {"row", "message_id"}
    late: list[dict[str, Any]]  # rows the codec passed and the exchange refused: {"row", "column", "field", "reason"}


async def import_and_send(gateway: Any, view: NodeView, chunks: AsyncIterator[bytes], kind: str, shown_name: str,
                          filename: str) -> ImportOutcome:
    """The one path of an upload, from the API or the clerk's page: the file is streamed to disk, parsed
    in the import worker (never on the event loop), its good rows submitted as the clerk, audited."""
    settings = gateway.settings
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / shown_name
        # Streamed to disk: the body limit (limits.RequestLimits) counts it on the way.
        async with await anyio.open_file(path, "wb") as f:
            async for chunk in chunks:
                await f.write(chunk)
        report = await import_worker.shared(settings.import_workers, settings.import_worker_memory_mb).parse(
            path, kind, today=local_date(gateway.clock.now()), limits=settings.import_limits,  # type: ignore[arg-type]
            calendar=gateway.service.calendar, submission_working_days=gateway.service.submission_working_days,
        )
    if report.file_errors:
        await view.audit(Action.IMPORT, filename[:64], result="refused", detail=f"{kind}: {report.file_errors[0]}"[:200])
        return ImportOutcome(report, [], [])
    sent: list[dict[str, Any]] = []
    late: list[dict[str, Any]] = []
    for row, record in report.good:
        try:
            stored = await view.submit(record)
        except (InvalidRequest, CodecError) as exc:
            late += [{"row": row, "column": "", "field": e.path, "reason": e.reason} for e in exc.errors]
        except ExchangeError as exc:
            late.append({"row": row, "column": "", "field": "", "reason": exc.detail})
        else:
            sent.append({"row": row, "message_id": stored.message_id})
    refused = len(report.errors) + len(late)
    await view.audit(Action.IMPORT, filename[:64], result="ok" if not refused else "partial",
                     detail=f"{kind}: {report.rows_read} rows, {len(sent)} sent, {refused} refused")
    return ImportOutcome(report, sent, late)

SUFFIX = {limits.CSV: ".csv", limits.XLSX: ".xlsx"}
_SAFE_NAME = re.compile(r"[^\w.\-() ]+")


def shown_name(filename: str, suffix: str) -> str:
    # The clerk's file name appears in file-level reasons; keep it short and plain.
    stem = _SAFE_NAME.sub("_", Path(filename).stem)[:80] or "upload"
    return stem + suffix


@router.post(
    "/nodes/{code}/imports",
    openapi_extra=limits.upload(limits.IMPORT_MEDIA_TYPES, "the file: CSV (text/csv) or an Excel workbook (xlsx)"),
    responses={422: {"description": "the whole file is refused: `file_errors` says why, nothing is sent"}},
)
async def import_cards(
    code: str,
    request: Request,
    principal: Annotated[Principal, require(Permission.NODE_IMPORT)],
    kind: Literal["query", "notification"] = "query",
    filename: Annotated[str, Query(max_length=200)] = "cards.csv",
) -> Any:
    """Body: the file's bytes; its Content-Type (text/csv or the xlsx type) tells CSV from xlsx."""
    gateway = request.app.state.gateway
    view = NodeView.of(gateway, principal, request, code)
    suffix = SUFFIX.get(limits.media_type(request.headers) or "", ".csv")
    outcome = await import_and_send(gateway, view, request.stream(), kind, shown_name(filename, suffix), filename)
    report, sent, late = outcome.report, outcome.sent, outcome.late
    if report.file_errors:
        return JSONResponse(status_code=422, content={
            "rows_read": report.rows_read, "sent": [], "errors": [import_worker.error_view(*e) for e in report.errors],
            "blank_rows": report.blank_rows, "file_errors": report.file_errors,
        })
    head = {"rows_read": report.rows_read, "sent": sent}
    tail = {"blank_rows": report.blank_rows, "file_errors": report.file_errors}
    if late:
        errors = sorted([import_worker.error_view(*e) for e in report.errors] + late, key=lambda e: e["row"])
        return JSONResponse({**head, "errors": errors, **tail})
    # The worker encoded the bad rows already (20,000 of them take long to encode on the event loop).
    body = (json.dumps(head, ensure_ascii=False)[:-1] + ', "errors": ').encode() + report.errors_json + (
        ", " + json.dumps(tail, ensure_ascii=False)[1:]).encode()
    return Response(body, media_type="application/json")
