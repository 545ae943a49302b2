"""Code tables (sex, ethnicity, …) read from `schemas/codes/*.json`, one file per table.

An operator replaces a table without a release by putting a file of the same name in the
overrides folder (`GATEWAY_CODEC_OVERRIDES_DIR/codes/`); the override replaces the whole table.
Tables are read once per process and cached; `reload()` drops the cache.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path

from gateway.codec.paths import overrides_dir, schemas_dir

TABLE_NAMES = (
    "sex",
    "ethnicity",
    "marital_status",
    "education",
    "household_type",
    "contraception",
    "pregnancy_outcome",
    "policy_status",
    "not_found_reason",
    "notification_kind",
    "feedback_result",
    "checked_source",
)


@dataclass(frozen=True, slots=True)
class Code:
    code: str
    zh: str
    en: str
    valid_from: date | None
    valid_to: date | None
    aliases: tuple[str, ...] = ()

    def current_on(self, day: date) -> bool:
        return (self.valid_from is None or self.valid_from <= day) and (self.valid_to is None or day <= self.valid_to)


@dataclass(frozen=True, slots=True)
class CodeTable:
    name: str
    standard: str
    official_values: bool
    source: Path
    codes: dict[str, Code]

    def __contains__(self, code: object) -> bool:
        return code in self.codes

    def describe(self) -> str:
        return f"{self.name} ({self.standard})"

    def label(self, code: str) -> str:
        return self.codes[code].zh

    def code_for_label(self, text: str) -> str | None:
        """Import helper: a clerk may type the Chinese or English label instead of the code."""
        text = text.strip()
        if text in self.codes:
            return text
        for c in self.codes.values():
            if text == c.zh or text == c.en or text in c.aliases:
                return c.code
        return None


def code_for_input(table_name: str, text: str) -> str | None:
    """The code a clerk means by ``text``: the code itself, its Chinese or English label or an alias
    (``女``, ``汉族``), or a code that lost its leading zeros in a spreadsheet (``1`` for ``01``).
    The one reading of typed codes, shared by the spreadsheet import and the JSON API."""
    found = table(table_name)
    code = found.code_for_label(text)
    if code is None and text.isdigit():
        width = max((len(c) for c in found.codes), default=0)
        if text.zfill(width) in found.codes:
            code = text.zfill(width)
    return code


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def _table_file(name: str) -> Path:
    override = overrides_dir()
    if override is not None and (override / "codes" / f"{name}.json").is_file():
        return override / "codes" / f"{name}.json"
    return schemas_dir() / "codes" / f"{name}.json"


@cache
def table(name: str) -> CodeTable:
    path = _table_file(name)
    doc = json.loads(path.read_text(encoding="utf-8"))
    codes = {
        str(row["code"]): Code(
            str(row["code"]),
            row["zh"],
            row["en"],
            _date(row.get("valid_from")),
            _date(row.get("valid_to")),
            tuple(row.get("aliases", ())),
        )
        for row in doc["codes"]
    }
    return CodeTable(name, doc.get("standard", ""), bool(doc.get("official_values")), path, codes)


def reload() -> None:
    table.cache_clear()
