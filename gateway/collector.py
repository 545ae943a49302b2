"""Pausing Python's cyclic garbage collector around bulk work on acyclic values.

Decoding a case allocates some twenty objects, none of them in a reference cycle; a close or an audit
builds millions. Left on, the cyclic collector scans the growing lists again and again: measured, that
was two thirds of the decode time of a province's quarter, and more than the accounting itself.
Reference counting still frees everything; only cycle detection waits until the block ends.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Nestable: an inner pause leaves the collector as the outer one will restore it."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
