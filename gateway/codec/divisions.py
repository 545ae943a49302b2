"""Administrative divisions (GB/T 2260 extended to 9-digit townships): which codes exist, which
are current, and the hierarchy township → county → city → province used for routing and roll-ups.

Data: the shipped NBS edition in `schemas/divisions/`, then `local.csv` there (codes only
family-planning systems use, e.g. province 66), then the operator's
`GATEWAY_CODEC_OVERRIDES_DIR/divisions/local.csv`. A local row with an existing code amends it
(typically to retire it: `valid_to`, `superseded_by`). Retired codes stay known, because old
records carry them.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path

from gateway.codec.paths import overrides_dir, schemas_dir

LEVELS = {2: "province", 4: "city", 6: "county", 9: "township"}


@dataclass(frozen=True, slots=True)
class Division:
    code: str
    name: str
    parent: str | None
    valid_from: date | None = None
    valid_to: date | None = None
    superseded_by: str | None = None
    local: bool = False

    @property
    def level(self) -> str:
        return LEVELS[len(self.code)]

    def current_on(self, day: date) -> bool:
        return (self.valid_from is None or self.valid_from <= day) and (self.valid_to is None or day <= self.valid_to)


def _date(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


class DivisionRegistry:
    def __init__(self, divisions: dict[str, Division], id_prefixes: frozenset[str], edition: str) -> None:
        self._d = divisions
        self._id_prefixes = id_prefixes
        self.edition = edition
        self._children: dict[str, list[str]] | None = None

    def __len__(self) -> int:
        return len(self._d)

    def exists(self, code: str) -> bool:
        """Known at any time, retired codes included (old records stay readable)."""
        return code in self._d

    def get(self, code: str) -> Division | None:
        return self._d.get(code)

    def is_current(self, code: str, on: date) -> bool:
        d = self._d.get(code)
        return d is not None and d.current_on(on)

    def is_township(self, code: str) -> bool:
        return len(code) == 9 and code in self._d

    def successor(self, code: str, on: date) -> str | None:
        """The current code that replaced a retired one (following chains), or the code itself."""
        seen: set[str] = set()
        while code not in seen:
            seen.add(code)
            d = self._d.get(code)
            if d is None:
                return None
            if d.current_on(on):
                return code
            if not d.superseded_by:
                return None
            code = d.superseded_by
        return None

    def parent(self, code: str) -> str | None:
        d = self._d.get(code)
        return d.parent if d else None

    def ancestors(self, code: str) -> list[str]:
        """Nearest first: township → county → city → province."""
        out: list[str] = []
        p = self.parent(code)
        while p is not None and p not in out:
            out.append(p)
            p = self.parent(p)
        return out

    def _up_to(self, code: str, length: int) -> str | None:
        if code in self._d and len(code) == length:
            return code
        return next((a for a in self.ancestors(code) if len(a) == length), None)

    def county_of(self, code: str) -> str | None:
        return self._up_to(code, 6)

    def city_of(self, code: str) -> str | None:
        return self._up_to(code, 4)

    def province_of(self, code: str) -> str | None:
        return self._up_to(code, 2)

    def children(self, code: str) -> list[str]:
        if self._children is None:
            index: dict[str, list[str]] = {}
            for d in self._d.values():
                if d.parent is not None:
                    index.setdefault(d.parent, []).append(d.code)
            self._children = index
        return sorted(self._children.get(code, []))

    def townships_under(self, code: str) -> Iterator[str]:
        for child in self.children(code):
            if len(child) == 9:
                yield child
            else:
                yield from self.townships_under(child)

    # Identity numbers carry the county of first registration, which may since have been
    # retired: see citizen_id.inspect for how these answers are used.
    def id_province_known(self, prefix: str) -> bool:
        return (prefix in self._d and len(prefix) == 2) or prefix in self._id_prefixes

    def id_county_known(self, prefix: str) -> bool:
        return prefix in self._d and len(prefix) == 6


def _read_rows(path: Path) -> Iterator[list[str]]:
    with path.open(encoding="utf-8", newline="") as f:
        rows = csv.reader(f)
        next(rows)
        yield from rows


def _nearest_parent(divisions: dict[str, Division], code: str) -> str | None:
    # Units coded only by family-planning systems often skip levels (a 兵团 township directly
    # under province 66), so the parent is the nearest code above that exists.
    for length in (6, 4, 2):
        if length < len(code) and code[:length] in divisions:
            return code[:length]
    return None


def _apply_local(divisions: dict[str, Division], path: Path) -> None:
    with path.open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            code = row["code"].strip()
            if len(code) not in LEVELS or not code.isdigit():
                raise ValueError(f"{path}: bad division code {code!r}")
            old = divisions.get(code)
            parent = (row.get("parent") or "").strip() or (old.parent if old else _nearest_parent(divisions, code))
            if len(code) > 2 and parent not in divisions:
                raise ValueError(f"{path}: {code} has no known parent division (list parents before children)")
            divisions[code] = Division(
                code,
                (row.get("name") or "").strip() or (old.name if old else ""),
                parent,
                _date(row.get("valid_from")) or (old.valid_from if old else None),
                _date(row.get("valid_to")),
                (row.get("superseded_by") or "").strip() or None,
                local=True,
            )


def load(base: Path | None = None, override: Path | None = None) -> DivisionRegistry:
    base = base or schemas_dir() / "divisions"
    divisions: dict[str, Division] = {}
    for code, name in _read_rows(base / "provinces.csv"):
        divisions[code] = Division(code, name, None)
    for code, name, province in _read_rows(base / "cities.csv"):
        divisions[code] = Division(code, name, province)
    for code, name, city, _province in _read_rows(base / "areas.csv"):
        divisions[code] = Division(code, name, city)
    for code, name, county, _province, _city in _read_rows(base / "streets.csv"):
        divisions[code] = Division(code, name, county)
    if (base / "local.csv").is_file():
        _apply_local(divisions, base / "local.csv")
    if override is not None and (override / "divisions" / "local.csv").is_file():
        _apply_local(divisions, override / "divisions" / "local.csv")
    prefixes = frozenset(r[0] for r in _read_rows(base / "id_prefixes.csv")) if (base / "id_prefixes.csv").is_file() else frozenset()
    return DivisionRegistry(divisions, prefixes, edition="NBS-2023")


@cache
def registry() -> DivisionRegistry:
    return load(override=overrides_dir())


def reload() -> None:
    registry.cache_clear()
