"""Bulk entry over HTTP: good rows are sent, every bad row comes back with its row, column and reason."""

from __future__ import annotations

from gateway.access.principal import Role
from gateway.exchange.records import Direction
from tests.access.helpers import signed_in_client
from tests.gateways import REGISTRATION, RESIDENCE, fake_gateway, keyrings

HEADER = "现居住地乡镇代码,户籍地乡镇代码,姓名,身份证号码,出生日期,性别"
GOOD = f"{RESIDENCE},{REGISTRATION},王秀英,120101199005170245,1990-05-17,2"
BAD_CHECK = f"{RESIDENCE},{REGISTRATION},李秀兰,120101199005170242,1990-05-17,2"
UNSERVED = f"{RESIDENCE},140105001,张丽,140105199201010029,1992-01-01,2"


async def test_uploaded_cards_send_good_rows_and_report_each_bad_one():
    gw = fake_gateway(keyrings(RESIDENCE, REGISTRATION))
    await gw.start(relay=False)
    body = "\n".join([HEADER, GOOD, BAD_CHECK, UNSERVED]).encode("utf-8")
    async with signed_in_client(gw, Role.CLERK, RESIDENCE) as http:
        response = await http.post(f"/nodes/{RESIDENCE}/imports", params={"kind": "query", "filename": "cards.csv"},
                                   content=body)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["rows_read"] == 3
    assert [s["row"] for s in report["sent"]] == [2]
    rows = {e["row"]: e for e in report["errors"]}
    assert set(rows) == {3, 4}
    assert rows[3]["column"] == "身份证号码" and "check character" in rows[3]["reason"]
    assert "140105001" in rows[4]["reason"]
    sent = await gw.store.list_messages(RESIDENCE, Direction.OUT)
    assert [m.message_id for m in sent] == [report["sent"][0]["message_id"]]
    await gw.stop()
