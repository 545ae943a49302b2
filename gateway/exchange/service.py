"""The exchange service: what a node does when a clerk submits or answers, and when a message arrives.

Submitting validates the record (codec), signs and encrypts it for the recipient (envelope), and stores
it together with its outbox row in one transaction; the relay publishes it. Receiving verifies and
decrypts, validates again (nothing is trusted), and stores it idempotently; every refusal is kept in
the quarantine with its reason, and nothing raises out of ``receive`` but a failure of our own storage.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from gateway.clock import Clock
from gateway.codec import wire
from gateway.codec.errors import CodecError, FieldError
from gateway.codec.messages import Feedback, Message, Notification, Query, Withdrawal, parse_message
from gateway.codec.rules import CHINA
from gateway.exchange.errors import AlreadyAnswered, InvalidRequest, UnknownMessage, UnknownNode, Withdrawn
from gateway.exchange.nodes import HostedNode, storage_context
from gateway.exchange.refusals import DEFAULT_PREFIX_BYTES, bound, codec_detail, header_field
from gateway.exchange.time_slices import TimeSlices
from gateway.exchange.ports import Delivery, ExchangeObserver, MessageStore, NoObserver
from gateway.exchange.records import (
    Direction,
    IncomingResult,
    OutboxItem,
    QuarantineItem,
    Status,
    StoredMessage,
)
from gateway.security.directory import KeyDirectory
from gateway.exchange.receipting import ReceiptStore, is_receipt, receipt_for
from gateway.security.envelope import open_envelope, parse_envelope, seal_for
from gateway.security.receipts import BUNDLE_MAGIC, RECEIPT_KIND, Receipt, parse_receipt, split_bundle, verify_receipt
from gateway.security.replay import ReplayPolicy, check_window
from gateway.security.errors import EnvelopeError
from gateway.workflow.calendar import WorkingDayCalendar

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReceiveOutcome:
    result: str  # "stored", "duplicate" or "quarantined"
    reason: str | None = None
    message_id: str | None = None


def new_message_id() -> str:
    return uuid.uuid4().hex


class ExchangeService:
    def __init__(
        self,
        nodes: Mapping[str, HostedNode],
        directory: KeyDirectory,
        store: MessageStore,
        clock: Clock,
        *,
        new_id: Callable[[], str] = new_message_id,
        on_outbox: Callable[[], None] = lambda: None,
        observer: ExchangeObserver | None = None,
        receipts: ReceiptStore | None = None,
        replay_policy: ReplayPolicy = ReplayPolicy(),
        quarantine_prefix_bytes: int = DEFAULT_PREFIX_BYTES,
        calendar: WorkingDayCalendar | None = None,
        submission_working_days: int | None = None,
    ) -> None:
        self.nodes = dict(nodes)
        self.directory = directory
        self.store = store
        self.clock = clock
        self.new_id = new_id
        self.on_outbox = on_outbox
        self.observer: ExchangeObserver = observer or NoObserver()
        self.receipts = receipts
        self.replay_policy = replay_policy
        self.quarantine_prefix_bytes = quarantine_prefix_bytes
        # A notification ①–④ of the last days of a statistical year is accepted while its working days
        # after learned_on run (codec rule event_in_statistical_year): counted on the tracker's calendar.
        self.calendar = calendar
        self.submission_working_days = submission_working_days

    def node(self, code: str) -> HostedNode:
        try:
            return self.nodes[code]
        except KeyError:
            raise UnknownNode(f"township {code} is not hosted by this gateway") from None

    # --- a clerk submits --------------------------------------------------------------------------

    async def submit(self, node_code: str, payload: Mapping[str, Any]) -> StoredMessage:
        """A clerk submits a query or a notification about a person.

        Queries and the usual notifications go from the residence township to the registration
        township; a notification with ``direction: "to_residence"`` goes the other way (seed 002,
        第三十一条: 户籍地向现居住地通报). The recipient is the township that must reply."""
        node = self.node(node_code)
        record = dict(payload)
        record.setdefault("kind", "query")
        to_residence = record["kind"] == "notification" and record.get("direction") == "to_residence"
        sender_field = "registration_township" if to_residence else "residence_township"
        record.setdefault(sender_field, node_code)
        message = parse_message(record, accepted_on=_china_date(self.clock.now()), labels=True, **self._window())
        if isinstance(message, Feedback):
            raise InvalidRequest([FieldError("kind", "feedback is sent as the answer to a received message")])
        if isinstance(message, Withdrawal):
            raise InvalidRequest([FieldError("kind", "a withdrawal is sent with POST /nodes/{code}/sent/{id}/withdraw")])
        recipient_field = "residence_township" if to_residence else "registration_township"
        recipient = getattr(message, recipient_field)
        errors = []
        if getattr(message, sender_field) != node_code:
            errors.append(FieldError(f"{message.kind}.{sender_field}", f"must be this node, {node_code}"))
        if recipient not in self.directory:
            errors.append(FieldError(f"{message.kind}.{recipient_field}",
                                     f"no gateway serves township {recipient} (not in the key directory)"))
        if errors:
            raise InvalidRequest(errors)
        if isinstance(message, Query) and message.resubmission_of is not None:
            await self._check_resubmission(node_code, message)
        return await self._send(node, message, recipient=recipient, subject=message.person.citizen_id)

    async def _check_resubmission(self, node_code: str, message: Query) -> None:
        """Rule 五: after a 查无此人 the residence place re-visits, 补充、完善查询信息内容 and submits
        again. A resubmission must name a query this node sent that was answered 查无此人 (凡是反馈的
        内容标明"查无此人"情况的), and must differ from it."""
        assert message.resubmission_of is not None
        earlier_id = message.resubmission_of
        earlier = await self.store.find(node_code, Direction.OUT, earlier_id)
        problem = None
        if earlier is None:
            problem = f"{node_code} sent no query {earlier_id}"
        elif earlier.kind != "query":
            problem = f"{earlier_id} is a {earlier.kind}, not a query: only a query answered 查无此人 is re-submitted (rule 五)"
        elif earlier.answered_by is None:
            problem = f"the query {earlier_id} has not been answered yet: only a query answered 查无此人 is re-submitted (rule 五)"
        elif earlier.result != "not_found":
            problem = f"the query {earlier_id} was answered {earlier.result}, not 查无此人: only a query answered 查无此人 is re-submitted (rule 五)"
        if problem is not None:
            raise InvalidRequest([FieldError("query.resubmission_of", problem)])
        before = self.read_body(earlier)
        if _correctable(before) == _correctable(message):
            raise InvalidRequest([FieldError(
                "query", f"identical to the query {message.resubmission_of} it corrects: rule 五 asks for the "
                "record to be completed and corrected (补充、完善) before it is submitted again")])

    async def answer(self, node_code: str, in_reply_to: str, payload: Mapping[str, Any]) -> StoredMessage:
        """A registration-place clerk answers a received query or notification."""
        node = self.node(node_code)
        original = await self.store.find(node_code, Direction.IN, in_reply_to)
        if original is None or original.kind not in ("query", "notification"):
            raise UnknownMessage(f"{node_code} received no query or notification {in_reply_to}")
        if original.status is Status.WITHDRAWN:
            raise Withdrawn(f"{original.sender} withdrew {in_reply_to} before it was answered; it needs no answer")
        if original.answered_by is not None:
            # The common case, refused early; the race between two clerks is decided by the store's
            # claim of the query in the transaction that writes the answer (add_outgoing).
            raise AlreadyAnswered(f"{in_reply_to} was already answered by {original.answered_by}",
                                  answered_by=original.answered_by)
        record = {**payload, "kind": "feedback", "in_reply_to": in_reply_to}
        feedback = parse_message(record, labels=True)
        return await self._send(node, feedback, recipient=original.sender, subject=original.subject, answers=in_reply_to)

    async def withdraw(self, node_code: str, message_id: str) -> StoredMessage:
        """The residence township withdraws a query it sent, before any reply: a withdrawal message goes
        to the registration township, whose gateway closes the case as withdrawn (not counted). The
        query is marked withdrawn by a conditional write in the transaction that stores the withdrawal,
        so a reply linked meanwhile wins and the withdrawal is refused."""
        node = self.node(node_code)
        original = await self.store.find(node_code, Direction.OUT, message_id)
        if original is None or original.kind != "query" or original.sender != node_code:
            raise UnknownMessage(f"{node_code} sent no query {message_id}")
        if original.answered_by is not None:
            raise AlreadyAnswered(f"{message_id} was already answered by {original.answered_by}; it cannot be withdrawn",
                                  answered_by=original.answered_by)
        if original.status is Status.WITHDRAWN:
            raise Withdrawn(f"{message_id} was withdrawn already")
        withdrawal = Withdrawal(kind="withdrawal", withdraws=message_id, residence_township=node_code,
                                registration_township=original.recipient)
        return await self._send(node, withdrawal, recipient=original.recipient, subject=None, withdraws=message_id)

    async def _send(
        self, node: HostedNode, message: Message, *, recipient: str, subject: str | None, answers: str | None = None,
        withdraws: str | None = None,
    ) -> StoredMessage:
        now = self.clock.now()
        message_id = self.new_id()
        plaintext = wire.encode(message)
        # The suite is the one this pair must use (downgrades are refused by the recipient).
        envelope = seal_for(
            plaintext=plaintext,
            message_id=message_id,
            kind=message.kind,
            keyring=node.keyring,
            directory=self.directory,
            recipient=recipient,
            created_at=now,
        )
        stored = StoredMessage(
            node=node.code,
            direction=Direction.OUT,
            message_id=message_id,
            kind=message.kind,
            sender=node.code,
            recipient=recipient,
            in_reply_to=getattr(message, "in_reply_to", None) or withdraws,
            created_at=now,
            accepted_at=now,
            envelope_sha256=hashlib.sha256(envelope).hexdigest(),
            envelope=envelope,
            body_sealed=node.storage.seal(plaintext, storage_context(node.code, Direction.OUT.value, message_id)),
            subject=node.storage.pseudonym(subject) if subject and answers is None else subject,
            status=Status.QUEUED,
            result=getattr(message, "result", None),
        )
        outbox = OutboxItem(
            message_id=message_id,
            sender=node.code,
            routing_key=recipient,
            kind=message.kind,
            envelope=envelope,
            created_at=now,
            next_attempt_at=now,
        )
        if withdraws is not None:
            if not await self.store.add_withdrawal(stored, outbox):
                latest = await self.store.find(node.code, Direction.OUT, withdraws)
                if latest is not None and latest.answered_by is not None:
                    raise AlreadyAnswered(f"{withdraws} was answered meanwhile by {latest.answered_by}; it cannot be "
                                          "withdrawn", answered_by=latest.answered_by)
                raise Withdrawn(f"{withdraws} was withdrawn already")
        else:
            await self.store.add_outgoing(stored, outbox, answers=answers)
        self.on_outbox()
        try:
            await self.observer.message_stored(stored, message)
        except Exception:
            # The message is committed and will be sent; tracking catches up in reconcile().
            log.exception("tracking of sent message %s failed", message_id)
        return stored

    # --- a message arrives ------------------------------------------------------------------------

    async def receive(self, delivery: Delivery) -> ReceiveOutcome:
        if is_receipt(delivery.body):
            return await self._receive_receipt(delivery)
        prepared = await self.prepare(delivery)
        if isinstance(prepared, QuarantineItem):
            return await self._keep_refused(prepared)
        result = await self.store.add_incoming(prepared.stored)
        return await self._settle(prepared, result)

    async def receive_batch(self, deliveries: Sequence[Delivery]) -> list[ReceiveOutcome]:
        """``receive`` for many deliveries, with every accepted one stored in one transaction.

        Refusals are still kept one by one in the quarantine with their own reason; a failure of our
        own storage raises for the whole batch (the caller retries them one by one).
        """
        if any(is_receipt(d.body) for d in deliveries):
            receipts = iter(await self._receive_receipts([d for d in deliveries if is_receipt(d.body)]))
            rest = iter(await self.receive_batch([d for d in deliveries if not is_receipt(d.body)]))
            return [next(receipts) if is_receipt(d.body) else next(rest) for d in deliveries]
        prepared = await self.prepare_many(deliveries)
        accepted = [p for p in prepared if isinstance(p, Accepted)]
        refused = [p for p in prepared if isinstance(p, QuarantineItem)]
        results = iter(await self.store.add_incoming_batch([a.stored for a in accepted], refused))
        settled = {id(p): await self._outcome_of(p, next(results)) for p in accepted}
        ok = [p for p in accepted if settled[id(p)].result != "quarantined"]
        # The effects of the whole batch together: one transaction each, not one per message.
        await self._observe([(p.stored, p.message) for p in ok])
        await self._acknowledge_many([p.stored for p in ok])
        return [
            ReceiveOutcome("quarantined", reason=p.reason, message_id=p.message_id)
            if isinstance(p, QuarantineItem)
            else settled[id(p)]
            for p in prepared
        ]

    async def prepare(self, delivery: Delivery) -> Accepted | QuarantineItem:
        """Verify, decrypt and validate one delivery: the row to store, or the refusal to keep. Stores nothing."""
        return (await self.prepare_many([delivery]))[0]

    async def prepare_many(self, deliveries: Sequence[Delivery]) -> list[Accepted | QuarantineItem]:
        """``prepare`` for a batch: the messages our feedback deliveries answer are read in one go."""
        now = self.clock.now()
        slices = TimeSlices()
        opened: list[_Opened | QuarantineItem] = []
        for delivery in deliveries:
            opened.append(self._open(delivery, now))
            await slices.pause()
        answered = [(o.node.code, o.message.in_reply_to) for o in opened
                    if isinstance(o, _Opened) and isinstance(o.message, Feedback)]
        originals = await self.store.find_many(Direction.OUT, answered) if answered else {}
        prepared: list[Accepted | QuarantineItem] = []
        for o in opened:
            if isinstance(o, QuarantineItem):
                prepared.append(o)
                continue
            try:
                await self._check_consistent(o.node, o.header.sender, o.header.kind, o.message, originals)
            except _Inconsistent as exc:
                prepared.append(self._refusal(o.raw, o.sha, now, exc.reason, exc.detail, o.header, authenticated=True))
                continue
            prepared.append(self._accepted(o, now))
        return prepared

    def _open(self, delivery: Delivery, now: datetime) -> _Opened | QuarantineItem:
        """The checks that need no database: envelope, routing, signature, decryption, window, codec."""
        raw = delivery.body
        sha = hashlib.sha256(raw).hexdigest()
        header = None
        signed = False  # from the moment the signature verified: a peer's message refused for a rule
        try:
            envelope = parse_envelope(raw)
            header = envelope.header
            node = self.nodes.get(header.recipient)
            if node is None:
                raise EnvelopeError("not_hosted", f"township {header.recipient} is not hosted by this gateway")
            if delivery.routing_key and delivery.routing_key != header.recipient:
                raise EnvelopeError("wrong_recipient", f"routed to {delivery.routing_key}, addressed to {header.recipient}")
            opened = open_envelope(envelope, keyring=node.keyring, directory=self.directory)
            signed = True
            check_window(header.created, now, self.replay_policy)
            message = wire.decode(opened.plaintext, accepted_on=_china_date(header.created), **self._window())
        except EnvelopeError as exc:
            return self._refusal(raw, sha, now, exc.reason, exc.detail, header, authenticated=signed)
        except CodecError as exc:
            return self._refusal(raw, sha, now, "invalid_record", codec_detail(exc), header, authenticated=signed)
        return _Opened(raw, sha, header, node, opened.plaintext, message)

    @staticmethod
    def _accepted(o: _Opened, now: datetime) -> Accepted:
        node, header, message = o.node, o.header, o.message
        subject = None
        if isinstance(message, (Query, Notification)):
            subject = node.storage.pseudonym(message.person.citizen_id)
        stored = StoredMessage(
            node=node.code,
            direction=Direction.IN,
            message_id=header.message_id,
            kind=header.kind,
            sender=header.sender,
            recipient=header.recipient,
            in_reply_to=getattr(message, "in_reply_to", None) or getattr(message, "withdraws", None),
            created_at=header.created,
            accepted_at=now,
            envelope_sha256=o.sha,
            envelope=o.raw,
            body_sealed=node.storage.seal(o.plaintext, storage_context(node.code, Direction.IN.value, header.message_id)),
            subject=subject,
            status=Status.RECEIVED,
            result=getattr(message, "result", None),
        )
        return Accepted(stored, message)

    async def _outcome_of(self, accepted: Accepted, result: IncomingResult) -> ReceiveOutcome:
        """The outcome of storing one delivery; a conflict is a replay and goes to the quarantine.
        Tracking and the receipt are left to the caller, who does them for the whole batch."""
        stored = accepted.stored
        if result is IncomingResult.CONFLICT:
            return await self._keep_refused(self._refusal(
                stored.envelope, stored.envelope_sha256, stored.accepted_at, "replay",
                f"message id {stored.message_id} from {stored.sender} was already used for other content", stored,
                authenticated=True))
        return ReceiveOutcome(result.value if result is IncomingResult.DUPLICATE else "stored", message_id=stored.message_id)

    async def _observe(self, items: list[tuple[StoredMessage, Message]]) -> None:
        many = getattr(self.observer, "messages_stored", None)
        if many is not None:
            await many(items)
            return
        for stored, message in items:
            await self.observer.message_stored(stored, message)

    async def _acknowledge_many(self, stored: list[StoredMessage]) -> None:
        if self.receipts is None or not stored:
            return
        now = self.clock.now()
        slices = TimeSlices()
        signed = []
        for m in stored:
            signed.append(receipt_for(m.envelope, self.node(m.node).keyring, now, envelope_sha256=m.envelope_sha256))
            await slices.pause()
        await self.receipts.add_sent_many(signed, now)
        self.on_outbox()

    async def _receive_receipts(self, deliveries: list[Delivery]) -> list[ReceiveOutcome]:
        """Receipts and bundles of receipts for our messages: each receipt checked against the exact
        bytes we sent (one read for the whole batch), the good ones kept, each bad one quarantined with
        its own reason. One outcome per delivery: receipted if any of its receipts was good."""
        now = self.clock.now()
        refused: list[tuple[int, QuarantineItem]] = []
        candidates: list[tuple[int, bytes, Receipt]] = []
        for index, delivery in enumerate(deliveries):
            raw = delivery.body
            try:
                parts = split_bundle(raw) if raw[:4] == BUNDLE_MAGIC else [raw]
            except EnvelopeError as exc:
                refused.append((index, self._refusal(raw, hashlib.sha256(raw).hexdigest(), now, exc.reason, exc.detail, None)))
                continue
            for part in parts:
                receipt = None
                try:
                    receipt, _, _ = parse_receipt(part)
                    if receipt.recipient not in self.nodes:
                        raise EnvelopeError("not_hosted", f"township {receipt.recipient} is not hosted by this gateway")
                except EnvelopeError as exc:
                    refused.append((index, self._receipt_refusal(part, now, exc, receipt)))
                    continue
                candidates.append((index, part, receipt))
        sent = await self.store.find_many(Direction.OUT, [(r.recipient, r.message_id) for _, _, r in candidates])
        verified: list[tuple[Receipt, bytes]] = []
        good: dict[int, str] = {}
        slices = TimeSlices()
        for index, part, receipt in candidates:
            await slices.pause()
            original = sent.get((receipt.recipient, receipt.message_id))
            try:
                if original is None:
                    raise EnvelopeError("unknown_reference", f"{receipt.recipient} sent no message {receipt.message_id}")
                verify_receipt(part, original.envelope, self.directory)
            except EnvelopeError as exc:
                refused.append((index, self._receipt_refusal(part, now, exc, receipt)))
                continue
            verified.append((receipt, part))
            good.setdefault(index, receipt.message_id)
        if verified and self.receipts is not None:
            await self.receipts.add_received_many(verified, now)
        if refused:
            for _, item in refused:
                log.warning("quarantined %s: %s (%s)", item.message_id or item.envelope_sha256[:16], item.reason, item.detail)
            await self.store.add_incoming_batch([], [item for _, item in refused])
        first_refusal = {}
        for index, item in refused:
            first_refusal.setdefault(index, item)
        return [
            ReceiveOutcome("receipted", message_id=good[i]) if i in good
            else ReceiveOutcome("quarantined", reason=first_refusal[i].reason, message_id=first_refusal[i].message_id)
            for i in range(len(deliveries))
        ]

    def _receipt_refusal(self, raw: bytes, now: datetime, exc: EnvelopeError, receipt: Receipt | None) -> QuarantineItem:
        header = None if receipt is None else _ReceiptHeader(receipt.message_id, receipt.sender, receipt.recipient)
        return self._refusal(raw, hashlib.sha256(raw).hexdigest(), now, exc.reason, exc.detail, header)

    async def _settle(self, accepted: Accepted, result: IncomingResult) -> ReceiveOutcome:
        outcome = await self._outcome_of(accepted, result)
        if outcome.result != "quarantined":
            # Also on a duplicate: if tracking failed the first time, the redelivery completes it,
            # and the sender, which may have missed our receipt, gets it again.
            await self._observe([(accepted.stored, accepted.message)])
            await self._acknowledge_many([accepted.stored])
        return outcome

    async def _receive_receipt(self, delivery: Delivery) -> ReceiveOutcome:
        """A receipt (or a bundle) for our messages: verify against the exact bytes we sent, keep."""
        return (await self._receive_receipts([delivery]))[0]

    async def _keep_refused(self, item: QuarantineItem) -> ReceiveOutcome:
        log.warning("quarantined %s: %s (%s)", item.message_id or item.envelope_sha256[:16], item.reason, item.detail)
        await self.store.add_quarantine(item)
        return ReceiveOutcome("quarantined", reason=item.reason, message_id=item.message_id)

    async def _check_consistent(self, node: HostedNode, sender: str, kind: str, message: Message,
                                originals: Mapping[tuple[str, str], StoredMessage]) -> None:
        """``originals``: the messages this node sent that the batch's feedback answers, by (node, id)."""
        if message.kind != kind:
            raise _Inconsistent("kind_mismatch", f"header says {kind}, body is {message.kind}")
        if isinstance(message, Feedback):
            original = originals.get((node.code, message.in_reply_to))
            if original is None:
                raise _Inconsistent("unknown_reference", f"{node.code} sent no message {message.in_reply_to}")
            if original.recipient != sender:
                raise _Inconsistent("reply_from_wrong_township",
                                    f"{message.in_reply_to} was sent to {original.recipient}, answered by {sender}")
            return
        if isinstance(message, Withdrawal):
            # From the residence township that sent the query, to the registration township it asked.
            if (sender, node.code) != (message.residence_township, message.registration_township):
                raise _Inconsistent("route_mismatch", f"withdrawal names residence {message.residence_township}, "
                                    f"registration {message.registration_township}, envelope {sender} → {node.code}")
            query = await self.store.find(node.code, Direction.IN, message.withdraws)
            if query is None or query.kind != "query" or query.sender != sender:
                raise _Inconsistent("unknown_reference", f"{sender} sent {node.code} no query {message.withdraws}")
            return
        # A query goes residence → registration; a notification the way its direction says.
        if isinstance(message, Notification):
            expected = (message.sender_township, message.recipient_township)
            way = f"{message.direction} "
        else:
            expected = (message.residence_township, message.registration_township)
            way = ""
        if (sender, node.code) != expected:
            raise _Inconsistent(
                "route_mismatch",
                f"record names residence {message.residence_township}, registration {message.registration_township} "
                f"({way}{expected[0]} → {expected[1]}), envelope {sender} → {node.code}",
            )
        if isinstance(message, Query) and message.resubmission_of is not None:
            # The sender's gateway refuses this already; a gateway that does not is caught here.
            earlier = await self.store.find(node.code, Direction.IN, message.resubmission_of)
            if earlier is not None and earlier.sender == sender and earlier.kind == "query":
                if _correctable(self.read_body(earlier)) == _correctable(message):
                    raise _Inconsistent(
                        "resubmission_unchanged",
                        f"identical to the query {message.resubmission_of} it corrects (rule 五: 补充、完善查询信息内容)",
                    )

    def _refusal(self, raw: bytes, sha: str, now: datetime, reason: str, detail: str, header: Any, *,
                 authenticated: bool = False) -> QuarantineItem:
        """The quarantine record of a refusal: size, SHA-256 and a bounded prefix of the bytes, the
        header fields that fit, and a bounded detail (see refusals.py). The quarantine's caps and tally
        are kept per sender: unauthenticated junk claiming a township the directory does not know is
        tallied under no sender, so a made-up sender cannot open a budget of its own."""
        sender = header_field(header, "sender")
        return QuarantineItem(
            received_at=now,
            reason=reason,
            detail=bound(detail),
            envelope_sha256=sha,
            raw=raw[: self.quarantine_prefix_bytes],
            size=len(raw),
            message_id=header_field(header, "message_id"),
            sender=sender,
            recipient=header_field(header, "recipient"),
            kind=header_field(header, "kind"),
            authenticated=authenticated,
            sender_known=authenticated or sender is None or sender in self.directory,
        )

    # --- reading ----------------------------------------------------------------------------------

    def read_body(self, stored: StoredMessage) -> Message:
        node = self.node(stored.node)
        plaintext = node.storage.open(stored.body_sealed, storage_context(stored.node, stored.direction.value, stored.message_id))
        # Rules relative to acceptance (statistical year, certificate validity) are judged as on the
        # day the record was accepted, so a stored record stays readable years later.
        return wire.decode(plaintext, accepted_on=_china_date(stored.created_at), **self._window())

    def _window(self) -> dict[str, Any]:
        return {"calendar": self.calendar, "submission_working_days": self.submission_working_days}


@dataclass(frozen=True)
class _Opened:
    """A delivery whose envelope, signature, decryption and record passed (nothing read from the store yet)."""

    raw: bytes
    sha: str
    header: Any
    node: HostedNode
    plaintext: bytes
    message: Message


@dataclass(frozen=True)
class Accepted:
    """A delivery that passed every check: the row to store and the decoded record (for the observer)."""

    stored: StoredMessage
    message: Message


def _china_date(moment: datetime) -> date:
    return moment.astimezone(CHINA).date()


def _correctable(query: Query) -> dict[str, Any]:
    """What a corrected resubmission must change at least one part of."""
    return query.model_dump(mode="json", exclude={"resubmission_of"}, exclude_none=True)


@dataclass(frozen=True)
class _ReceiptHeader:
    message_id: str
    sender: str
    recipient: str
    kind: str = RECEIPT_KIND


class _Inconsistent(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
