"""A long synchronous stretch gives the event loop back between its slices."""

from __future__ import annotations

import asyncio

from gateway.exchange.time_slices import TimeSlices


async def test_a_stretch_past_its_budget_lets_other_tasks_run_between_slices():
    ran: list[int] = []

    async def other() -> None:
        for i in range(3):
            ran.append(i)
            await asyncio.sleep(0)

    task = asyncio.create_task(other())
    slices = TimeSlices(budget_s=0)  # every pause is past the budget
    for _ in range(3):
        await slices.pause()
    assert ran  # the other task ran while the stretch was under way
    await task


async def test_a_stretch_within_its_budget_keeps_the_loop():
    ran: list[int] = []

    async def other() -> None:
        ran.append(1)

    task = asyncio.create_task(other())
    slices = TimeSlices(budget_s=3600)
    for _ in range(3):
        await slices.pause()
    assert ran == []  # no turn given: nothing else ran
    await task
