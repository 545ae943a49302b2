"""Long synchronous stretches of a batch cut into slices, so the event loop serves others in between.

A consumer batch of a hundred deliveries is a hundred signature checks, decryptions and record
validations (≈ 0.4 ms each): 40 ms during which nothing else of the gateway — the relay's confirms,
a clerk's request, the next batch's database round trips — could run, and each of those waited for
the whole stretch at every await. Work done between ``await slices.pause()`` calls gives the loop back
every ``budget_s`` of CPU: the batch takes as long, everyone else waits at most about that long.
"""

from __future__ import annotations

import asyncio
import time

DEFAULT_BUDGET_S = 0.003


class TimeSlices:
    def __init__(self, budget_s: float = DEFAULT_BUDGET_S) -> None:
        self.budget_s = budget_s
        self._since = time.perf_counter()

    async def pause(self) -> None:
        """Give the event loop a turn if this stretch has run longer than the budget."""
        if time.perf_counter() - self._since >= self.budget_s:
            await asyncio.sleep(0)
            self._since = time.perf_counter()
