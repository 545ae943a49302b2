"""A repeat limit for the log: one failing call site cannot fill the disk.

Under a connection flood the log of `gateway serve` grew 455,000 lines in 30 s (issue 24), the same few
warnings and errors over and over. `RepeatLimit` lets through at most N records a minute from each call
site (logger, file, line, level) at WARNING and above; the rest are counted, and the first record from
that site after its minute says how many were left out. Records below WARNING (the access log, start-up
lines) are not limited: they are not what a flood multiplies without bound.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

MAX_SITES = 1000  # call sites remembered; past it the oldest minute windows are forgotten


class RepeatLimit(logging.Filter):
    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic, window_s: float = 60.0) -> None:
        super().__init__()
        self.per_minute, self.clock, self.window_s = per_minute, clock, window_s
        self.sites: dict[tuple[str, str, int, int], list[float | int]] = {}  # site → [window start, passed, left out]

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        now = self.clock()
        site = (record.name, record.pathname, record.lineno, record.levelno)
        window = self.sites.get(site)
        if window is None or now - window[0] >= self.window_s:
            left_out = int(window[2]) if window is not None else 0
            if window is None and len(self.sites) >= MAX_SITES:
                oldest = min(self.sites, key=lambda k: self.sites[k][0])
                del self.sites[oldest]
            self.sites[site] = [now, 1, 0]
            if left_out:
                record.msg = f"{record.getMessage()} [{left_out} more like this left out of the log in the last " \
                             f"{self.window_s:.0f} s (GATEWAY_LOG_REPEATS_PER_MINUTE)]"
                record.args = None
            return True
        if window[1] < self.per_minute:
            window[1] += 1
            return True
        window[2] += 1
        return False


def install(per_minute: int) -> RepeatLimit:
    """The limit on every handler of the root logger (uvicorn's loggers propagate to it: `connections`)."""
    limit = RepeatLimit(per_minute)
    for handler in logging.getLogger().handlers:
        handler.addFilter(limit)
    return limit


def uninstall(limit: RepeatLimit) -> None:
    """Take the limit off the root logger's handlers again."""
    for handler in logging.getLogger().handlers:
        handler.removeFilter(limit)
