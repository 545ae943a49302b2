"""Code tables are data: complete where the standard is public, replaceable by operators."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.codec import code_tables
from gateway.codec.paths import OVERRIDES_DIR_ENV, schemas_dir


def test_every_table_has_a_file_with_source_and_labels() -> None:
    for name in code_tables.TABLE_NAMES:
        doc = json.loads((schemas_dir() / "codes" / f"{name}.json").read_text(encoding="utf-8"))
        assert doc["standard"] and doc["codes"]
        assert all(row["zh"] and row["en"] and "valid_from" in row and "valid_to" in row for row in doc["codes"])


def test_ethnicity_has_the_56_groups_plus_97_and_98() -> None:
    codes = code_tables.table("ethnicity").codes
    assert sorted(codes) == [f"{i:02d}" for i in range(1, 57)] + ["97", "98"]
    assert codes["01"].zh == "汉族" and codes["56"].zh == "基诺族"


def test_marital_status_follows_gb_t_2261_2() -> None:
    table = code_tables.table("marital_status")
    assert table.standard == "GB/T 2261.2-2003" and set(table.codes) == {"10", "20", "21", "22", "23", "30", "40", "90"}


def test_tables_without_public_official_values_say_so() -> None:
    own = [n for n in code_tables.TABLE_NAMES if not code_tables.table(n).official_values]
    assert {"household_type", "contraception", "pregnancy_outcome", "policy_status"} <= set(own)
    for name in own:
        doc = json.loads(code_tables.table(name).source.read_text(encoding="utf-8"))
        assert "own" in doc["note"] or "fixed by the message model" in doc["note"]


def test_operator_override_replaces_a_table_without_a_release(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "codes").mkdir()
    (tmp_path / "codes" / "household_type.json").write_text(
        json.dumps({"table": "household_type", "standard": "official", "official_values": True,
                    "codes": [{"code": "A", "zh": "农业", "en": "agricultural"}]}),
        encoding="utf-8",
    )
    monkeypatch.setenv(OVERRIDES_DIR_ENV, str(tmp_path))
    code_tables.reload()
    try:
        assert set(code_tables.table("household_type").codes) == {"A"}
        assert "1" in code_tables.table("sex")  # tables not overridden stay as shipped
    finally:
        monkeypatch.delenv(OVERRIDES_DIR_ENV)
        code_tables.reload()
    assert "1" in code_tables.table("household_type")
