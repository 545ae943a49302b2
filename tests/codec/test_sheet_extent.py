"""A sheet is bounded by what it claims (issue 24, item 2): the declared `<dimension>` and every row and
cell reference of every worksheet are held to the import's column and row caps and a rows × columns
bound, streaming, before any reader opens the file."""

from __future__ import annotations

import time
import zipfile
from pathlib import Path

import pytest

from gateway.codec.bulk_import import COLUMN_MARGIN, import_file, sheet_limits
from gateway.codec.import_columns import LAYOUTS
from gateway.codec.xlsx_guard import ImportLimits, Refused, check_xlsx, column_number
from tests.workbooks import CONTENT_TYPES, ROOT_RELS, SHEET_CLOSE, SHEET_OPEN, WORKBOOK, WORKBOOK_RELS, write_xlsx

NO_STRINGS_RELS = WORKBOOK_RELS.replace(
    '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" '
    'Target="sharedStrings.xml"/>', "")


def sheet_workbook(path: Path, sheet_data: str, *, head: str = "", extra_sheets: dict[str, str] | None = None) -> Path:
    """A workbook whose only content is the given sheet XML: what a hostile file is made of."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", CONTENT_TYPES)
        z.writestr("_rels/.rels", ROOT_RELS)
        z.writestr("xl/workbook.xml", WORKBOOK)
        z.writestr("xl/_rels/workbook.xml.rels", NO_STRINGS_RELS)
        z.writestr("xl/worksheets/sheet1.xml", SHEET_OPEN.replace("<sheetData>", head + "<sheetData>")
                   + sheet_data + SHEET_CLOSE)
        for name, xml in (extra_sheets or {}).items():
            z.writestr(name, xml)
    return path


BOMB = '<row r="1"><c r="A1"><v>1</v></c></row><row r="20001"><c r="XFD20001"><v>1</v></c></row>'


def refusal(path: Path, limits: ImportLimits) -> str:
    with pytest.raises(Refused) as caught:
        check_xlsx(path, limits)
    return str(caught.value)


def query_limits(**kw: int) -> ImportLimits:
    return sheet_limits(ImportLimits(**kw), "query")


def test_column_letters_are_numbered_as_excel_numbers_them() -> None:
    assert [column_number(c) for c in ("A", "Z", "AA", "AZ", "XFD")] == [1, 26, 27, 52, 16_384]


def test_the_import_may_use_its_templates_columns_and_a_margin_no_more() -> None:
    assert query_limits().max_columns == len(LAYOUTS["query"]) + COLUMN_MARGIN
    assert sheet_limits(ImportLimits(), "notification").max_columns == len(LAYOUTS["notification"]) + COLUMN_MARGIN


def test_the_two_cell_bomb_is_refused_in_milliseconds_before_a_reader_opens_it(tmp_path: Path) -> None:
    path = sheet_workbook(tmp_path / "bomb.xlsx", BOMB)
    assert path.stat().st_size < 2_000
    started = time.perf_counter()
    report = import_file(path, "query")
    assert time.perf_counter() - started < 1.0
    assert report.file_errors == [f"bomb.xlsx: sheet xl/worksheets/sheet1.xml has a cell in column 16384, beyond column "
                                  f"{query_limits().max_columns} (the template's columns and a margin): delete the "
                                  "columns after the last one"]


def test_a_declared_dimension_beyond_the_caps_refuses_the_file_even_with_one_cell(tmp_path: Path) -> None:
    path = sheet_workbook(tmp_path / "dim.xlsx", '<row r="1"><c r="A1"><v>1</v></c></row>',
                          head='<dimension ref="A1:XFD100"/>')
    assert "has a cell in column 16384" in refusal(path, query_limits())
    narrow = sheet_workbook(tmp_path / "tall.xlsx", '<row r="1"><c r="A1"><v>1</v></c></row>',
                            head='<dimension ref="A1:B1048576"/>')
    assert refusal(narrow, query_limits()) == "more than 20000 rows (GATEWAY_IMPORT_MAX_ROWS): split the file and import each part"


def test_a_row_number_past_the_row_cap_refuses_the_file_without_reading_the_rows_between(tmp_path: Path) -> None:
    path = sheet_workbook(tmp_path / "far.xlsx", '<row r="1"><c r="A1"><v>1</v></c></row><row r="20002"/>')
    assert "more than 20000 rows (GATEWAY_IMPORT_MAX_ROWS)" in refusal(path, query_limits())
    at_the_cap = sheet_workbook(tmp_path / "cap.xlsx", '<row r="1"><c r="A1"><v>1</v></c></row><row r="20001"><c r="B20001"><v>2</v></c></row>')
    check_xlsx(at_the_cap, query_limits())  # the header and 20,000 cards


def test_cells_without_references_take_the_next_place_as_the_readers_place_them(tmp_path: Path) -> None:
    # Forty-one cells in a row with no `r` reach column 41: one past the query's cap of 40.
    cap = query_limits().max_columns
    within = sheet_workbook(tmp_path / "within.xlsx", "<row>" + "<c><v>1</v></c>" * cap + "</row>")
    check_xlsx(within, query_limits())
    beyond = sheet_workbook(tmp_path / "beyond.xlsx", "<row>" + "<c><v>1</v></c>" * (cap + 1) + "</row>")
    assert f"has a cell in column {cap + 1}" in refusal(beyond, query_limits())
    # A cell without `r` after one with it continues from there.
    after = sheet_workbook(tmp_path / "after.xlsx", f'<row r="1"><c r="{"AN"}1"><v>1</v></c><c><v>2</v></c></row>')
    assert f"has a cell in column {cap + 1}" in refusal(after, query_limits())


def test_rows_without_numbers_are_counted_from_the_previous_row(tmp_path: Path) -> None:
    path = sheet_workbook(tmp_path / "rows.xlsx", '<row r="19999"><c r="A19999"><v>1</v></c></row><row/><row/><row/>')
    assert "more than 20000 rows" in refusal(path, query_limits())


def test_a_prefixed_or_dollar_reference_is_read_as_the_reference_it_is(tmp_path: Path) -> None:
    prefixed = sheet_workbook(tmp_path / "ns.xlsx", '<x:row xmlns:x="http://schemas.openxmlformats.org/spreadsheetml/2006/main" r="1">'
                              '<x:c r="$XFD$1"><x:v>1</x:v></x:c></x:row>')
    assert "has a cell in column 16384" in refusal(prefixed, query_limits())


def test_a_character_reference_cannot_hide_a_cell_reference(tmp_path: Path) -> None:
    # "&#88;FD1" is "XFD1" to every XML reader: the parser decodes it before the check sees it.
    path = sheet_workbook(tmp_path / "charref.xlsx", '<row r="1"><c r="&#88;FD1"><v>1</v></c></row>')
    assert "has a cell in column 16384" in refusal(path, query_limits())


@pytest.mark.parametrize("ref", ["1A", "A0x", "ABCD1", "A99999999", "Ａ1"])
def test_a_malformed_cell_reference_is_refused_with_its_text(tmp_path: Path, ref: str) -> None:
    path = sheet_workbook(tmp_path / "bad.xlsx", f'<row r="1"><c r="{ref}"><v>1</v></c></row>')
    assert refusal(path, query_limits()) == f"sheet xl/worksheets/sheet1.xml has a malformed cell reference {ref!r}"


def test_a_zero_row_or_column_cannot_exist(tmp_path: Path) -> None:
    path = sheet_workbook(tmp_path / "zero.xlsx", '<row r="1"><c r="A0"><v>1</v></c></row>')
    assert "refers to row 0, column 1, which cannot exist" in refusal(path, query_limits())


def test_the_rows_times_columns_bound_holds_when_the_row_cap_is_raised(tmp_path: Path) -> None:
    limits = query_limits(max_rows=100_000, max_cells=1_000_000)
    path = sheet_workbook(tmp_path / "wide.xlsx", '<row r="1"><c r="A1"><v>1</v></c></row>'
                          '<row r="50000"><c r="AN50000"><v>1</v></c></row>')
    assert refusal(path, limits) == ("sheet xl/worksheets/sheet1.xml spans 2000000 cells (rows × columns), more than "
                                     "1000000 (GATEWAY_IMPORT_MAX_CELLS)")


def test_every_worksheet_part_is_checked_not_only_the_first(tmp_path: Path) -> None:
    second = ('<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
              '<row r="1"><c r="XFD1"><v>1</v></c></row></sheetData></worksheet>')
    path = sheet_workbook(tmp_path / "two.xlsx", '<row r="1"><c r="A1"><v>1</v></c></row>',
                          extra_sheets={"xl/worksheets/sheet2.xml": second})
    assert refusal(path, query_limits()) == ("sheet xl/worksheets/sheet2.xml has a cell in column 16384, beyond column "
                                             f"{query_limits().max_columns} (the template's columns and a margin): "
                                             "delete the columns after the last one")


def test_a_doctype_in_a_sheet_is_still_refused_by_the_streaming_pass(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "dtd.xlsx", [["姓名"]], sheet_prolog='<!DOCTYPE x [<!ENTITY a "b">]>')
    assert refusal(path, query_limits()).startswith("part xl/worksheets/sheet1.xml declares a DTD or entities (DTDForbidden)")


def test_an_ordinary_sheet_of_the_template_width_passes(tmp_path: Path) -> None:
    headers = [c.header for c in LAYOUTS["query"]]
    path = write_xlsx(tmp_path / "ok.xlsx", [headers] + [["x"] * len(headers)] * 200)
    check_xlsx(path, query_limits())


def test_the_shared_strings_streaming_pass_refuses_a_doctype_and_counts_strings(tmp_path: Path) -> None:
    laughs = ('<?xml version="1.0"?><!DOCTYPE sst [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>'
              '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><si><t>&b;</t></si></sst>')
    path = sheet_workbook(tmp_path / "sst.xlsx", '<row r="1"><c r="A1"><v>1</v></c></row>',
                          extra_sheets={"xl/sharedStrings.xml": laughs})
    assert refusal(path, query_limits()).startswith("part xl/sharedStrings.xml declares a DTD or entities (DTDForbidden)")
    many = ('<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
            + "<si><t>x</t></si>" * 11 + "</sst>")
    path = sheet_workbook(tmp_path / "many.xlsx", '<row r="1"><c r="A1"><v>1</v></c></row>',
                          extra_sheets={"xl/sharedStrings.xml": many})
    assert refusal(path, query_limits(max_shared_strings=10)) == (
        "holds more than 10 shared strings (GATEWAY_IMPORT_MAX_SHARED_STRINGS)")
    check_xlsx(path, query_limits(max_shared_strings=11))
