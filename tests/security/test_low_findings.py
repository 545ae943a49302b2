"""The red-team's Low findings that were this round's: every 403 audited (user, route, township, why);
a period out of range refused with its reason instead of a 500; a poison re-drive the broker user has
no right to answered 403 (or 503) with its reason instead of a 500."""

from __future__ import annotations

from pathlib import Path

import aiormq
import pytest
from pamqp import commands

from gateway.access.audit import Action
from gateway.access.principal import Role
from gateway.adapters.amqp import AmqpBroker, BrokerRightsMissing, operator_refusal
from gateway.adapters.fake_case_store import FakeCaseStore
from gateway.adapters.fakes import FakeMessageStore, FakeReceiptStore
from gateway.adapters.topology import Topology
from gateway.bootstrap import build_gateway
from gateway.clock import FakeClock
from gateway.exchange.nodes import HostedNode
from gateway.security.directory import KeyDirectory
from gateway.settings import Settings
from tests.access.helpers import browser_client, signed_in_client
from tests.gateways import REGISTRATION, RESIDENCE, T0, TEST_HOSTS, database_gateway, fake_gateway, keyrings

ACCESS_REFUSED = commands.Channel.Close(
    reply_code=403, reply_text="ACCESS_REFUSED - access to queue 'gw.poison' in vhost '/' refused for user 'gw1'")


async def denials(gateway) -> list:
    return [r async for r in gateway.access.audit.records() if r.action == Action.DENIED]


# --- denials ---------------------------------------------------------------------------------------


@pytest.fixture
async def gateway():
    gw = fake_gateway(keyrings(RESIDENCE, REGISTRATION))
    await gw.start(relay=False)
    yield gw
    await gw.stop()


async def test_a_clerk_reaching_for_another_township_is_refused_and_the_denial_audited(gateway) -> None:
    async with signed_in_client(gateway, Role.CLERK, RESIDENCE) as http:
        assert (await http.get(f"/nodes/{REGISTRATION}/inbox")).status_code == 403
        me = (await http.get("/auth/me")).json()["username"]
    [record] = await denials(gateway)
    assert (record.username, record.role, record.object_id, record.township, record.result) == (
        me, "clerk", "GET /nodes/{code}/inbox", REGISTRATION, "scope")


async def test_a_role_without_the_permission_and_a_form_without_its_csrf_token_are_audited(gateway) -> None:
    async with signed_in_client(gateway, Role.OPERATOR) as http:
        assert (await http.get(f"/nodes/{RESIDENCE}/inbox")).status_code == 403
    async with browser_client(gateway, Role.CLERK, RESIDENCE) as (http, _):
        response = await http.post(f"/township/{RESIDENCE}/send/query", data={"registration_township": REGISTRATION})
        assert response.status_code == 403
    role, csrf = await denials(gateway)
    assert (role.role, role.object_id, role.township, role.result) == ("operator", "GET /nodes/{code}/inbox",
                                                                         RESIDENCE, "role")
    assert (csrf.role, csrf.object_id, csrf.result) == ("clerk", "POST /township/{code}/send/{kind}", "csrf")


# --- periods and the dashboard, on a real database ---------------------------------------------------


@pytest.fixture
async def sql_gateway(database_url: str, tmp_path: Path):
    gw = database_gateway(keyrings(RESIDENCE, REGISTRATION), database_url=database_url, data_dir=tmp_path)
    await gw.start(relay=False)
    yield gw
    await gw.stop()


@pytest.mark.database
@pytest.mark.parametrize("period", ["0001-01", "0001Q1", "9999-12", "2100Q1"])
async def test_a_dashboard_period_outside_the_served_years_is_a_400_with_its_reason(sql_gateway, period) -> None:
    async with browser_client(sql_gateway, Role.SUPERVISOR, "11") as (http, _):
        for path in ("/dashboard", "/dashboard/print", "/dashboard/export"):
            response = await http.get(path, params={"region": "11", "period": period})
            assert response.status_code == 400, (path, response.status_code)
            assert "期间应为2000至2099年的月份" in response.text
        # The served years' edges themselves are answered, 1 October (the statistical year) included.
        assert (await http.get("/dashboard", params={"region": "11", "period": "2000-01"})).status_code == 200
        assert (await http.get("/dashboard", params={"region": "11", "period": "2025-10"})).status_code == 200


@pytest.mark.database
async def test_a_supervisor_outside_the_region_is_refused_by_the_dashboard_and_audited(sql_gateway) -> None:
    async with browser_client(sql_gateway, Role.SUPERVISOR, "11") as (http, _):
        assert (await http.get("/dashboard", params={"region": "12"})).status_code == 403
    [record] = await denials(sql_gateway)
    assert (record.role, record.object_id, record.result, record.detail) == ("supervisor", "GET /dashboard", "scope",
                                                                             "region 12")


async def test_a_region_api_month_outside_the_served_years_is_refused_with_its_reason(gateway) -> None:
    async with signed_in_client(gateway, Role.SUPERVISOR, "11") as http:
        response = await http.get("/regions/11/overdue", params={"month": "0001-01"})
    assert response.status_code == 422 and "the year must be 2000–2099, got 0001" in response.text


# --- the poison re-drive ------------------------------------------------------------------------------


def test_a_refused_broker_right_is_named_with_what_to_do() -> None:
    refusal = operator_refusal("re-drive of gw.poison", aiormq.exceptions.ChannelAccessRefused(ACCESS_REFUSED))
    assert isinstance(refusal, BrokerRightsMissing)
    assert "ACCESS_REFUSED - access to queue 'gw.poison'" in str(refusal) and "operator's broker account" in str(refusal)
    assert operator_refusal("x", KeyError("a bug")) is None  # a bug is not a broker refusal: it still raises
    # `gateway queues redrive-poison` says the same in one line, exit 1 (not "cannot reach RabbitMQ").
    from gateway.cli.errors import OTHER, explain

    assert explain(refusal) == (str(refusal), OTHER)


class _LeastRightsBroker(AmqpBroker):
    """The real adapter, answered by the broker as for a least-rights user: basic.get on the poison queue
    refused (Channel.Close 403), as aiormq raises it."""

    async def _redrive_poison(self, limit: int) -> int:
        raise aiormq.exceptions.ChannelAccessRefused(ACCESS_REFUSED)


def _gateway_with(broker) -> object:
    rings = keyrings(RESIDENCE, REGISTRATION)
    store = FakeMessageStore()
    return build_gateway(Settings(nodes=sorted(rings), data_dir=Path("/nonexistent"), allowed_hosts=TEST_HOSTS),
                         clock=FakeClock(T0), broker=broker, store=store, case_store=FakeCaseStore(),
                         receipt_store=FakeReceiptStore(store), nodes={c: HostedNode(r) for c, r in rings.items()},
                         directory=KeyDirectory.from_keyrings(rings.values()))


async def test_a_poison_re_drive_without_the_broker_right_is_a_403_with_its_reason_and_audited() -> None:
    gateway = _gateway_with(_LeastRightsBroker("amqp://127.0.0.1:1/", Topology("x.exchange", "gateway.x.inbox")))
    async with signed_in_client(gateway, Role.OPERATOR) as http:
        response = await http.post("/operator/poison/redrive")
    assert response.status_code == 403 and "ACCESS_REFUSED" in response.json()["detail"]
    [record] = [r async for r in gateway.access.audit.records() if r.action == Action.REDRIVE]
    assert (record.object_id, record.result) == ("poison", "refused")


@pytest.mark.broker
async def test_a_poison_re_drive_of_a_queue_the_broker_does_not_have_is_a_503_with_its_reason(amqp_url, run_token):
    broker = AmqpBroker(amqp_url, Topology(f"test-{run_token}.exchange", f"gateway.none-{run_token}.inbox"),
                        declare_topology=False)
    gateway = _gateway_with(broker)
    async with signed_in_client(gateway, Role.OPERATOR) as http:
        response = await http.post("/operator/poison/redrive")
    assert response.status_code == 503 and "NOT_FOUND" in response.json()["detail"]
