"""A principal's view of the data: what routes use instead of the raw stores.

A ``NodeView`` is one township's messages as seen by a principal allowed that township: every read
and write goes through it, so a route cannot reach another township's rows, and every decrypted
record it hands out, every submission and answer, is written to the audit trail (one batched insert
for a list). The township check in ``require`` comes first; the view checks again, so a route that
builds a view for a code from somewhere else than its path still cannot leave the principal's scope.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException, Request

from gateway.access.audit import Action, AuditEntry
from gateway.access.deps import source_address
from gateway.access.paging import Cursor, MessagePage
from gateway.access.principal import Principal
from gateway.exchange.records import Direction, Status, StoredMessage


class OutOfScope(HTTPException):
    def __init__(self, code: str) -> None:
        super().__init__(403, f"township {code} is outside your scope")


@dataclass
class NodeView:
    gateway: Any  # gateway.bootstrap.Gateway (not imported: bootstrap imports this package)
    principal: Principal
    code: str
    source: str = ""

    @classmethod
    def of(cls, gateway: Any, principal: Principal, request: Request | None, code: str) -> NodeView:
        if not principal.covers_township(code):
            raise OutOfScope(code)
        gateway.service.node(code)  # 404 for a township this gateway does not host
        return cls(gateway, principal, code, source_address(request) if request is not None else "")

    def _entry(self, action: str, object_id: str = "", result: str = "ok", detail: str = "") -> AuditEntry:
        return AuditEntry(action, self.principal.username, self.principal.role.value, self.source,
                          object_id=object_id, township=self.code, result=result, detail=detail)

    async def _audit(self, entries: list[AuditEntry]) -> None:
        access = getattr(self.gateway, "access", None)
        if access is not None and entries:
            await access.audit.record_many(entries)

    async def list_messages(self, direction: Direction, *, limit: int = 100) -> list[StoredMessage]:
        return await self.gateway.store.list_messages(self.code, direction, limit=limit)

    async def message_page(self, direction: Direction, *, limit: int, after: Cursor | None = None,
                           statuses: frozenset[Status] | None = None,
                           except_kinds: frozenset[str] = frozenset()) -> MessagePage:
        """A page of this township's messages, newest first (``gateway.access.paging``)."""
        return await self.gateway.store.message_page(self.code, direction, limit=limit, after=after,
                                                     statuses=statuses, except_kinds=except_kinds)

    async def find(self, direction: Direction, message_id: str) -> StoredMessage | None:
        return await self.gateway.store.find(self.code, direction, message_id)

    async def audit_reads(self, messages: Sequence[StoredMessage]) -> None:
        """One audit record per decrypted record shown, in one insert."""
        await self._audit([self._entry(Action.READ_RECORD, m.message_id, detail=m.kind) for m in messages])

    async def submit(self, payload: Mapping[str, Any]) -> StoredMessage:
        kind = str(payload.get("kind", "query"))
        try:
            stored = await self.gateway.service.submit(self.code, payload)
        except Exception as exc:  # an exchange or codec refusal, recorded by its kind, never its values
            await self._audit([self._entry(Action.SUBMIT, result="refused", detail=f"{kind}: {type(exc).__name__}")])
            raise
        await self._audit([self._entry(Action.SUBMIT, stored.message_id, detail=kind)])
        return stored

    async def answer(self, message_id: str, payload: Mapping[str, Any]) -> StoredMessage:
        try:
            stored = await self.gateway.service.answer(self.code, message_id, payload)
        except Exception as exc:
            await self._audit([self._entry(Action.ANSWER, message_id, result="refused", detail=type(exc).__name__)])
            raise
        await self._audit([self._entry(Action.ANSWER, message_id, detail=f"feedback {stored.message_id}")])
        return stored

    async def withdraw(self, message_id: str) -> StoredMessage:
        try:
            stored = await self.gateway.service.withdraw(self.code, message_id)
        except Exception as exc:
            await self._audit([self._entry(Action.WITHDRAW, message_id, result="refused", detail=type(exc).__name__)])
            raise
        await self._audit([self._entry(Action.WITHDRAW, message_id, detail=f"withdrawal {stored.message_id}")])
        return stored

    async def audit(self, action: str, object_id: str = "", *, result: str = "ok", detail: str = "") -> None:
        await self._audit([self._entry(action, object_id, result, detail)])
