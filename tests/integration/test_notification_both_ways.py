"""A notification from the registration township to the residence township, and the reply, over the real
broker and a real database (SQLite and PostgreSQL), HTTP to HTTP (issue 13, item 4).

Seed 002 第三十一条 (二) 4: 户籍地…利用流动人口计划生育信息交换平台及时向现居住地通报流出人口相关信息;
范文篇7 (五): 收到通知单的一方必须及时回复。
"""

from __future__ import annotations

import pytest

from gateway.access.principal import Role
from gateway.exchange.records import Direction
from tests.access.helpers import signed_in_client
from tests.gateways import FOUND, REGISTRATION, RESIDENCE, sample_query
from tests.integration.test_round_trip import eventually, two_gateways  # noqa: F401 - the fixture

pytestmark = [pytest.mark.broker]


def outflow_notification() -> dict:
    return {
        "notification_kind": "5",
        "direction": "to_residence",
        "residence_township": RESIDENCE,
        "person": sample_query()["person"],
        "event_date": "2026-11-02",
        "learned_on": "2026-11-03",
        "registration_address": "天津市和平区劝业场街道新津社区",
        "current_address": "幸福路1号",
        "remarks": "外出前未办理婚育证明",
    }


async def test_registration_township_notifies_the_residence_township_and_the_reply_comes_back(two_gateways):
    residence, registration, _rings = two_gateways
    res_http = signed_in_client(residence, Role.CLERK, RESIDENCE, base_url="http://res")
    reg_http = signed_in_client(registration, Role.CLERK, REGISTRATION, base_url="http://reg")
    async with res_http as res_http, reg_http as reg_http:
        posted = await reg_http.post(f"/nodes/{REGISTRATION}/notifications", json=outflow_notification())
        assert posted.status_code == 202, posted.text
        notification_id = posted.json()["message_id"]

        async def in_residence_inbox():
            inbox = (await res_http.get(f"/nodes/{RESIDENCE}/inbox")).json()
            return [m for m in inbox if m["message_id"] == notification_id]

        [received] = await eventually(in_residence_inbox)
        assert received["sender"] == REGISTRATION
        assert received["body"]["direction"] == "to_residence"
        assert received["body"]["learned_on"] == "2026-11-03"

        answered = await res_http.post(f"/nodes/{RESIDENCE}/inbox/{notification_id}/feedback", json=FOUND)
        assert answered.status_code == 202, answered.text
        feedback_id = answered.json()["message_id"]

        async def answered_at_registration():
            detail = (await reg_http.get(f"/nodes/{REGISTRATION}/messages/{notification_id}")).json()
            return detail if detail["status"] == "answered" else None

        detail = await eventually(answered_at_registration)
        assert detail, "the reply never reached the registration township"
        assert detail["answered_by"] == feedback_id
        assert detail["feedback"]["body"]["result"] == "found"

    stored = await registration.store.find(REGISTRATION, Direction.IN, feedback_id)
    assert stored is not None and stored.sender == RESIDENCE
    assert await residence.store.find(RESIDENCE, Direction.IN, notification_id) is not None
