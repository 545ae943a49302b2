"""The cross-field rules of the message models, one test per rule (names as in messages.RULES)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from gateway.codec import CodecError, parse_message
from gateway.codec.messages import RULES

from .conftest import TODAY, found_dict, not_found_dict, notification_dict, query_dict


def errors_of(obj: dict[str, Any], today: date = TODAY) -> dict[str, str]:
    with pytest.raises(CodecError) as err:
        parse_message(obj, today=today)
    return {e.path: e.reason for e in err.value.errors}


def person(**over: Any) -> dict[str, Any]:
    return {"citizen_id": "11010519491231002X", "name": "王秀兰", **over}


# --- citizen ID in a record -------------------------------------------------------------------


def test_record_with_failing_id_is_refused_with_the_reason() -> None:
    errs = errors_of(query_dict(person=person(citizen_id="110105194912310021")))
    assert errs == {
        "query.person.citizen_id": "wrong check character '1', expected 'X' (set id_check_confirmed to send it anyway)"
    }


def test_confirmed_failing_id_is_accepted_and_the_confirmation_travels_with_the_record() -> None:
    msg = parse_message(query_dict(person=person(citizen_id="110105194912310021", id_check_confirmed=True)), today=TODAY)
    assert msg.person.id_check_confirmed is True
    assert msg.person.id_findings().problems == ("wrong check character '1', expected 'X'",)


def test_confirmation_also_covers_a_birth_date_disagreeing_with_the_id() -> None:
    obj = query_dict(person=person(birth_date="1950-01-01", id_check_confirmed=True))
    assert parse_message(obj, today=TODAY).person.birth_date == date(1950, 1, 1)


def test_confirmation_flag_is_carried_on_the_wire() -> None:
    from gateway.codec import decode, encode

    msg = parse_message(query_dict(person=person(citizen_id="110105194912310021", id_check_confirmed=True)), today=TODAY)
    assert b'"id_check_confirmed":true' in encode(msg)
    assert decode(encode(msg), today=TODAY).person.id_check_confirmed is True


def test_malformed_id_is_refused_even_when_confirmed() -> None:
    errs = errors_of(query_dict(person=person(citizen_id="12345", id_check_confirmed=True)))
    assert errs == {"query.person.citizen_id": "must be 18 characters (or a 15-digit legacy number), got 5"}


def test_legacy_id_in_a_record_is_carried_upgraded() -> None:
    msg = parse_message(query_dict(person=person(citizen_id="110105491231002")), today=TODAY)
    assert msg.person.citizen_id == "11010519491231002X"


def test_birth_date_must_agree_with_the_id() -> None:
    assert "birth_date_agrees_with_citizen_id" in RULES
    errs = errors_of(query_dict(person=person(birth_date="1950-01-01")))
    assert errs == {"query.person.birth_date": "does not agree with the citizen ID (1949-12-31)"}


def test_sex_must_agree_with_the_id() -> None:
    errs = errors_of(query_dict(person=person(sex="1")))
    assert errs == {"query.person.sex": "does not agree with the citizen ID (sex code 2)"}


def test_unknown_code_is_refused_with_its_table() -> None:
    errs = errors_of(query_dict(person=person(ethnicity="57")))
    assert errs == {"query.person.ethnicity": "unknown code '57' in table ethnicity (GB/T 3304-1991)"}


# --- townships and dates ---------------------------------------------------------------------


def test_unknown_township_code_is_refused() -> None:
    errs = errors_of(query_dict(registration_township="110101999"))
    assert errs == {"query.registration_township": "unknown township code 110101999"}


def test_county_code_is_not_a_township() -> None:
    errs = errors_of(query_dict(registration_township="110101"))
    assert errs == {"query.registration_township": "must be a 9-digit township code"}


def test_residence_and_registration_townships_must_differ() -> None:
    errs = errors_of(query_dict(registration_township="110101001"))
    assert errs == {"query.registration_township": "must differ from residence_township"}


def test_dates_after_the_reference_date_are_refused() -> None:
    errs = errors_of(notification_dict(event_date="2026-11-24"))
    assert errs == {"notification.event_date": "must not be after the reference date 2026-11-23"}


def test_reference_date_comes_from_the_caller_not_the_clock() -> None:
    later = date(2026, 12, 31)
    assert parse_message(notification_dict(event_date="2026-12-01"), today=later).event_date == date(2026, 12, 1)


def test_impossible_calendar_date_is_refused() -> None:
    errs = errors_of(notification_dict(event_date="2026-02-30"))
    assert errs == {"notification.event_date": "impossible date 2026-02-30"}


def test_numeric_dates_are_not_taken_as_timestamps() -> None:
    errs = errors_of(notification_dict(event_date=1700000000))
    assert errs == {"notification.event_date": "must be a date YYYY-MM-DD"}


# --- notifications ---------------------------------------------------------------------------


def test_notification_needs_an_address() -> None:
    obj = notification_dict()
    del obj["registration_address"]
    assert errors_of(obj) == {
        "notification.registration_address": "required (or current_address): a notification must carry a detailed address"
    }


@pytest.mark.parametrize(
    ("kind", "missing"),
    [("1", "child_sex"), ("2", "contraception"), ("3", "contraception"), ("4", "pregnancy_weeks"),
     ("5", "remarks"), ("6", "pregnant"), ("7", "remarks"), ("8", "remarks")],
)
def test_each_notification_kind_requires_its_fields(kind: str, missing: str) -> None:
    obj = notification_dict(notification_kind=kind)
    del obj["child_sex"]
    errs = errors_of(obj)
    assert errs[f"notification.{missing}"] == f"required for notification kind {kind}"


def test_fields_of_another_notification_kind_are_refused() -> None:
    errs = errors_of(notification_dict(pregnancy_weeks=12))
    assert errs == {"notification.pregnancy_weeks": "not used with notification kind 1"}


def test_event_cannot_precede_the_persons_birth() -> None:
    obj = notification_dict(event_date="1940-01-01", person=person(birth_date="1949-12-31"))
    assert errors_of(obj) == {"notification.event_date": "must not be before the person's birth date"}


def test_unknown_notification_kind_is_refused() -> None:
    errs = errors_of(notification_dict(notification_kind="9"))
    assert errs["notification.notification_kind"].startswith("unknown code '9' in table notification_kind")


# --- feedback --------------------------------------------------------------------------------


def test_children_total_must_be_sons_plus_daughters() -> None:
    errs = errors_of(found_dict(children={"sons": 1, "daughters": 1, "total": 3, "youngest_birth_date": "2018-05-06"}))
    assert errs == {"feedback.children.total": "must equal sons + daughters (2)"}


def test_youngest_child_must_be_born_after_the_mother() -> None:
    errs = errors_of(found_dict(birth_date="2019-01-01"))
    assert errs == {"feedback.children.youngest_birth_date": "must be after birth_date"}


def test_no_youngest_child_date_without_children() -> None:
    errs = errors_of(found_dict(children={"sons": 0, "daughters": 0, "youngest_birth_date": "2018-05-06"}))
    assert errs == {"feedback.children.youngest_birth_date": "given but there are no children"}


def test_date_she_left_must_be_after_her_birth() -> None:
    assert errors_of(found_dict(left_on="1980-01-01")) == {"feedback.left_on": "must be after birth_date"}


def test_one_child_certificate_needs_a_child() -> None:
    errs = errors_of(found_dict(children={"sons": 0, "daughters": 0}, one_child_certificate_date="2015-01-01"))
    assert errs == {"feedback.one_child_certificate_date": "given but there are no children"}


def test_one_child_certificate_not_before_the_only_childs_birth() -> None:
    kids = {"sons": 1, "daughters": 0, "youngest_birth_date": "2018-05-06"}
    errs = errors_of(found_dict(children=kids, one_child_certificate_date="2017-01-01"))
    assert errs == {"feedback.one_child_certificate_date": "must not be before the child's birth"}


def test_found_answer_needs_the_verified_birth_date_and_children() -> None:
    obj = found_dict()
    del obj["birth_date"], obj["children"]
    assert errors_of(obj) == {
        "feedback.birth_date": "required when result is found",
        "feedback.children": "required when result is found",
    }


def test_no_such_person_needs_a_reason_and_remarks() -> None:
    obj = not_found_dict()
    del obj["not_found_reason"], obj["remarks"]
    assert errors_of(obj) == {
        "feedback.not_found_reason": "required when result is not_found",
        "feedback.remarks": "required when result is not_found (rule 六)",
    }


def test_no_such_person_carries_no_verified_fields() -> None:
    errs = errors_of(not_found_dict(household_type="1"))
    assert errs == {"feedback.household_type": "not allowed when result is not_found"}


def test_reason_belongs_only_to_no_such_person() -> None:
    errs = errors_of(found_dict(not_found_reason="1"))
    assert errs == {"feedback.not_found_reason": "only allowed when result is not_found"}


def test_unknown_fields_are_refused() -> None:
    assert errors_of(found_dict(colour="red")) == {"feedback.colour": "unknown field"}


def test_counts_must_be_json_numbers_not_strings() -> None:
    errs = errors_of(found_dict(children={"sons": "1", "daughters": 0}))
    assert errs == {"feedback.children.sons": "must be an integer"}


def test_unknown_kind_is_refused_at_kind() -> None:
    assert errors_of({"kind": "gossip"}) == {"kind": "unknown kind 'gossip' (expected query, notification or feedback)"}


def test_every_rule_is_documented() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "codec.md").read_text(encoding="utf-8")
    assert [name for name in RULES if name not in doc] == []
