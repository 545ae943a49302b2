"""Refusals the exchange gives to a clerk's request (the HTTP API maps them to status codes)."""

from __future__ import annotations

from gateway.codec.errors import FieldError


class ExchangeError(Exception):
    status = 400

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class UnknownNode(ExchangeError):
    status = 404


class UnknownMessage(ExchangeError):
    status = 404


class AlreadyAnswered(ExchangeError):
    """A second answer to one query: the database let another answer win; ``answered_by`` names it."""

    status = 409

    def __init__(self, detail: str, answered_by: str | None = None) -> None:
        super().__init__(detail)
        self.answered_by = answered_by


class Withdrawn(ExchangeError):
    """The residence township withdrew the query: it can be neither answered nor withdrawn again."""

    status = 409


class InvalidRequest(ExchangeError):
    """The record is well-formed but does not fit this exchange; carries field paths like CodecError."""

    status = 422

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(str(e) for e in errors))
        self.errors = errors
