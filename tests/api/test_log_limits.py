"""The log cannot be flooded (issue 24: 455,000 lines in 30 s): at most N records a minute from one call
site at WARNING and above, the rest counted and reported with the next one let through."""

from __future__ import annotations

import logging

from gateway.log_limits import RepeatLimit


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def flood(logger: logging.Logger, n: int) -> None:
    for i in range(n):
        logger.warning("connection %d refused", i)  # one call site, a different text each time


def test_one_call_site_passes_its_limit_a_minute_and_then_says_how_many_were_left_out() -> None:
    clock = Clock()
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    handler.addFilter(RepeatLimit(20, clock=clock))
    logger = logging.getLogger("test.flood")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        flood(logger, 10_000)
        assert len(records) == 20
        logger.error("another site")  # a different call site has its own allowance
        assert len(records) == 21
        clock.now = 61
        flood(logger, 1)
        assert records[-1].getMessage() == ("connection 0 refused [9980 more like this left out of the log in the "
                                            "last 60 s (GATEWAY_LOG_REPEATS_PER_MINUTE)]")
        for i in range(100):
            logger.info("request %d", i)  # below WARNING: never limited (the access log)
        assert len(records) == 122
    finally:
        logger.removeHandler(handler)
