"""The pages in a real browser: Playwright driving Debian's Chromium against a real gateway (real
RabbitMQ, PostgreSQL, two townships and a third hosted together), at 1366×768.

A clerk signs in and sends a query; the other township's clerk answers it; the first sees it answered;
a supervisor drills from the province down to that township and exports the table, and the file
matches the screen; an anonymous visitor is sent to /login; a third township's clerk cannot open the
message; an operator re-drives a quarantined message from the operator's page once its sender's key is
known. Every page is saved as a screenshot in tests/web/screenshots/ (ignored by git) for review.

Chromium is required, never skipped: without /usr/bin/chromium the tests fail saying how to install it.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.access.principal import Role
from gateway.codec import wire
from gateway.codec.messages import parse_message
from gateway.security.directory import KeyDirectory
from gateway.security.envelope import seal
from gateway.security.keys import generate_keyring

from ..access.helpers import PASSWORD, add_user, current_otp
from ..gateways import ELSEWHERE, REGISTRATION, RESIDENCE, sample_query
from .live_server import LiveGateway

pytestmark = [pytest.mark.browser, pytest.mark.broker, pytest.mark.database, pytest.mark.slow]

CHROMIUM = os.environ.get("GATEWAY_TEST_CHROMIUM", "/usr/bin/chromium")
# The machine's network is closed: without these Chromium keeps trying to reach its services.
CHROMIUM_ARGS = ["--lang=zh-CN", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
SCREENSHOTS = Path(__file__).parent / "screenshots"
VIEWPORT = {"width": 1366, "height": 768}
NAME, CITIZEN_ID = "王秀英", "120101199005170245"
NEWCOMER = "130102002"  # a township whose gateway has just joined: not in this gateway's key directory yet


def _admin(server_url: str, statement: str) -> None:
    async def run() -> None:
        engine = create_async_engine(server_url, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                await conn.execute(text(statement))
        finally:
            await engine.dispose()

    asyncio.run(run())


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is not installed at {CHROMIUM}: the browser tests need it. On Debian: "
                    "apt-get update && apt-get install -y chromium fonts-noto-cjk (CI's .ci/run does this), or set "
                    "GATEWAY_TEST_CHROMIUM to another Chromium.", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def live(amqp_url: str, postgres_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveGateway]:
    name = f"gw_test_web_{uuid.uuid4().hex[:10]}"
    _admin(postgres_server_url, f'CREATE DATABASE "{name}"')
    url = make_url(postgres_server_url).set(database=name).render_as_string(hide_password=False)
    server = LiveGateway([RESIDENCE, REGISTRATION, ELSEWHERE], amqp_url=amqp_url, database_url=url,
                         token=secrets.token_hex(4), data_dir=tmp_path_factory.mktemp("web")).start()
    try:
        yield server
    finally:
        server.stop()
        _admin(postgres_server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def user(live: LiveGateway, role: Role, scope: str = "") -> tuple[str, str]:
    """A new user; its name and the one-time code to sign in with (empty for roles without a second factor)."""
    name, secret = live.call(add_user(live.gateway, role, scope))
    return name, secret or ""


def sign_in(live: LiveGateway, browser: Any, role: Role, scope: str = "", shot: str | None = None) -> Any:
    name, secret = user(live, role, scope)
    page = browser.new_context(viewport=VIEWPORT, locale="zh-CN", timezone_id="Asia/Shanghai",
                               accept_downloads=True).new_page()
    page.goto(f"{live.url}/login")
    page.fill("#username", name)
    page.fill("#password", PASSWORD)
    if secret:
        page.fill("#otp", current_otp(live.gateway, secret))
    if shot:
        screenshot(page, shot)
    page.press("#password", "Enter")  # by keyboard
    page.wait_for_load_state()
    assert "/login" not in page.url, page.content()[:500]
    return page


def screenshot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def eventually(check: Callable[[], bool], timeout_s: float = 30.0, every_s: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(every_s)
    return True


def table_on_screen(page: Any, table_id: str) -> list[list[str]]:
    return page.eval_on_selector_all(
        f"#{table_id} tr", "rows => rows.map(r => Array.from(r.cells).map(c => c.innerText.trim()))")


def test_an_anonymous_visitor_is_sent_to_sign_in(live: LiveGateway, browser: Any) -> None:
    page = browser.new_context(viewport=VIEWPORT).new_page()
    page.goto(f"{live.url}/township/{RESIDENCE}/inbox")
    assert page.url.startswith(f"{live.url}/login?next=")
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert page.locator("h1").inner_text() == "登录"
    page.goto(f"{live.url}/dashboard?region=12")
    assert "/login?next=" in page.url
    screenshot(page, "00-login")


def test_a_query_sent_answered_and_seen_answered_then_drilled_to_and_exported(live: LiveGateway, browser: Any) -> None:
    # The residence township's clerk sends a query.
    sender = sign_in(live, browser, Role.CLERK, RESIDENCE, shot="01-login-filled")
    assert sender.url == f"{live.url}/township/{RESIDENCE}/inbox"
    screenshot(sender, "02-clerk-inbox-empty")
    sender.click("text=发送查询")
    sender.fill("#f-registration_township", REGISTRATION)
    sender.fill("#f-person-name", NAME)
    sender.fill("#f-person-citizen_id", CITIZEN_ID[:-1] + "6")  # a wrong check character first
    sender.fill("#f-person-birth_date", "1990-05-17")
    sender.select_option("#f-person-sex", "2")
    sender.fill("#f-current_address", "幸福路1号")
    sender.click("button:has-text('发送')")
    error = sender.locator("#f-person-citizen_id-err")
    assert error.is_visible() and "校验码应为“5”" in error.inner_text()
    screenshot(sender, "03-clerk-send-query-refused")
    sender.fill("#f-person-citizen_id", CITIZEN_ID)
    sender.click("button:has-text('发送')")
    assert sender.url.startswith(f"{live.url}/township/{RESIDENCE}/sent")
    row = sender.locator("#sent-table tbody tr").first
    assert NAME in row.inner_text()
    message_id = sender.url.split("done=")[1]
    screenshot(sender, "04-clerk-sent")

    # The registration township's clerk sees it in the inbox, with its deadline, and answers it.
    answerer = sign_in(live, browser, Role.CLERK, REGISTRATION)

    def arrived() -> bool:
        answerer.reload()
        return NAME in answerer.locator("#main").inner_text() and answerer.locator("#pending-table").count() == 1

    assert eventually(arrived), "the query never reached the registration township's inbox"
    pending = answerer.locator("#pending-table tbody tr").first
    assert "24:00" in pending.inner_text() and "待反馈" in pending.inner_text()
    screenshot(answerer, "05-clerk-inbox")
    pending.locator("a").click()
    assert CITIZEN_ID in answerer.locator("#record").inner_text()
    screenshot(answerer, "06-clerk-message")
    answerer.fill("#f-birth_date", "1990-05-17")
    answerer.select_option("#f-household_type", "1")
    answerer.fill("#f-husband_name", "李伟")
    answerer.fill("#f-children-sons", "1")
    answerer.fill("#f-children-daughters", "0")
    answerer.fill("#f-children-youngest_birth_date", "2015-03-02")
    answerer.fill("#f-left_on", "2014-02-10")
    # Rule 四: every field given or ticked 不适用; one left blank is refused at its field, in Chinese.
    for name in ("husband_residence_code", "one_child_certificate_date"):
        answerer.check(f"#f-{name}-na")
    answerer.click("button:has-text('发送反馈')")
    error = answerer.locator("#f-pregnancy_policy_status-err")
    assert error.is_visible() and "不适用" in error.inner_text()
    assert answerer.locator("#f-husband_name").input_value() == "李伟"  # what was typed is kept
    assert answerer.locator("#f-husband_residence_code-na").is_checked()
    for name in ("pregnancy_policy_status", "marriage_certificate_no"):
        answerer.check(f"#f-{name}-na")
    answerer.click("button:has-text('发送反馈')")
    assert "反馈已发送" in answerer.locator(".flash").inner_text()
    assert answerer.locator("#feedback-result").inner_text() == "查到此人"
    screenshot(answerer, "07-clerk-answered")

    # The sender sees it answered.
    def answered() -> bool:
        sender.goto(f"{live.url}/township/{RESIDENCE}/sent")
        return "已反馈" in sender.locator(f"#sent-{message_id}").inner_text()

    assert eventually(answered), "the feedback never reached the residence township"
    screenshot(sender, "08-clerk-sent-answered")
    sender.goto(f"{live.url}/township/{RESIDENCE}/messages/{message_id}")
    assert sender.locator("#feedback-result").inner_text() == "查到此人"

    # A third township's clerk cannot open the message, neither under its township nor under theirs.
    stranger = sign_in(live, browser, Role.CLERK, ELSEWHERE)
    response = stranger.goto(f"{live.url}/township/{RESIDENCE}/messages/{message_id}")
    assert response.status == 403 and "无权访问" in stranger.locator("h1").inner_text()
    assert CITIZEN_ID not in stranger.content()
    screenshot(stranger, "09-stranger-refused")
    response = stranger.goto(f"{live.url}/township/{ELSEWHERE}/messages/{message_id}")
    assert response.status == 404 and CITIZEN_ID not in stranger.content()

    # A province supervisor drills down to the registration township and exports the table on screen.
    supervisor = sign_in(live, browser, Role.SUPERVISOR, REGISTRATION[:2])
    assert "/dashboard?region=12" in supervisor.url
    screenshot(supervisor, "10-dashboard-province")
    for code, shot in ((REGISTRATION[:4], "11-dashboard-city"), (REGISTRATION[:6], "12-dashboard-county"),
                       (REGISTRATION, "13-dashboard-township")):
        supervisor.click(f"#region-table a[href^='/dashboard?region={code}&']")
        assert f"region={code}" in supervisor.url
        screenshot(supervisor, shot)
    crumbs = supervisor.locator(".crumbs a")
    assert crumbs.count() == 3  # province › city › county, the township itself not a link
    screen = table_on_screen(supervisor, "region-table")
    assert screen[1][0] == REGISTRATION and screen[1][2:4] == ["1", "1"]  # received 1, answered 1
    figures = supervisor.locator(".figure .value").all_inner_texts()
    assert figures[:3] == ["1", "1", "100.0%"]
    with supervisor.expect_download() as download:
        supervisor.click("text=CSV")
    exported = list(csv.reader(io.StringIO(Path(download.value.path()).read_bytes().decode("utf-8-sig"))))
    assert exported == screen
    with supervisor.expect_download() as download:
        supervisor.click("text=Excel（xlsx）")
    sheet = load_workbook(io.BytesIO(Path(download.value.path()).read_bytes())).active
    assert [[str(v) for v in row] for row in sheet.iter_rows(values_only=True)] == screen
    supervisor.click(f".crumbs a[href^='/dashboard?region={REGISTRATION[:6]}&']")
    assert f"region={REGISTRATION[:6]}&" in supervisor.url
    supervisor.click("text=打印视图")
    screenshot(supervisor, "14-dashboard-print")

    # The operator's page.
    operator = sign_in(live, browser, Role.OPERATOR)
    assert operator.url == f"{live.url}/operator"
    assert operator.locator("#health-status").inner_text() == "正常"
    screenshot(operator, "15-operator")


def test_a_no_such_person_answer_states_the_sources_checked(live: LiveGateway, browser: Any) -> None:
    from gateway.codec.citizen_id import check_character

    name, first17 = "赵丽", "12010119880301022"
    citizen_id = first17 + check_character(first17)
    sender = sign_in(live, browser, Role.CLERK, RESIDENCE)
    sender.goto(f"{live.url}/township/{RESIDENCE}/send/query")
    sender.fill("#f-registration_township", REGISTRATION)
    sender.fill("#f-person-name", name)
    sender.fill("#f-person-citizen_id", citizen_id)
    sender.click("button:has-text('发送')")
    message_id = sender.url.split("done=")[1]

    answerer = sign_in(live, browser, Role.CLERK, REGISTRATION)

    def arrived() -> bool:
        answerer.goto(f"{live.url}/township/{REGISTRATION}/messages/{message_id}")
        return answerer.locator("#h-answer").count() == 1

    assert eventually(arrived), "the query never reached the registration township"
    answerer.check("input[name=result][value=not_found]")
    answerer.select_option("#f-not_found_reason", "1")
    answerer.fill("#f-remarks", "门牌号不存在")
    answerer.check("#f-checked_sources-1")  # 公安户籍 alone: rule 十一 asks the database and the cards too
    answerer.click("button:has-text('发送反馈')")
    error = answerer.locator("#f-checked_sources-err")
    assert error.is_visible() and "流动人口数据库" in error.inner_text()
    assert answerer.locator("#f-checked_sources-1").is_checked()
    assert "公安户籍" in answerer.locator("#f-checked_sources").inner_text()  # Chinese labels, not codes
    answerer.check("#f-checked_sources-4")
    answerer.check("#f-checked_sources-5")
    answerer.check("#f-checked_sources-2")  # 地址有误: 民政 besides 公安 (第二十五条: 多方核实)
    answerer.click("button:has-text('发送反馈')")
    assert "反馈已发送" in answerer.locator(".flash").inner_text()
    assert answerer.locator("#feedback-result").inner_text() == "查无此人"
    screenshot(answerer, "16-clerk-answered-no-such-person")

    def answered() -> bool:
        sender.goto(f"{live.url}/township/{RESIDENCE}/messages/{message_id}")
        return sender.locator("#feedback-result").count() == 1

    assert eventually(answered), "the feedback never reached the residence township"
    assert sender.locator("#feedback-result").inner_text() == "查无此人"
    assert "公安户籍" in sender.locator("#feedback").inner_text()


def test_an_operator_redrives_a_quarantined_message_once_its_senders_key_is_known(live: LiveGateway, browser: Any) -> None:
    # A township not yet in the key directory sends a query over the broker: refused, and quarantined.
    newcomer = generate_keyring(NEWCOMER)
    message_id = uuid.uuid4().hex
    envelope = seal(plaintext=wire.encode(parse_message(sample_query(residence=NEWCOMER))), message_id=message_id,
                    kind="query", sender=newcomer.sender_key(), recipient=live.service.directory.recipient_key(REGISTRATION),
                    created_at=live.clock.now())
    live.call(live.broker.publish(REGISTRATION, envelope, message_id=message_id, kind="query"))

    def quarantined() -> list[Any]:
        return [q for q in live.call(live.store.list_quarantine(100)) if q.message_id == message_id]

    assert eventually(lambda: bool(quarantined())), "the newcomer's query never reached the quarantine"
    [item] = quarantined()
    assert item.reason == "unknown_sender" and not item.resolved

    operator = sign_in(live, browser, Role.OPERATOR)
    row = operator.locator(f"#q-{item.id}")
    assert "unknown_sender" in row.inner_text() and "待处理" in row.inner_text()
    screenshot(operator, "17-operator-quarantined")

    # Re-driven before anything is fixed: refused again, said so, and marked as re-driven.
    row.locator("button:has-text('重新投递')").click()
    assert "仍被拒收（unknown_sender）" in operator.locator(".flash").inner_text()
    assert "已重新投递过" in operator.locator(f"#q-{item.id}").inner_text()

    # The operator loads the key directory that now lists the newcomer; the second re-drive is accepted.
    async def add_newcomer() -> None:
        rings = [node.keyring for node in live.service.nodes.values()] + [newcomer]
        live.service.directory = KeyDirectory.from_keyrings(rings)

    live.call(add_newcomer())
    operator.locator(f"#q-{item.id} button:has-text('重新投递')").click()
    assert f"隔离报文 {item.id}：已重新投递并接收" in operator.locator(".flash").inner_text()
    row = operator.locator(f"#q-{item.id}")
    assert "已处理" in row.inner_text() and row.locator("button").count() == 0  # nothing left to re-drive
    screenshot(operator, "18-operator-redriven")
    [after] = quarantined()
    assert after.resolved and after.redriven_at is not None

    # The registration township's clerk now has the query in the inbox, as if it had never been refused.
    clerk = sign_in(live, browser, Role.CLERK, REGISTRATION)
    clerk.goto(f"{live.url}/township/{REGISTRATION}/messages/{message_id}")
    assert CITIZEN_ID in clerk.locator("#record").inner_text()
    assert clerk.locator("#h-answer").count() == 1  # waiting for its answer
