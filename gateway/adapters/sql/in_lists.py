"""IN lists padded to a few lengths, so a statement has a few texts instead of one per list length.

``column IN (…)`` with n values is rendered with n placeholders, so a statement that looks up a batch
has a different SQL text for every batch size. The drivers keep prepared statements by text (asyncpg
through SQLAlchemy's dialect: 100 per pooled connection; Python's sqlite3: 128 per connection) and
SQLAlchemy its compiled forms (500): with batches of 1–100, four or five such statements alone
overflow the caches. Each miss prepares the statement again (on PostgreSQL a round trip, a parse and
a plan, and the server's and the client's memory for it until the cache drops it), and the caches of
a long-running gateway fill up connection by connection: memory that grows for hours. A list padded
to the next power of two, by repeating its last value (which an IN ignores), leaves at most eight
texts per statement for lists of up to 128 values.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

T = TypeVar("T")


def padded(values: Iterable[T]) -> list[T]:
    """``values`` as a list whose length is a power of two, the last value repeated to fill it."""
    items = list(values)
    if len(items) < 2:
        return items
    size = 1 << (len(items) - 1).bit_length()
    return items + [items[-1]] * (size - len(items))


def padded_sorted(values: Iterable[T]) -> list[T]:
    """The distinct ``values``, sorted (a stable text for the same set), padded."""
    return padded(sorted(set(values)))  # type: ignore[type-var]
