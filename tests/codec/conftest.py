from __future__ import annotations

from datetime import date
from typing import Any

import pytest

TODAY = date(2026, 11, 23)
RESIDENCE = "110101001"  # 东华门街道, 北京市东城区
REGISTRATION = "410102001"  # a township in 郑州市中原区
VALID_ID = "11010519491231002X"


def query_dict(**over: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "kind": "query",
        "residence_township": RESIDENCE,
        "registration_township": REGISTRATION,
        "person": {"citizen_id": VALID_ID, "name": "王秀兰", "birth_date": "1949-12-31", "sex": "2"},
    }
    d.update(over)
    return d


def found_dict(**over: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "kind": "feedback",
        "in_reply_to": "msg-0001",
        "result": "found",
        "birth_date": "1990-03-01",
        "household_type": "1",
        "children": {"sons": 1, "daughters": 1, "youngest_birth_date": "2018-05-06"},
    }
    d.update(over)
    if "not_applicable" not in over:
        # rule 四: every field not given is declared not applicable (wire version 2)
        from gateway.codec.messages import RULE_FOUR_FIELDS

        d["not_applicable"] = [f for f in RULE_FOUR_FIELDS if d.get(f) is None]
    return d


def not_found_dict(**over: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "kind": "feedback",
        "in_reply_to": "msg-0001",
        "result": "not_found",
        "not_found_reason": "1",
        "checked_sources": ["4", "5", "1", "2"],  # rule 十一, and 多方核实 for reason 1 (第二十五条)
        "remarks": "村委会无此地址",
    }
    d.update(over)
    return d


def notification_dict(**over: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "kind": "notification",
        "notification_kind": "1",
        "residence_township": RESIDENCE,
        "registration_township": REGISTRATION,
        "person": {"citizen_id": VALID_ID, "name": "王秀兰"},
        "event_date": "2026-10-01",
        "registration_address": "河南省郑州市中原区林山寨街道某村",
        "child_sex": "1",
    }
    d.update(over)
    return d


@pytest.fixture
def today() -> date:
    return TODAY
