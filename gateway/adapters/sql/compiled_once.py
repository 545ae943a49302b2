"""Statements compiled once and kept, keyed by the statement object (and the parameters' keys).

SQLAlchemy's own compiled cache keys a statement by its structure, which costs a walk of the
statement on every execution. The paths that run a statement straight on the driver (direct_pg.py,
sqlite_hop.py) take only statements built once — at import or in a store's constructor — so the
object's identity is its key; the object is kept with its compiled form, so an id is never reused
while its entry lives.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

from sqlalchemy.sql.elements import ClauseElement

P = TypeVar("P")
_KEPT = 512


class CompiledOnce(Generic[P]):
    def __init__(self, compile: Callable[..., P], kept: int = _KEPT) -> None:
        self._compile = compile
        self._kept = kept
        self._plans: OrderedDict[tuple[int, tuple[str, ...]], tuple[ClauseElement, P]] = OrderedDict()

    def get(self, statement: ClauseElement, keys: tuple[str, ...] = ()) -> P:
        """The compiled form of ``statement`` (``compile(statement, keys)`` when ``keys`` are given)."""
        key = (id(statement), keys)
        found = self._plans.get(key)
        if found is not None and found[0] is statement:
            self._plans.move_to_end(key)
            return found[1]
        plan = self._compile(statement, keys) if keys else self._compile(statement)
        self._plans[key] = (statement, plan)
        if len(self._plans) > self._kept:
            self._plans.popitem(last=False)
        return plan
