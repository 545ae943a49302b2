"""The grid-bomb probe of the red-team pass (issue 24), in its variants: a workbook of a few hundred bytes
that claims a sheet of 16,384 columns × 20,001 rows (10 GB to a reader) — by two cells, by its declared
dimension, or by cells without references that only count their way there. Each is refused by the check
in well under a second, with the memory of the check flat (what the reader would have allocated is never
asked for). The same through the HTTP API and the import worker: tests/api/test_import_bounds.py."""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import pytest

from gateway.codec.bulk_import import import_file
from tests.codec.test_sheet_extent import sheet_workbook

VARIANTS = {
    "two-cells": ("", '<row r="1"><c r="A1"><v>1</v></c></row><row r="20001"><c r="XFD20001"><v>1</v></c></row>'),
    "declared-dimension": ('<dimension ref="A1:XFD20001"/>', '<row r="1"><c r="A1"><v>1</v></c></row>'),
    "counted-cells": ("", '<row r="1">' + "<c/>" * 16_384 + '<c><v>1</v></c></row>'),
    "far-row": ("", '<row r="1"><c r="A1"><v>1</v></c></row><row r="1048576"><c><v>1</v></c></row>'),
}


@pytest.mark.parametrize("variant", VARIANTS, ids=list(VARIANTS))
def test_a_grid_bomb_is_refused_in_under_a_second_with_flat_memory(tmp_path: Path, variant: str) -> None:
    head, rows = VARIANTS[variant]
    path = sheet_workbook(tmp_path / "bomb.xlsx", rows, head=head)
    assert path.stat().st_size < 3_000
    tracemalloc.start()
    started = time.perf_counter()
    try:
        report = import_file(path, "query")
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(report.file_errors) == 1 and not report.good, report.file_errors
    reason = report.file_errors[0]
    assert "beyond column 40" in reason or "more than 20000 rows" in reason, reason
    assert elapsed < 1.0, f"{elapsed:.2f} s"
    assert peak < 20 * 1024 * 1024, f"the check took {peak / 1e6:.0f} MB"

