"""The JSON Schemas in schemas/json are what the models generate (regenerate: gateway codec schemas)."""

from __future__ import annotations

import json

from gateway.codec import json_schemas
from gateway.codec.paths import schemas_dir


def test_schema_files_have_not_drifted_from_the_models() -> None:
    assert json_schemas.drift() == [], "run `gateway codec schemas` and commit schemas/json"


def test_there_is_one_schema_per_kind_plus_the_union_and_the_envelope() -> None:
    names = sorted(p.name for p in (schemas_dir() / "json").glob("*.schema.json"))
    assert names == ["feedback.schema.json", "message.schema.json", "notification.schema.json",
                     "query.schema.json", "wire.schema.json", "withdrawal.schema.json"]


def test_schemas_forbid_unknown_fields_and_name_their_code_tables() -> None:
    query = json.loads((schemas_dir() / "json" / "query.schema.json").read_text(encoding="utf-8"))
    assert query["additionalProperties"] is False
    assert "x-code-table" in json.dumps(query)
