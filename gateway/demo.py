"""`gateway demo`: a few township nodes in one process run a scripted exchange over the real broker.

Every leg goes through the HTTP API, the codec, the envelope, the outbox, RabbitMQ and the consumer,
exactly as in production; only the township clerks are scripted. The demo uses its own exchange and
queue names and removes them afterwards, so it never touches a running gateway's traffic.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import httpx

from gateway import demo_records
from gateway.access.principal import Role
from gateway.api.app import create_app
from gateway.bootstrap import Gateway, build_gateway
from gateway.node_setup import init_nodes
from gateway.codec.divisions import registry
from gateway.settings import Settings

PROVINCES = [f"{p:02d}" for p in range(11, 66)]
INBOX_PAGE = 1000  # records per inbox request (the API's most); a longer inbox is read page by page


@dataclass
class DemoSummary:
    sent: int
    delivered: int
    answered: int
    quarantined: int
    lost: int
    elapsed_s: float
    townships: int
    feedback_sent: int
    feedback_delivered: int
    not_found: int
    tampered: int
    ok: bool


def pick_townships(count: int) -> list[str]:
    """Townships spread over the provinces, so the demo crosses provinces as real traffic does."""
    reg = registry()
    per_province = [list(reg.townships_under(p)) for p in PROVINCES if reg.exists(p)]
    chosen: list[str] = []
    index = 0
    while len(chosen) < count:
        progressed = False
        for codes in per_province:
            if index < len(codes):
                chosen.append(codes[index])
                progressed = True
                if len(chosen) == count:
                    break
        if not progressed:
            raise ValueError(f"only {len(chosen)} townships exist")
        index += 1
    return chosen


async def _wait_until(predicate: Callable[[], Any], timeout_s: float, poll_s: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await predicate():
            return True
        await asyncio.sleep(poll_s)
    return False


async def run_demo(
    *,
    amqp_url: str,
    townships: int = 4,
    messages: int = 8,
    tamper: int = 0,
    data_dir: Path | None = None,
    database_url: str | None = None,
    settle_timeout_s: float | None = None,
    echo: Callable[[str], None] = lambda _line: None,
    seed: int = 20261123,
) -> DemoSummary:
    if townships < 2:
        raise ValueError("the demo needs at least 2 townships")
    started = time.monotonic()
    rng = random.Random(seed)
    token = secrets.token_hex(4)
    with tempfile.TemporaryDirectory(prefix="gateway-demo-") as tmp:
        settings = Settings(
            gateway_id=f"demo-{token}",
            exchange=f"demo-{token}.exchange",
            nodes=pick_townships(townships),
            data_dir=data_dir or Path(tmp),
            database_url=database_url,
            amqp_url=amqp_url,
            key_passphrase=None,
            allow_plaintext_keys=True,
        )
        echo("keys are kept unencrypted for the demo (GATEWAY_ALLOW_PLAINTEXT_KEYS=1); "
             "a real gateway sets GATEWAY_KEY_PASSPHRASE")
        init_nodes(settings, datetime.now(timezone.utc))
        gateway = build_gateway(settings)
        await gateway.start()
        try:
            return await _script(gateway, settings.nodes, messages, tamper, rng, started, echo,
                                 settle_timeout_s or 30.0 + messages / 50)
        finally:
            await gateway.stop()
            await _delete_topology(gateway)


async def _delete_topology(gateway: Gateway) -> None:
    delete = getattr(gateway.broker, "delete_topology", None)
    if delete is not None:
        try:
            await delete()
        except Exception:  # a leftover demo queue is untidy, not an error of the demo
            pass


async def _script(
    gateway: Gateway,
    codes: list[str],
    messages: int,
    tamper: int,
    rng: random.Random,
    started: float,
    echo: Callable[[str], None],
    settle_timeout_s: float,
) -> DemoSummary:
    names = {code: (registry().get(code).name if registry().get(code) else code) for code in codes}
    transport = httpx.ASGITransport(app=create_app(gateway))
    # A loopback name: the app answers only the hosts in GATEWAY_ALLOWED_HOSTS.
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
        echo(f"{len(codes)} township nodes: " + ", ".join(f"{c} {names[c]}" for c in codes[:8])
             + (" …" if len(codes) > 8 else ""))
        clerks = await _sign_in_clerks(gateway, http, codes)
        echo("one clerk per township signed in (POST /auth/token)")
        slots = asyncio.Semaphore(64)
        births: dict[str, date] = {}

        async def send_query(i: int) -> None:
            residence = codes[i % len(codes)]
            registration = codes[(i + 1 + i // len(codes)) % len(codes)]
            if registration == residence:
                registration = codes[(i + 1) % len(codes)]
            record = demo_records.query(rng, residence, registration, about_birth=i % 5 == 4)
            async with slots:
                response = await http.post(f"/nodes/{residence}/queries", json=record, headers=clerks[residence])
            response.raise_for_status()
            births[response.json()["message_id"]] = date.fromisoformat(record["person"]["birth_date"])

        await asyncio.gather(*(send_query(i) for i in range(messages)))
        echo(f"residence places sent {messages} signed, encrypted queries")

        async def received() -> bool:
            return gateway.outcomes.get("stored", 0) >= messages

        await _wait_until(received, settle_timeout_s)
        delivered = gateway.outcomes.get("stored", 0)
        echo(f"registration places received {delivered} and verified every signature")

        not_found = 0
        answers: list[tuple[str, str, dict[str, Any]]] = []
        for code in codes:
            async for item in _awaiting_answer(http, code, clerks[code]):
                if rng.random() < 0.15:
                    payload = demo_records.not_found_feedback(rng)
                    not_found += 1
                else:
                    born = date.fromisoformat(item["body"]["person"]["birth_date"])
                    payload = demo_records.found_feedback(rng, born, item["sender"])
                answers.append((code, item["message_id"], payload))

        async def send_answer(code: str, message_id: str, payload: dict[str, Any]) -> None:
            async with slots:
                response = await http.post(f"/nodes/{code}/inbox/{message_id}/feedback", json=payload,
                                           headers=clerks[code])
            response.raise_for_status()

        await asyncio.gather(*(send_answer(*a) for a in answers))
        echo(f"registration places answered {len(answers)} ({not_found} 查无此人)")

        async def answered() -> bool:
            # Both: the answers are linked in the database, and every delivery has been counted.
            all_counted = gateway.outcomes.get("stored", 0) >= delivered + len(answers)
            return all_counted and (await gateway.store.counts()).answered >= len(answers)

        await _wait_until(answered, settle_timeout_s)
        counts = await gateway.store.counts()
        feedback_delivered = gateway.outcomes.get("stored", 0) - delivered
        echo(f"residence places saw {counts.answered} answers linked to their queries")

        if tamper:
            await _send_tampered(gateway, tamper)

            async def all_quarantined() -> bool:
                return gateway.outcomes.get("quarantined", 0) >= tamper

            await _wait_until(all_quarantined, settle_timeout_s)
            echo(f"{gateway.outcomes.get('quarantined', 0)} tampered envelopes refused and kept in quarantine")

    quarantined = gateway.outcomes.get("quarantined", 0)
    sent = messages + tamper
    lost = max(0, sent - delivered - quarantined)
    summary = DemoSummary(
        sent=sent,
        delivered=delivered,
        answered=counts.answered,
        quarantined=quarantined,
        lost=lost,
        elapsed_s=round(time.monotonic() - started, 3),
        townships=len(codes),
        feedback_sent=len(answers),
        feedback_delivered=feedback_delivered,
        not_found=not_found,
        tampered=tamper,
        ok=lost == 0 and counts.answered == messages and quarantined == tamper,
    )
    return summary


async def _awaiting_answer(http: httpx.AsyncClient, code: str, headers: dict[str, str]) -> AsyncIterator[dict[str, Any]]:
    """A clerk's inbox of queries awaiting an answer, page by page as the API gives it (however long)."""
    url: str | None = f"/nodes/{code}/inbox?status=received&limit={INBOX_PAGE}"
    while url is not None:
        response = await http.get(url, headers=headers)
        response.raise_for_status()
        for item in response.json():
            yield item
        url = response.links.get("next", {}).get("url")


async def _sign_in_clerks(gateway: Gateway, http: httpx.AsyncClient, codes: list[str]) -> dict[str, dict[str, str]]:
    """A clerk account per township (as `gateway users add` makes them), signed in over HTTP like any
    client; their Authorization headers by township."""
    assert gateway.access is not None, "the demo runs on a database"
    headers: dict[str, dict[str, str]] = {}
    for code in codes:
        password = "Demo-" + secrets.token_urlsafe(12)
        username = f"demo-clerk-{code}"
        await gateway.access.add_user(username, Role.CLERK, code, password, actor="demo")
        response = await http.post("/auth/token", data={"username": username, "password": password})
        response.raise_for_status()
        headers[code] = {"Authorization": f"Bearer {response.json()['access_token']}"}
    return headers


async def _send_tampered(gateway: Gateway, count: int) -> None:
    """Flip one ciphertext byte of real envelopes and put them on the wire as an attacker would."""
    from gateway.exchange.records import Direction

    node = sorted(gateway.service.nodes)[0]
    sent = await gateway.store.list_messages(node, Direction.OUT, limit=count)
    for i in range(count):
        original = sent[i % len(sent)]
        forged = bytearray(original.envelope)
        forged[-80] ^= 0x01
        await gateway.broker.publish(original.recipient, bytes(forged), message_id=f"forged-{i}", kind=original.kind)


def summary_dict(summary: DemoSummary) -> dict[str, Any]:
    return asdict(summary)
