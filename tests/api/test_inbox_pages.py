"""A clerk's long inbox: `?status=received` lists only what awaits an answer, and a list longer than
`limit` continues at the `Link: rel="next"` address, without a message skipped or shown twice even
while the clerk answers between pages (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from gateway.access.principal import Role
from gateway.exchange.records import Direction
from tests.access.helpers import signed_in_client
from tests.gateways import FOUND, REGISTRATION, RESIDENCE, database_gateway, keyrings, sample_query

pytestmark = pytest.mark.database


@pytest.fixture
async def gateway(database_url: str, tmp_path: Path):
    """Both townships on one gateway with the real SQL stores; the in-process broker (paging is the
    database's)."""
    gw = database_gateway(keyrings(RESIDENCE, REGISTRATION), database_url=database_url, data_dir=tmp_path)
    await gw.start(relay=False)
    yield gw
    await gw.stop()


async def received(gw, count: int) -> list[str]:
    """``count`` queries received by the registration township, in pairs accepted at the same instant
    (so the order's tie-break is exercised); their ids, newest first."""
    ids = []
    for i in range(count):
        if i % 2 == 0:
            gw.clock.advance(timedelta(seconds=1))
        ids.append((await gw.service.submit(RESIDENCE, sample_query())).message_id)
    while await gw.relay.run_once():
        pass
    stored = [await gw.store.find(REGISTRATION, Direction.IN, m) for m in ids]
    assert all(stored)
    return ids[::-1]


async def follow(http, url: str) -> list[list[dict]]:
    pages = []
    while url:
        response = await http.get(url)
        assert response.status_code == 200, response.text
        pages.append(response.json())
        url = response.links.get("next", {}).get("url")
    return pages


async def test_a_long_inbox_comes_in_pages_newest_first_each_message_once(gateway):
    ids = await received(gateway, 17)
    async with signed_in_client(gateway, Role.CLERK, REGISTRATION) as http:
        pages = await follow(http, f"/nodes/{REGISTRATION}/inbox?status=received&limit=6")
    assert [len(p) for p in pages] == [6, 6, 5]  # and no empty page after the last
    listed = [item["message_id"] for page in pages for item in page]
    assert listed == ids
    accepted = [datetime.fromisoformat(item["accepted_at"]) for page in pages for item in page]
    assert accepted == sorted(accepted, reverse=True)
    assert all(item["status"] == "received" and item["body"]["person"]["name"] for page in pages for item in page)
    reads = [r.object_id async for r in gateway.access.audit.records() if r.action == "read_record"]
    assert sorted(reads) == sorted(ids)  # every record shown is audited, page by page


async def test_answering_between_pages_skips_nothing_and_repeats_nothing(gateway):
    ids = await received(gateway, 12)
    async with signed_in_client(gateway, Role.CLERK, REGISTRATION) as http:
        first = await http.get(f"/nodes/{REGISTRATION}/inbox", params={"status": "received", "limit": 4})
        shown = [item["message_id"] for item in first.json()]
        assert shown == ids[:4]
        for message_id in [*shown, ids[9]]:  # this page, and one further down the list
            answer = await http.post(f"/nodes/{REGISTRATION}/inbox/{message_id}/feedback", json=FOUND)
            assert answer.status_code == 202, answer.text
        rest = await follow(http, first.links["next"]["url"])
        assert [item["message_id"] for page in rest for item in page] == ids[4:9] + ids[10:]
        answered = await follow(http, f"/nodes/{REGISTRATION}/inbox?status=answered&limit=2")
        assert sorted(item["message_id"] for page in answered for item in page) == sorted([*shown, ids[9]])
        everything = await follow(http, f"/nodes/{REGISTRATION}/inbox?limit=5")
        assert [item["message_id"] for page in everything for item in page] == ids


async def test_answers_received_are_not_inbox_items_and_do_not_use_up_the_limit(gateway):
    ids = await received(gateway, 3)
    async with signed_in_client(gateway, Role.CLERK, REGISTRATION) as http:
        for message_id in ids:
            assert (await http.post(f"/nodes/{REGISTRATION}/inbox/{message_id}/feedback", json=FOUND)).status_code == 202
    while await gateway.relay.run_once():
        pass
    async with signed_in_client(gateway, Role.CLERK, RESIDENCE) as http:
        inbox = await http.get(f"/nodes/{RESIDENCE}/inbox", params={"limit": 1})  # three feedback messages there
        assert inbox.json() == [] and "link" not in inbox.headers
        sent = await follow(http, f"/nodes/{RESIDENCE}/sent?limit=2")
    assert [len(p) for p in sent] == [2, 1]
    assert [item["message_id"] for page in sent for item in page] == ids
    assert {item["status"] for page in sent for item in page} == {"answered"}


@pytest.mark.parametrize("query, field, reason", [
    ({"after": "abc"}, "after", "not a cursor this gateway gave out"),
    ({"after": "1-2-3"}, "after", "not a cursor this gateway gave out"),
    ({"after": "999999999999999999-1"}, "after", "out of range"),
    ({"after": "1" * 41}, "after", "at most 40 characters"),
    ({"status": "open"}, "status", "'received' or 'answered'"),
    ({"limit": "1001"}, "limit", "less than or equal to 1000"),
])
async def test_a_bad_cursor_status_or_limit_is_refused_at_its_parameter(gateway, query, field, reason):
    async with signed_in_client(gateway, Role.CLERK, REGISTRATION) as http:
        response = await http.get(f"/nodes/{REGISTRATION}/inbox", params=query)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail[0]["loc"] == ["query", field] and reason in detail[0]["msg"], detail


async def test_another_township_s_clerk_cannot_page_this_inbox(gateway):
    ids = await received(gateway, 3)
    async with signed_in_client(gateway, Role.CLERK, REGISTRATION) as http:
        following = (await http.get(f"/nodes/{REGISTRATION}/inbox", params={"limit": 1})).links["next"]["url"]
    async with signed_in_client(gateway, Role.CLERK, RESIDENCE) as other:
        response = await other.get(following)
    assert response.status_code == 403 and ids
