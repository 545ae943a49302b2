"""Statements compiled once and kept, keyed by the statement object (and the parameters' keys), and a
call's arguments laid out for one: what direct_pg.py, sqlite_hop.py and sqlite_inline.py share.

SQLAlchemy's own compiled cache keys a statement by its structure, which costs a walk of the
statement on every execution. The paths that run a statement straight on the driver (direct_pg.py,
sqlite_hop.py) take only statements built once — at import or in a store's constructor — so the
object's identity is its key; the object is kept with its compiled form, so an id is never reused
while its entry lives.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar

from sqlalchemy.sql.compiler import SQLCompiler
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


def bound_values(compiled: SQLCompiler) -> dict[str, Any]:
    """The values bound into a statement itself (``text(…).bindparams(x=…)``, a literal in a WHERE), by
    parameter name: what a call's parameters are laid over."""
    return {name: bind.effective_value for name, bind in compiled.binds.items()
            if bind.value is not None or bind.callable is not None}


def positional_args(names: Sequence[str], processors: Sequence[Callable[[Any], Any] | None],
                    bound: Mapping[str, Any], params: Mapping[str, Any]) -> list[Any]:
    """A call's arguments in placeholder order, each through the dialect's conversion, if it has one."""
    given = {**bound, **params} if bound else params
    return [given[name] if processor is None else processor(given[name]) for name, processor in zip(names, processors)]
