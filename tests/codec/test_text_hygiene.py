"""Text hygiene (issue 11, item 6): names and free text refuse control characters, bidi controls and
values made only of invisible characters, with the reason at the field; whatever the gateway writes to a
spreadsheet cannot start a formula."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest

import gateway

from gateway.codec.errors import CodecError
from gateway.codec.messages import parse_message
from gateway.codec.text_hygiene import check_text, spreadsheet_cell, spreadsheet_row
from tests.gateways import sample_query

TODAY = date(2026, 3, 10)


def refusal(**person_or_query: str) -> dict[str, str]:
    query = sample_query()
    for field, value in person_or_query.items():
        if field == "name":
            query["person"]["name"] = value
        else:
            query[field] = value
    with pytest.raises(CodecError) as err:
        parse_message(query, today=TODAY)
    return {e.path: e.reason for e in err.value.errors}


@pytest.mark.parametrize("bad", ["王秀\u202e英", "王\u2066秀英\u2069", "\u200f王秀英", "李\u202d伟"])
def test_a_name_with_bidi_controls_is_refused_at_the_field(bad: str) -> None:
    reasons = refusal(name=bad)
    assert list(reasons) == ["query.person.name"]
    assert reasons["query.person.name"].startswith("must not contain bidirectional text controls (U+")


@pytest.mark.parametrize("bad", ["王秀\x00英", "王秀\n英", "王\x1b[31m秀英", "王\u2028秀英", "王\x85秀英"])
def test_a_name_with_control_characters_is_refused_at_the_field(bad: str) -> None:
    assert refusal(name=bad)["query.person.name"].startswith("must not contain control characters (U+")


@pytest.mark.parametrize("bad", ["\u200b\u200b\u200b", "\u3164", "\u2800\u2800", "\ufeff", "\u200d\u00ad", "\ufe0f"])
def test_a_value_made_only_of_invisible_characters_is_refused(bad: str) -> None:
    assert refusal(name=bad)["query.person.name"] == "must contain visible characters (this value is made only of invisible ones)"
    assert refusal(remarks=bad)["query.remarks"].startswith("must contain visible characters")


def test_free_text_fields_get_the_same_checks() -> None:
    assert "query.current_address" in refusal(current_address="幸福路\u202e1号")
    assert "query.registration_address" in refusal(registration_address="\x07")


def test_the_reason_never_repeats_the_value() -> None:
    reason = refusal(name="王秀\u202e英")["query.person.name"]
    assert "王" not in reason and "英" not in reason


@pytest.mark.parametrize("good", ["王秀英", "阿依古丽·买买提", "Zhang Wei", "李\u200d伟", "幸福路1号 3单元", "👩‍👧"])
def test_ordinary_names_and_text_pass(good: str) -> None:
    assert check_text(good) == good


@pytest.mark.parametrize("value", ["=HYPERLINK(\"http://x\",\"点击\")", "+cmd|' /C calc'!A0", "-1+1", "@SUM(A1)",
                                   "\t=1", "\r=1"])
def test_a_cell_that_would_start_a_formula_is_written_as_text(value: str) -> None:
    assert spreadsheet_cell(value) == "'" + value


@pytest.mark.parametrize("value", ["王秀英", "97.5%", "—", "110101", 42, 3.5, None, date(2026, 3, 1)])
def test_other_cells_are_written_unchanged(value: object) -> None:
    assert spreadsheet_cell(value) == value


def test_every_module_that_writes_a_spreadsheet_uses_the_helper() -> None:
    # A new CSV or xlsx writer must neutralise its cells too: this finds writers that do not.
    root = Path(gateway.__file__).parent
    writers = [p for p in root.rglob("*.py")
               if re.search(r"csv\w*\.(writer|DictWriter)\(|Workbook\(", p.read_text(encoding="utf-8"))]
    assert {p.name for p in writers} >= {"scores_cmds.py", "import_templates.py"}
    for path in writers:
        assert "spreadsheet_row" in path.read_text(encoding="utf-8") or "spreadsheet_cell" in path.read_text(
            encoding="utf-8"), f"{path.relative_to(root)} writes a spreadsheet without text_hygiene.spreadsheet_row"
