"""What each role may do: the one table. A route that declares no permission does not start."""

from __future__ import annotations

from enum import StrEnum

from gateway.access.principal import Role


class Permission(StrEnum):
    PUBLIC = "public"  # /health and the sign-in routes only
    SIGNED_IN = "signed_in"  # any signed-in user: the start page, sign-out, own account
    NODE_SUBMIT = "node.submit"  # send queries and notifications as the clerk's township
    NODE_READ = "node.read"  # the township's inbox, sent messages, cases, reminders, tasks (decrypted)
    NODE_ANSWER = "node.answer"  # answer a received query or notification
    NODE_WITHDRAW = "node.withdraw"  # withdraw a query the township sent, before any reply
    NODE_IMPORT = "node.import"  # upload the monthly information cards
    REGION_READ = "region.read"  # counts, deadlines, overdue and 漏管 lists, scores, reports of a region
    OPERATE = "operate"  # queues, outbox, quarantine (re-drive), stats: no personal data
    AUDIT_READ = "audit.read"  # the audit trail
    ACCOUNTS_MANAGE = "accounts.manage"  # users and API tokens


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.CLERK: frozenset({
        Permission.SIGNED_IN, Permission.NODE_SUBMIT, Permission.NODE_READ, Permission.NODE_ANSWER,
        Permission.NODE_IMPORT, Permission.NODE_WITHDRAW,
    }),
    Role.SUPERVISOR: frozenset({Permission.SIGNED_IN, Permission.REGION_READ}),
    Role.OPERATOR: frozenset({Permission.SIGNED_IN, Permission.OPERATE}),
    Role.AUDITOR: frozenset({Permission.SIGNED_IN, Permission.AUDIT_READ}),
    Role.ADMIN: frozenset({Permission.SIGNED_IN, Permission.ACCOUNTS_MANAGE}),
}


def allows(role: Role, permission: Permission) -> bool:
    return permission is Permission.PUBLIC or permission in ROLE_PERMISSIONS[role]
