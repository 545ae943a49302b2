"""Workflow values to and from JSON, for storage. The domain objects stay plain dataclasses."""

from __future__ import annotations

from pydantic import TypeAdapter

from gateway.workflow.accounting import AccountingSnapshot
from gateway.workflow.cases import Case
from gateway.workflow.reminders import Reminder
from gateway.workflow.reverification import ReverificationTask
from gateway.workflow.strikes import MissedManagementCharge

CASE = TypeAdapter(Case)
CHARGE = TypeAdapter(MissedManagementCharge)
TASK = TypeAdapter(ReverificationTask)
SNAPSHOT = TypeAdapter(AccountingSnapshot)
REMINDER = TypeAdapter(Reminder)
