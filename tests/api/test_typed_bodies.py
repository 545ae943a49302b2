"""The API surface, typed: request bodies in the spec are the codec's models with examples the codec
accepts; /docs is served from this gateway alone; refusals keep the codec's field paths."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone

import httpx
import pytest

from gateway.access.principal import Role
from gateway.api.app import create_app
from gateway.clock import FakeClock
from gateway.codec.messages import Feedback, Notification, Query
from gateway.codec.paths import schemas_dir
from gateway.exchange.records import Direction
from tests.access.helpers import bearer_token
from tests.gateways import REGISTRATION, RESIDENCE, sample_query, running_gateway

QUERIES = "/nodes/{code}/queries"
NOTIFICATIONS = "/nodes/{code}/notifications"
FEEDBACK = "/nodes/{code}/inbox/{message_id}/feedback"


@pytest.fixture
async def gateway():
    # The examples follow the day the spec is built (a notification's event lies in the current
    # statistical year), so this gateway runs on today's time.
    async with running_gateway(clock=FakeClock(datetime.now(timezone.utc))) as gw:
        yield gw


def without_null_defaults(schema: object) -> object:
    if isinstance(schema, dict):
        return {k: without_null_defaults(v) for k, v in schema.items() if not (k == "default" and v is None)}
    if isinstance(schema, list):
        return [without_null_defaults(v) for v in schema]
    return schema


def body_of(spec: dict, path: str) -> dict:
    return spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]


def test_each_body_in_the_spec_is_the_codec_model_with_its_fields_and_examples(gateway):
    spec = create_app(gateway).openapi()
    for path, model, examples in ((QUERIES, Query, {"query"}), (NOTIFICATIONS, Notification, {"pregnancy"}),
                                  (FEEDBACK, Feedback, {"found", "not_found"})):
        body = body_of(spec, path)
        assert set(body["schema"]["properties"]) == set(model.model_fields), path
        assert body["schema"]["title"] == model.__name__
        assert set(body["examples"]) == examples
    assert body_of(spec, QUERIES)["schema"]["properties"]["person"] == {"$ref": "#/components/schemas/Person"}
    # The same schema the codec publishes in schemas/json: only the place of the definitions differs,
    # and FastAPI leaves out `"default": null`.
    published = json.loads((schemas_dir() / "json" / "query.schema.json").read_text(encoding="utf-8"))["$defs"]
    for name in ("Person", "LocalFacts"):
        shown = json.dumps(spec["components"]["schemas"][name], sort_keys=True, ensure_ascii=False)
        assert json.loads(shown.replace("#/components/schemas/", "#/$defs/")) == without_null_defaults(published[name])
    # What the route fills in is not asked of the client.
    assert "in_reply_to" not in body_of(spec, FEEDBACK)["schema"]["required"]
    assert "kind" not in body_of(spec, QUERIES)["schema"]["required"]


async def test_every_example_in_the_spec_is_accepted_as_posted(gateway):
    spec = create_app(gateway).openapi()
    clerk = {"Authorization": f"Bearer {await bearer_token(gateway, Role.CLERK, RESIDENCE)}"}
    answerer = {"Authorization": f"Bearer {await bearer_token(gateway, Role.CLERK, REGISTRATION)}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(gateway)), base_url="http://gw") as http:
        for path in (QUERIES, NOTIFICATIONS):
            for name, example in body_of(spec, path)["examples"].items():
                response = await http.post(path.format(code=RESIDENCE), json=example["value"], headers=clerk)
                assert response.status_code == 202, (name, response.text)
        for name, example in body_of(spec, FEEDBACK)["examples"].items():
            query = await http.post(QUERIES.format(code=RESIDENCE), json=sample_query(), headers=clerk)
            await gateway.relay.run_once()
            assert await gateway.store.find(REGISTRATION, Direction.IN, query.json()["message_id"]) is not None
            response = await http.post(FEEDBACK.format(code=REGISTRATION, message_id=query.json()["message_id"]),
                                       json=example["value"], headers=answerer)
            assert response.status_code == 202, (name, response.text)
            assert response.json()["result"] == example["value"]["result"]


async def test_a_refused_body_keeps_the_codec_field_path_in_the_422(gateway):
    clerk = {"Authorization": f"Bearer {await bearer_token(gateway, Role.CLERK, RESIDENCE)}"}
    query = sample_query()
    query["person"] = {**query["person"], "citizen_id": "120101199005170246"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(gateway)), base_url="http://gw") as http:
        bad = await http.post(QUERIES.format(code=RESIDENCE), json=query, headers=clerk)
        not_an_object = await http.post(QUERIES.format(code=RESIDENCE), json=["query"], headers=clerk)
    assert bad.status_code == 422
    assert [e["loc"] for e in bad.json()["detail"]] == [["body", "query", "person", "citizen_id"]]
    assert not_an_object.status_code == 422 and not_an_object.json()["detail"][0]["loc"] == ["body"]


async def test_docs_reference_no_external_host_and_their_assets_are_served_here(gateway):
    token = await bearer_token(gateway, Role.CLERK, RESIDENCE)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(gateway)), base_url="http://gw") as http:
        anonymous = await http.get("/docs")
        page = await http.get("/docs", headers={"Authorization": f"Bearer {token}"})
        urls = re.findall(r"""(?:href|src)=["']([^"']+)["']|url: ?["']([^"']+)["']""", page.text)
        assets = [await http.get(a or b) for a, b in urls if (a or b).startswith("/docs/assets/")]
        spec = await http.get("/openapi.json", headers={"Authorization": f"Bearer {token}"})
        spec_anonymous = await http.get("/openapi.json")
    assert anonymous.status_code == 303
    assert page.status_code == 200 and "swagger-ui" in page.text
    assert "://" not in page.text and "//cdn" not in page.text
    found = {a or b for a, b in urls}
    assert {"/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css", "/openapi.json"} <= found
    assert all(u.startswith("/") and not u.startswith("//") for u in found)
    assert len(assets) >= 3 and all(r.status_code == 200 and len(r.content) > 1000 for r in assets)
    assert spec.status_code == 200 and spec_anonymous.status_code == 401
