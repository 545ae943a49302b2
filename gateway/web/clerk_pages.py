"""The clerks' workspace, one township at a time: `/township/{code}/…` (inbox, message and answer,
send a query or a notification, sent messages, re-verification tasks, reminders, card upload).

Every route declares its permission with `require`, which also checks that `{code}` is the clerk's own
township; a message is looked up only among that township's own messages, so another township's
message id finds nothing. Plain HTML forms: every flow works without JavaScript.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from gateway.access.deps import require
from gateway.api import import_worker, limits
from gateway.api.imports import import_and_send, shown_name
from gateway.access.views import NodeView
from gateway.access.permissions import Permission
from gateway.access.principal import Principal
from gateway.codec import code_tables
from gateway.codec.errors import CodecError, FieldError
from gateway.exchange.errors import ExchangeError, InvalidRequest
from gateway.exchange.records import Direction, Status, StoredMessage
from gateway.web import forms
from gateway.web.context import page
from gateway.api.input_hygiene import refusal_of
from gateway.web.reasons_zh import file_reason_in_chinese, in_chinese
from gateway.web.render import cn_date, township_label

router = APIRouter(prefix="/township/{code}")

Reader = Annotated[Principal, require(Permission.NODE_READ, page=True)]
Submitter = Annotated[Principal, require(Permission.NODE_SUBMIT, page=True)]
Answerer = Annotated[Principal, require(Permission.NODE_ANSWER, page=True)]
Importer = Annotated[Principal, require(Permission.NODE_IMPORT, page=True)]
Withdrawer = Annotated[Principal, require(Permission.NODE_WITHDRAW, page=True)]

KIND_LABELS = {"query": "查询", "notification": "通报", "feedback": "反馈"}
RESULT_LABELS = {"found": "查到此人", "not_found": "查无此人", "no_such_person": "查无此人"}
STATUS = {  # (label, css) of a sent message
    "queued": ("待发送", "open"), "sent": ("已发送", "open"), "receipted": ("已签收", "open"), "answered": ("已反馈", "done"),
    "withdrawn": ("已撤回", "done"),
}
# Answers and withdrawals are shown with the message they answer or withdraw, never listed themselves.
NOT_LISTED = ("feedback", "withdrawal")
# Labels of a record's fields: a query's labels first, then a notification's, then a feedback's; the
# two townships by their plain names (the form's labels say when to fill which).
ALL_FIELDS = {f.name: f for f in [*forms.FEEDBACK_FIELDS, *forms.NOTIFICATION_FIELDS, *forms.QUERY_FIELDS]
              if f.name not in ("residence_township", "registration_township")}
EXTRA_LABELS = {"kind": "类别", "residence_township": "现居住地", "registration_township": "户籍地", "not_applicable": "不适用的项目", "in_reply_to": "答复的报文", "result": "结果",
                "known_locally.marital_status": "当地掌握：婚姻状况", "known_locally.sons": "当地掌握：男孩数",
                "known_locally.daughters": "当地掌握：女孩数", "children.total": "子女总数"}


def _gateway(request: Request) -> Any:
    return request.app.state.gateway


def _kind_label(m: StoredMessage, body: dict[str, Any] | None = None) -> str:
    if m.kind == "query" and body and body.get("about_birth"):
        return "查询（生育信息）"
    return KIND_LABELS.get(m.kind, m.kind)


def _display(body: dict[str, Any]) -> list[tuple[str, str]]:
    """A decrypted record as (Chinese label, value) rows, codes shown with their Chinese names."""
    out = []
    for path, value in forms.values_of(body).items():
        if path in ("kind",):
            continue
        f = ALL_FIELDS.get(path)
        label = _plain(f.label) if f else EXTRA_LABELS.get(path, path)
        if path == forms.NOT_APPLICABLE:
            value = "，".join(_plain(ALL_FIELDS[n].label) if n in ALL_FIELDS else n for n in body.get(path) or [])
        elif path == "checked_sources":
            label = "已核查的来源"
            table = code_tables.table("checked_source")
            value = "，".join(_code_label(table, c) for c in body.get(path) or [])
        elif f is not None and f.table and value:
            try:
                value = f"{value} {code_tables.table(f.table).label(value)}"
            except KeyError:
                pass
        elif path.endswith("township") or path.endswith("residence_code"):
            value = township_label(value)
        elif f is not None and f.type == "checkbox":
            value = "是" if value else "否"
        elif f is not None and f.type == "bool":
            value = "是" if value == "true" else "否"
        elif f is not None and f.type == "date":
            value = cn_date(value)
        elif path == "result":
            value = RESULT_LABELS.get(value, value)
        elif path == "direction":
            value = dict(forms.DIRECTIONS).get(value, value)
        out.append((label, value))
    return out


def _plain(label: str) -> str:
    """A form label without its filling hint (（有子女时必填）, （写到村（居）委会）), for showing a record."""
    head, sep, hint = label.partition("（")
    return head if sep and any(w in hint for w in ("必填", "填写", "不填", "写到")) else label


def _code_label(table: Any, code: str) -> str:
    try:
        return str(table.label(code))
    except KeyError:
        return code


def _flag(state: str | None, due_at: datetime | None, now: datetime) -> str:
    if due_at is not None and now >= due_at or state == "overdue":
        return "overdue"
    if state == "due_soon":
        return "soon"
    return ""


async def _open_cases(gw: Any, code: str) -> dict[str, Any]:
    if gw.tracker is None:
        return {}
    return {c.case_id: c for c in await gw.tracker.store.open_cases(registration_township=code)}


@router.get("/inbox", response_class=HTMLResponse)
async def inbox(code: str, request: Request, principal: Reader) -> Response:
    gw = _gateway(request)
    view = NodeView.of(gw, principal, request, code)
    now = gw.clock.now()
    received = [m for m in await view.list_messages(Direction.IN, limit=200) if m.kind not in NOT_LISTED]
    await view.audit_reads(received)
    cases = await _open_cases(gw, code)
    pending, done = [], []
    for m in received:
        body = gw.service.read_body(m).model_dump(mode="json")
        item: dict[str, Any] = {"message": m, "name": body.get("person", {}).get("name", ""), "kind_label": _kind_label(m, body),
                                "sender_name": township_label(m.sender)}
        if m.status is Status.WITHDRAWN:  # the residence township withdrew it: nothing to answer
            item["result_label"] = "已撤回"
            done.append(item)
            continue
        if m.status is Status.ANSWERED:
            item["result_label"] = RESULT_LABELS.get(m.result or "", m.result or "")
            done.append(item)
            continue
        case = cases.get(m.message_id)
        item["due_at"] = case.deadline.due_at if case else None
        item["provisional"] = bool(case and case.deadline.provisional)
        item["flag"] = _flag(case.state.value if case else None, item["due_at"], now)
        pending.append(item)
    pending.sort(key=lambda i: (i["due_at"] is None, i["due_at"] or now, i["message"].message_id))
    return page(request, principal, "inbox.html", code=code, township_name=township_label(code), pending=pending,
                done=done[:50])


async def _message_context(gw: Any, view: NodeView, message_id: str) -> dict[str, Any] | None:
    code = view.code
    for direction in (Direction.IN, Direction.OUT):
        m = await view.find(direction, message_id)
        if m is not None and m.kind != "feedback":
            break
    else:
        return None
    body = gw.service.read_body(m).model_dump(mode="json")
    ctx: dict[str, Any] = {"message": m, "incoming": direction is Direction.IN, "kind_label": _kind_label(m, body),
                           "person_name": body.get("person", {}).get("name", ""), "record": _display(body),
                           "body": body, "due_at": None, "flag": "", "feedback": None, "names": township_label}
    status = m.status.value
    if direction is Direction.OUT and m.status is Status.SENT and gw.service.receipts is not None:
        if (await gw.service.receipts.received_for([m.message_id])).get(m.message_id):
            status = "receipted"
    ctx["status_label"] = STATUS.get(status, ("已收到", ""))[0] if direction is Direction.OUT else (
        "已反馈" if m.status is Status.ANSWERED else "待反馈")
    if direction is Direction.IN and gw.tracker is not None:
        case = await gw.tracker.store.get_case(m.message_id)
        if case is not None:
            ctx["due_at"] = case.deadline.due_at
            if m.status is not Status.ANSWERED:
                ctx["flag"] = _flag(case.state.value, case.deadline.due_at, gw.clock.now())
    if m.answered_by:
        reply = await view.find(Direction.OUT if direction is Direction.IN else Direction.IN, m.answered_by)
        if reply is not None:
            await view.audit_reads([reply])
            fb = gw.service.read_body(reply).model_dump(mode="json")
            ctx["feedback_result"] = RESULT_LABELS.get(fb.get("result", ""), "")
            ctx["feedback_at"] = reply.accepted_at
            ctx["feedback"] = [(k, v) for k, v in _display(fb) if k not in ("结果", "答复的报文")]
    ctx["can_answer"] = direction is Direction.IN and m.status is not Status.ANSWERED
    await view.audit_reads([m])
    return ctx


def _not_found(request: Request, principal: Principal, message_id: str) -> HTMLResponse:
    return page(request, principal, "error.html", status_code=404, title="没有这条报文",
                message=f"本乡镇（街道）没有编号为 {message_id[:64]} 的报文。")


def _answer_page(request: Request, principal: Principal, code: str, ctx: dict[str, Any], values: dict[str, str],
                 errors: dict[str, list[str]], other: list[str], status_code: int = 200, **extra: Any) -> HTMLResponse:
    return page(request, principal, "message.html", status_code=status_code, code=code, values=values, errors=errors,
                other_errors=other, found_fields=forms.FOUND_FIELDS, not_found_fields=forms.NOT_FOUND_FIELDS,
                remarks_field=forms.REMARKS, current=f"/township/{code}/inbox", **ctx, **extra)


@router.get("/messages/{message_id}", response_class=HTMLResponse)
async def message(code: str, message_id: str, request: Request, principal: Reader, done: str = "") -> Response:
    gw = _gateway(request)
    ctx = await _message_context(gw, NodeView.of(gw, principal, request, code), message_id)
    if ctx is None:
        return _not_found(request, principal, message_id)
    flash = {"answered": "反馈已发送。", "sent": "已发送。"}.get(done, "")
    return _answer_page(request, principal, code, ctx, {}, {}, [], flash=flash)


@router.post("/messages/{message_id}/answer", response_class=HTMLResponse, openapi_extra=limits.form())
async def answer(code: str, message_id: str, request: Request, principal: Answerer) -> Response:
    gw = _gateway(request)
    view = NodeView.of(gw, principal, request, code)
    form = await request.form()
    result = str(form.get("result") or "found")
    fields = forms.FOUND_FIELDS + [forms.REMARKS] if result == "found" else forms.NOT_FOUND_FIELDS + [forms.REMARKS]
    payload = {"result": result, **forms.record_from_form(fields, form)}
    if result != "found":
        payload.pop(forms.NOT_APPLICABLE, None)  # the 不适用 boxes belong to the found part of the form
    try:
        await view.answer(message_id, payload)
    except (CodecError, InvalidRequest) as exc:
        ctx = await _message_context(gw, view, message_id)
        if ctx is None:
            return _not_found(request, principal, message_id)
        errors, other = forms.errors_by_field(forms.FEEDBACK_FIELDS, exc.errors)
        values = forms.form_values(form)
        return _answer_page(request, principal, code, ctx, values, errors, other, status_code=422)
    except ExchangeError as exc:
        if exc.status == 404:
            return _not_found(request, principal, message_id)
        ctx = await _message_context(gw, view, message_id)
        return _answer_page(request, principal, code, ctx or {}, {}, {}, [str(exc.detail)], status_code=exc.status)
    return RedirectResponse(f"/township/{code}/messages/{message_id}?done=answered", status_code=303)


# --- sending ----------------------------------------------------------------------------------------

SEND = {
    "query": ("发送查询", forms.QUERY_FIELDS),
    "notification": ("发送通报", forms.NOTIFICATION_FIELDS),
}


async def _prefill_from_task(gw: Any, view: NodeView, task_id: str) -> dict[str, str]:
    """A corrected query (rule 五): the earlier query's record, linked to it, for the clerk to correct."""
    earlier = await view.find(Direction.OUT, task_id)
    if earlier is None or earlier.kind != "query":
        return {}
    await view.audit_reads([earlier])
    body = gw.service.read_body(earlier).model_dump(mode="json", exclude_none=True)
    values = forms.values_of({k: v for k, v in body.items() if k not in ("kind", "residence_township", "resubmission_of")})
    values["resubmission_of"] = task_id
    return values


@router.get("/send/{kind}", response_class=HTMLResponse)
async def send_form(code: str, kind: str, request: Request, principal: Submitter, task: str = "") -> Response:
    gw = _gateway(request)
    view = NodeView.of(gw, principal, request, code)
    if kind not in SEND:
        return _not_found(request, principal, kind)
    values = await _prefill_from_task(gw, view, task) if task and kind == "query" else {}
    title, fields = SEND[kind]
    return page(request, principal, "send.html", title=title, fields=fields, values=values, errors={}, other_errors=[],
                action=f"/township/{code}/send/{kind}")


@router.post("/send/{kind}", response_class=HTMLResponse, openapi_extra=limits.form())
async def send(code: str, kind: str, request: Request, principal: Submitter) -> Response:
    gw = _gateway(request)
    view = NodeView.of(gw, principal, request, code)
    if kind not in SEND:
        return _not_found(request, principal, kind)
    title, fields = SEND[kind]
    form = await request.form()
    # The sender's own township is set by the service (the residence township, or for 向现居住地通报 the
    # registration township), which refuses a record whose sender is not this township.
    record = {"kind": kind, **forms.record_from_form(fields, form)}
    try:
        stored = await view.submit(record)
    except (CodecError, InvalidRequest, ExchangeError) as exc:
        errs: list[FieldError] = getattr(exc, "errors", None) or []
        errors, other = forms.errors_by_field(fields, errs)
        if not errs:
            other = [in_chinese(str(getattr(exc, "detail", exc)))]
        values = forms.form_values(form)
        return page(request, principal, "send.html", status_code=422, title=title, fields=fields, values=values,
                    errors=errors, other_errors=other, action=f"/township/{code}/send/{kind}")
    return RedirectResponse(f"/township/{code}/sent?done={stored.message_id}", status_code=303)


@router.get("/sent", response_class=HTMLResponse)
async def sent(code: str, request: Request, principal: Reader, done: str = "", withdrawn: str = "") -> Response:
    return await _sent_page(request, principal, code, done=done, withdrawn=withdrawn)


async def _sent_page(request: Request, principal: Principal, code: str, *, done: str = "", withdrawn: str = "",
                     refusal: str = "", status_code: int = 200) -> Response:
    gw = _gateway(request)
    view = NodeView.of(gw, principal, request, code)
    messages = [m for m in await view.list_messages(Direction.OUT, limit=200) if m.kind not in NOT_LISTED]
    await view.audit_reads(messages)
    receipted: dict[str, Any] = {}
    if gw.service.receipts is not None:
        receipted = await gw.service.receipts.received_for([m.message_id for m in messages])
    items = []
    for m in messages:
        body = gw.service.read_body(m).model_dump(mode="json")
        status = "receipted" if m.status is Status.SENT and receipted.get(m.message_id) else m.status.value
        label, css = STATUS.get(status, (status, ""))
        items.append({"message": m, "name": body.get("person", {}).get("name", ""), "kind_label": _kind_label(m, body),
                      "status_label": label, "status_css": css,
                      "result_label": RESULT_LABELS.get(m.result or "", "") if m.status is Status.ANSWERED else "",
                      # A query may be withdrawn until a reply is linked to it (service.withdraw).
                      "withdrawable": m.kind == "query" and m.answered_by is None and m.status is not Status.WITHDRAWN})
    # Only a message this township sent (the id the form redirected with), never the request's text.
    listed = {m.message_id: m for m in messages}
    flash = refusal
    if done and done in listed:
        flash = "已发送，编号 " + done
    elif withdrawn and withdrawn in listed and listed[withdrawn].status is Status.WITHDRAWN:
        flash = "已撤回，编号 " + withdrawn + "（撤回通知已发往户籍地，该查询不计入统计）"
    return page(request, principal, "sent.html", status_code=status_code, code=code, township_name=township_label(code),
                items=items, names=township_label, flash=flash)


@router.post("/sent/{message_id}/withdraw", response_class=HTMLResponse, openapi_extra=limits.form())
async def withdraw(code: str, message_id: str, request: Request, principal: Withdrawer) -> Response:
    """The 撤回 button of the sent list: the query's withdrawal goes to the registration township."""
    view = NodeView.of(_gateway(request), principal, request, code)
    try:
        await view.withdraw(message_id)
    except ExchangeError as exc:
        if exc.status == 404:
            return _not_found(request, principal, message_id)
        return await _sent_page(request, principal, code, refusal=in_chinese(str(exc.detail)), status_code=exc.status)
    return RedirectResponse(f"/township/{code}/sent?withdrawn={message_id}", status_code=303)


@router.get("/tasks", response_class=HTMLResponse)
async def tasks(code: str, request: Request, principal: Reader) -> Response:
    gw = _gateway(request)
    view = NodeView.of(gw, principal, request, code)
    found = await gw.tracker.store.tasks(code) if gw.tracker is not None else []
    reasons = code_tables.table("not_found_reason")
    items = []
    for t in sorted(found, key=lambda t: t.opened_at, reverse=True):
        earlier = await view.find(Direction.OUT, t.query_id)
        if earlier is not None:
            await view.audit_reads([earlier])
        person = gw.service.read_body(earlier).model_dump(mode="json").get("person", {}) if earlier else {}
        reason = t.reason.value if t.reason is not None else ""
        items.append({"task": t, "name": person.get("name", ""), "citizen_id": person.get("citizen_id", ""),
                      "reason": _reason_label(reasons, reason), "open": t.state.value == "open",
                      "state": "待复核" if t.state.value == "open" else "已重报"})
    return page(request, principal, "tasks.html", code=code, items=items, names=township_label)


def _reason_label(table: Any, reason: str) -> str:
    for c in table.codes.values():
        if reason in (c.code, c.en.replace(" ", "_"), c.en):
            return c.zh
    return {"wrong_address": "地址有误", "wrong_name": "姓名有误", "wrong_id_number": "身份证号码有误",
            "other": "其它见备注"}.get(reason, reason)


@router.get("/reminders", response_class=HTMLResponse)
async def reminders(code: str, request: Request, principal: Reader) -> Response:
    gw = _gateway(request)
    NodeView.of(gw, principal, request, code)
    items = await gw.tracker.store.reminders(code) if gw.tracker is not None else []
    return page(request, principal, "reminders.html", code=code, items=list(reversed(items))[:200])


@router.get("/upload", response_class=HTMLResponse)
async def upload_form(code: str, request: Request, principal: Importer) -> Response:
    NodeView.of(_gateway(request), principal, request, code)
    return page(request, principal, "upload.html", code=code, report=None)


@router.post("/upload", response_class=HTMLResponse, openapi_extra=limits.form(files=True))
async def upload(code: str, request: Request, principal: Importer) -> Response:
    """The monthly cards: good rows sent as if typed one by one, every bad row reported (row, column, reason)."""
    gw = _gateway(request)
    view = NodeView.of(gw, principal, request, code)
    form = await request.form()
    kind = "notification" if form.get("kind") == "notification" else "query"
    upload = form.get("file")
    suffix = Path(getattr(upload, "filename", "") or "cards.csv").suffix.lower() or ".csv"
    if suffix not in (".csv", ".xlsx") or not hasattr(upload, "read"):
        report = {"rows_read": 0, "sent": [], "errors": [], "file_errors": [f"文件应为 .csv 或 .xlsx，收到 {suffix[:10]}"]}
        return page(request, principal, "upload.html", status_code=422, code=code, report=report)

    async def chunks() -> AsyncIterator[bytes]:
        while data := await upload.read(1024 * 1024):
            yield data

    name = getattr(upload, "filename", "") or "cards" + suffix
    if (why := refusal_of(name)) is not None:  # before the audit record names the file
        report = {"rows_read": 0, "sent": [], "errors": [], "file_errors": [f"文件名{in_chinese(why)}"]}
        return page(request, principal, "upload.html", status_code=422, code=code, report=report)
    try:
        outcome = await import_and_send(gw, view, chunks(), kind, shown_name(name, suffix), name)
    except import_worker.WorkerUnavailable as exc:
        report = {"rows_read": 0, "sent": [], "errors": [], "file_errors": [file_reason_in_chinese(exc.detail)]}
        return page(request, principal, "upload.html", status_code=503, code=code, report=report)
    shown = [import_worker.error_view(*e) for e in outcome.report.errors] + outcome.late
    errors = [{**e, "reason": in_chinese(e["reason"])} for e in shown]
    report = {"rows_read": outcome.report.rows_read, "sent": outcome.sent,
              "errors": sorted(errors, key=lambda e: e["row"]),
              "file_errors": [file_reason_in_chinese(e) for e in outcome.report.file_errors]}
    if outcome.report.file_errors:
        return page(request, principal, "upload.html", status_code=422, code=code, report=report)
    return page(request, principal, "upload.html", code=code, report=report)
