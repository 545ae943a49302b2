"""Checks an uploaded .xlsx before any spreadsheet reader touches it.

A workbook is a zip of XML parts, and both layers can be turned into a weapon: a zip bomb (a few MB
that unpack to GBs, or sizes the directory lies about), an XML part with a DOCTYPE that defines
entities (billion laughs, external entities), or millions of shared strings that a reader keeps in
memory. Each check here ends in a file-level reason for the clerk; none raises.

The checks read the zip itself (Python's zipfile stops a member at its declared size and fails its CRC
when the directory lied) and parse XML only with defusedxml, DTDs forbidden.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse

MIB = 1024 * 1024
CHUNK = 1 * MIB


@dataclass(frozen=True, slots=True)
class ImportLimits:
    """What one import file may hold. Settings: GATEWAY_IMPORT_MAX_ROWS, GATEWAY_IMPORT_MAX_UNPACKED_MB,
    GATEWAY_IMPORT_MAX_SHARED_STRINGS (gateway/settings.py)."""

    max_rows: int = 20_000
    max_unpacked_bytes: int = 100 * MIB
    max_shared_strings: int = 500_000
    max_parts: int = 1_000


class Refused(Exception):
    """A file-level reason; the message is shown to the clerk."""


def _mb(n: int) -> str:
    return f"{n / MIB:.0f} MiB" if n >= MIB else f"{n} bytes"


_ROW = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?row[\s>/]")
_SHEET = re.compile(r"xl/worksheets/[^/]+\.xml", re.IGNORECASE)


class _Counted:
    """A member's bytes as a file object, counted so the real unpacked size cannot exceed the limit;
    for a worksheet, its rows are counted too and the file refused at the limit + 1 (the sheet is
    then never handed to a reader, which would load all of it)."""

    def __init__(self, raw: zipfile.ZipExtFile, budget: list[int], limits: ImportLimits, *, sheet: bool) -> None:
        self.raw, self.budget, self.limits = raw, budget, limits
        self.rows = 0 if sheet else None
        self._tail = b""

    def read(self, n: int = CHUNK) -> bytes:
        data = self.raw.read(n if n and n > 0 else CHUNK)
        self.budget[0] += len(data)
        if self.budget[0] > self.limits.max_unpacked_bytes:
            raise Refused(f"unpacks to more than {_mb(self.limits.max_unpacked_bytes)} (GATEWAY_IMPORT_MAX_UNPACKED_MB)")
        if self.rows is not None and data:
            window = self._tail + data
            # A tag cut by the chunk boundary is counted once: only matches ending in the new bytes count.
            self.rows += sum(1 for m in _ROW.finditer(window) if m.end() > len(self._tail))
            self._tail = window[-40:]
            if self.rows - 1 > self.limits.max_rows:  # the header row is not a card
                raise Refused(
                    f"more than {self.limits.max_rows} rows (GATEWAY_IMPORT_MAX_ROWS): split the file and import each part"
                )
        return data


def _check_xml(stream: _Counted, name: str, limits: ImportLimits) -> None:
    shared_strings = name.lower() == "xl/sharedstrings.xml"
    count = 0
    try:
        for event, element in iterparse(stream, events=("start",), forbid_dtd=True):
            if not shared_strings:
                return  # the root element is reached: no DTD can follow
            if element.tag.rpartition("}")[2] == "si":
                count += 1
                if count > limits.max_shared_strings:
                    raise Refused(
                        f"holds more than {limits.max_shared_strings} shared strings "
                        "(GATEWAY_IMPORT_MAX_SHARED_STRINGS)"
                    )
            element.clear()
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
                    stream = _Counted(raw, budget, limits, sheet=bool(_SHEET.fullmatch(m.filename)))
                    if m.filename.lower().endswith((".xml", ".rels", ".vml")):
                        _check_xml(stream, m.filename, limits)
                    while stream.read(CHUNK):
                        pass
        except (zipfile.BadZipFile, EOFError, NotImplementedError, RuntimeError) as exc:
            raise Refused(f"is a damaged zip archive ({exc})") from None
