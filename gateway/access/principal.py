"""A signed-in caller: who, in which role, over which part of the country."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    """Separated duties (等保 2.0 level 3): nobody both administers accounts and reads the audit trail."""

    CLERK = "clerk"  # one township: enters, sends, answers (乡镇)
    SUPERVISOR = "supervisor"  # a region by division prefix: watches counts, deadlines, scores (县/市/省)
    OPERATOR = "operator"  # queues, outbox, quarantine, health: no personal data
    AUDITOR = "auditor"  # the audit trail only
    ADMIN = "admin"  # accounts only


# The length of the scope code each role takes: a clerk's township (9 digits), a supervisor's
# province, city or county prefix (2, 4 or 6 digits); the other roles have no region.
SCOPE_LENGTHS: dict[Role, frozenset[int]] = {
    Role.CLERK: frozenset({9}),
    Role.SUPERVISOR: frozenset({2, 4, 6}),
    Role.OPERATOR: frozenset({0}),
    Role.AUDITOR: frozenset({0}),
    Role.ADMIN: frozenset({0}),
}


@dataclass(frozen=True)
class Principal:
    username: str
    role: Role
    scope: str = ""  # a township code (clerk), a division prefix (supervisor), "" otherwise
    session_id: str | None = None  # the session or API token the call came with (for the audit trail)

    def covers_township(self, code: str) -> bool:
        """Whether ``code`` is this principal's township (clerk) or lies in its region (supervisor)."""
        if self.role is Role.CLERK:
            return code == self.scope
        if self.role is Role.SUPERVISOR:
            return code.startswith(self.scope)
        return False

    def covers_region(self, prefix: str) -> bool:
        """Whether the region ``prefix`` (2/4/6/9 digits) lies inside this principal's scope."""
        if self.role is Role.SUPERVISOR:
            return prefix.startswith(self.scope)
        if self.role is Role.CLERK:
            return prefix == self.scope
        return False
