"""The reconcile: whatever the message store holds, the case store reflects — after any crash.

A message is committed first (with its outbox row, or its receipt) and tracked just after, by the
observer's hooks: a failure or a crash between the two would leave a reply without its answered case
(a false overdue and, after three, a false 漏管), a received query without a case, a 查无此人 without its
re-verification task, or a correction without its task closed. ``Reconciler.run`` finds those
differences and hands each message to the same hook again. It runs at start-up, before the first tick,
and at the start of every tick, so a period is never closed on a known difference.

Cheap on every tick: it looks only at the messages written since it last looked (``messages.id`` above
a mark), and the database returns only the differences (an anti-join on primary keys per row). Each
row is looked at twice: once by the first pass after it was written, and once more ``settle_s``
later, when the mark moves past it — on PostgreSQL a transaction can take a row id lower than one
already seen and commit after it, and by then it has committed. The mark is kept per township in the
database (``tracking_marks``), so a restart looks again from there. A message whose hook keeps
failing is tried again on every run and holds the mark before it: it is tracked once the cause is gone.

Every hook is idempotent and every race between a hook and its replay is decided by the case store's
conditional writes: the reconcile can run beside the live path and in several processes at once.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from gateway.clock import Clock
from gateway.exchange.records import Direction, StoredMessage
from gateway.exchange.time_slices import TimeSlices

log = logging.getLogger(__name__)

SETTLE_S = 120.0  # longer than any transaction of the gateway takes to commit
PAGE_ROWS = 5000  # message row ids per query: a start-up after an upgrade reads the history in pages
# Pages of the second look per run: after an upgrade the history's second look is spread over ticks
# (about a second of the database's time each) instead of holding one tick for all of it.
SECOND_LOOK_PAGES = 20
_NAMED = 10  # message ids named in one log line


class Hooks(Protocol):
    """What tracks a stored message (``TrackingObserver``)."""

    async def message_stored(self, stored: StoredMessage, message: Any) -> None: ...


class TrackingGaps(Protocol):
    """The differences between the message store and the case store, as the database finds them."""

    async def last_row(self) -> int:
        """The highest message row id written so far (0: none)."""

    async def marks(self, nodes: Sequence[str]) -> dict[str, int]:
        """How far each township's messages were checked (a township without a mark: not at all)."""

    async def save_marks(self, nodes: Sequence[str], checked_through: int, at: datetime) -> None:
        """Move the townships' marks to ``checked_through``; a mark never moves back."""

    async def untracked(self, nodes: Sequence[str], after: int, through: int) -> list[tuple[int, StoredMessage]]:
        """The messages (row id, message) of these townships with row ids in (after, through], in row order, that the
        case store does not reflect: a received query or notification without a case; a sent reply
        whose case has no reply; a received 查无此人 without its re-verification task. Also every sent
        query of a township that has an open task: whether it is the task's correction is in its
        (sealed) body only."""

    async def open_tasks(self, query_ids: Sequence[str]) -> set[str]:
        """Those of these queries whose re-verification task is open."""


@dataclass
class ReconcileReport:
    checked_through: int = 0  # the highest message row looked at
    mark: int = 0  # every row up to here was looked at twice, and tracked
    healed: list[str] = field(default_factory=list)  # message ids handed to their hook again
    failed: list[str] = field(default_factory=list)  # message ids whose hook failed again


class Reconciler:
    def __init__(
        self,
        gaps: TrackingGaps,
        hooks: Hooks,
        read_body: Callable[[StoredMessage], Any],
        nodes: Sequence[str],
        clock: Clock,
        *,
        settle_s: float = SETTLE_S,
        page_rows: int = PAGE_ROWS,
        second_look_pages: int = SECOND_LOOK_PAGES,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.gaps = gaps
        self.hooks = hooks
        self.read_body = read_body
        self.nodes = sorted(nodes)
        self.clock = clock
        self.settle_s = settle_s
        self.page_rows = page_rows
        self.second_look_pages = second_look_pages
        self.monotonic = monotonic
        self._cursor: int | None = None  # this process looked once at every row up to here
        self._second = 0  # … and twice up to here
        self._looked: deque[tuple[float, int]] = deque()  # (when, last row then): the second look's bounds
        self._settled = 0  # the second look may go up to here
        # Rows whose hook failed at their second look, by row id: tried again on every run, and the mark
        # held before the first of them, so a restart looks at them again too.
        self._failing: dict[int, StoredMessage] = {}
        self.max_failing = 1000

    async def run(self) -> ReconcileReport:
        report = ReconcileReport()
        if not self.nodes:
            return report
        marks = await self.gaps.marks(self.nodes)
        mark = min(marks.get(node, 0) for node in self.nodes)
        if self._cursor is None:
            self._cursor = self._second = mark
        for row, stored in sorted(self._failing.items()):
            if await self._heal(stored, report):
                del self._failing[row]
        top = await self.gaps.last_row()
        now = self.monotonic()
        await self._look(self._cursor, top, report, second=False)
        self._cursor = max(self._cursor, top)
        self._looked.append((now, self._cursor))
        report.checked_through, report.mark = self._cursor, mark
        while self._looked and self._looked[0][0] <= now - self.settle_s:
            self._settled = max(self._settled, self._looked.popleft()[1])
        if self._settled > self._second:
            upto = min(self._settled, self._second + self.page_rows * self.second_look_pages)
            self._second = await self._look(self._second, upto, report, second=True)
        held = min(self._failing, default=None)
        through = self._second if held is None else min(self._second, held - 1)
        if through > mark:
            await self.gaps.save_marks(self.nodes, through, self.clock.now())
            report.mark = through
        if report.healed:
            log.warning("reconcile: %d message(s) tracked late, e.g. %s", len(report.healed),
                        ", ".join(report.healed[:_NAMED]))
        if report.failed:
            # One line a run, bounded, without personal values: a hook that fails every time is a bug.
            log.error("reconcile: %d message(s) still not tracked, e.g. %s; tried again every tick",
                      len(report.failed), ", ".join(report.failed[:_NAMED]))
        return report

    async def _look(self, after: int, through: int, report: ReconcileReport, *, second: bool) -> int:
        """Heal the differences among rows (after, through]; the row it got through. A failure at the
        first look is left to the second; a second look keeps it for the next runs, and stops before
        one it has no room to keep (the next run's second look starts there)."""
        slices = TimeSlices()
        while after < through:
            upto = min(after + self.page_rows, through)
            for row, stored in await self.gaps.untracked(self.nodes, after, upto):
                await slices.pause()
                if row in self._failing:
                    continue  # tried at the start of this run
                if await self._heal(stored, report) or not second:
                    continue
                if len(self._failing) >= self.max_failing:
                    return row - 1
                self._failing[row] = stored
            after = upto
        return through

    async def _heal(self, stored: StoredMessage, report: ReconcileReport) -> bool:
        """Hand the message to its hook again; False when that failed."""
        try:
            message = self.read_body(stored)
            if stored.direction is Direction.OUT and stored.kind == "query":
                corrects = getattr(message, "resubmission_of", None)
                if not corrects or not await self.gaps.open_tasks([corrects]):
                    return True  # corrects nothing, or its task is closed already: nothing to track
            await self.hooks.message_stored(stored, message)
        except Exception as exc:
            log.debug("reconcile: tracking %s message %s failed: %s", stored.kind, stored.message_id, type(exc).__name__)
            report.failed.append(stored.message_id)
            return False
        report.healed.append(stored.message_id)
        return True
