"""The transport fault tests: registers the ``faults`` marker (they restart or disturb the shared broker)."""

from __future__ import annotations


def pytest_configure(config) -> None:  # type: ignore[no-untyped-def]
    config.addinivalue_line("markers", "faults: disturbs the shared broker (restart, dropped connections); run serially")
