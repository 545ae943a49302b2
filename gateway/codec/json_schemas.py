"""JSON Schemas of the messages, generated from the models into `schemas/json/`.

The schemas describe the wire body for other implementers; the models stay the authority
(code-table membership, division existence and cross-field rules are beyond JSON Schema and
are named in each schema's description). A test fails when the files drift from the models.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


from gateway.codec.messages import MESSAGE_ADAPTER, MODELS
from gateway.codec.paths import schemas_dir
from gateway.codec.wire import WIRE_VERSION

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def _finish(schema: dict[str, Any], name: str) -> dict[str, Any]:
    schema = {"$schema": SCHEMA_DIALECT, "$id": f"urn:township-gateway:codec:v{WIRE_VERSION}:{name}", **schema}
    schema.setdefault(
        "description",
        "Body of a wire message. Codes (x-code-table) must exist in schemas/codes; division codes in "
        "schemas/divisions; cross-field rules are listed in docs/codec.md.",
    )
    return schema


def generate() -> dict[str, dict[str, Any]]:
    """File name → schema, for each message kind and for the union of them."""
    out = {f"{kind}.schema.json": _finish(model.model_json_schema(), kind) for kind, model in MODELS.items()}
    out["message.schema.json"] = _finish(MESSAGE_ADAPTER.json_schema(), "message")
    out["wire.schema.json"] = _finish(
        {
            "title": "WireEnvelope",
            "type": "object",
            "properties": {"v": {"const": WIRE_VERSION}, "body": {"$ref": "message.schema.json"}},
            "required": ["v", "body"],
            "additionalProperties": False,
        },
        "wire",
    )
    return out


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def write(target: Path | None = None) -> list[Path]:
    target = target or schemas_dir() / "json"
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in generate().items():
        path = target / name
        path.write_text(render(schema), encoding="utf-8")
        written.append(path)
    return written


def drift(target: Path | None = None) -> list[str]:
    """Names of schema files missing or different from what the models generate."""
    target = target or schemas_dir() / "json"
    return [
        name
        for name, schema in generate().items()
        if not (target / name).is_file() or (target / name).read_text(encoding="utf-8") != render(schema)
    ]


__all__ = ["drift", "generate", "write"]
