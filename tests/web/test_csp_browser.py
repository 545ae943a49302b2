"""The pages still work under their Content-Security-Policy (issue 24, item 4), in Chromium: the inlined
stylesheet is applied (allowed by its hash), the browser reports no violation, a page of another site
cannot frame them, and the API docs run Swagger UI (its inline script allowed by its hash)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from gateway.access.principal import Role
from gateway.api.app import create_app
from tests.access.helpers import PASSWORD, add_user
from tests.gateways import REGISTRATION, RESIDENCE, fake_gateway, keyrings

from .live_server import free_port
from .test_browser import browser  # noqa: F401 - the fixture

pytestmark = [pytest.mark.browser]


class Site:
    def __init__(self, url: str, gateway: Any, loop: asyncio.AbstractEventLoop) -> None:
        self.url, self.gateway, self.loop = url, gateway, loop

    def call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(30)


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    """The pages of a gateway on the in-memory store, served by uvicorn from a thread of its own."""
    gateway = fake_gateway(keyrings(RESIDENCE, REGISTRATION))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(gateway), host="127.0.0.1", port=port, log_level="warning"))
    loop = asyncio.new_event_loop()

    async def serve() -> None:
        await gateway.start(relay=False)
        try:
            await server.serve()
        finally:
            await gateway.stop()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the pages did not start"
        time.sleep(0.05)
    try:
        yield Site(f"http://127.0.0.1:{port}", gateway, loop)
    finally:
        server.should_exit = True
        thread.join(30)


def test_the_sign_in_page_is_styled_and_breaks_no_rule_of_its_policy(browser: Any, site: Site) -> None:  # noqa: F811
    page = browser.new_page()
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    response = page.goto(f"{site.url}/login")
    assert response.status == 200
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    # site.css puts the skip link off-screen: applied only if the policy let the inlined stylesheet in.
    assert page.eval_on_selector("a.skip", "e => getComputedStyle(e).position") == "absolute"
    assert page.eval_on_selector("body", "e => getComputedStyle(e).margin") == "0px"
    assert not [m for m in console if "Content Security Policy" in m], console
    page.close()


def test_another_site_cannot_frame_the_pages(browser: Any, site: Site) -> None:  # noqa: F811
    page = browser.new_page()
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    page.set_content(f'<iframe id="f" src="{site.url}/login" width="400" height="300"></iframe>')
    page.wait_for_timeout(1500)
    frame = page.frame_locator("#f")
    assert frame.locator("form").count() == 0  # nothing of the page was rendered in the frame
    assert any("frame-ancestors" in m or "Refused to display" in m for m in console), console
    page.close()


def test_the_api_docs_run_swagger_ui_under_their_own_policy(browser: Any, site: Site) -> None:  # noqa: F811
    name, _ = site.call(add_user(site.gateway, Role.CLERK, RESIDENCE))
    page = browser.new_page()
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    page.goto(f"{site.url}/login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{site.url}/township/{RESIDENCE}/inbox")
    page.goto(f"{site.url}/docs")
    page.wait_for_selector(".opblock", timeout=15_000)  # Swagger UI's script ran and drew the operations
    assert page.locator(".opblock").count() > 10
    assert not [m for m in console if "Content Security Policy" in m], console
    page.close()
