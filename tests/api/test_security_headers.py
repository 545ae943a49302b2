"""The headers that keep decrypted personal data out of caches and the pages out of other sites' frames
(issue 24, item 4): `Cache-Control: no-store` wherever personal data is shown or exported, a
Content-Security-Policy under which the pages still work (no script; the one inlined stylesheet allowed by
its hash), `frame-ancestors 'none'`, nosniff, Referrer-Policy, and HSTS only over HTTPS."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from gateway.access.principal import Role
from gateway.api.docs import ASSETS
from tests.access.helpers import browser_client, signed_in_client
from tests.gateways import REGISTRATION, RESIDENCE, fake_gateway, keyrings, sample_query


@pytest.fixture
async def gw() -> AsyncIterator[Any]:
    gateway = fake_gateway(keyrings(RESIDENCE, REGISTRATION))
    await gateway.start(relay=False)
    yield gateway
    await gateway.stop()


def sha256_source(text: str) -> str:
    return f"'sha256-{base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()}'"


def assert_guarded(response: httpx.Response) -> None:
    assert response.headers["cache-control"] == "no-store", response.request.url
    policy = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-frame-options"] == "DENY"


async def test_every_page_showing_personal_data_is_not_stored_and_runs_no_script(gw: Any) -> None:
    async with signed_in_client(gw, Role.CLERK, RESIDENCE) as api:
        sent = await api.post(f"/nodes/{RESIDENCE}/queries", json=sample_query())
        assert sent.status_code == 202
        message_id = sent.json()["message_id"]
        for path in (f"/nodes/{RESIDENCE}/sent", f"/nodes/{RESIDENCE}/inbox", f"/nodes/{RESIDENCE}/messages/{message_id}"):
            response = await api.get(path)
            assert response.status_code == 200, path
            assert_guarded(response)
    async with browser_client(gw, Role.CLERK, RESIDENCE) as (http, _):
        for path in (f"/township/{RESIDENCE}/inbox", f"/township/{RESIDENCE}/sent", f"/township/{RESIDENCE}/upload",
                     f"/township/{RESIDENCE}/messages/{message_id}"):
            page = await http.get(path)
            assert page.status_code == 200, path
            assert_guarded(page)
            policy = page.headers["content-security-policy"]
            assert "default-src 'none'" in policy and "script-src" not in policy and "<script" not in page.text
            # The page's only style is its inlined stylesheet, and the policy allows exactly that one.
            styles = re.findall(r"<style>(.*?)</style>", page.text, re.S)
            assert len(styles) == 1 and f"style-src {sha256_source(styles[0])};" in policy
            assert " style=" not in page.text


async def test_a_refusal_before_any_route_carries_the_headers_too(gw: Any) -> None:
    async with signed_in_client(gw, Role.CLERK, RESIDENCE, base_url="http://elsewhere.example") as api:
        response = await api.get(f"/nodes/{RESIDENCE}/inbox")
    assert response.status_code == 400  # another host name (TrustedHostMiddleware)
    assert_guarded(response)


async def test_hsts_only_over_https(gw: Any) -> None:
    async with signed_in_client(gw, Role.CLERK, RESIDENCE, base_url="https://gw") as api:
        assert (await api.get("/health")).headers["strict-transport-security"] == f"max-age={gw.settings.hsts_max_age_s}"
    async with signed_in_client(gw, Role.CLERK, RESIDENCE, base_url="http://gw") as api:
        assert "strict-transport-security" not in (await api.get("/health")).headers


async def test_the_api_docs_page_allows_its_own_script_by_hash_and_its_assets_may_be_cached(gw: Any) -> None:
    async with browser_client(gw, Role.CLERK, RESIDENCE) as (http, _):
        page = await http.get("/docs")
        asset = await http.get(f"{ASSETS}/swagger-ui.css")
    assert page.status_code == 200
    policy = page.headers["content-security-policy"]
    scripts = re.findall(r"<script>(.*?)</script>", page.text, re.S)
    assert scripts and all(sha256_source(s) in policy for s in scripts)
    assert "frame-ancestors 'none'" in policy and "'unsafe-inline'" not in policy.split("script-src", 1)[1].split(";")[0]
    assert page.headers["cache-control"] == "no-store"
    assert asset.status_code == 200 and "cache-control" not in asset.headers
    assert asset.headers["x-content-type-options"] == "nosniff"
