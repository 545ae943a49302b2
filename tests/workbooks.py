"""Writing .xlsx files for tests and benchmarks, fast and row by row.

openpyxl's writer needs minutes for a million rows; this one writes the few parts a workbook needs
(content types, relationships, workbook, one sheet, shared strings) straight into the zip, so a test can
make a 1,000,000-row workbook in seconds instead of committing one. It can also plant what a hostile
file carries (a DOCTYPE with entities, lying sizes) — see the `sheet_prolog` argument.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from xml.sax.saxutils import escape

CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    '<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
    "</Types>"
)
ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>'
    "</Relationships>"
)
WORKBOOK = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    '<sheets><sheet name="cards" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>'
    '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/>'
    "</Relationships>"
)
SHEET_OPEN = '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
SHEET_CLOSE = "</sheetData></worksheet>"


def _column(i: int) -> str:
    name = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        name = chr(65 + r) + name
    return name


def write_xlsx(
    path: Path,
    rows: Iterable[Sequence[str | int | None]],
    *,
    sheet_prolog: str = "",
    compresslevel: int = 1,
) -> Path:
    """Write `rows` (the header first) as the first sheet; text cells go to the shared strings as Excel
    does. `sheet_prolog` is put between the XML declaration and the root element of the sheet."""
    strings: dict[str, int] = {}
    letters = [_column(i) for i in range(64)]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=compresslevel) as z:
        z.writestr("[Content_Types].xml", CONTENT_TYPES)
        z.writestr("_rels/.rels", ROOT_RELS)
        z.writestr("xl/workbook.xml", WORKBOOK)
        z.writestr("xl/_rels/workbook.xml.rels", WORKBOOK_RELS)
        with z.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as f:
            f.write(f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n{sheet_prolog}{SHEET_OPEN}'.encode())
            buf: list[str] = []
            for r, row in enumerate(rows, start=1):
                cells = []
                for c, value in enumerate(row):
                    if value is None:
                        continue
                    ref = f"{letters[c]}{r}"
                    if isinstance(value, int):
                        cells.append(f'<c r="{ref}"><v>{value}</v></c>')
                    else:
                        index = strings.setdefault(value, len(strings))
                        cells.append(f'<c r="{ref}" t="s"><v>{index}</v></c>')
                buf.append(f'<row r="{r}">{"".join(cells)}</row>')
                if len(buf) >= 5000:
                    f.write("".join(buf).encode())
                    buf.clear()
            f.write(("".join(buf) + SHEET_CLOSE).encode())
        with z.open("xl/sharedStrings.xml", "w", force_zip64=True) as f:
            f.write(
                '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                f'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" uniqueCount="{len(strings)}">'.encode()
            )
            batch: list[str] = []
            for s in strings:
                batch.append(f"<si><t>{escape(s)}</t></si>")
                if len(batch) >= 5000:
                    f.write("".join(batch).encode())
                    batch.clear()
            f.write(("".join(batch) + "</sst>").encode())
    return path


def write_many_rows_xlsx(path: Path, rows: int, *, compresslevel: int = 6) -> Path:
    """A workbook of `rows` rows of two cells — a name cycling over 500 shared strings and a varying
    number — written from one row template, fast enough for a million rows in a test fixture. The rows
    are not meant to be valid cards: the file is meant to be refused."""
    strings = ["姓名", "本地掌握儿子数"] + [f"王秀{chr(0x4E00 + i)}" for i in range(500)]
    template = '<row r="%d"><c r="A%d" t="s"><v>%d</v></c><c r="B%d"><v>%d</v></c></row>'
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=compresslevel) as z:
        z.writestr("[Content_Types].xml", CONTENT_TYPES)
        z.writestr("_rels/.rels", ROOT_RELS)
        z.writestr("xl/workbook.xml", WORKBOOK)
        z.writestr("xl/_rels/workbook.xml.rels", WORKBOOK_RELS)
        with z.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as f:
            f.write(f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n{SHEET_OPEN}'.encode())
            f.write(b'<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c></row>')
            for start in range(2, rows + 2, 20_000):
                block = [template % (r, r, 2 + r % 500, r, r * 7919 % 1000003)
                         for r in range(start, min(start + 20_000, rows + 2))]
                f.write("".join(block).encode())
            f.write(SHEET_CLOSE.encode())
        sst = "".join(f"<si><t>{escape(s)}</t></si>" for s in strings)
        z.writestr(
            "xl/sharedStrings.xml",
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            f'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" uniqueCount="{len(strings)}">{sst}</sst>',
        )
    return path
