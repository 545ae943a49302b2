"""Checks an uploaded .xlsx before any spreadsheet reader touches it.

A workbook is a zip of XML parts, and both layers can be turned into a weapon: a zip bomb (a few MB
that unpack to GBs, or sizes the directory lies about), an XML part with a DOCTYPE that defines
entities (billion laughs, external entities), or millions of shared strings that a reader keeps in
memory. A sheet can also claim a grid it does not hold: two cells, A1 and XFD20001, make a reader
allocate 16,384 × 20,001 cells (10 GB) from a 1.8 kB file; so the declared `<dimension>` and every row
and cell reference of every worksheet are checked against column and row caps and a cells bound,
streaming through the sheet, before any reader opens the file. Each check here ends in a file-level
reason for the clerk; none raises.

The checks read the zip itself (Python's zipfile stops a member at its declared size and fails its CRC
when the directory lied) and parse XML only with defusedxml, or with expat defused the same way (the
sheets and shared strings, `_Walk`), DTDs forbidden.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from xml.etree.ElementTree import ParseError
from xml.parsers import expat as pyexpat

from defusedxml import DefusedXmlException, DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
from defusedxml.ElementTree import iterparse

MIB = 1024 * 1024
CHUNK = 1 * MIB


@dataclass(frozen=True, slots=True)
class ImportLimits:
    """What one import file may hold. Settings: GATEWAY_IMPORT_MAX_ROWS, GATEWAY_IMPORT_MAX_UNPACKED_MB,
    GATEWAY_IMPORT_MAX_SHARED_STRINGS, GATEWAY_IMPORT_MAX_CELLS (gateway/settings.py). `max_columns`
    is not a setting: the importer narrows it to its template's columns and a margin."""

    max_rows: int = 20_000
    max_unpacked_bytes: int = 100 * MIB
    max_shared_strings: int = 500_000
    max_parts: int = 1_000
    max_columns: int = 64
    max_cells: int = 2_000_000  # rows × columns of the grid a reader would allocate

    @property
    def max_sheet_rows(self) -> int:
        return self.max_rows + 1  # the header row is not a card


class Refused(Exception):
    """A file-level reason; the message is shown to the clerk."""


def _mb(n: int) -> str:
    return f"{n / MIB:.0f} MiB" if n >= MIB else f"{n} bytes"


_SHEET = re.compile(r"xl/worksheets/[^/]+\.xml", re.IGNORECASE)
_CELL_REF = re.compile(r"\$?([A-Za-z]{1,3})\$?([0-9]{1,7})")
_ROW_NUMBER = re.compile(r"[0-9]{1,7}")


class _Counted:
    """A member's bytes as a file object, counted so the real unpacked size cannot exceed the limit."""

    def __init__(self, raw: zipfile.ZipExtFile, budget: list[int], limits: ImportLimits) -> None:
        self.raw, self.budget, self.limits = raw, budget, limits

    def read(self, n: int = CHUNK) -> bytes:
        data = self.raw.read(n if n and n > 0 else CHUNK)
        self.budget[0] += len(data)
        if self.budget[0] > self.limits.max_unpacked_bytes:
            raise Refused(f"unpacks to more than {_mb(self.limits.max_unpacked_bytes)} (GATEWAY_IMPORT_MAX_UNPACKED_MB)")
        return data


def column_number(letters: str) -> int:
    """A1-style column letters as a number: A = 1, Z = 26, AA = 27, XFD = 16,384."""
    n = 0
    for ch in letters.upper():
        n = n * 26 + ord(ch) - 64
    return n


def _too_many_rows(limits: ImportLimits) -> Refused:
    # The same reason as a counted row past the limit: either way the clerk splits the file.
    return Refused(f"more than {limits.max_rows} rows (GATEWAY_IMPORT_MAX_ROWS): split the file and import each part")


class _Extent:
    """The grid a reader would allocate for one sheet: from the first to the last row and column any
    reference names. Checked at every reference, so the first one past a cap ends the walk."""

    def __init__(self, name: str, limits: ImportLimits) -> None:
        self.name, self.limits = name, limits
        self.max_rows, self.max_columns = limits.max_sheet_rows, limits.max_columns
        self.first_row = self.first_col = 1 << 30
        self.last_row = self.last_col = 0
        self.columns: dict[str, int] = {}  # letters → number: a sheet uses a few dozen

    def ref(self, text: str, what: str) -> tuple[int, int]:
        m = _CELL_REF.fullmatch(text)
        if m is None:
            raise Refused(f"sheet {self.name} has a malformed {what} {text[:16]!r}")
        letters = m[1]
        col = self.columns.get(letters)
        if col is None:
            col = self.columns[letters] = column_number(letters)
        return int(m[2]), col

    def add(self, row: int, col: int) -> None:
        # Called for every cell: the common case (inside the extent so far) is two comparisons each way.
        if self.first_row <= row <= self.last_row and self.first_col <= col <= self.last_col:
            return
        limits = self.limits
        if row < 1 or col < 1:
            raise Refused(f"sheet {self.name} refers to row {row}, column {col}, which cannot exist")
        if row > self.max_rows:
            raise _too_many_rows(limits)
        if col > self.max_columns:
            raise Refused(f"sheet {self.name} has a cell in column {col}, beyond column {self.max_columns} "
                          "(the template's columns and a margin): delete the columns after the last one")
        self.first_row, self.last_row = min(self.first_row, row), max(self.last_row, row)
        self.first_col, self.last_col = min(self.first_col, col), max(self.last_col, col)
        cells = (self.last_row - self.first_row + 1) * (self.last_col - self.first_col + 1)
        if cells > limits.max_cells:
            raise Refused(f"sheet {self.name} spans {cells} cells (rows × columns), more than {limits.max_cells} "
                          "(GATEWAY_IMPORT_MAX_CELLS)")


def _entity_declared(name: str, _parameter: bool, value: str | None, base: str | None, sysid: str | None,
                     pubid: str | None, notation: str | None) -> None:
    raise EntitiesForbidden(name, value, base, sysid, pubid, notation)


def _unparsed_entity_declared(name: str, base: str | None, sysid: str | None, pubid: str | None,
                              notation: str | None) -> None:
    raise EntitiesForbidden(name, None, base, sysid, pubid, notation)


class _Walk:
    """One streaming pass through a part with expat itself, a handler for element starts and nothing
    kept: an element tree (even one pruned as it goes) took 4.6 s for a sheet of 20,000 rows × 24
    columns, expat's callbacks a third of that. It is defused as defusedxml defuses it: a DOCTYPE is
    refused when it starts (entities can only be declared inside one), entity declarations and
    external references are refused besides. No namespace processing (it costs a third of the pass):
    a prefixed name is cut at its colon."""

    def __init__(self) -> None:
        parser = pyexpat.ParserCreate()
        parser.SetParamEntityParsing(pyexpat.XML_PARAM_ENTITY_PARSING_NEVER)
        parser.StartDoctypeDeclHandler = self._doctype
        parser.EntityDeclHandler = _entity_declared
        parser.UnparsedEntityDeclHandler = _unparsed_entity_declared
        parser.ExternalEntityRefHandler = self._external
        parser.StartElementHandler = self._start
        self.parser = parser

    def _doctype(self, name: str, sysid: str | None, pubid: str | None, _subset: bool) -> None:
        raise DTDForbidden(name, sysid, pubid)

    def _external(self, context: str, base: str | None, sysid: str | None, pubid: str | None) -> None:
        raise ExternalReferenceForbidden(context, base, sysid, pubid)

    def _start(self, name: str, attrs: dict[str, str]) -> None:
        raise NotImplementedError

    def feed(self, stream: _Counted) -> None:
        try:
            while data := stream.read(CHUNK):
                self.parser.Parse(data, False)
            self.parser.Parse(b"", True)
        except pyexpat.ExpatError as exc:
            raise ParseError(str(exc)) from None


class _SharedStrings(_Walk):
    """Counts the strings (`<si>`): a reader keeps them all in memory."""

    def __init__(self, limits: ImportLimits) -> None:
        super().__init__()
        self.limit, self.count = limits.max_shared_strings, 0

    def _start(self, name: str, attrs: dict[str, str]) -> None:
        if name == "si" or name.endswith(":si"):
            self.count += 1
            if self.count > self.limit:
                raise Refused(f"holds more than {self.limit} shared strings (GATEWAY_IMPORT_MAX_SHARED_STRINGS)")


class _Sheet(_Walk):
    """Every `<dimension ref>`, `<row r>` and `<c r>` of a sheet. A row or cell without `r` takes the
    place after the previous one, as the readers place it."""

    def __init__(self, name: str, limits: ImportLimits) -> None:
        super().__init__()
        self.name, self.limits = name, limits
        self.extent = _Extent(name, limits)
        self.row = self.rows = self.col = 0

    def _start(self, name: str, attrs: dict[str, str]) -> None:
        # Most elements are cells and their values, so those are tested first.
        if name == "v":
            return
        if name != "c" and name != "row" and ":" in name:
            name = name.rpartition(":")[2]
        if name == "c":
            ref = attrs.get("r")
            if ref is None:
                row, self.col = self.row or 1, self.col + 1
            else:
                row, self.col = self.extent.ref(ref, "cell reference")
            self.extent.add(row, self.col)
        elif name == "row":
            limits = self.limits
            self.rows += 1
            if self.rows > limits.max_sheet_rows:
                raise _too_many_rows(limits)
            r = attrs.get("r")
            if r is None:
                self.row += 1
            elif _ROW_NUMBER.fullmatch(r):
                self.row = int(r)
            else:
                raise Refused(f"sheet {self.name} has a malformed row number {r[:16]!r}")
            self.col = 0
            if self.row > limits.max_sheet_rows:
                raise _too_many_rows(limits)
        elif name == "dimension":
            # The size the sheet declares: a reader may reserve it before reading a cell.
            for corner in (attrs.get("ref") or "A1").split(":")[:2]:
                self.extent.add(*self.extent.ref(corner, "dimension"))


def _check_xml(stream: _Counted, name: str, limits: ImportLimits) -> None:
    try:
        if _SHEET.fullmatch(name):
            _Sheet(name, limits).feed(stream)
        elif name.lower() == "xl/sharedstrings.xml":
            _SharedStrings(limits).feed(stream)
        else:
            for _event in iterparse(stream, events=("start",), forbid_dtd=True):
                return  # the root element is reached: no DTD can follow
    except DefusedXmlException as exc:
        raise Refused(f"part {name} declares a DTD or entities ({type(exc).__name__}); a workbook never needs one") from None
    except ParseError as exc:
        raise Refused(f"part {name} is not well-formed XML ({exc})") from None


def check_xlsx(path: Path, limits: ImportLimits) -> None:
    """Raise `Refused` with the reason when the file is not a workbook a reader may safely open."""
    try:
        z = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        raise Refused("cannot read (not a zip archive, so not an .xlsx workbook)") from None
    with z:
        members = z.infolist()
        if len(members) > limits.max_parts:
            raise Refused(f"has {len(members)} parts, more than {limits.max_parts}")
        declared = sum(m.file_size for m in members)
        if declared > limits.max_unpacked_bytes:
            raise Refused(
                f"unpacks to {_mb(declared)}, more than the limit of {_mb(limits.max_unpacked_bytes)} "
                "(GATEWAY_IMPORT_MAX_UNPACKED_MB)"
            )
        if not any(m.filename == "xl/workbook.xml" for m in members):
            raise Refused("not an .xlsx workbook (no xl/workbook.xml)")
        # The declared sizes may lie: read every member, counting what really comes out.
        budget = [0]
        try:
            for m in members:
                if m.is_dir():
                    continue
                if m.flag_bits & 0x1:
                    raise Refused("is encrypted or password-protected")
                with z.open(m) as raw:
                    stream = _Counted(raw, budget, limits)
                    if m.filename.lower().endswith((".xml", ".rels", ".vml")):
                        _check_xml(stream, m.filename, limits)
                    while stream.read(CHUNK):
                        pass
        except (zipfile.BadZipFile, EOFError, NotImplementedError, RuntimeError) as exc:
            raise Refused(f"is a damaged zip archive ({exc})") from None
