"""Tracking: applies the workflow rules (gateway/workflow) to the messages the exchange carries."""
