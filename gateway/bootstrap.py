"""The composition root: the one place where adapters are wired to the domain.

Nothing connects to a broker or a database at import time; ``build_gateway`` creates objects and
``Gateway.start`` connects.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.access.audit_files import AuditFiles
from gateway.access.oidc import OidcClient, OidcConfig
from gateway.access.service import AccessService, SignInPolicy
from gateway.access.throttle import ThrottleLimits
from gateway.access.totp_sealing import KEY_FILE_NAME, TotpSealer
from gateway.adapters.amqp import AmqpBroker
from gateway.adapters.sql.account_store import SqlAccountStore
from gateway.adapters.sql.audit_store import SqlAuditTrail
from gateway.adapters.sql.engine import create_engine, create_schema
from gateway.adapters.sql.direct_pg import dispose
from gateway.adapters.sql.archive_store import SqlArchiveStore
from gateway.adapters.sql.case_store import SqlCaseStore
from gateway.adapters.sql.receipt_store import SqlReceiptStore
from gateway.adapters.sql.tally_store import TallyStore, fold_forever
from gateway.adapters.sql.tracking_gaps import SqlTrackingGaps
from gateway.adapters.sql.store import SqlMessageStore
from gateway.adapters.topology import Topology
from gateway.clock import Clock, SystemClock
from gateway.exchange.nodes import HostedNode
from gateway.exchange.inbox_batch import InboxBatcher
from gateway.exchange.ports import Broker, Delivery, MessageStore
from gateway.exchange.receipting import ReceiptStore
from gateway.exchange.relay import OutboxRelay
from gateway.exchange.service import ExchangeService, ReceiveOutcome
from gateway.security.directory import KeyDirectory
from gateway.node_setup import load_directory, load_nodes
from gateway.settings import Settings
from gateway.tracking.observer import TrackingObserver
from gateway.tracking.ports import CaseStore
from gateway.tracking.reconcile import ReconcileReport, Reconciler
from gateway.tracking.tracker import CaseTracker
from gateway.workflow.data_files import load_calendar, load_deadline_rules

log = logging.getLogger(__name__)

# How often the archiver looks at every stored row, not only at the newest (see archive_pending).
ARCHIVE_SWEEP_S = 300.0
ARCHIVE_PAGE = 500


async def archive_backlog(archive: Any, now: Callable[[], datetime], *, sweep: bool) -> None:
    """Archive page by page until nothing is pending.

    A sweep looks at every row (an anti-join of the whole table against the chain) to catch rows
    committed below the archiver's mark; it goes on only while it finds full pages. Once a page comes
    back short, every such row is in, and what is still pending — the rows arriving meanwhile — is
    taken through the index range of the new rows. (A sweep that went on while anything was pending
    never ended under steady traffic: every pass after start-up joined the whole tables, once a second,
    and the gateway's CPU per message grew with its database.)"""
    while True:
        archived = await archive.archive_pending(now(), ARCHIVE_PAGE, sweep=sweep)
        if archived < ARCHIVE_PAGE:
            sweep = False
        if archived == 0:
            return


@dataclass
class Gateway:
    settings: Settings
    store: MessageStore
    broker: Broker
    service: ExchangeService
    relay: OutboxRelay
    clock: Clock
    tracker: CaseTracker | None = None
    archive: SqlArchiveStore | None = None
    engine: AsyncEngine | None = None
    inbox: InboxBatcher | None = None  # batches deliveries into one transaction; None: one by one
    access: AccessService | None = None  # accounts, sessions, the audit trail (None: no database, no sign-in)
    oidc: OidcClient | None = None  # the province's identity provider (None: GATEWAY_OIDC_ISSUER unset)
    reconciler: Reconciler | None = None  # heals messages stored but not tracked (None: in-memory stores)
    outcomes: dict[str, int] = field(default_factory=dict)
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    _directory_mtime: float | None = None

    async def handle(self, delivery: Delivery) -> ReceiveOutcome:
        outcome = await self.service.receive(delivery)
        self.outcomes[outcome.result] = self.outcomes.get(outcome.result, 0) + 1
        return outcome

    async def handle_batch(self, deliveries: Sequence[Delivery]) -> list[ReceiveOutcome]:
        outcomes = await self.service.receive_batch(deliveries)
        for outcome in outcomes:
            self.outcomes[outcome.result] = self.outcomes.get(outcome.result, 0) + 1
        return outcomes

    async def start(self, *, consume: bool = True, relay: bool = True) -> None:
        if self.engine is not None:
            await create_schema(self.engine)
            if self.access is not None:
                await self.access.seal_clear_totp_secrets()  # left in clear by an earlier release
        if self.access is not None:
            await self.access.audit.ready()  # the audit key readable (or made) before anything is served
        try:
            # Before anything new arrives and before the first tick closes a period on a difference.
            await self.reconcile()
        except Exception:
            log.exception("reconcile at start-up failed; the first tick tries again")
        await self.broker.start(sorted(self.service.nodes))
        if consume:
            await self.broker.consume(self.inbox.submit if self.inbox is not None else self.handle)
        if relay:
            self._tasks.append(asyncio.create_task(self.relay.run(), name="outbox-relay"))
        if self.tracker is not None and self.settings.tick_interval_s > 0:
            self._tasks.append(asyncio.create_task(self._tick_forever(), name="workflow-tick"))
        if self.archive is not None:
            self._tasks.append(asyncio.create_task(self._archive_forever(), name="archiver"))
        if self.engine is not None and self.settings.tally_interval_s > 0:
            self._tasks.append(asyncio.create_task(self._fold_tallies_forever(), name="dashboard-tallies"))

    async def _archive_forever(self) -> None:
        assert self.archive is not None
        loop = asyncio.get_running_loop()
        next_sweep = loop.time()  # at start-up, then every ARCHIVE_SWEEP_S: every row looked at
        while True:
            sweep = loop.time() >= next_sweep
            try:
                await archive_backlog(self.archive, self.clock.now, sweep=sweep)
                if sweep:
                    next_sweep = loop.time() + ARCHIVE_SWEEP_S
            except Exception:
                log.exception("archiving failed; trying again shortly")
            await asyncio.sleep(self.settings.archive_interval_s)

    async def _fold_tallies_forever(self) -> None:
        """Count the cases changed since into the dashboard's tallies: a page then reads a few thousand rows
        for a province (the database does the work; gateways sharing one take turns)."""
        assert self.engine is not None
        await fold_forever(TallyStore(self.engine), self.clock.now, self.settings.tally_interval_s)

    def refresh_directory(self) -> bool:
        """Reload the key directory if its file changed; keep the old one if the new one is refused."""
        path = self.settings.resolved_directory_path
        try:
            mtime = path.stat().st_mtime
        except OSError:
            return False
        if mtime == self._directory_mtime:
            return False
        try:
            self.service.directory = load_directory(self.settings, self.clock.now())
        except Exception as exc:  # an unsigned or stale directory never replaces a trusted one
            log.error("refused the key directory %s: %s", path, exc)
            return False
        finally:
            self._directory_mtime = mtime
        return True

    async def reconcile(self) -> ReconcileReport | None:
        """Track what was stored but not tracked (a crash or a failure between the two; reconcile.py)."""
        return await self.reconciler.run() if self.reconciler is not None else None

    async def _tick_forever(self) -> None:
        assert self.tracker is not None
        while True:
            try:
                self.refresh_directory()
                await self.reconcile()  # first: a period closes on the healed cases
                await self.tracker.tick()
            except Exception:
                log.exception("workflow tick failed; trying again next interval")
            await asyncio.sleep(self.settings.tick_interval_s)

    async def stop(self) -> None:
        self.relay.stop()
        for task in self._tasks:
            if task.get_name() in ("workflow-tick", "archiver", "dashboard-tallies"):
                task.cancel()
            try:
                await asyncio.wait_for(task, timeout=5)
            except (asyncio.TimeoutError, asyncio.CancelledError):
                task.cancel()
        self._tasks.clear()
        await self.broker.close()
        if self.access is not None:
            await self.access.audit.aclose()  # the head it wrote last into the checkpoint file
        if self.engine is not None:
            await dispose(self.engine)  # its direct connections (direct_pg.py) with it

    async def health(self) -> dict[str, Any]:
        database = "ok"
        try:
            await self.store.ping()
        except Exception as exc:  # report, do not raise: this is what /health is for
            database = f"error: {type(exc).__name__}"
        broker = self.broker.state()  # "ok", "disconnected" (reconnecting) or "blocked" (broker alarm)
        return {"status": "ok" if database == broker == "ok" else "degraded", "database": database, "broker": broker}


async def init_database(settings: Settings) -> None:
    engine = create_engine(settings.resolved_database_url)
    try:
        await create_schema(engine)
    finally:
        await dispose(engine)


def build_access(engine: AsyncEngine, clock: Clock, hosted: frozenset[str] | None = None, *,
                 audit_files: AuditFiles | None = None, settings: Settings | None = None) -> AccessService:
    """The account service; with ``settings`` its sign-in numbers, the TOTP key and the audit trail's files
    come from them (without, the defaults and a TOTP key held in memory only: a gateway built on fakes;
    then ``audit_files`` must be given)."""
    if audit_files is None:
        if settings is None:
            raise TypeError("build_access needs the audit trail's files, or the settings that name them")
        audit_files = settings.audit_files
    audit = SqlAuditTrail(engine, clock, audit_files)
    if settings is None:
        return AccessService(SqlAccountStore(engine), audit, clock, hosted_townships=hosted)
    return AccessService(SqlAccountStore(engine), audit, clock, hosted_townships=hosted,
                         policy=sign_in_policy(settings), sealer=totp_sealer(settings))


def sign_in_policy(settings: Settings) -> SignInPolicy:
    lock_for = timedelta(minutes=settings.sign_in_lock_minutes)
    return SignInPolicy(
        max_failures=settings.sign_in_max_failures, lock_for=lock_for,
        session_lifetime=timedelta(hours=settings.session_max_hours),
        admin_networks=tuple(ipaddress.ip_network(net, strict=False) for net in settings.sign_in_admin_networks),
        throttle=ThrottleLimits(window=lock_for, address_name_failures=settings.sign_in_address_name_failures,
                                address_failures=settings.sign_in_address_failures,
                                global_per_second=settings.sign_in_global_per_second,
                                global_burst=settings.sign_in_global_burst, in_flight=settings.sign_in_in_flight),
    )


def totp_sealer(settings: Settings) -> TotpSealer:
    # The node keys' passphrase when there is one; else the gateway's own key beside the node keys.
    return TotpSealer(passphrase=settings.passphrase_bytes, key_file=settings.resolved_keys_dir / KEY_FILE_NAME)


def build_gateway(
    settings: Settings,
    *,
    clock: Clock | None = None,
    broker: Broker | None = None,
    store: MessageStore | None = None,
    case_store: CaseStore | None = None,
    receipt_store: ReceiptStore | None = None,
    nodes: dict[str, HostedNode] | None = None,
    directory: KeyDirectory | None = None,
) -> Gateway:
    clock = clock or SystemClock()
    engine = None
    if store is None or case_store is None:
        engine = create_engine(settings.resolved_database_url)
        store = store or SqlMessageStore(engine, quarantine_caps=settings.quarantine_caps)
        case_store = case_store or SqlCaseStore(engine)
        receipt_store = receipt_store or SqlReceiptStore(engine)
    if broker is None:
        broker = AmqpBroker(
            settings.amqp_url,
            Topology(settings.exchange, settings.queue_name),
            prefetch=settings.prefetch,
            publish_timeout_s=settings.publish_timeout_s,
            start_timeout_s=settings.broker_start_timeout_s,
            declare_topology=settings.declare_topology,
        )
    nodes = nodes if nodes is not None else load_nodes(settings)
    directory = directory if directory is not None else load_directory(settings, clock.now())
    # Each gateway relays only its own townships' rows: several gateways can share one database.
    relay = OutboxRelay(store, broker, clock, batch=settings.relay_batch, senders=sorted(nodes))
    calendar = load_calendar(settings.calendar_file)
    deadline_rules = load_deadline_rules(settings.deadlines_file)
    tracker = CaseTracker(case_store, clock, calendar, deadline_rules)
    observer = TrackingObserver(tracker, store)
    service = ExchangeService(
        nodes, directory, store, clock, on_outbox=relay.nudge, observer=observer,
        receipts=receipt_store, quarantine_prefix_bytes=settings.quarantine_prefix_bytes,
        calendar=calendar, submission_working_days=deadline_rules.submission_working_days,
    )
    # The reconcile asks one database about both stores: only when both are the SQL ones on one engine.
    sql_engine = engine
    if sql_engine is None and isinstance(store, SqlMessageStore) and isinstance(case_store, SqlCaseStore):
        sql_engine = store.engine if store.engine is case_store.engine else None
    reconciler = None
    if sql_engine is not None:
        reconciler = Reconciler(SqlTrackingGaps(sql_engine), observer, service.read_body, sorted(nodes), clock)
    gateway = Gateway(
        settings=settings, store=store, broker=broker, service=service, relay=relay, clock=clock, engine=engine,
        tracker=tracker, archive=SqlArchiveStore(engine) if engine is not None else None,
        access=build_access(engine, clock, frozenset(nodes), settings=settings) if engine is not None else None,
        reconciler=reconciler,
    )
    if (oidc_config := OidcConfig.from_settings(settings)) is not None:
        gateway.oidc = OidcClient(oidc_config, clock.now)
    gateway.inbox = InboxBatcher(gateway.handle_batch, gateway.handle, store.ping, max_batch=min(100, settings.prefetch))
    return gateway
