"""The one error type the codec raises, carrying every problem found with its field path."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem in one field. `path` is dotted from the message kind, e.g. `feedback.children.sons`."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}" if self.path else self.reason


class CodecError(ValueError):
    """A record or a wire payload was refused. `errors` lists every problem, not only the first."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors: list[FieldError] = list(errors) or [FieldError("", "invalid")]
        super().__init__("\n".join(str(e) for e in self.errors))

    @classmethod
    def single(cls, path: str, reason: str) -> CodecError:
        return cls([FieldError(path, reason)])

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)
