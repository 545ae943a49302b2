"""Building gateways for tests: fresh keys per test, real or fake adapters as the test asks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from gateway.adapters.fake_case_store import FakeCaseStore
from gateway.adapters.fakes import FakeBroker, FakeMessageStore, FakeReceiptStore
from gateway.bootstrap import Gateway, build_gateway
from gateway.clock import FakeClock
from gateway.exchange.nodes import HostedNode
from gateway.security.directory import KeyDirectory
from gateway.security.keys import NodeKeyring, generate_keyring
from gateway.settings import Settings

RESIDENCE = "110101001"  # 东华门街道, Beijing: where she lives
REGISTRATION = "120101001"  # 劝业场街道, Tianjin: where her household is registered
ELSEWHERE = "130102001"  # 建北街道, Shijiazhuang: a third township

T0 = datetime(2026, 3, 10, 2, 0, tzinfo=timezone.utc)
# The Host names the tests' HTTP clients use (base_url="http://gw" …), besides the default loopback ones.
TEST_HOSTS = ["127.0.0.1", "localhost", "testserver", "gw", "res", "reg"]


def keyrings(*codes: str) -> dict[str, NodeKeyring]:
    return {code: generate_keyring(code) for code in codes}


def fake_gateway(
    rings: dict[str, NodeKeyring], *, clock: FakeClock | None = None, directory: KeyDirectory | None = None
) -> Gateway:
    """One gateway hosting every given node, on the in-memory store and broker."""
    settings = Settings(nodes=sorted(rings), data_dir=Path("/nonexistent"), allowed_hosts=TEST_HOSTS)
    broker = FakeBroker()
    store = FakeMessageStore()
    return build_gateway(
        settings,
        clock=clock or FakeClock(T0),
        broker=broker,
        store=store,
        case_store=FakeCaseStore(),
        receipt_store=FakeReceiptStore(store),
        nodes={code: HostedNode(ring) for code, ring in rings.items()},
        directory=directory or KeyDirectory.from_keyrings(rings.values()),
    )


def database_gateway(rings: dict[str, NodeKeyring], *, database_url: str, data_dir: Path,
                     clock: FakeClock | None = None) -> Gateway:
    """One gateway hosting every given node on the real SQL stores; the in-process fake broker delivers
    (what such tests check is the database's), the clock stands at T0 unless given and no tick runs."""
    settings = Settings(nodes=sorted(rings), data_dir=data_dir, database_url=database_url, tick_interval_s=0,
                        allowed_hosts=TEST_HOSTS)
    return build_gateway(settings, clock=clock or FakeClock(T0), broker=FakeBroker(),
                         nodes={code: HostedNode(ring) for code, ring in rings.items()},
                         directory=KeyDirectory.from_keyrings(rings.values()))


@asynccontextmanager
async def running_gateway(
    *townships: str,
    clock: FakeClock | None = None,
    database_url: str | None = None,
    data_dir: Path | None = None,
    access: Any = None,
    prepare: Callable[[Gateway], object] | None = None,
    start: bool = True,
) -> AsyncIterator[Gateway]:
    """The tests' one gateway: hosting `townships` (default: RESIDENCE and REGISTRATION), started with
    no relay and stopped afterwards.

    In memory (fake_gateway) by default; with `database_url`, on the real SQL stores in `data_dir` (no
    tick of its own) and the in-process broker. `access` replaces its account service (the one under
    test), `prepare` runs before the start, and `start=False` hands it over unstarted."""
    rings = keyrings(*(townships or (RESIDENCE, REGISTRATION)))
    if database_url is None:
        gw = fake_gateway(rings, clock=clock)
    else:
        assert data_dir is not None, "a gateway on a database keeps its files in data_dir"
        gw = database_gateway(rings, database_url=database_url, data_dir=data_dir, clock=clock)
    if access is not None:
        gw.access = access
    if prepare is not None:
        prepare(gw)
    if not start:
        yield gw
        return
    await gw.start(relay=False)
    try:
        yield gw
    finally:
        await gw.stop()


def real_gateway(
    hosted: list[NodeKeyring],
    directory: KeyDirectory,
    *,
    amqp_url: str,
    database_url: str,
    token: str,
    gateway_id: str,
    data_dir: Path,
) -> Gateway:
    settings = Settings(
        gateway_id=f"{gateway_id}-{token}",
        exchange=f"test-{token}.exchange",
        nodes=[k.township for k in hosted],
        data_dir=data_dir,
        database_url=database_url,
        amqp_url=amqp_url,
        allowed_hosts=TEST_HOSTS,
    )
    return build_gateway(settings, nodes={k.township: HostedNode(k) for k in hosted}, directory=directory)


@asynccontextmanager
async def running(*gateways: Gateway) -> AsyncIterator[None]:
    """Connected gateways started in turn; afterwards, also when the test fails, all stopped and then
    their test exchange and queues deleted from the shared RabbitMQ."""
    for gateway in gateways:
        await gateway.start()
    try:
        yield
    finally:
        for gateway in gateways:
            await gateway.stop()
        for gateway in gateways:
            await gateway.broker.delete_topology()


def sample_query(residence: str = RESIDENCE, registration: str = REGISTRATION) -> dict:
    return {
        "kind": "query",
        "residence_township": residence,
        "registration_township": registration,
        "person": {
            # 120101 (和平区, Tianjin) + 1990-05-17 + sequence 024 (even: a woman) + check character 5
            "citizen_id": "120101199005170245",
            "name": "王秀英",
            "birth_date": "1990-05-17",
            "sex": "2",
        },
        "current_address": "幸福路1号",
    }


FOUND = {
    "result": "found",
    "birth_date": "1990-05-17",
    "household_type": "1",
    "husband_name": "李伟",
    "husband_residence_code": "120101001",
    "children": {"sons": 1, "daughters": 0, "youngest_birth_date": "2015-03-02"},
    # rule 四: the fields that do not apply to her, said explicitly
    "not_applicable": ["one_child_certificate_date", "pregnancy_policy_status", "left_on", "marriage_certificate_no"],
}
# Rule 十一: the database, the cards and the police archive searched; 第二十五条 (地址有误): 民政 besides 公安.
NOT_FOUND = {"result": "not_found", "not_found_reason": "1", "checked_sources": ["4", "5", "1", "2"], "remarks": "门牌号不存在"}


def sample_notification(residence: str = RESIDENCE, registration: str = REGISTRATION) -> dict:
    """Notification kind ④: a pregnancy at the residence place."""
    return {
        "kind": "notification",
        "notification_kind": "4",
        "residence_township": residence,
        "registration_township": registration,
        "person": sample_query()["person"],
        "event_date": "2026-03-02",
        "current_address": "幸福路1号",
        "pregnancy_weeks": 12,
    }
