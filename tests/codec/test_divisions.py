"""Division registry: existence, hierarchy, operator codes, retired codes still readable."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from gateway.codec.divisions import load, registry


def test_shipped_edition_has_every_township_of_the_source() -> None:
    r = registry()
    assert sum(1 for c in r._d if len(c) == 9) == 41352
    assert r.exists("110101001") and r.is_township("110101001")
    assert not r.exists("110101999")


def test_township_rolls_up_to_county_city_and_province() -> None:
    r = registry()
    assert r.ancestors("110101001") == ["110101", "1101", "11"]
    assert (r.county_of("410102001"), r.city_of("410102001"), r.province_of("410102001")) == ("410102", "4101", "41")
    assert r.province_of("41") == "41"


def test_roll_up_lists_the_townships_under_a_county() -> None:
    under = list(registry().townships_under("110101"))
    assert "110101001" in under and all(c.startswith("110101") for c in under)


def test_province_66_of_the_corps_is_a_shipped_local_code() -> None:
    d = registry().get("66")
    assert d is not None and d.local and d.name == "新疆生产建设兵团"


def test_operator_codes_and_retirements_take_effect_on_their_dates(tmp_path: Path) -> None:
    (tmp_path / "divisions").mkdir()
    (tmp_path / "divisions" / "local.csv").write_text(
        "code,name,parent,valid_from,valid_to,superseded_by,note\n"
        "660101001,某团场,,2024-01-01,,,coded by the family-planning system\n"
        "110101001,,,,2025-06-30,110101002,merged\n",
        encoding="utf-8",
    )
    r = load(override=tmp_path)
    assert r.is_township("660101001") and r.ancestors("660101001")[-1] == "66"
    assert not r.is_current("660101001", date(2023, 12, 31)) and r.is_current("660101001", date(2024, 1, 1))
    # retired, but old records carrying it stay readable
    assert r.exists("110101001") and r.get("110101001").name == "东华门街道"
    assert r.is_current("110101001", date(2025, 6, 30)) and not r.is_current("110101001", date(2025, 7, 1))
    assert r.successor("110101001", date(2025, 7, 1)) == "110101002"


def test_the_registry_is_read_once_per_process() -> None:
    # Every record checks its codes against the registry: reading 41,352 rows per record would be the
    # codec's whole cost. How long one read takes is for bench/bench_codec.py, not a timed test.
    assert registry() is registry()
