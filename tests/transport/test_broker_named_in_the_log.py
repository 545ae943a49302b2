"""Issue 25 (process hygiene): the log names the broker a gateway connected to, and never its password.

Against the real broker, through a local proxy that can cut the connection (tests/transport/amqp_proxy.py):
one INFO line on connecting and one on reconnecting, each with host:port and vhost. The URL carries the
user and password (guest:guest here); neither reaches the log.
"""

from __future__ import annotations

import logging

import pytest
from yarl import URL

from gateway.adapters.amqp import AmqpBroker, broker_name
from gateway.adapters.topology import Topology

from tests.transport.harness import eventually
from .amqp_proxy import HoldingProxy


def test_the_broker_is_named_by_host_port_and_vhost_without_user_or_password() -> None:
    assert broker_name("amqp://gw:s3cret@mq.example:5673/county%2F12") == "mq.example:5673, vhost county/12"
    assert broker_name("amqps://gw:s3cret@mq.example/") == "mq.example:5671, vhost /"
    assert broker_name("amqp://mq.example") == "mq.example:5672, vhost /"


def broker_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "gateway.adapters.amqp" and "connected to the broker" in r.getMessage()]


async def test_connecting_and_reconnecting_log_one_info_line_naming_the_broker_and_never_its_password(
    amqp_url: str, run_token: str, caplog: pytest.LogCaptureFixture
) -> None:
    target = URL(amqp_url)
    assert target.password, "the test needs a broker URL that carries a password"
    proxy = await HoldingProxy(target.host or "127.0.0.1", target.port or 5672).start()
    broker = AmqpBroker(proxy.url(amqp_url), Topology(f"log-{run_token}.exchange", f"log-{run_token}.inbox"))
    caplog.set_level(logging.INFO, logger="gateway.adapters.amqp")
    try:
        await broker.start(["120101001"])
        [connected] = broker_lines(caplog)
        assert connected.levelno == logging.INFO
        assert connected.getMessage() == f"connected to the broker at 127.0.0.1:{proxy.port}, vhost {target.path[1:] or '/'}"

        proxy.drop()  # a network failure: aio-pika reconnects through the proxy
        assert await eventually(lambda: _true(len(broker_lines(caplog)) == 2 and broker.is_connected()), 20)
        reconnected = broker_lines(caplog)[1]
        assert reconnected.levelno == logging.INFO
        assert reconnected.getMessage().startswith(f"reconnected to the broker at 127.0.0.1:{proxy.port}, vhost ")
    finally:
        await broker.close()
        await proxy.close()
        await AmqpBroker(amqp_url, broker.topology).delete_topology()
    for record in broker_lines(caplog):
        assert target.password not in record.getMessage() and "@" not in record.getMessage()
        assert target.user not in record.getMessage()


async def _true(value: bool) -> bool:
    return value
