"""GB 11643 citizen identity numbers: structure, region, birth date, check character."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.codec.citizen_id import check_character, inspect, passes, upgrade_legacy

TODAY = date(2026, 11, 23)


@pytest.mark.parametrize(
    "number",
    [
        "11010519491231002X",  # the example in GB 11643-1999
        "440524188001010014",  # the standard's other example: born 1880, region since renamed
        "110101199003070038",
    ],
)
def test_valid_numbers_are_accepted(number: str) -> None:
    found = inspect(number, today=TODAY)
    assert found.valid, found.problems
    assert found.number == number


def test_check_character_follows_iso_7064_mod_11_2() -> None:
    assert check_character("11010519491231002") == "X"
    assert check_character("44052418800101001") == "4"


@pytest.mark.parametrize(
    ("number", "expected_problem"),
    [
        ("110105194912310021", "wrong check character '1', expected 'X'"),
        ("110105199902300021", "impossible birth date 19990230"),
        ("110105199913010021", "impossible birth date 19991301"),
        ("990105194912310021", "unknown region: no province code 99"),
        ("000000194912310021", "unknown region: no province code 00"),
        ("110105209912310021", "birth date 20991231 is in the future"),
        ("110105170012310021", "impossible birth date 17001231 (before 1800)"),
    ],
)
def test_number_failing_a_logic_check_is_refused_with_its_reason(number: str, expected_problem: str) -> None:
    found = inspect(number, today=TODAY)
    assert not found.valid
    assert expected_problem in found.doubtful


def test_id_with_wrong_check_character_is_refused_with_expected_character() -> None:
    found = inspect("11010519491231002Y"[:17] + "5", today=TODAY)
    assert found.problems == ("wrong check character '5', expected 'X'",)


def test_lowercase_x_is_normalised_to_upper_case() -> None:
    found = inspect("11010519491231002x", today=TODAY)
    assert found.valid and found.number == "11010519491231002X"


def test_x_anywhere_but_last_is_malformed() -> None:
    found = inspect("1101051949X231002X", today=TODAY)
    assert found.malformed == ("character 11 ('X') must be a digit ('X' is allowed only as the last character)",)


@pytest.mark.parametrize(
    ("number", "problem"),
    [
        ("", "must be 18 characters (or a 15-digit legacy number), got 0"),
        ("1101051949123100", "must be 18 characters (or a 15-digit legacy number), got 16"),
        ("1101051949123100211", "must be 18 characters (or a 15-digit legacy number), got 19"),
        ("11010519491231002Y", "character 18 ('Y') must be a digit or 'X'"),
        ("11010519491231002１", "character 18 ('１') must be a digit or 'X'"),  # full-width digit
        ("11010549123100X", "a 15-digit legacy number must be digits only"),
    ],
)
def test_malformed_numbers_are_refused(number: str, problem: str) -> None:
    assert inspect(number, today=TODAY).malformed == (problem,)


def test_fifteen_digit_legacy_number_is_upgraded_with_century_19_and_a_check_character() -> None:
    found = inspect("110105491231002", today=TODAY)
    assert found.valid
    assert found.number == "11010519491231002X"
    assert found.upgraded_from == "110105491231002"
    assert upgrade_legacy("440524800101001") == "440524198001010013"


def test_legacy_number_with_impossible_date_is_refused_after_upgrade() -> None:
    found = inspect("110105990230002", today=TODAY)
    assert "impossible birth date 19990230" in found.doubtful


def test_unknown_county_under_a_known_province_is_noted_not_refused() -> None:
    # 440524 (潮阳县) was retired long ago; IDs issued there stay valid for life.
    found = inspect("440524188001010014", today=TODAY)
    assert found.valid
    assert found.notes == ("region 440524 is not a county code in the registry (possibly retired)",)


def test_birth_date_and_sex_are_read_from_the_number() -> None:
    found = inspect("11010519491231002X", today=TODAY)
    assert found.birth_date == date(1949, 12, 31)
    assert found.sex == "2"  # digit 17 is even
    assert inspect("110101199003070038", today=TODAY).sex == "1"


def test_residence_permit_prefix_of_hong_kong_residents_is_a_known_region() -> None:
    first17 = "81000019900101002"
    assert inspect(first17 + check_character(first17), today=TODAY).valid


@settings(max_examples=500, deadline=None)
@given(
    st.from_regex(r"[1-9][0-9]{5}(18|19|20)[0-9]{2}[01][0-9][0-3][0-9][0-9]{3}[0-9X]", fullmatch=True),
    st.dates(min_value=date(1990, 1, 1), max_value=date(2030, 1, 1)),
)
def test_fast_path_agrees_with_the_full_inspection(number: str, today: date) -> None:
    full = inspect(number, today=today)
    quick = passes(number, today)
    assert (quick is not None) == full.valid
    if quick is not None:
        assert quick == (full.birth_date, full.sex)
