"""The one error type of the security layer: every refusal carries a stable reason code."""

from __future__ import annotations


class EnvelopeError(Exception):
    """An envelope refused. ``reason`` is a stable machine code; ``detail`` is for the operator.

    Neither ever contains key material or plaintext.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
