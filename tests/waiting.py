"""Waiting in connected tests for what arrives over the broker, without a fixed sleep."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(check: Callable[[], Awaitable[T]], timeout_s: float = 30.0) -> T:
    """Ask ``check`` every tenth of a second until its answer is truthy; that answer, or after
    ``timeout_s`` its last (falsy) one, for the test to assert on."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = await check()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.1)
