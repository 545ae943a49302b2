"""The pages over HTTP (no browser): sign-in redirects, scope checks, the dashboard and its export, the
clerk's forms with the codec's errors at their fields, Chinese dates. The browser flows are in
test_browser.py."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest
from openpyxl import load_workbook

from gateway.access.principal import Role
from gateway.adapters.fakes import FakeBroker
from gateway.api.app import create_app
from gateway.bootstrap import Gateway, build_gateway
from gateway.clock import FakeClock
from gateway.exchange.nodes import HostedNode
from gateway.security.directory import KeyDirectory
from gateway.settings import Settings
from gateway.web.render import cn_date, cn_deadline
from gateway.workflow.accounting import account

from ..access.helpers import browser_client
from ..gateways import REGISTRATION, RESIDENCE, TEST_HOSTS, fake_gateway, keyrings
from ..workflow.conftest import cst
from ..workflow.test_accounting_fast_path import Q1, generated_quarter

NOW = cst(2026, 3, 25, 10)


def test_dates_are_shown_in_beijing_time_as_chinese_dates() -> None:
    assert cn_date(datetime(2026, 11, 30, 16, 30, tzinfo=timezone.utc)) == "2026年12月1日"  # 00:30 in Beijing
    assert cn_date("2026-03-05") == "2026年3月5日"
    # A deadline is 24:00 of its last working day, stored as the next midnight.
    assert cn_deadline(cst(2026, 3, 5)) == "2026年3月4日 24:00"


@pytest.fixture
async def clerk_gateway() -> Gateway:
    return fake_gateway(keyrings(RESIDENCE, REGISTRATION))


async def test_an_anonymous_visitor_is_sent_to_the_sign_in_page(clerk_gateway: Gateway) -> None:
    transport = httpx.ASGITransport(app=create_app(clerk_gateway))
    async with httpx.AsyncClient(transport=transport, base_url="https://gw") as http:
        for path in (f"/township/{RESIDENCE}/inbox", "/dashboard?region=11", "/operator", "/"):
            response = await http.get(path)
            assert response.status_code == 303
            assert response.headers["location"].startswith("/login?next=")
        login = await http.get("/login?error=locked")
        assert login.status_code == 200 and 'lang="zh-CN"' in login.text and "已暂时锁定" in login.text
        # Every asset is in the page itself: nothing is fetched from anywhere, not even from the gateway.
        assert "<style>" in login.text and not re.search(r'(src|href)="(https?:)?//', login.text)


async def test_another_townships_clerk_cannot_open_its_pages(clerk_gateway: Gateway) -> None:
    app = create_app(clerk_gateway)
    async with browser_client(clerk_gateway, Role.CLERK, RESIDENCE, app=app) as (http, _):
        for path in (f"/township/{REGISTRATION}/inbox", f"/township/{REGISTRATION}/messages/anything"):
            response = await http.get(path)
            assert response.status_code == 403 and "无权访问" in response.text


async def test_each_role_starts_on_its_own_page(clerk_gateway: Gateway) -> None:
    app = create_app(clerk_gateway)
    for role, scope, start in ((Role.CLERK, RESIDENCE, f"/township/{RESIDENCE}/inbox"),
                               (Role.SUPERVISOR, "12", "/dashboard?region=12")):
        async with browser_client(clerk_gateway, role, scope, app=app) as (http, _):
            response = await http.get("/")
            assert (response.status_code, response.headers["location"]) == (303, start)


async def test_a_refused_query_shows_the_codecs_reason_at_its_field_and_keeps_what_was_typed(clerk_gateway: Gateway) -> None:
    app = create_app(clerk_gateway)
    async with browser_client(clerk_gateway, Role.CLERK, RESIDENCE, app=app) as (http, csrf):
        form = {"csrf_token": csrf, "registration_township": REGISTRATION, "person.name": "王秀英",
                "person.citizen_id": "120101199005170246"}
        response = await http.post(f"/township/{RESIDENCE}/send/query", data=form)
        assert response.status_code == 422
        field = re.search(r'id="f-person-citizen_id"[^>]*>\s*(?:<span class="field-error" id="f-person-citizen_id-err">([^<]*))?',
                          response.text, re.S)
        assert field is not None
        error = re.search(r'<span class="field-error" id="f-person-citizen_id-err">([^<]*)</span>', response.text)
        assert error is not None and "校验码应为“5”" in error.group(1)
        assert 'value="王秀英"' in response.text
        form["person.citizen_id"] = "120101199005170245"
        sent = await http.post(f"/township/{RESIDENCE}/send/query", data=form)
        assert sent.status_code == 303 and sent.headers["location"].startswith(f"/township/{RESIDENCE}/sent")
        page = await http.get(sent.headers["location"])
        assert "王秀英" in page.text and "待发送" in page.text


async def test_a_notification_to_the_residence_place_is_sent_by_the_registration_township_with_a_village_address(
        clerk_gateway: Gateway) -> None:
    app = create_app(clerk_gateway)
    form = {"notification_kind": "6", "direction": "to_residence", "residence_township": RESIDENCE,
            "event_date": "2026-03-02", "learned_on": "2026-03-01", "person.name": "王秀英",
            "person.citizen_id": "120101199005170245", "registration_address": "天津市和平区劝业场街道",
            "pregnant": "true"}
    async with browser_client(clerk_gateway, Role.CLERK, REGISTRATION, app=app) as (http, csrf):
        page = await http.get(f"/township/{REGISTRATION}/send/notification")
        assert "向户籍地通报" in page.text and "向现居住地通报" in page.text and 'id="f-learned_on"' in page.text
        refused = await http.post(f"/township/{REGISTRATION}/send/notification", data={"csrf_token": csrf, **form})
        assert refused.status_code == 422
        # Each rule's reason in Chinese, at its field: learned before the event, address not at village level.
        assert re.search(r'id="f-learned_on-err">不能早于事件日期<', refused.text)
        assert re.search(r'id="f-registration_address-err">[^<]*村（居）委会', refused.text)
        form.update(learned_on="2026-03-03", registration_address="天津市和平区劝业场街道新华里社区居委会")
        sent = await http.post(f"/township/{REGISTRATION}/send/notification", data={"csrf_token": csrf, **form})
        assert sent.status_code == 303, sent.text[:2000]
        page = await http.get(sent.headers["location"])
        assert "王秀英" in page.text and "通报" in page.text
    # The residence township cannot send 向现居住地通报 about itself: the service's route check, in Chinese.
    async with browser_client(clerk_gateway, Role.CLERK, RESIDENCE, app=app) as (http, csrf):
        form["registration_township"] = REGISTRATION
        refused = await http.post(f"/township/{RESIDENCE}/send/notification", data={"csrf_token": csrf, **form})
        assert refused.status_code == 422 and "向现居住地通报只能由户籍地发出" in refused.text


async def test_a_form_without_its_csrf_token_is_refused(clerk_gateway: Gateway) -> None:
    app = create_app(clerk_gateway)
    async with browser_client(clerk_gateway, Role.CLERK, RESIDENCE, app=app) as (http, _):
        response = await http.post(f"/township/{RESIDENCE}/send/query", data={"registration_township": REGISTRATION})
        assert response.status_code == 403


async def test_the_operator_page_says_what_a_re_drive_did_and_why_one_cannot_be_done(clerk_gateway: Gateway) -> None:
    from urllib.parse import unquote

    from gateway.codec import wire
    from gateway.codec.messages import parse_message
    from gateway.exchange.ports import Delivery
    from gateway.security.envelope import seal
    from gateway.security.keys import generate_keyring

    from ..gateways import ELSEWHERE, T0, sample_query

    newcomer = generate_keyring(ELSEWHERE)
    envelope = seal(plaintext=wire.encode(parse_message(sample_query(residence=ELSEWHERE))), message_id="n1", kind="query",
                    sender=newcomer.sender_key(), recipient=clerk_gateway.service.directory.recipient_key(REGISTRATION),
                    created_at=T0)
    assert (await clerk_gateway.service.receive(Delivery(envelope, REGISTRATION))).result == "quarantined"
    [item] = await clerk_gateway.store.list_quarantine(10)
    app = create_app(clerk_gateway)
    async with browser_client(clerk_gateway, Role.OPERATOR, app=app) as (http, csrf):

        async def redrive() -> str:
            response = await http.post(f"/operator/page/quarantine/{item.id}/redrive", data={"csrf_token": csrf})
            assert response.status_code == 303
            return unquote(response.headers["location"])

        async def shown(location: str) -> str:
            return (await http.get(location)).text

        location = await redrive()
        assert location == f"/operator?done=refused&item={item.id}&reason=unknown_sender"
        refused_page = await shown(location)
        assert f"隔离报文 {item.id}：仍被拒收（unknown_sender）" in refused_page
        # The refusal counts: the receive above, counted (and stored).
        assert 'id="refusal-counts-table"' in refused_page and "unknown_sender" in refused_page
        clerk_gateway.service.directory = KeyDirectory.from_keyrings(
            [n.keyring for n in clerk_gateway.service.nodes.values()] + [newcomer])
        location = await redrive()
        assert location == f"/operator?done=stored&item={item.id}"
        assert f"隔离报文 {item.id}：已重新投递并接收" in await shown(location)
        # Accepted already: the page says it cannot be re-driven again (no server error).
        location = await redrive()
        assert location == f"/operator?done=resolved&item={item.id}"
        assert f"隔离报文 {item.id} 已重新投递并接收过" in await shown(location)


async def test_the_operator_page_shows_only_the_status_messages_the_gateway_produced(clerk_gateway: Gateway) -> None:
    app = create_app(clerk_gateway)
    async with browser_client(clerk_gateway, Role.OPERATOR, app=app) as (http, _):
        forged = await http.get("/operator", params={"done": "管理员通知：请到 evil.example 重新登录"})
        assert forged.status_code == 200 and "evil.example" not in forged.text and 'class="flash"' not in forged.text
        reason = await http.get("/operator", params={"done": "refused", "item": "3", "reason": "call_400_now"})
        assert "隔离报文 3：仍被拒收" in reason.text and "call_400_now" not in reason.text
        assert (await http.get("/operator", params={"done": "stored", "item": "x<script>"})).status_code == 422


# --- the dashboard on a real database ---------------------------------------------------------------


@pytest.fixture
async def dashboard_gateway(database_url: str, tmp_path: Path) -> AsyncIterator[tuple[Gateway, list]]:
    rings = keyrings(RESIDENCE, REGISTRATION)
    gateway = build_gateway(
        Settings(nodes=sorted(rings), data_dir=tmp_path, database_url=database_url, allowed_hosts=TEST_HOSTS), clock=FakeClock(NOW),
        broker=FakeBroker(), nodes={c: HostedNode(r) for c, r in rings.items()},
        directory=KeyDirectory.from_keyrings(rings.values()))
    from gateway.adapters.sql.engine import create_schema

    await create_schema(gateway.engine)
    from gateway.workflow.data_files import DEFAULT_CALENDAR_FILE, DEFAULT_DEADLINES_FILE, load_calendar, load_deadline_rules

    cases = generated_quarter(3, load_deadline_rules(DEFAULT_DEADLINES_FILE), load_calendar(DEFAULT_CALENDAR_FILE))
    await gateway.tracker.store.add_cases(cases)
    yield gateway, cases
    await gateway.engine.dispose()


def table_rows(html: str, table_id: str) -> list[list[str]]:
    body = re.search(rf'<table class="data[^"]*" id="{table_id}">(.*?)</table>', html, re.S)
    assert body is not None, table_id
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", body.group(1), re.S)
    return [[re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)]
            for row in rows]


@pytest.mark.database
async def test_the_dashboard_shows_the_regions_figures_and_exports_exactly_its_table(dashboard_gateway) -> None:
    gateway, cases = dashboard_gateway
    app = create_app(gateway)
    async with browser_client(gateway, Role.SUPERVISOR, "43", app=app) as (http, _):
        page = await http.get("/dashboard?region=43&period=2026Q1")
        assert page.status_code == 200, page.text[:300]
        expected = account(cases, Q1, NOW)
        received = sum(c.received for c in expected.values())
        assert f'<span class="value">{received}</span>' in page.text
        screen = table_rows(page.text, "region-table")
        assert screen[0][0] == "代码" and {r[0] for r in screen[1:]} >= {"4305", "4306", "4311"}
        exported_csv = await http.get("/dashboard/export?region=43&period=2026Q1&format=csv")
        rows = list(csv.reader(io.StringIO(exported_csv.content.decode("utf-8-sig"))))
        assert rows == screen
        exported_xlsx = await http.get("/dashboard/export?region=43&period=2026Q1&format=xlsx")
        sheet = load_workbook(io.BytesIO(exported_xlsx.content)).active
        assert [[str(v) for v in row] for row in sheet.iter_rows(values_only=True)] == screen
        # Drill down to the county, with the breadcrumbs back up.
        county = await http.get("/dashboard?region=430521&period=2026Q1")
        assert county.status_code == 200
        assert '<a href="/dashboard?region=43&amp;period=2026Q1">' in county.text
        assert {r[0] for r in table_rows(county.text, "region-table")[1:]} >= {"430521101", "430521102"}
        overdue = table_rows(county.text, "overdue-table")
        assert len(overdue) > 1 and all(r[-1].isdigit() for r in overdue[1:])
        assert (await http.get("/dashboard/print?region=430521&period=2026Q1")).status_code == 200
        assert (await http.get("/dashboard?region=43&period=2026-13")).status_code == 400
        assert len(page.content) < 300 * 1024


@pytest.mark.database
async def test_a_supervisor_sees_only_regions_inside_its_own(dashboard_gateway) -> None:
    gateway, _ = dashboard_gateway
    app = create_app(gateway)
    async with browser_client(gateway, Role.SUPERVISOR, "4305", app=app) as (http, _):
        assert (await http.get("/dashboard?region=4305&period=2026-03")).status_code == 200
        for region in ("43", "4306", "430602"):
            response = await http.get(f"/dashboard?region={region}&period=2026-03")
            assert response.status_code == 403
        export = await http.get("/dashboard/export?region=43&period=2026-03&format=csv")
        assert export.status_code == 403


async def test_the_sent_page_confirms_only_a_message_the_township_sent(clerk_gateway: Gateway) -> None:
    from ..gateways import sample_query

    stored = await clerk_gateway.service.submit(RESIDENCE, sample_query())
    async with browser_client(clerk_gateway, Role.CLERK, RESIDENCE) as (http, _):
        forged = await http.get(f"/township/{RESIDENCE}/sent", params={"done": "请致电 400-000 领取补贴"})
        assert forged.status_code == 200 and "400-000" not in forged.text and "已发送，编号" not in forged.text
        confirmed = await http.get(f"/township/{RESIDENCE}/sent", params={"done": stored.message_id})
        assert f"已发送，编号 {stored.message_id}" in confirmed.text
