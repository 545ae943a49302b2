"""Reading an import workbook: openpyxl (read-only, streaming) against python-calamine.

Writes a workbook of N information cards (shared strings, as Excel saves them), reads its first sheet
with each reader several times, checks both give the same cells after the importer's own conversion,
and prints the median times and the readers' peak memory. Run by hand:

    .venv/bin/python bench/bench_import.py --rows 20000
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.codec.bulk_import import _text  # noqa: E402
from gateway.codec.citizen_id import check_character  # noqa: E402
from tests.workbooks import write_xlsx  # noqa: E402

HEADER = ["现居住地乡镇代码", "户籍地乡镇代码", "姓名", "身份证号码", "出生日期", "性别", "现居住地址", "备注", "本地掌握儿子数"]


def card_rows(n: int):
    yield HEADER
    for i in range(n):
        first17 = f"12010119900517{i % 1000:03d}"
        yield ["110101001", "120101001", f"王秀{chr(0x4E00 + i % 2000)}", first17 + check_character(first17),
               "1990-05-17", "2", f"幸福路{i}号", "" if i % 3 else "本地核实", i % 3]


def read_openpyxl(path: Path) -> list[tuple]:
    from openpyxl import load_workbook

    book = load_workbook(path, read_only=True, data_only=True)
    try:
        return [tuple(r) for r in book.worksheets[0].iter_rows(values_only=True)]
    finally:
        book.close()


def read_calamine(path: Path) -> list[tuple]:
    from python_calamine import CalamineWorkbook

    book = CalamineWorkbook.from_path(str(path))
    try:
        return [tuple(r) for r in book.get_sheet_by_index(0).iter_rows()]
    finally:
        book.close()


def normalised(rows: list[tuple]) -> list[tuple]:
    # what the importer sees: blank cells and "" alike, numbers as their text
    return [tuple(_text(v) if v not in (None, "") else "" for v in r) for r in rows]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = write_xlsx(Path(tmp) / "cards.xlsx", card_rows(args.rows), compresslevel=6)
        print(f"{args.rows} rows × {len(HEADER)} columns, {path.stat().st_size / 1e6:.2f} MB")
        results = {}
        for name, reader in (("openpyxl", read_openpyxl), ("python-calamine", read_calamine)):
            times = []
            for _ in range(args.repeat):
                t = time.perf_counter()
                rows = reader(path)
                times.append(time.perf_counter() - t)
            tracemalloc.start()
            reader(path)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            results[name] = normalised(rows)
            print(f"{name:16} median {statistics.median(times) * 1000:8.0f} ms  (min {min(times) * 1000:.0f})"
                  f"  Python-heap peak {peak / 1e6:.0f} MB")
        same = results["openpyxl"] == results["python-calamine"]
        print("same cells:", same)
        if not same:
            for a, b in zip(results["openpyxl"], results["python-calamine"]):
                if a != b:
                    print("first difference:", a, b)
                    break


if __name__ == "__main__":
    main()
