"""Plausible, valid sample records for the demo and the tests: real division codes, IDs that pass GB 11643."""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

from gateway.codec.citizen_id import check_character

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = ["秀英", "桂英", "秀兰", "玉兰", "丽", "静", "敏", "燕", "艳", "娟", "霞", "芳", "红梅", "海燕", "晓红", "春梅"]
HUSBANDS = ["伟", "强", "磊", "军", "洋", "勇", "杰", "涛", "明", "超"]


def citizen_id(rng: random.Random, county: str, born: date, *, female: bool = True) -> str:
    sequence = rng.randrange(0, 1000)
    # Digit 17 is odd for men and even for women (GB 11643).
    sequence = sequence - sequence % 2 if female else sequence | 1
    first17 = f"{county}{born:%Y%m%d}{sequence:03d}"
    return first17 + check_character(first17)


def person(rng: random.Random, registration_township: str) -> dict[str, Any]:
    born = date(1980, 1, 1) + timedelta(days=rng.randrange(0, 365 * 24))
    return {
        "citizen_id": citizen_id(rng, registration_township[:6], born),
        "name": rng.choice(SURNAMES) + rng.choice(GIVEN),
        "birth_date": born.isoformat(),
        "sex": "2",
    }


def query(rng: random.Random, residence: str, registration: str, *, about_birth: bool = False) -> dict[str, Any]:
    return {
        "kind": "query",
        "residence_township": residence,
        "registration_township": registration,
        "person": person(rng, registration),
        "about_birth": about_birth,
        "current_address": "幸福路1号",
    }


def found_feedback(rng: random.Random, born: date, husband_residence: str) -> dict[str, Any]:
    youngest = born + timedelta(days=365 * 22 + rng.randrange(0, 365 * 3))
    sons, daughters = rng.choice([(1, 0), (0, 1), (1, 1), (0, 0)])
    children: dict[str, Any] = {"sons": sons, "daughters": daughters}
    if sons + daughters:
        children["youngest_birth_date"] = min(youngest, date(2025, 12, 31)).isoformat()
    return {
        "result": "found",
        "birth_date": born.isoformat(),
        "household_type": rng.choice(["1", "2", "3"]),
        "husband_name": rng.choice(SURNAMES) + rng.choice(HUSBANDS),
        "husband_residence_code": husband_residence,
        "children": children,
        "remarks": "已入户核实",
        # rule 四: what does not apply to her is said explicitly
        "not_applicable": ["one_child_certificate_date", "pregnancy_policy_status", "left_on", "marriage_certificate_no"],
    }


def not_found_feedback(rng: random.Random) -> dict[str, Any]:
    reason = rng.choice(["1", "2", "3", "9"])
    remarks = {"1": "门牌号不存在", "2": "户籍档案中无此姓名", "3": "身份证号码与户籍档案不符", "9": "已迁出本乡"}[reason]
    # Rule 十一: the database, the cards, the police archive; 第二十五条 (地址有误、姓名有误): another
    # department (民政, 卫生) or the superior database besides.
    sources = rng.choice([["4", "5", "1", "2"], ["4", "5", "1", "3"], ["4", "5", "1", "6"]])
    return {"result": "not_found", "not_found_reason": reason, "checked_sources": sources, "remarks": remarks}
