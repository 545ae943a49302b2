"""Drills on a local cluster: real gateways in their own processes, a fault in the middle, a reconciliation.

A drill runs two gateways, each in a process of its own with its own database: ``res`` hosts a
residence township and sends N queries; ``reg`` hosts the registration township and answers each
(查无此人 for about one in six). In the middle of the run it disturbs the system — stops the broker node
that leads the gateways' queues (for good, or brings it back), or SIGKILLs a gateway and starts it
again — and then waits for every round trip to end. The reconciliation reads both databases:

- ``sent``: queries the residence township committed; ``applied``: those whose feedback came back and
  was linked to them; ``quarantined``: messages refused by either side;
- ``duplicates``: any effect taken twice (a query stored twice, answered twice, a feedback stored twice);
- ``lost``: sent − applied − quarantined once the run has settled.

The drill passes when sent = applied + quarantined, with no duplicate and nothing lost.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import secrets
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

RESIDENCE = "110101001"  # 东华门街道, Beijing
REGISTRATION = "120101001"  # 劝业场街道, Tianjin

SCENARIOS = ("node-lost", "node-back", "gateway-killed")


@dataclass
class DrillResult:
    scenario: str
    sent: int
    applied: int
    quarantined: int
    duplicates: int
    lost: int
    elapsed_s: float
    messages: int
    disturbed: str = ""
    replicas: int = 0  # members of the gateways' quorum queues before the disturbance
    ok: bool = False
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    def report(self, as_json: bool) -> int:
        """Print the drill's outcome (one JSON line, or three lines for a person); the exit code."""
        if as_json:
            print(self.as_json())
        else:
            print(f"{self.scenario}: {self.disturbed}")
            print(f"sent {self.sent}, applied {self.applied}, quarantined {self.quarantined}, "
                  f"duplicates {self.duplicates}, lost {self.lost}, {self.elapsed_s} s"
                  + (f" ({'; '.join(self.notes)})" if self.notes else ""))
            print("ok" if self.ok else "FAILED")
        return 0 if self.ok else 1


@dataclass
class GatewaySpec:
    """What a gateway process needs: who it is, where its keys, database and brokers are."""

    role: str  # "res" or "reg"
    township: str
    peer: str
    gateway_id: str
    exchange: str
    data_dir: str
    database_url: str
    amqp_urls: list[str]
    messages: int = 0
    rate_per_s: float = 50.0
    # Send this many, then wait for ``release_file`` to exist: the drill disturbs the system first, so
    # the rest is sent while it is disturbed, however slow the machine (0: no pause).
    hold_after: int = 0
    release_file: str | None = None

    def to_arg(self) -> str:
        return json.dumps(asdict(self))


def database_url(folder: Path, role: str) -> str:
    return f"sqlite+aiosqlite:///{folder / f'{role}.db'}"


# --- the gateway process --------------------------------------------------------------------------


async def run_gateway_process(spec: GatewaySpec) -> None:
    """Run one gateway until SIGTERM: ``res`` sends its queries, ``reg`` answers what it receives."""
    from gateway.bootstrap import build_gateway
    from gateway.exchange.records import Direction, Status
    from gateway.settings import Settings
    from gateway import demo_records

    settings = Settings(
        gateway_id=spec.gateway_id, exchange=spec.exchange, nodes=[spec.township], data_dir=Path(spec.data_dir),
        database_url=spec.database_url, amqp_url=",".join(spec.amqp_urls), key_passphrase=None,
        tick_interval_s=0, publish_timeout_s=5.0, declare_topology=False,
    )
    gateway = build_gateway(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await gateway.start()
    print("ready", flush=True)
    rng = random.Random(f"{spec.gateway_id}-{os.getpid()}")

    async def send_queries() -> None:
        # After a restart, only what is still to be sent: the database says how many were committed.
        done = len(await gateway.store.list_messages(spec.township, Direction.OUT, kind="query",
                                                     limit=spec.messages + 1))
        pause = 1.0 / spec.rate_per_s
        for n in range(done, spec.messages):
            while n >= spec.hold_after > 0 and spec.release_file and not Path(spec.release_file).exists():
                if stop.is_set():
                    return
                await asyncio.sleep(0.1)
            if stop.is_set():
                return
            await gateway.service.submit(spec.township, demo_records.query(rng, spec.township, spec.peer))
            await asyncio.sleep(pause)

    async def answer_queries() -> None:
        while not stop.is_set():
            received = [m for m in await gateway.store.list_messages(spec.township, Direction.IN, kind="query",
                                                                     limit=500)
                        if m.status is Status.RECEIVED]
            for stored in received:
                body = gateway.service.read_body(stored)
                born: date = body.person.birth_date  # type: ignore[attr-defined]
                # One in six: 查无此人, decided by the message id so a restarted gateway decides alike.
                if int(stored.message_id[-4:], 16) % 6 == 0:
                    payload = demo_records.not_found_feedback(rng)
                else:
                    payload = demo_records.found_feedback(rng, born, stored.sender)
                try:
                    await gateway.service.answer(spec.township, stored.message_id, payload)
                except Exception as exc:  # AlreadyAnswered after a restart race: the database decided
                    print(f"answer {stored.message_id}: {type(exc).__name__}", file=sys.stderr, flush=True)
            await asyncio.sleep(0.1)

    work = asyncio.create_task(send_queries() if spec.role == "res" else answer_queries())
    await stop.wait()
    work.cancel()
    await asyncio.gather(work, return_exceptions=True)
    await gateway.stop()


class GatewayProcess:
    """A gateway child process: started, waited for ("ready"), stopped politely or killed."""

    def __init__(self, spec: GatewaySpec, log_dir: Path) -> None:
        self.spec = spec
        self.log_path = log_dir / f"{spec.role}.log"
        self.process: subprocess.Popen[str] | None = None

    def start(self, timeout_s: float = 90.0) -> None:
        log = open(self.log_path, "a")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gateway.devtools.drill", "gateway", self.spec.to_arg()],
            stdout=subprocess.PIPE, stderr=log, text=True, cwd=str(Path(__file__).resolve().parents[2]),
        )
        log.close()
        ready = threading.Event()

        def watch() -> None:
            assert self.process is not None and self.process.stdout is not None
            for line in self.process.stdout:
                if line.strip() == "ready":
                    ready.set()
        threading.Thread(target=watch, daemon=True).start()
        deadline = time.monotonic() + timeout_s
        while not ready.wait(0.2):
            if self.process.poll() is not None or time.monotonic() > deadline:
                tail = self.log_path.read_text(errors="replace")[-2000:]
                self.kill()
                raise RuntimeError(f"gateway {self.spec.role} did not start:\n{tail}")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()


# --- reconciliation -------------------------------------------------------------------------------


def _sqlite_path(url: str) -> str:
    return url.split(":///", 1)[1]


def _one(db: str, sql: str) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
        return int(conn.execute(sql).fetchone()[0] or 0)


def reconcile(res: GatewaySpec, reg: GatewaySpec) -> dict[str, int]:
    r, g = _sqlite_path(res.database_url), _sqlite_path(reg.database_url)
    sent = _one(r, "SELECT count(*) FROM messages WHERE direction='out' AND kind='query'")
    applied = _one(r, "SELECT count(*) FROM messages WHERE direction='out' AND kind='query' AND status='answered'")
    quarantined = _one(r, "SELECT count(*) FROM quarantine") + _one(g, "SELECT count(*) FROM quarantine")
    duplicates = (
        _one(g, "SELECT count(*) - count(DISTINCT sender || message_id) FROM messages WHERE direction='in'")
        + _one(r, "SELECT count(*) - count(DISTINCT sender || message_id) FROM messages WHERE direction='in'")
        # a query answered twice: two feedbacks sent for one query
        + _one(g, "SELECT count(*) - count(DISTINCT in_reply_to) FROM messages WHERE direction='out' AND kind='feedback'")
    )
    return {"sent": sent, "applied": applied, "quarantined": quarantined, "duplicates": duplicates}


def _answered(res: GatewaySpec) -> int:
    try:
        return _one(_sqlite_path(res.database_url),
                    "SELECT count(*) FROM messages WHERE direction='out' AND kind='query' AND status='answered'")
    except sqlite3.Error:
        return 0


# --- the drill ------------------------------------------------------------------------------------


def prepare(work_dir: Path, cluster: Any, *, messages: int, rate_per_s: float, token: str | None = None,
            credentials: dict[str, tuple[str, str]] | None = None) -> tuple[GatewaySpec, GatewaySpec]:
    """Keys for both townships, a signed directory, and the two gateways' specs (users made on the cluster)."""
    from gateway.node_setup import init_nodes
    from gateway.settings import Settings

    token = token or secrets.token_hex(3)
    exchange = f"drill-{token}.exchange"
    work_dir.mkdir(parents=True, exist_ok=True)
    init_nodes(Settings(gateway_id=f"drill-{token}", nodes=[RESIDENCE, REGISTRATION], data_dir=work_dir,
                        database_url=database_url(work_dir, "init"), key_passphrase=None),
               datetime.now(timezone.utc))
    specs, definitions = [], []
    for role, township, peer in (("res", RESIDENCE, REGISTRATION), ("reg", REGISTRATION, RESIDENCE)):
        gateway_id = f"drill-{role}-{token}"
        user, password = gateway_id, secrets.token_urlsafe(16)
        if credentials and role in credentials:
            user, password = credentials[role]
        definitions.append(operator_definitions(exchange, gateway_id, [township], user, password))
        specs.append(GatewaySpec(
            role=role, township=township, peer=peer, gateway_id=gateway_id, exchange=exchange,
            data_dir=str(work_dir), database_url=database_url(work_dir, role),
            amqp_urls=cluster.urls(user, password, tls=True), messages=messages if role == "res" else 0,
            rate_per_s=rate_per_s,
        ))
    from gateway.adapters.topology import merge_definitions

    cluster.import_definitions(merge_definitions(*definitions))
    return specs[0], specs[1]


def operator_definitions(exchange: str, gateway_id: str, townships: list[str], user: str,
                         password: str) -> dict[str, Any]:
    """What the operator loads for one gateway: its queue and bindings, and its user with least rights."""
    from gateway.adapters.topology import Topology, gateway_permissions, merge_definitions, user_definitions

    topology = Topology(exchange, f"gateway.{gateway_id}.inbox")
    return merge_definitions(topology.definitions(townships),
                             user_definitions({user: (password, gateway_permissions(topology))}))


def _leading_node(cluster: Any, queues: list[str]) -> tuple[int, int]:
    """The node that leads most of the gateways' queues (1-based), and the fewest replicas of any of them."""
    info = cluster.queue_info(queues)
    counts: dict[str, int] = {}
    for leader, _ in info.values():
        if leader:
            counts[leader] = counts.get(leader, 0) + 1
    if not counts or len(info) != len(queues):
        raise RuntimeError(f"no leader found for {queues}: {info}")
    return cluster.node_index(max(counts, key=lambda k: counts[k])), min(len(m) for _, m in info.values())


def run_drill(cluster: Any, work_dir: Path, *, scenario: str, messages: int, rate_per_s: float | None = None,
              settle_timeout_s: float | None = None, restore: bool = True) -> DrillResult:
    """Run one drill; ``restore``: leave every node running at the end (a lost node is started again)."""
    if scenario not in SCENARIOS:
        raise ValueError(f"scenario must be one of {SCENARIOS}")
    started = time.monotonic()
    rate = rate_per_s or max(10.0, messages / 12.0)  # the run lasts ~12 s: time to disturb it
    res, reg = prepare(work_dir, cluster, messages=messages, rate_per_s=rate)
    processes = {spec.role: GatewayProcess(spec, work_dir) for spec in (res, reg)}
    result = DrillResult(scenario=scenario, sent=0, applied=0, quarantined=0, duplicates=0, lost=0,
                         elapsed_s=0.0, messages=messages)
    stopped_node: int | None = None
    comeback: threading.Thread | None = None
    comeback_error: list[BaseException] = []
    try:
        queues = [f"gateway.{res.gateway_id}.inbox", f"gateway.{reg.gateway_id}.inbox"]
        leader = None
        if scenario != "gateway-killed":
            leader, result.replicas = _leading_node(cluster, queues)
        processes["reg"].start()
        processes["res"].start()
        # The disturbance comes when about a third of the round trips are done.
        if not _wait(lambda: _answered(res) >= max(1, messages // 3), 60 + messages / 10, poll_s=0.05):
            result.notes.append("the first third did not complete before the disturbance")
        if leader is not None:
            stopped_node = leader
            cluster.stop_node(stopped_node, hard=True)
            result.disturbed = f"killed broker node {cluster.nodes[stopped_node - 1].name} (leader of the queues)"
        else:
            processes["reg"].kill()
            result.disturbed = "SIGKILLed the registration gateway mid-run, then started it again"
        if _answered(res) >= messages:
            result.notes.append("the run ended before the disturbance took effect")
        if scenario == "node-back":
            node = stopped_node

            def come_back() -> None:  # while the traffic goes on through the two other nodes
                try:
                    time.sleep(3)
                    cluster.start_node(node)
                except BaseException as exc:
                    comeback_error.append(exc)

            comeback = threading.Thread(target=come_back, daemon=True)
            comeback.start()
            result.disturbed += ", then started it again"
            stopped_node = None
        elif scenario == "gateway-killed":
            time.sleep(1)
            processes["reg"].start()
        # Generous: under load a failover takes tens of seconds; a message really lost fails all the same.
        _wait(lambda: _answered(res) >= messages, settle_timeout_s or 180 + messages / 10)
        if comeback is not None:
            comeback.join(timeout=180)
            if comeback_error or comeback.is_alive():
                result.notes.append(f"the node did not come back: {comeback_error}")
            else:
                # Round trips after the return of the node: the cluster is whole and serves them.
                members = cluster.queue_members(queues[0])
                if len(members) != len(cluster.nodes):
                    result.notes.append(f"queue members after the return: {members}")
        time.sleep(1.0)  # a late redelivery would show as a duplicate now
    finally:
        for process in processes.values():
            process.stop()
        if comeback is not None and comeback.is_alive():
            comeback.join(timeout=180)
        if stopped_node is not None and restore:
            try:
                cluster.start_node(stopped_node)  # the next drill finds a whole cluster
            except Exception as exc:
                result.notes.append(f"could not restart node {stopped_node}: {exc}")
    return judged(result, reconcile(res, reg), messages, started)


def run_federation_drill(province_a: Any, province_b: Any, work_dir: Path, *, messages: int,
                         cut_s: float = 4.0, rate_per_s: float | None = None) -> DrillResult:
    """Two provinces, each its own broker; the township exchanges federated both ways, as
    ``gateway topology export --federate`` describes them. A township of province A (hosted by ``res``
    on A's broker) queries a township of province B (hosted by ``reg`` on B's broker); in the middle
    the federation links are cut (the link users lose their permissions and their connections are
    closed) for ``cut_s`` seconds, then restored. No relay of our own: the brokers carry it.
    """
    from gateway.adapters.topology import federation_definitions, merge_definitions
    from gateway.node_setup import init_nodes
    from gateway.settings import Settings

    started = time.monotonic()
    # Slower than the cluster drill: cutting two links takes several CLI calls (seconds each).
    rate = rate_per_s or max(2.0, messages / 30.0)
    token = secrets.token_hex(3)
    exchange = f"fed-{token}.exchange"
    work_dir.mkdir(parents=True, exist_ok=True)
    init_nodes(Settings(gateway_id=f"fed-{token}", nodes=[RESIDENCE, REGISTRATION], data_dir=work_dir,
                        database_url=database_url(work_dir, "init"), key_passphrase=None),
               datetime.now(timezone.utc))
    link_user, link_password = f"federation-{token}", secrets.token_urlsafe(16)
    release = work_dir / "release-after-cut"
    link_perms = ("^(federation: .*|amq\\.gen.*)$", "^(federation: .*|amq\\.gen.*)$",
                  f"^(federation: .*|amq\\.gen.*|{exchange.replace('.', '[.]')})$")
    specs = []
    for role, township, peer, here, there in (("res", RESIDENCE, REGISTRATION, province_a, province_b),
                                             ("reg", REGISTRATION, RESIDENCE, province_b, province_a)):
        gateway_id = f"fed-{role}-{token}"
        password = secrets.token_urlsafe(16)
        upstream = there.urls(link_user, link_password)[0]
        here.add_user(link_user, link_password, configure=link_perms[0], write=link_perms[1], read=link_perms[2])
        here.import_definitions(merge_definitions(
            operator_definitions(exchange, gateway_id, [township], gateway_id, password),
            federation_definitions({f"province-{there.first_port}": upstream}, exchange=exchange),
        ))
        specs.append(GatewaySpec(
            role=role, township=township, peer=peer, gateway_id=gateway_id, exchange=exchange,
            data_dir=str(work_dir), database_url=database_url(work_dir, role),
            amqp_urls=here.urls(gateway_id, password, tls=True), messages=messages if role == "res" else 0,
            rate_per_s=rate, hold_after=max(1, messages // 3), release_file=str(release),
        ))
    res, reg = specs
    processes = {spec.role: GatewayProcess(spec, work_dir) for spec in specs}
    result = DrillResult(scenario="federation-link-cut", sent=0, applied=0, quarantined=0, duplicates=0, lost=0,
                         elapsed_s=0.0, messages=messages)

    def links_running() -> bool:
        return all("running" in p.ctl(1, "eval", "rabbit_federation_status:status().")
                   for p in (province_a, province_b))

    try:
        if not _wait(links_running, 60, poll_s=1.0):
            result.notes.append("the federation links were not running before the run")
        processes["reg"].start()
        processes["res"].start()
        if not _wait(lambda: _answered(res) >= max(1, messages // 3), 60 + messages / 10, poll_s=0.05):
            result.notes.append("the first third did not complete before the cut")
        for province in (province_a, province_b):  # the link users lose their rights, their links drop
            province.ctl(1, "clear_permissions", link_user)
            out = province.ctl(1, "list_connections", "pid", "user", "--no-table-headers")
            for line in out.splitlines():
                pid, _, user = line.partition("\t")
                if user.strip() == link_user:
                    province.ctl(1, "close_connection", pid.strip(), "drill: federation link cut")
        at_cut = _answered(res)
        release.touch()  # the other two thirds are sent while the links are cut
        result.disturbed = f"cut both federation links for {cut_s:.0f} s at {at_cut}/{messages} round trips, then restored"
        if at_cut >= messages:
            result.notes.append("the run ended before the cut")
        time.sleep(cut_s)
        during = _answered(res)
        for province in (province_a, province_b):
            province.ctl(1, "set_permissions", link_user, *link_perms)
        if during > at_cut + max(2, messages // 10):
            result.notes.append(f"round trips went on during the cut ({at_cut} → {during}): the link was not cut")
        _wait(lambda: _answered(res) >= messages, 120 + messages / 10)
        time.sleep(1.0)
    finally:
        for process in processes.values():
            process.stop()
    return judged(result, reconcile(res, reg), messages, started)


def judged(result: DrillResult, counts: dict[str, int], messages: int, started: float) -> DrillResult:
    """The drills' exit rule, in one place: every message sent is applied or quarantined, with no
    duplicate effect and nothing lost."""
    result.sent, result.applied = counts["sent"], counts["applied"]
    result.quarantined, result.duplicates = counts["quarantined"], counts["duplicates"]
    result.lost = max(0, result.sent - result.applied - result.quarantined)
    result.elapsed_s = round(time.monotonic() - started, 2)
    result.ok = (result.sent == messages and result.sent == result.applied + result.quarantined
                 and result.duplicates == 0 and result.lost == 0)
    return result


def _wait(predicate: Any, timeout_s: float, poll_s: float = 0.25) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(poll_s)
    return bool(predicate())


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "gateway":
        asyncio.run(run_gateway_process(GatewaySpec(**json.loads(sys.argv[2]))))
    else:
        print("usage: python -m gateway.devtools.drill gateway '<spec json>' (started by the drills)", file=sys.stderr)
        sys.exit(2)
