"""Turn pydantic's validation errors into the codec's `path: reason` list, in plain words."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError

from gateway.codec.errors import CodecError, FieldError
from gateway.codec.rules import RULES_ERROR

_TYPE_WORDS = {
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "int_from_float": "must be an integer",
    "bool_type": "must be true or false",
    "date_type": "must be a date YYYY-MM-DD",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "missing": "required",
    "extra_forbidden": "unknown field",
    "frozen_instance": "cannot be changed",
}


def _reason(err: Any) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind in _TYPE_WORDS:
        return _TYPE_WORDS[kind]
    if kind == "greater_than_equal":
        return f"must be ≥ {ctx['ge']}"
    if kind == "less_than_equal":
        return f"must be ≤ {ctx['le']}"
    if kind == "string_too_short":
        return "must not be empty" if ctx.get("min_length") == 1 else f"must have at least {ctx['min_length']} characters"
    if kind == "string_too_long":
        return f"must have at most {ctx['max_length']} characters"
    if kind == "string_pattern_mismatch":
        return f"has the wrong form (expected {ctx['pattern']})"
    if kind == "literal_error":
        return f"must be one of {ctx['expected']}"
    if kind == "union_tag_invalid":
        return f"unknown kind {ctx.get('tag')!r} (expected query, notification or feedback)"
    if kind == "union_tag_not_found":
        return "required (query, notification or feedback)"
    if kind == "codec":
        return str(ctx["reason"])
    if kind.endswith("_type"):
        return f"has the wrong type ({kind.removesuffix('_type')} expected)"
    return str(err["msg"])


def _join(parts: Iterable[Any]) -> str:
    return ".".join(str(p) for p in parts)


def field_errors(exc: ValidationError, prefix: tuple[str, ...] = ()) -> list[FieldError]:
    out: list[FieldError] = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = prefix + tuple(err["loc"])
        kind = err["type"]
        if kind == RULES_ERROR:
            for _rule, sub, reason in err["ctx"]["violations"]:
                out.append(FieldError(_join(loc + (sub,)), reason))
            continue
        if kind in ("union_tag_invalid", "union_tag_not_found"):
            loc = loc + ("kind",)
        out.append(FieldError(_join(loc), _reason(err)))
    return out


def codec_error_from(exc: ValidationError, prefix: tuple[str, ...] = ()) -> CodecError:
    return CodecError(field_errors(exc, prefix))
