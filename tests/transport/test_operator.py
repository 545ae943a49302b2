"""The operator's view: quarantined messages with reasons, re-drive after a fix, outbox backlog, topology export."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from gateway.access.principal import Role
from gateway.cli import app as cli
from gateway.codec import wire
from gateway.codec.messages import parse_message
from gateway.exchange.ports import Delivery
from gateway.security.directory import KeyDirectory
from gateway.security.envelope import seal
from gateway.security.keys import generate_keyring
from tests.access.helpers import signed_in_client
from tests.gateways import ELSEWHERE, REGISTRATION, RESIDENCE, T0, fake_gateway, keyrings, sample_query, running_gateway


@pytest.fixture
async def gateway():
    async with running_gateway() as gw:
        yield gw


def http(gateway):
    """A signed-in operator's client (operator routes need the OPERATE permission)."""
    return signed_in_client(gateway, Role.OPERATOR)


async def test_message_from_a_sender_missing_in_the_directory_is_redriven_once_its_key_is_added(gateway):
    newcomer = generate_keyring(ELSEWHERE)
    envelope = seal(plaintext=wire.encode(parse_message(sample_query(residence=ELSEWHERE))), message_id="n1",
                    kind="query", sender=newcomer.sender_key(),
                    recipient=gateway.service.directory.recipient_key(REGISTRATION), created_at=T0)
    refused = await gateway.service.receive(Delivery(envelope, REGISTRATION))
    assert refused.result == "quarantined"

    async with http(gateway) as client:
        [listed] = (await client.get("/operator/quarantine")).json()
        assert listed["reason"] == refused.reason and listed["resolved"] is False
        shown = (await client.get(f"/operator/quarantine/{listed['id']}")).json()
        assert shown["sender"] == ELSEWHERE and shown["message_id"] == "n1"

        again = (await client.post(f"/operator/quarantine/{listed['id']}/redrive")).json()
        assert again["result"] == "refused"  # nothing fixed yet: still refused, and no second row
        assert len((await client.get("/operator/quarantine")).json()) == 1

        rings = [n.keyring for n in gateway.service.nodes.values()] + [newcomer]
        gateway.service.directory = KeyDirectory.from_keyrings(rings)  # the operator adds the sender's key
        fixed = (await client.post(f"/operator/quarantine/{listed['id']}/redrive")).json()
        assert fixed["result"] == "stored"
        [after] = (await client.get("/operator/quarantine")).json()
        assert after["resolved"] is True and after["redriven_at"] is not None
        assert (await client.get("/operator/quarantine", params={"unresolved": True})).json() == []
        assert (await client.get(f"/nodes/{REGISTRATION}/inbox")).status_code == 403  # an operator reads no records
    async with signed_in_client(gateway, Role.CLERK, REGISTRATION) as clerk:
        inbox = (await clerk.get(f"/nodes/{REGISTRATION}/inbox")).json()
        assert [m["message_id"] for m in inbox] == ["n1"]


async def test_outbox_backlog_shows_what_is_committed_but_not_confirmed_and_why():
    gw = fake_gateway(keyrings(RESIDENCE, REGISTRATION))
    await gw.start(consume=False, relay=False)  # nobody serves the townships: the broker refuses
    for _ in range(3):
        await gw.service.submit(RESIDENCE, sample_query())
    async with http(gw) as client:
        before = (await client.get("/operator/outbox")).json()
        await gw.relay.run_once()
        after = (await client.get("/operator/outbox")).json()
    await gw.stop()
    assert (before["pending"], before["retrying"], before["last_error"]) == (3, 0, None)
    assert before["oldest_created_at"] is not None
    assert (after["pending"], after["retrying"]) == (3, 3)
    assert "no queue serves township" in after["last_error"]


def test_topology_export_names_every_township_binding_and_the_poison_path(monkeypatch, tmp_path):
    monkeypatch.setenv("GATEWAY_GATEWAY_ID", "county-110101")
    monkeypatch.setenv("GATEWAY_NODES", f"{RESIDENCE},110101002")
    out = tmp_path / "definitions.json"
    result = CliRunner().invoke(cli, ["topology", "export", "--out", str(out), "--federate", "province-12=amqps://x"])
    assert result.exit_code == 0, result.output
    definitions = json.loads(out.read_text())
    [inbox, poison] = definitions["queues"]
    assert inbox["name"] == "gateway.county-110101.inbox"
    assert inbox["arguments"]["x-dead-letter-strategy"] == "at-least-once"
    assert inbox["arguments"]["x-delivery-limit"] > 0
    keys = {b["routing_key"] for b in definitions["bindings"] if b["destination"] == inbox["name"]}
    assert keys == {RESIDENCE, "110101002"}
    assert any(b["destination"] == poison["name"] for b in definitions["bindings"])
    assert definitions["parameters"][0]["value"]["ack-mode"] == "on-confirm"
