"""Uploads bounded by what they claim (issue 24, item 2), through the HTTP API and the clerk's page.

The 1.8 kB workbook with cells A1 and XFD20001 is refused with its reason in well under a second and
nothing allocates its 10 GB grid; a file that still needs more memory than the import worker may use
(the caps raised by an operator) is refused with that reason, and the next import is served; a worker
that cannot start at all is a 503, not a hung request.
"""

from __future__ import annotations

import asyncio
import resource
import time
from pathlib import Path
from typing import Any

import httpx

from gateway.access.principal import Role
from gateway.api import import_worker
from gateway.api.limits import XLSX
from gateway.exchange.records import Direction
from tests.access.helpers import browser_client, signed_in_client
from tests.api.test_import_refusals import GOOD, HEADER, gw, refused, upload, with_limits  # noqa: F401 - fixture
from tests.codec.test_sheet_extent import BOMB, sheet_workbook
from tests.gateways import RESIDENCE
from tests.workbooks import write_xlsx


WORKER_START_S = 4.0  # a replacement worker loads the codec in about a second; more on a loaded machine


async def post(http: httpx.AsyncClient, body: bytes, filename: str = "cards.xlsx") -> httpx.Response:
    return await http.post(f"/nodes/{RESIDENCE}/imports", params={"kind": "query", "filename": filename},
                           content=body, headers={"content-type": XLSX})


def _rss_mb(status: str = "/proc/self/status", field: str = "VmRSS") -> float:
    for line in Path(status).read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no {field} in {status}")


def _children_peak_mb() -> float:
    # The largest resident size any finished child (the import workers among them) ever reached.
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


async def test_the_two_cell_bomb_is_a_422_within_a_second_and_no_process_grows(gw: Any, tmp_path: Path) -> None:
    bomb = sheet_workbook(tmp_path / "bomb.xlsx", BOMB).read_bytes()
    assert len(bomb) < 2_000
    warm = write_xlsx(tmp_path / "cards.xlsx", [HEADER, GOOD]).read_bytes()
    async with signed_in_client(gw, Role.CLERK, RESIDENCE, timeout=60) as http:
        assert (await post(http, warm)).status_code == 200
        # Each worker reads one file and is replaced; what is timed is the check, not the replacement's start.
        await asyncio.sleep(WORKER_START_S)
        before = _rss_mb()
        started = time.perf_counter()
        response = await post(http, bomb, "bomb.xlsx")
        elapsed = time.perf_counter() - started
    reason = refused(response)
    assert reason.startswith("bomb.xlsx: sheet xl/worksheets/sheet1.xml has a cell in column 16384, beyond column 40")
    assert elapsed < 1.0, f"{elapsed:.2f} s"
    assert _rss_mb() - before < 50
    import_worker.shared(1, gw.settings.import_worker_memory_mb).close()  # the worker that read it has ended
    assert _children_peak_mb() < 1024, "a worker grew past 1 GB"
    assert len(await gw.store.list_messages(RESIDENCE, Direction.OUT)) == 1  # the warm-up's card only


async def test_the_clerk_reads_why_the_bomb_was_refused_in_chinese(gw: Any, tmp_path: Path) -> None:
    bomb = sheet_workbook(tmp_path / "bomb.xlsx", BOMB).read_bytes()
    async with browser_client(gw, Role.CLERK, RESIDENCE) as (http, csrf):
        response = await http.post(f"/township/{RESIDENCE}/upload", data={"kind": "query", "csrf_token": csrf},
                                   files={"file": ("bomb.xlsx", bomb, "application/octet-stream")})
    assert response.status_code == 422
    assert "bomb.xlsx：工作表 xl/worksheets/sheet1.xml 的第16384列有单元格，超出了第40列" in response.text
    assert "beyond column" not in response.text


async def test_a_file_needing_more_than_the_workers_memory_is_refused_and_the_next_import_is_served(
    gw: Any, tmp_path: Path
) -> None:
    # The operator raised the caps so far that 40 columns × 1,000,000 rows pass the checks: the reader's
    # grid (over 1 GB) then meets the worker's memory limit instead.
    with_limits(gw, import_max_rows=2_000_000, import_max_cells=10**9, import_worker_memory_mb=300)
    wide = sheet_workbook(tmp_path / "wide.xlsx", '<row r="1"><c r="A1"><v>1</v></c></row>'
                          '<row r="1000000"><c r="AN1000000"><v>1</v></c></row>').read_bytes()
    try:
        reason = refused(await upload(gw, wide, filename="wide.xlsx"))
        assert reason in (f"wide.xlsx: {import_worker.WORKER_STOPPED}", f"wide.xlsx: {import_worker.OUT_OF_MEMORY}")
        good = write_xlsx(tmp_path / "cards.xlsx", [HEADER, GOOD]).read_bytes()
        after = await upload(gw, good)
        assert after.status_code == 200, after.text
        assert [s["row"] for s in after.json()["sent"]] == [2]
    finally:
        import_worker.shared(1, 300).close()


async def test_a_worker_that_cannot_start_is_a_503_with_its_reason(gw: Any, tmp_path: Path) -> None:
    with_limits(gw, import_worker_memory_mb=8)  # too little for the worker to load the codec
    good = write_xlsx(tmp_path / "cards.xlsx", [HEADER, GOOD]).read_bytes()
    try:
        response = await upload(gw, good)
        assert response.status_code == 503, response.text
        assert response.json()["detail"].startswith("the import worker cannot start")
        async with browser_client(gw, Role.CLERK, RESIDENCE) as (http, csrf):
            page = await http.post(f"/township/{RESIDENCE}/upload", data={"kind": "query", "csrf_token": csrf},
                                   files={"file": ("cards.xlsx", good, "application/octet-stream")})
        assert page.status_code == 503
        assert "导入进程无法启动" in page.text
    finally:
        import_worker.shared(1, 8).close()
    assert await gw.store.list_messages(RESIDENCE, Direction.OUT) == []
