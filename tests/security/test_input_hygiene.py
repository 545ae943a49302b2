"""Control characters and NUL are refused at every input with 422, before any statement reaches the
database (a NUL gave 500 on PostgreSQL; an ESC in a name or filename reached the audit trail)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from gateway.access.principal import Role
from gateway.api.app import create_app
from gateway.api.input_hygiene import body_refusals, refusal_of
from gateway.clock import FakeClock
from gateway.settings import Settings
from tests.access.helpers import bearer_token, browser_client
from tests.gateways import REGISTRATION, RESIDENCE, T0, database_gateway, keyrings, sample_query
from tests.statements import statements_run

pytestmark = pytest.mark.database


@pytest.fixture
async def gateway(database_url: str, tmp_path: Path):
    gw = database_gateway(keyrings(RESIDENCE, REGISTRATION), database_url=database_url, data_dir=tmp_path)
    await gw.start(relay=False)
    yield gw
    await gw.stop()


async def audit_count(gateway) -> int:
    return len([r async for r in gateway.access.audit.records()])


def test_a_control_character_is_named_by_its_code_point_and_position_never_shown() -> None:
    assert refusal_of("王秀英") is None
    assert refusal_of("ad\x1b[2Kmin") == "must not contain control characters (U+001B at position 3)"
    assert refusal_of("\x85") == "must not contain control characters (U+0085 at position 1)"


def test_json_escapes_and_c1_characters_are_decoded_before_the_check() -> None:
    assert body_refusals("application/json", b'{"name": "\\\\u0000 is text"}') == []  # an escaped backslash
    [error] = body_refusals("application/json", b'{"person": {"name": "\\u0000"}}')
    assert error["loc"] == ["body", "person", "name"] and "U+0000" in error["msg"]
    [error] = body_refusals("application/json", '{"a": ["ok", "x\u0085"]}'.encode())
    assert error["loc"] == ["body", "a", 1]
    [error] = body_refusals("application/json", b'{"\\u001b[31m": 1}')
    assert error["loc"] == ["body", "?"]  # the key itself is not echoed


async def test_nul_and_escape_anywhere_are_refused_with_422_before_any_database_statement(gateway) -> None:
    token = await bearer_token(gateway, Role.CLERK, RESIDENCE)
    app = create_app(gateway)
    statements: list[str] = []
    probes = [
        ("GET", f"/nodes/{RESIDENCE}/messages/abc%00def", {}),
        ("GET", f"/nodes/{RESIDENCE}/inbox", {"params": {"after": "x\x00"}}),
        ("GET", "/dashboard", {"params": {"period": "2026-Q1\x1b"}}),
        ("POST", f"/nodes/{RESIDENCE}/queries", {"json": {**sample_query(), "current_address": "幸福路\u00001号"}}),
        ("POST", f"/nodes/{RESIDENCE}/imports", {"params": {"kind": "query", "filename": "cards\x1b[2K.csv"},
                                                        "content": b"x", "headers": {"content-type": "text/csv"}}),
        ("POST", f"/township/{RESIDENCE}/send/query", {"data": {"current_address": "x\x1b[2K", "csrf_token": "t"}}),
    ]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw",
                                 headers={"Authorization": f"Bearer {token}"}) as http:
        with statements_run(gateway.engine, statements.append):
            for method, path, kw in probes:
                response = await http.request(method, path, **kw)
                assert response.status_code == 422, (path, response.status_code, response.text)
                assert "must not contain control characters" in response.text
        assert statements == []
        # The same requests without the control character reach the routes (no 422 from the check).
        clean = await http.get(f"/nodes/{RESIDENCE}/messages/abcdef")
        assert clean.status_code == 404


async def test_an_uploaded_file_whose_name_holds_control_characters_is_refused_and_not_audited(gateway) -> None:
    async with browser_client(gateway, Role.CLERK, RESIDENCE) as (http, csrf):
        after_sign_in = await audit_count(gateway)
        response = await http.post(f"/township/{RESIDENCE}/upload", data={"csrf_token": csrf, "kind": "query"},
                                   files={"file": ("cards\x1b[2K.csv", b"a,b\n", "text/csv")})
    assert response.status_code == 422 and "文件名含有不可见的控制字符" in response.text
    assert await audit_count(gateway) == after_sign_in


def test_the_text_listings_show_control_characters_as_escapes_and_each_record_on_one_line(
    database_url, monkeypatch, tmp_path
) -> None:
    """A record written before this check (or by a path that let one through) cannot forge a line."""
    import asyncio

    from typer.testing import CliRunner

    from gateway.access.audit import AuditEntry
    from gateway.adapters.sql.engine import create_engine, create_schema
    from gateway.bootstrap import build_access
    from gateway.cli.access_cmds import audit_app

    forged = "mal\u202elory\r\x1b[2K 2 2026-12-08 admin admin sign_in ok"

    async def write() -> None:
        engine = create_engine(database_url)
        await create_schema(engine)
        await build_access(engine, FakeClock(T0), settings=Settings(data_dir=tmp_path)).audit.record(AuditEntry("sign_in", forged, "", "10.0.0.9",
                                                                          result="refused"))
        await engine.dispose()

    asyncio.run(write())
    monkeypatch.setenv("GATEWAY_DATABASE_URL", database_url)
    monkeypatch.setenv("GATEWAY_DATA_DIR", str(tmp_path))  # the audit key the record was chained with
    listed = CliRunner().invoke(audit_app, ["list"])
    assert listed.exit_code == 0, listed.output
    [line] = listed.output.splitlines()
    assert "mal\\u202elory\\x0d\\x1b[2K" in line and "\x1b" not in line and "\r" not in line
    assert line.endswith("refused")
