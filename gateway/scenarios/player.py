"""Play a scenario: a simulated clock drives the real gateway through the timeline.

One gateway hosts every township of the scenario, built by `gateway.bootstrap.build_gateway` on the
throw-away database, with keys generated for each township in the run's temporary folder (as `gateway
init` makes them). A clerk's `send` and `answer` go through the same `NodeView` the HTTP routes use
(so the audit trail records them) to `ExchangeService.submit` / `answer`; what they seal is relayed
from the outbox by the real `OutboxRelay` and received by `ExchangeService.receive`, as the consumer
does (see `delivery`). Time moves only when the player moves it: at 00:00 Beijing time of every day,
at each event and at `until`, the tracker ticks (due soon, overdue, reminders, the closing of months
and quarters) exactly as `gateway serve` does every minute.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

from gateway.access.principal import Principal, Role
from gateway.access.views import NodeView
from gateway.adapters.sql.engine import create_schema
from gateway.api.app import _field_errors as api_field_errors  # the 422 body's items, as the API gives them
from gateway.bootstrap import Gateway, build_gateway
from gateway.clock import FakeClock
from gateway.codec.errors import CodecError, FieldError
from gateway.exchange.errors import AlreadyAnswered, ExchangeError, InvalidRequest
from gateway.exchange.records import StoredMessage
from gateway.node_setup import init_nodes
from gateway.scenarios.delivery import InProcessBroker
from gateway.scenarios.timeline import BEIJING, REFERENCE_FIELDS, AnswerEvent, Scenario, SendEvent, sender_of
from gateway.settings import Settings


@dataclass
class EventOutcome:
    index: int
    name: str | None  # the event's `as`
    at: datetime
    event: str  # "query", "notification" or "answer"
    sender: str | None
    recipient: str | None = None
    status: int = 202
    reasons: list[dict[str, Any]] = field(default_factory=list)
    message_id: str | None = None
    answers: str | None = None  # an answer: the `as` it answers
    delivery: str | None = None  # what the recipient's gateway did with it ("stored", "quarantined", "failed")
    delivery_reason: str | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "index": self.index, "as": self.name, "at": self.at.astimezone(BEIJING).isoformat(),
            "event": self.event, "from": self.sender, "to": self.recipient,
            "status": self.status, "reasons": self.reasons, "message_id": self.message_id,
        }
        if self.answers is not None:
            out["answers"] = self.answers
        out["delivery"] = None if self.delivery is None else {"result": self.delivery, "reason": self.delivery_reason}
        return out


@dataclass
class Played:
    events: list[EventOutcome]
    closed: list[tuple[str, datetime]]  # every period the tracker closed, and when
    ticks: int
    start: datetime
    until: datetime


def reasons_of(errors: list[FieldError]) -> list[dict[str, Any]]:
    """The API's 422 items (`loc`, `msg`, `type`), each with its field path as one string beside."""
    return [{"field": e.path, **item} for e, item in zip(errors, api_field_errors(errors))]


def _refused(status: int, detail: str, path: str = "") -> tuple[int, list[dict[str, Any]]]:
    return status, reasons_of([FieldError(path, detail)])


def instants(scenario: Scenario, start: datetime) -> list[datetime]:
    """00:00 Beijing time of every day from the start to `until`, each event's time, and `until`."""
    moments = {start, scenario.until, *(e.at for e in scenario.events)}
    day = start.astimezone(BEIJING).date() + timedelta(days=1)
    while (midnight := datetime.combine(day, time(0), BEIJING)) < scenario.until:
        moments.add(midnight)
        day += timedelta(days=1)
    return sorted(moments)


def start_of(scenario: Scenario) -> datetime:
    """The scenario's `start`, or 00:00 Beijing time of its first event's day (of `until`'s without events)."""
    if scenario.start is not None:
        return scenario.start
    first = scenario.events[0].at if scenario.events else scenario.until
    return datetime.combine(first.astimezone(BEIJING).date(), time(0), BEIJING)


class Player:
    def __init__(self, scenario: Scenario, gateway: Gateway, broker: InProcessBroker, clock: FakeClock) -> None:
        self.scenario = scenario
        self.gateway = gateway
        self.broker = broker
        self.clock = clock
        self.outcomes: list[EventOutcome] = []
        self.by_name: dict[str, EventOutcome] = {}
        self.closed: list[tuple[str, datetime]] = []
        self.ticks = 0

    def clerk(self, township: str) -> NodeView:
        """The township's clerk, as a signed-in clerk's requests reach the service."""
        return NodeView(self.gateway, Principal(f"scenario-clerk-{township}", Role.CLERK, township), township, "scenario")

    async def deliver(self) -> None:
        """Relay every due outbox row and deliver it, until nothing is left (messages, then their receipts)."""
        assert self.gateway.relay is not None
        while True:
            published = await self.gateway.relay.run_once()
            delivered = await self.broker.deliver_all()
            if published == 0 and delivered == 0:
                return

    async def tick(self) -> None:
        assert self.gateway.tracker is not None
        report = await self.gateway.tracker.tick()
        self.ticks += 1
        self.closed += [(period, self.clock.now()) for period in report.closed]
        await self.deliver()

    async def run(self) -> None:
        start = start_of(self.scenario)
        pending = list(enumerate(self.scenario.events))
        for moment in instants(self.scenario, start):
            self.clock.set(moment)
            await self.tick()
            if pending and pending[0][1].at == moment:
                while pending and pending[0][1].at == moment:
                    index, event = pending.pop(0)
                    outcome = await (self.send(index, event) if isinstance(event, SendEvent) else self.answer(index, event))
                    self.outcomes.append(outcome)
                    if outcome.name is not None:
                        self.by_name[outcome.name] = outcome
                    await self.deliver()
                    self._note_delivery(outcome)
                await self.tick()
        for outcome in self.outcomes:  # a message delivered later (after a retry) is seen here
            self._note_delivery(outcome)

    def _note_delivery(self, outcome: EventOutcome) -> None:
        delivered = self.broker.delivered.get(outcome.message_id or "")
        if delivered is not None:
            outcome.delivery, outcome.delivery_reason = delivered.result, delivered.reason

    def _references(self, body: Mapping[str, Any], kind: str) -> tuple[dict[str, Any], tuple[int, list[dict[str, Any]]] | None]:
        """The body with each `as` it names replaced by that event's real message id."""
        record = dict(body)
        for ref in REFERENCE_FIELDS:
            name = record.get(ref)
            if name is None:
                continue
            earlier = self.by_name[name]
            if earlier.message_id is None:
                return record, _refused(422, f"names {name}, which was refused ({earlier.status}): no {earlier.event} "
                                             "was sent that this one could refer to", f"{kind}.{ref}")
            record[ref] = earlier.message_id
        return record, None

    async def send(self, index: int, event: SendEvent) -> EventOutcome:
        sender = sender_of(event)
        assert sender is not None  # the file was checked (timeline._check)
        outcome = EventOutcome(index, event.as_, event.at, event.send, sender)
        # As the routes do: POST /nodes/{code}/queries or /notifications fills in the kind.
        record, refused = self._references({**event.body, "kind": event.body.get("kind", event.send)}, event.send)
        if refused is not None:
            outcome.status, outcome.reasons = refused
            return outcome
        await self._call(outcome, self.clerk(sender).submit(record))
        return outcome

    async def answer(self, index: int, event: AnswerEvent) -> EventOutcome:
        target = self.by_name[event.answer]
        outcome = EventOutcome(index, event.as_, event.at, "answer", target.recipient, target.sender,
                               answers=event.answer)
        if target.message_id is None or target.recipient is None:
            outcome.status, outcome.reasons = _refused(
                404, f"{event.answer} was refused ({target.status}): there is no message to answer", "answer")
            return outcome
        await self._call(outcome, self.clerk(target.recipient).answer(target.message_id, event.body))
        return outcome

    async def _call(self, outcome: EventOutcome, call: Awaitable[StoredMessage]) -> None:
        """Await a clerk's request and record what the HTTP API would have answered."""
        try:
            stored = await call
        except (CodecError, InvalidRequest) as e:
            outcome.status, outcome.reasons = 422, reasons_of(e.errors)
        except AlreadyAnswered as e:
            outcome.status, outcome.reasons = _refused(409, e.detail)
        except ExchangeError as e:
            outcome.status, outcome.reasons = _refused(e.status, e.detail)
        else:
            outcome.message_id, outcome.recipient = stored.message_id, stored.recipient


async def simulate(scenario: Scenario, database_url: str, folder: Path) -> Played:
    """Play the timeline on a fresh gateway over `database_url` (an empty database) in `folder`."""
    start = start_of(scenario)
    clock = FakeClock(start)
    token = secrets.token_hex(4)
    settings = Settings(
        gateway_id=f"scenario-{token}", exchange=f"scenario-{token}.exchange", nodes=list(scenario.townships),
        data_dir=folder / "gateway", database_url=database_url,
        # Keys live only as long as the run's temporary folder: a scenario's keys protect nothing.
        key_passphrase=None, allow_plaintext_keys=True,
        tick_interval_s=0, tally_interval_s=0,  # the player ticks on the simulated clock
    )
    init_nodes(settings, clock.now())
    broker = InProcessBroker()
    gateway = build_gateway(settings, clock=clock, broker=broker)
    assert gateway.engine is not None
    # Not `gateway.start()`: its background loops (tick, archiver, tallies) would run on the wall clock.
    await create_schema(gateway.engine)
    await broker.start(sorted(gateway.service.nodes))
    await broker.consume(gateway.handle)
    player = Player(scenario, gateway, broker, clock)
    try:
        await player.run()
    finally:
        await gateway.stop()
    return Played(player.outcomes, player.closed, player.ticks, start, scenario.until)
