"""Withdrawing a query (the residence township, before any reply): the withdrawal crosses the wire to the
registration township's gateway, which closes the case as withdrawn (not counted) and takes the query
out of the clerk's work; after a reply nothing can be withdrawn; a reply and a withdrawal at once are
decided by the database; every withdrawal, refused or not, is audited."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from gateway.access.audit import Action
from gateway.access.principal import Role
from gateway.exchange.errors import AlreadyAnswered, Withdrawn
from gateway.exchange.ports import Delivery
from gateway.exchange.records import Direction, Status
from gateway.security.directory import KeyDirectory
from gateway.workflow.cases import CaseState
from tests.access.helpers import signed_in_client
from tests.gateways import FOUND, REGISTRATION, RESIDENCE, database_gateway, keyrings, real_gateway, running, sample_query

pytestmark = pytest.mark.database


@pytest.fixture
async def gateway(database_url: str, tmp_path: Path):
    """Both townships on one gateway with the real SQL stores; the in-process broker delivers."""
    gw = database_gateway(keyrings(RESIDENCE, REGISTRATION), database_url=database_url, data_dir=tmp_path)
    await gw.start(relay=False)
    yield gw
    await gw.stop()


async def relay_all(gw) -> None:
    while await gw.relay.run_once():
        pass


async def withdrawals_audited(gw) -> list:
    return [r async for r in gw.access.audit.records() if r.action == Action.WITHDRAW]


async def test_a_withdrawn_query_closes_its_case_as_withdrawn_and_cannot_be_answered(gateway) -> None:
    query = await gateway.service.submit(RESIDENCE, sample_query())
    await relay_all(gateway)
    assert (await gateway.tracker.store.get_case(query.message_id)).is_open

    async with signed_in_client(gateway, Role.CLERK, RESIDENCE) as clerk:
        response = await clerk.post(f"/nodes/{RESIDENCE}/sent/{query.message_id}/withdraw")
        assert response.status_code == 202, response.text
        assert response.json()["kind"] == "withdrawal" and response.json()["in_reply_to"] == query.message_id
        again = await clerk.post(f"/nodes/{RESIDENCE}/sent/{query.message_id}/withdraw")
        assert again.status_code == 409
        sent = (await clerk.get(f"/nodes/{RESIDENCE}/sent")).json()
    assert [(m["message_id"], m["status"]) for m in sent] == [(query.message_id, "withdrawn")]  # not listed itself
    await relay_all(gateway)

    case = await gateway.tracker.store.get_case(query.message_id)
    assert case.state is CaseState.WITHDRAWN and case.withdrawn_at is not None
    received = await gateway.store.find(REGISTRATION, Direction.IN, query.message_id)
    assert received.status is Status.WITHDRAWN
    async with signed_in_client(gateway, Role.CLERK, REGISTRATION) as other:
        answered = await other.post(f"/nodes/{REGISTRATION}/inbox/{query.message_id}/feedback", json=FOUND)
        assert answered.status_code == 409 and "withdrew" in answered.json()["detail"]
        inbox = (await other.get(f"/nodes/{REGISTRATION}/inbox")).json()
    assert [m["status"] for m in inbox] == ["withdrawn"]
    ok, refused = await withdrawals_audited(gateway)
    assert (ok.object_id, ok.township, ok.result, ok.role) == (query.message_id, RESIDENCE, "ok", "clerk")
    assert (refused.object_id, refused.result, refused.detail) == (query.message_id, "refused", "Withdrawn")


async def test_a_query_that_has_its_reply_cannot_be_withdrawn(gateway) -> None:
    query = await gateway.service.submit(RESIDENCE, sample_query())
    await relay_all(gateway)
    await gateway.service.answer(REGISTRATION, query.message_id, FOUND)
    await relay_all(gateway)
    async with signed_in_client(gateway, Role.CLERK, RESIDENCE) as clerk:
        response = await clerk.post(f"/nodes/{RESIDENCE}/sent/{query.message_id}/withdraw")
    assert response.status_code == 409 and "cannot be withdrawn" in response.json()["detail"]
    assert (await gateway.tracker.store.get_case(query.message_id)).state is not CaseState.WITHDRAWN
    [refused] = await withdrawals_audited(gateway)
    assert refused.result == "refused"


async def test_only_the_township_that_sent_the_query_may_withdraw_it(gateway) -> None:
    query = await gateway.service.submit(RESIDENCE, sample_query())
    await relay_all(gateway)
    async with signed_in_client(gateway, Role.CLERK, REGISTRATION) as other:
        # Its own received copy is not a query it sent; the other township's path is outside its scope.
        assert (await other.post(f"/nodes/{REGISTRATION}/sent/{query.message_id}/withdraw")).status_code == 404
        assert (await other.post(f"/nodes/{RESIDENCE}/sent/{query.message_id}/withdraw")).status_code == 403
    async with signed_in_client(gateway, Role.SUPERVISOR, "11") as supervisor:
        assert (await supervisor.post(f"/nodes/{RESIDENCE}/sent/{query.message_id}/withdraw")).status_code == 403


async def test_a_reply_and_a_withdrawal_at_once_are_decided_by_the_database_one_wins(gateway) -> None:
    for _ in range(4):
        query = await gateway.service.submit(RESIDENCE, sample_query())
        await relay_all(gateway)
        withdrawal = await gateway.service.withdraw(RESIDENCE, query.message_id)
        [envelope] = [o.envelope for o in await gateway.store.due_outbox(gateway.clock.now(), 100)
                      if o.message_id == withdrawal.message_id]
        answer, received = await asyncio.gather(
            gateway.service.answer(REGISTRATION, query.message_id, FOUND),
            gateway.service.receive(Delivery(envelope, REGISTRATION)),
            return_exceptions=True,
        )
        assert received.result == "stored"
        row = await gateway.store.find(REGISTRATION, Direction.IN, query.message_id)
        case = await gateway.tracker.store.get_case(query.message_id)
        if isinstance(answer, BaseException):
            assert isinstance(answer, (AlreadyAnswered, Withdrawn))
            assert row.status is Status.WITHDRAWN and row.answered_by == withdrawal.message_id
            assert case.state is CaseState.WITHDRAWN
        else:
            assert row.status is Status.ANSWERED and row.answered_by == answer.message_id
            assert case.state is not CaseState.WITHDRAWN and case.withdrawn_at is None
        await relay_all(gateway)


async def test_a_withdrawal_of_a_query_the_township_never_received_is_quarantined(gateway) -> None:
    query = await gateway.service.submit(RESIDENCE, sample_query())  # never relayed
    withdrawal = await gateway.service.withdraw(RESIDENCE, query.message_id)
    [envelope] = [o.envelope for o in await gateway.store.due_outbox(gateway.clock.now(), 100)
                  if o.message_id == withdrawal.message_id]
    outcome = await gateway.service.receive(Delivery(envelope, REGISTRATION))
    assert (outcome.result, outcome.reason) == ("quarantined", "unknown_reference")


@pytest.mark.broker
async def test_a_withdrawal_crosses_the_broker_to_the_registration_townships_gateway(
    database_url, amqp_url, run_token, tmp_path
) -> None:
    rings = keyrings(RESIDENCE, REGISTRATION)
    directory = KeyDirectory.from_keyrings(rings.values())
    common = {"amqp_url": amqp_url, "database_url": database_url, "token": run_token, "data_dir": tmp_path}
    residence = real_gateway([rings[RESIDENCE]], directory, gateway_id="res", **common)
    registration = real_gateway([rings[REGISTRATION]], directory, gateway_id="reg", **common)
    async with running(residence, registration):
        query = await residence.service.submit(RESIDENCE, sample_query())
        deadline = time.monotonic() + 30
        while await registration.tracker.store.get_case(query.message_id) is None and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        await residence.service.withdraw(RESIDENCE, query.message_id)
        case = None
        while time.monotonic() < deadline:
            case = await registration.tracker.store.get_case(query.message_id)
            if case is not None and case.state is CaseState.WITHDRAWN:
                break
            await asyncio.sleep(0.1)
        assert case is not None and case.state is CaseState.WITHDRAWN
        with pytest.raises(Withdrawn):
            await registration.service.answer(REGISTRATION, query.message_id, FOUND)


async def test_the_sent_page_withdraws_a_query_with_its_button_and_says_so_in_chinese(gateway) -> None:
    from tests.access.helpers import browser_client

    query = await gateway.service.submit(RESIDENCE, sample_query())
    await relay_all(gateway)
    action = f"/township/{RESIDENCE}/sent/{query.message_id}/withdraw"
    async with browser_client(gateway, Role.CLERK, RESIDENCE) as (http, csrf):
        listed = await http.get(f"/township/{RESIDENCE}/sent")
        assert f'action="{action}"' in listed.text
        done = await http.post(action, data={"csrf_token": csrf})
        assert done.status_code == 303 and done.headers["location"].endswith(f"?withdrawn={query.message_id}")
        shown = (await http.get(done.headers["location"])).text
        assert f"已撤回，编号 {query.message_id}" in shown and f'action="{action}"' not in shown
        again = await http.post(action, data={"csrf_token": csrf})
        assert again.status_code == 409 and "这条查询已撤回" in again.text
        forged = await http.get(f"/township/{RESIDENCE}/sent", params={"withdrawn": "请拨打 400"})
        assert "请拨打" not in forged.text
