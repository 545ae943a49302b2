"""Alembic migration scripts of the gateway's schema; run them through gateway.adapters.sql.migrate."""
