"""The rules of wire version 2, as the seeds state them (issue 13): one test per rule in messages.RULES,
each quoting the seed words it enforces."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from gateway.codec import CodecError, decode, encode, parse_message
from gateway.codec.messages import RULE_FOUR_FIELDS, Feedback, Notification
from gateway.codec.rules import certificate_expires_on, statistical_year

from .conftest import REGISTRATION, RESIDENCE, TODAY, found_dict, not_found_dict, notification_dict, query_dict


def errors_of(obj: dict[str, Any], today: date = TODAY, accepted_on: date | None = None) -> dict[str, str]:
    with pytest.raises(CodecError) as err:
        parse_message(obj, today=today, accepted_on=accepted_on)
    return {e.path: e.reason for e in err.value.errors}


# --- rule 四: a found answer is complete --------------------------------------------------------


def test_found_carries_every_rule_four_field() -> None:
    # Rule 四: 反馈内容包括…出生日期、户口性质、丈夫姓名、丈夫现居住地代码、领取独生子女父母光荣证日期、
    # 本次妊娠政策属性、家庭子女数(包括儿子数、女儿数,最小子女出生日期)、外出日期、《流动人口婚育证明》号码、备注等。
    errs = errors_of(found_dict(not_applicable=["husband_name", "husband_residence_code", "one_child_certificate_date"]))
    reason = "required when result is found (rule 四): give it or list it in not_applicable"
    assert errs == {
        "feedback.pregnancy_policy_status": reason,
        "feedback.left_on": reason,
        "feedback.marriage_certificate_no": reason,
    }


def test_found_with_children_gives_the_youngest_childs_birth_date() -> None:
    # Rule 四: 家庭子女数(包括儿子数、女儿数,最小子女出生日期)
    errs = errors_of(found_dict(children={"sons": 0, "daughters": 2}))
    assert errs == {"feedback.children.youngest_birth_date": "required when there are children (rule 四: 最小子女出生日期)"}
    no_children = parse_message(found_dict(children={"sons": 0, "daughters": 0}), today=TODAY)
    assert no_children.children.youngest_birth_date is None


def test_found_may_say_explicitly_that_a_field_does_not_apply() -> None:
    msg = parse_message(found_dict(husband_name="李伟"), today=TODAY)
    assert isinstance(msg, Feedback)
    assert msg.husband_name == "李伟" and "husband_name" not in msg.not_applicable
    assert set(msg.not_applicable) | {"household_type", "husband_name"} == set(RULE_FOUR_FIELDS)


def test_not_applicable_lists_absent_fields() -> None:
    given = found_dict(husband_name="李伟", not_applicable=[f for f in RULE_FOUR_FIELDS if f != "household_type"])
    assert errors_of(given) == {"feedback.not_applicable": "names husband_name, which is given"}
    twice = found_dict(not_applicable=["left_on", "left_on"] + [f for f in RULE_FOUR_FIELDS if f not in ("left_on", "household_type")])
    assert errors_of(twice) == {"feedback.not_applicable": "names a field twice"}
    assert "feedback.not_applicable.0" in errors_of(found_dict(not_applicable=["birth_date"]))
    assert errors_of(not_found_dict(not_applicable=["left_on"])) == {
        "feedback.not_applicable": "only allowed when result is found"
    }


# --- 第二十五条 and rule 十一: a 查无此人 names the sources checked --------------------------------


def test_not_found_states_checked_sources() -> None:
    missing = not_found_dict()
    del missing["checked_sources"]
    assert errors_of(missing) == {
        "feedback.checked_sources": "required when result is not_found: list the sources checked (table checked_source)"
    }
    assert errors_of(not_found_dict(checked_sources=["4", "5", "1", "2", "2"])) == {
        "feedback.checked_sources": "lists a source twice"
    }
    assert "feedback.checked_sources.0" in errors_of(not_found_dict(checked_sources=["7"]))
    assert errors_of(found_dict(checked_sources=["4"])) == {"feedback.checked_sources": "only allowed when result is not_found"}


def test_no_such_person_has_searched_the_three_sources_of_rule_eleven() -> None:
    # Rule 十一: 户籍所在地对查询和通报信息进行查找的依据是,流动人口数据库——育龄妇女信息卡——公安户籍管理档案。
    police_and_cards = errors_of(not_found_dict(not_found_reason="3", checked_sources=["1", "5"]))
    assert police_and_cards == {"feedback.checked_sources": (
        "search 流动人口数据库 (4), 育龄妇女信息卡 (5), 公安户籍 (1) before answering 查无此人 (rule 十一); "
        "not searched: 流动人口数据库 (4)")}
    database_alone = errors_of(not_found_dict(not_found_reason="9", checked_sources=["4"]))
    assert database_alone["feedback.checked_sources"].endswith("not searched: 育龄妇女信息卡 (5), 公安户籍 (1)")
    for reason in ("3", "9"):  # not a cause 第二十五条 names: rule 十一 is enough
        enough = parse_message(not_found_dict(not_found_reason=reason, checked_sources=["4", "5", "1"]), today=TODAY)
        assert enough.checked_sources == ["4", "5", "1"]


def test_no_such_person_for_an_unclear_address_or_a_misspelt_name_is_checked_with_several_departments() -> None:
    # Seed 002 第二十五条: 对因地址不详、姓名笔误等原因造成的"查无此人"情况,应到公安、卫生、民政等相关部门多方
    # 核实或在上级流动人口育龄妇女数据库核查后才反馈。
    for reason in ("1", "2"):  # 地址有误, 姓名有误
        only_rule_eleven = errors_of(not_found_dict(not_found_reason=reason, checked_sources=["4", "5", "1"]))
        assert only_rule_eleven == {"feedback.checked_sources": (
            f"a 查无此人 for reason {reason} (地址不详、姓名笔误) is answered only after checking with several "
            "departments, 公安户籍 (1) and 民政婚姻登记 (2) or 卫生健康 (3), or in the superior floating-population "
            "database (6) (第二十五条: 多方核实)")}
        for second in ("2", "3", "6"):  # 民政, 卫生, or the superior database
            sources = ["4", "5", "1", second]
            assert parse_message(not_found_dict(not_found_reason=reason, checked_sources=sources),
                                 today=TODAY).checked_sources == sources
    # One reason for the field at a time, rule 十一's search first (the form shows one per field).
    police_and_cards = errors_of(not_found_dict(not_found_reason="1", checked_sources=["1", "5"]))
    assert police_and_cards["feedback.checked_sources"].endswith("(rule 十一); not searched: 流动人口数据库 (4)")
    # Several departments do not replace the search of rule 十一.
    assert "not searched: 育龄妇女信息卡 (5)" in errors_of(
        not_found_dict(checked_sources=["4", "1", "2", "3"]))["feedback.checked_sources"]


def test_no_such_person_reasons_read_in_chinese() -> None:
    from gateway.web.reasons_zh import in_chinese

    eleven = errors_of(not_found_dict(not_found_reason="3", checked_sources=["1", "5"]))["feedback.checked_sources"]
    assert in_chinese(eleven) == ("查无此人前须核查流动人口数据库、育龄妇女信息卡、公安户籍管理档案（规则十一），"
                                  "未核查：流动人口数据库 (4)")
    article = errors_of(not_found_dict(checked_sources=["4", "5", "1"]))["feedback.checked_sources"]
    assert in_chinese(article).endswith("或在上级流动人口育龄妇女数据库核查后才反馈（第二十五条）")


def test_the_wire_keeps_the_sources_rule_its_records_were_accepted_with() -> None:
    # An answer stored or in flight from a gateway of the previous release (the database alone, or two
    # departments) still reads; the receiving gateway cannot see what was searched.
    body = json.loads(encode(parse_message(not_found_dict(), today=TODAY)))["body"]

    def on_the_wire(sources: list[str]) -> bytes:
        return json.dumps({"v": 2, "body": {**body, "checked_sources": sources}}, ensure_ascii=False).encode()

    for earlier in (["4"], ["1", "2"]):
        assert decode(on_the_wire(earlier), today=TODAY).checked_sources == earlier
    with pytest.raises(CodecError) as err:
        decode(on_the_wire(["1", "5"]), today=TODAY)
    assert "check the floating-population database (4) or at least two" in str(err.value)


# --- 第二十四条: the registration address reaches village level ----------------------------------


def test_registration_address_reaches_village() -> None:
    # Seed 002 第二十四条: 提交的信息应具有可查询性,不得缺少姓名、身份证号码、详细的常住地或户籍地址等要件。
    # 户籍地址应登记到村(社区居)委会一级。
    for good in ("河南省郑州市中原区林山寨街道建设路社区", "林山寨街道张庄村三组", "林山寨街道绿东居委会"):
        assert parse_message(query_dict(registration_address=good), today=TODAY).registration_address == good
    assert errors_of(query_dict(registration_address="河南省郑州市中原区林山寨街道")) == {
        "query.registration_address": "must reach village or community level (村, 社区, 居委会 or 组 after the township)"
    }
    # A village of another township is not in the registration township.
    assert errors_of(notification_dict(registration_address="北京市东城区东华门街道多福巷社区")) == {
        "notification.registration_address": f"must name the registration township {REGISTRATION} (林山寨街道) and then the 村/社区/居委会"
    }
    # The village part must come after the township, not before it.
    assert "query.registration_address" in errors_of(query_dict(registration_address="某村林山寨街道"))


# --- 第一篇 七 and 第二十四条: the statistical year ------------------------------------------------


def test_statistical_year_runs_from_1_october_to_30_september() -> None:
    # Seed 000 第一篇 七: 计划生育统计期限为上年10月1日0时至本年9月30日24时
    assert statistical_year(date(2026, 9, 30)) == (date(2025, 10, 1), date(2026, 9, 30))
    assert statistical_year(date(2026, 10, 1)) == (date(2026, 10, 1), date(2027, 9, 30))
    assert statistical_year(date(2027, 1, 1)) == (date(2026, 10, 1), date(2027, 9, 30))


def test_event_in_statistical_year() -> None:
    # Seed 002 第二十四条: 流入地应向流出地通报的8项内容:①统计年度内有生育子女行为的;②统计年度内落实计划生育
    # 手术的;③统计年度内应落实长效避孕节育措施而未落实的;④统计年度内怀孕的…  "In the statistical year"
    # is the year holding the acceptance date (本年度内: the year the notification is made), or the one
    # before it while the notification's 5 working days after learned_on run (对应通报信息,应在5个工作日内提交).
    late = notification_dict(event_date="2026-09-30")
    assert errors_of(late, accepted_on=date(2026, 11, 2)) == {
        "notification.event_date": "must lie in the statistical year 2026-10-01 – 2027-09-30 of the acceptance date, "
        "or in the statistical year before it and be submitted within the working days after learned_on "
        "(5 working days after 2026-09-30: until 2026-10-07) (notification kind 1: 统计年度内)"
    }
    assert parse_message(late, today=TODAY, accepted_on=date(2026, 9, 30)).event_date == date(2026, 9, 30)
    operation = notification_dict(notification_kind="2", child_sex=None, contraception="04", event_date="2025-12-01")
    assert "notification.event_date" in errors_of(operation)
    # ⑤–⑧ are not bound to the statistical year.
    no_certificate = notification_dict(notification_kind="5", child_sex=None, remarks="未办理婚育证明", event_date="2024-05-01")
    assert parse_message(no_certificate, today=TODAY).notification_kind == "5"


# --- learned_on ----------------------------------------------------------------------------------


def test_learned_on_between_event_and_acceptance() -> None:
    msg = parse_message(notification_dict(), today=TODAY)
    assert isinstance(msg, Notification) and msg.learned_on == msg.event_date == date(2026, 10, 1)
    later = parse_message(notification_dict(learned_on="2026-10-20"), today=TODAY)
    assert later.learned_on == date(2026, 10, 20)
    assert errors_of(notification_dict(learned_on="2026-09-30")) == {"notification.learned_on": "must not be before event_date"}
    assert errors_of(notification_dict(learned_on="2026-10-20"), accepted_on=date(2026, 10, 10)) == {
        "notification.learned_on": "must not be after the acceptance date 2026-10-10"
    }


# --- 《流动人口婚育证明》: issue date and three years ----------------------------------------------


def test_marriage_certificate_has_issue_date() -> None:
    # Seed 000 (流动人口婚育证明管理制度) 四: 《流动人口婚育证明》有效期为3年,届满需重新办理新证。
    # The number alone cannot say whether the certificate is valid: it travels with its issue date.
    na = [f for f in RULE_FOUR_FIELDS if f not in ("household_type", "marriage_certificate_no")]
    assert errors_of(found_dict(marriage_certificate_no="豫0102-2025-0001", not_applicable=na)) == {
        "feedback.marriage_certificate_issued_on": "required with marriage_certificate_no (the 婚育证明 is valid for three years from it)"
    }
    assert errors_of(found_dict(marriage_certificate_issued_on="2025-01-01")) == {
        "feedback.marriage_certificate_issued_on": "given without marriage_certificate_no"
    }
    local = query_dict(known_locally={"marriage_certificate_no": "豫0102-2025-0001"})
    assert errors_of(local) == {
        "query.known_locally.marriage_certificate_issued_on": "required with marriage_certificate_no (the 婚育证明 is valid for three years from it)"
    }


def test_marriage_certificate_valid_three_years() -> None:
    # Seed 000 四: 《流动人口婚育证明》有效期为3年,届满需重新办理新证。
    assert certificate_expires_on(date(2023, 11, 24)) == date(2026, 11, 24)
    assert certificate_expires_on(date(2024, 2, 29)) == date(2027, 3, 1)
    na = [f for f in RULE_FOUR_FIELDS if f not in ("household_type", "marriage_certificate_no")]
    valid = found_dict(marriage_certificate_no="豫0102-0001", marriage_certificate_issued_on="2023-11-24", not_applicable=na)
    assert parse_message(valid, today=TODAY).marriage_certificate_issued_on == date(2023, 11, 24)
    expired = {**valid, "marriage_certificate_issued_on": "2023-11-23"}
    assert errors_of(expired)["feedback.marriage_certificate_issued_on"].startswith(
        "the certificate expired on 2026-11-23 (有效期为3年, 届满需重新办理新证)"
    )
    # Kind ⑤ (未持有有效流动人口计划生育证件的) names only a certificate no longer valid on the event date.
    kind5 = notification_dict(notification_kind="5", child_sex=None, remarks="证件过期", event_date="2026-11-01",
                              marriage_certificate_no="豫0102-0001", marriage_certificate_issued_on="2023-11-02")
    assert "notification.marriage_certificate_issued_on" in errors_of(kind5)
    assert parse_message({**kind5, "marriage_certificate_issued_on": "2023-11-01"}, today=TODAY).notification_kind == "5"


# --- direction ----------------------------------------------------------------------------------


def test_notification_direction_names_who_must_reply() -> None:
    # Seed 002 第三十一条 (二) 4: 利用流动人口计划生育信息交换平台及时向现居住地通报流出人口相关信息;
    # 范文篇7 (五): 收到通知单的一方必须及时回复。
    usual = parse_message(notification_dict(), today=TODAY)
    assert usual.direction == "to_registration"
    assert (usual.sender_township, usual.recipient_township) == (RESIDENCE, REGISTRATION)
    outflow = parse_message(notification_dict(direction="to_residence"), today=TODAY)
    assert (outflow.sender_township, outflow.recipient_township) == (REGISTRATION, RESIDENCE)
    assert "notification.direction" in errors_of(notification_dict(direction="both"))


# --- the wire stays versioned ------------------------------------------------------------------


def _v1(body: dict[str, Any]) -> bytes:
    return json.dumps({"v": 1, "body": body}, ensure_ascii=False).encode()


def test_version_one_messages_without_the_new_fields_still_decode() -> None:
    bare_found = {k: v for k, v in found_dict().items() if k != "not_applicable"}
    bare_found["children"] = {"sons": 1, "daughters": 0}
    found = decode(_v1(bare_found), today=TODAY)
    assert found.not_applicable is None and found.household_type == "1"
    bare_not_found = {k: v for k, v in not_found_dict().items() if k != "checked_sources"}
    assert decode(_v1(bare_not_found), today=TODAY).checked_sources is None
    old = notification_dict(registration_address="河南省郑州市中原区某村", event_date="2025-05-01")
    notification = decode(_v1(old), today=TODAY)
    assert notification.direction == "to_registration" and notification.learned_on == date(2025, 5, 1)
    # v1 still refuses what v1 refused; v2 refuses the incomplete record.
    with pytest.raises(CodecError):
        decode(_v1({**bare_not_found, "not_found_reason": "7"}), today=TODAY)
    with pytest.raises(CodecError) as err:
        decode(encode(found), today=TODAY)  # encode writes v2, where the same record is incomplete
    assert "feedback.pregnancy_policy_status" in str(err.value)
    assert encode(notification).endswith(b',"v":2}')


def test_a_stored_record_is_judged_on_the_day_it_was_accepted() -> None:
    # A birth of 30 September accepted that day stays valid when read back on 1 October or years later.
    msg = parse_message(notification_dict(event_date="2026-09-30"), today=TODAY, accepted_on=date(2026, 9, 30))
    data = encode(msg)
    assert decode(data, today=TODAY, accepted_on=date(2026, 9, 30)) == msg
    with pytest.raises(CodecError):
        decode(data, today=TODAY)
