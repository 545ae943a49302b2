"""Bounded HTTP (issue 11, item 2): body size, media types, parameters and the Host allow-list are
checked before a route parses anything, each with its own status and a reason that names the limit."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from gateway.api.app import create_app
from gateway.exchange.records import Direction
from gateway.settings import Settings
from gateway.access.principal import Role
from tests.access.helpers import signed_in_client
from tests.gateways import REGISTRATION, RESIDENCE, fake_gateway, keyrings, sample_query

MIB = 1024 * 1024


@pytest.fixture
async def gw() -> AsyncIterator[Any]:
    gateway = fake_gateway(keyrings(RESIDENCE, REGISTRATION))
    await gateway.start(relay=False)
    yield gateway
    await gateway.stop()


def client(gateway: Any, host: str = "gw") -> Any:
    """The residence township's clerk, signed in: the limits are checked for a caller who may call the route."""
    return signed_in_client(gateway, Role.CLERK, RESIDENCE, base_url=f"http://{host}")


def operator_client(gateway: Any) -> Any:
    return signed_in_client(gateway, Role.OPERATOR)


async def chunks(total: int, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        yield b" " * min(size, total - sent)
        sent += size


async def test_a_json_body_over_one_mib_is_refused_with_413_naming_the_setting(gw: Any) -> None:
    padded = json.dumps({**sample_query(), "remarks": "x" * (MIB + 10)})
    async with client(gw) as http:
        response = await http.post(f"/nodes/{RESIDENCE}/queries", content=padded,
                                   headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.json() == {"detail": "request body too large: the limit is 1048576 bytes (GATEWAY_MAX_BODY_BYTES)"}
    assert await gw.store.list_messages(RESIDENCE, Direction.OUT) == []


async def test_a_chunked_body_without_content_length_is_stopped_at_the_limit(gw: Any) -> None:
    async with client(gw) as http:
        response = await http.post(f"/nodes/{RESIDENCE}/queries", content=chunks(3 * MIB),
                                   headers={"content-type": "application/json"})
    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert "GATEWAY_MAX_BODY_BYTES" in response.json()["detail"]


async def test_a_declared_content_length_over_the_limit_is_refused_before_the_body_is_read(gw: Any) -> None:
    app = create_app(gw)
    read: list[int] = []

    async def receive() -> dict[str, Any]:
        read.append(1)
        return {"type": "http.request", "body": b"{}", "more_body": False}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": f"/nodes/{RESIDENCE}/queries", "raw_path": b"", "query_string": b"", "root_path": "",
             "headers": [(b"host", b"gw"), (b"content-type", b"application/json"), (b"content-length", b"5000000")],
             "client": ("127.0.0.1", 1), "server": ("gw", 80)}
    await app(scope, receive, send)
    assert sent[0]["status"] == 413
    assert read == []


async def test_an_import_may_be_larger_than_a_record_up_to_its_own_limit(gw: Any) -> None:
    header = "现居住地乡镇代码,户籍地乡镇代码,姓名,身份证号码\n".encode()
    async with client(gw) as http:
        # 2 MiB of trailing blank lines: over the JSON limit, under the import limit — read, not refused.
        ok = await http.post(f"/nodes/{RESIDENCE}/imports", content=header + b"\n" * (2 * MIB),
                             headers={"content-type": "text/csv"})
        too_big = await http.post(f"/nodes/{RESIDENCE}/imports", content=chunks(21 * MIB),
                                  headers={"content-type": "text/csv"})
    assert ok.status_code != 413
    assert too_big.status_code == 413
    assert too_big.json()["detail"] == "request body too large: the limit is 20971520 bytes (GATEWAY_MAX_IMPORT_BYTES)"


async def test_body_limits_come_from_the_settings(gw: Any) -> None:
    gw.settings = Settings(nodes=gw.settings.nodes, data_dir=gw.settings.data_dir, allowed_hosts=["gw"],
                           max_body_bytes=2048)
    async with client(gw) as http:
        response = await http.post(f"/nodes/{RESIDENCE}/queries", json={**sample_query(), "remarks": "x" * 3000})
    assert response.status_code == 413
    assert "2048 bytes" in response.json()["detail"]


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data", None])
async def test_a_record_in_another_media_type_is_refused_with_415(gw: Any, content_type: str | None) -> None:
    headers = {"content-type": content_type} if content_type else {}
    async with client(gw) as http:
        response = await http.post(f"/nodes/{RESIDENCE}/queries", content=json.dumps(sample_query()), headers=headers)
    assert response.status_code == 415
    assert response.json()["detail"].endswith("this route accepts application/json (set Content-Type)")
    assert await gw.store.list_messages(RESIDENCE, Direction.OUT) == []


async def test_json_with_a_charset_is_accepted(gw: Any) -> None:
    async with client(gw) as http:
        response = await http.post(f"/nodes/{RESIDENCE}/queries", content=json.dumps(sample_query()).encode(),
                                   headers={"content-type": "application/json; charset=utf-8"})
    assert response.status_code == 202, response.text


@pytest.mark.parametrize("content_type", ["application/json", "application/octet-stream", "text/plain", None])
async def test_an_import_accepts_only_csv_or_xlsx(gw: Any, content_type: str | None) -> None:
    headers = {"content-type": content_type} if content_type else {}
    async with client(gw) as http:
        response = await http.post(f"/nodes/{RESIDENCE}/imports", content=b"a,b\n", headers=headers)
    assert response.status_code == 415
    assert response.json()["detail"].endswith(
        "this route accepts text/csv or application/vnd.openxmlformats-officedocument.spreadsheetml.sheet (set Content-Type)")


async def test_a_post_without_a_body_needs_no_media_type_but_refuses_a_form(gw: Any) -> None:
    async with operator_client(gw) as http:
        bare = await http.post("/operator/quarantine/1/redrive")
        form = await http.post("/operator/quarantine/1/redrive", data={"a": "b"})
    assert bare.status_code == 404  # reached the route: no such quarantined message
    assert form.status_code == 415


@pytest.mark.parametrize("limit", ["0", "1001", "-1", "abc", "99999999999999999999999"])
async def test_limit_outside_1_to_1000_is_a_422(gw: Any, limit: str) -> None:
    async with client(gw) as clerk, operator_client(gw) as operator:
        for http, path in ((clerk, f"/nodes/{RESIDENCE}/inbox"), (clerk, f"/nodes/{RESIDENCE}/sent"),
                           (operator, "/quarantine"), (operator, "/operator/quarantine")):
            response = await http.get(path, params={"limit": limit})
            assert response.status_code == 422, (path, response.text)
            assert response.json()["detail"][0]["loc"] == ["query", "limit"]


async def test_limit_within_bounds_is_accepted(gw: Any) -> None:
    async with client(gw) as http:
        assert (await http.get(f"/nodes/{RESIDENCE}/inbox", params={"limit": "1000"})).status_code == 200
        assert (await http.get(f"/nodes/{RESIDENCE}/inbox", params={"limit": "1"})).status_code == 200


@pytest.mark.parametrize("path", [
    "/nodes/1101010011/inbox", "/nodes/abc/cases", "/nodes/" + "9" * 5000 + "/sent",
    f"/nodes/{RESIDENCE}/messages/" + "m" * 65,
    f"/nodes/{REGISTRATION}/inbox/" + "m" * 500 + "/feedback",
])
async def test_ids_in_the_path_are_bounded_strings(gw: Any, path: str) -> None:
    async with client(gw) as http:
        response = await http.request("POST" if path.endswith("feedback") else "GET", path, json={"result": "found"})
    assert response.status_code == 422, response.text
    loc = response.json()["detail"][0]["loc"]
    assert loc[0] == "path" and loc[1] in ("code", "message_id")


@pytest.mark.parametrize("item", ["0", "9223372036854775808", "-5"])
async def test_quarantine_ids_outside_what_the_database_stores_are_a_422(gw: Any, item: str) -> None:
    async with operator_client(gw) as http:
        response = await http.get(f"/operator/quarantine/{item}")
    assert response.status_code == 422


async def test_an_unknown_host_header_is_refused_against_dns_rebinding(gw: Any) -> None:
    async with client(gw, host="attacker.example") as http:
        response = await http.get("/nodes")
    assert response.status_code == 400
    assert response.text == "Invalid host header"


def test_the_default_allowed_hosts_are_loopback_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GATEWAY_ALLOWED_HOSTS", raising=False)
    assert Settings(_env_file=None).allowed_hosts == ["127.0.0.1", "localhost"]
    monkeypatch.setenv("GATEWAY_ALLOWED_HOSTS", "gw.example.cn, 10.0.0.5")
    assert Settings(_env_file=None).allowed_hosts == ["gw.example.cn", "10.0.0.5"]


@pytest.mark.parametrize("host", ["127.0.0.1:8080", "localhost"])
async def test_the_default_hosts_reach_the_api(host: str) -> None:
    gateway = fake_gateway(keyrings(RESIDENCE, REGISTRATION))
    gateway.settings = Settings(nodes=gateway.settings.nodes, data_dir=gateway.settings.data_dir, _env_file=None)
    async with client(gateway, host=host) as http:
        assert (await http.get("/nodes")).status_code == 200


@pytest.mark.broker
async def test_the_demo_reaches_its_own_app_through_an_allowed_host(amqp_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.demo import run_demo

    monkeypatch.delenv("GATEWAY_ALLOWED_HOSTS", raising=False)
    summary = await run_demo(amqp_url=amqp_url, townships=2, messages=4)
    assert summary.ok and summary.answered == 4
