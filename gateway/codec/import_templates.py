"""Blank import templates (CSV and .xlsx) generated from the column layout.

Header row only: an example row left in a filled-in template would be imported as a real
person. The examples are in the header comments of the .xlsx and in docs/codec-import.md."""

from __future__ import annotations

import csv
from pathlib import Path

from gateway.codec.import_columns import LAYOUTS
from gateway.codec.paths import schemas_dir
from gateway.codec.text_hygiene import spreadsheet_row


def templates_dir() -> Path:
    return schemas_dir().parent / "templates"


def write_templates(target: Path | None = None) -> list[Path]:
    from openpyxl import Workbook
    from openpyxl.comments import Comment
    from openpyxl.styles import Font

    target = target or templates_dir()
    target.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for kind, columns in LAYOUTS.items():
        headers = spreadsheet_row(c.header for c in columns)
        csv_path = target / f"{kind}-import.csv"
        # utf-8-sig: Excel on Windows opens a BOM-marked CSV as UTF-8 instead of GBK.
        with csv_path.open("w", encoding="utf-8-sig", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(headers)
        written.append(csv_path)

        book = Workbook()
        sheet = book.active
        sheet.title = kind
        sheet.append(headers)
        for i, column in enumerate(columns, start=1):
            cell = sheet.cell(row=1, column=i)
            cell.font = Font(bold=column.required)
            note = column.path + ("; 必填" if column.required else "") + (f"; {column.note}" if column.note else "") + (
                f"; 例: {column.example}" if column.example else ""
            )
            cell.comment = Comment(note, "gateway")
            # Text format keeps ID numbers, codes with leading zeros and dates exactly as typed.
            dimension = sheet.column_dimensions[cell.column_letter]
            dimension.number_format = "@"
            dimension.width = max(10, len(column.header) * 2 + 2)
        xlsx_path = target / f"{kind}-import.xlsx"
        book.save(xlsx_path)
        written.append(xlsx_path)
    return written
