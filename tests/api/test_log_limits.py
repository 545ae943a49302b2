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


def test_serve_takes_its_repeat_limit_off_the_root_handlers_when_it_returns(tmp_path, monkeypatch) -> None:
    """In one process serve may run more than once (the tests do): a limit left on a handler that outlives
    it would drop later warnings of that process from the log (seen in the suite's log capture)."""
    from typer.testing import CliRunner

    from gateway.cli import app
    from gateway.log_limits import RepeatLimit

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GATEWAY_NODES", "110101001")
    monkeypatch.setenv("GATEWAY_ALLOW_PLAINTEXT_KEYS", "1")
    monkeypatch.setenv("GATEWAY_AMQP_URL", "amqp://guest:guest@127.0.0.1:1/")
    monkeypatch.setenv("GATEWAY_BROKER_START_TIMEOUT_S", "1")
    runner = CliRunner()
    assert runner.invoke(app, ["init"]).exit_code == 0
    handler = logging.NullHandler()
    logging.getLogger().addHandler(handler)
    try:
        served = runner.invoke(app, ["serve", "--port", "1"])  # ends: no broker there
        assert "cannot reach RabbitMQ" in served.output, served.output
        assert not [f for f in handler.filters if isinstance(f, RepeatLimit)]
    finally:
        logging.getLogger().removeHandler(handler)
