"""Request bodies as the OpenAPI spec shows them: the codec's models, with examples.

The handlers still receive the JSON object as a plain dict and validate it with the codec
(``parse_message``), so a clerk keeps the codec's precise field paths in a 422
(``["body", "query", "person", "citizen_id"]``) and the labels the import takes (``女``, ``汉族``).
``CodecSchema`` only lends the codec model's JSON Schema to the body: the same schema that
``schemas/json/*.schema.json`` is generated from, so the spec and the files cannot differ.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import Body
from pydantic import BaseModel, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from gateway.codec import rules
from gateway.codec.messages import Feedback, Notification, Query

__all__ = ["QueryBody", "NotificationBody", "FeedbackBody", "examples"]


class CodecSchema:
    """Annotated metadata: the body's schema is ``model``'s, minus the fields the route fills in."""

    def __init__(self, model: type[BaseModel], *, filled_by_route: tuple[str, ...], note: str) -> None:
        self.model = model
        self.filled_by_route = filled_by_route
        self.note = note

    def __get_pydantic_json_schema__(self, _core: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        reference = handler(self.model.__pydantic_core_schema__)
        schema = handler.resolve_ref_schema(reference)  # the model's entry in components/schemas
        schema["required"] = [f for f in schema.get("required", []) if f not in self.filled_by_route]
        schema["description"] = f"{schema.get('description', '').strip()}\n\n{self.note}".strip()
        return reference


def examples(today: date) -> dict[str, dict[str, dict[str, Any]]]:
    """Records the codec accepts when submitted on ``today`` (tests post each one and get 202).

    The notification's event lies in the statistical year of ``today`` (rule
    ``event_in_statistical_year``), so its date follows the day the spec is built."""
    person = {
        # 120101 (和平区, Tianjin) + 1990-05-17 + sequence 024 (even: a woman) + check character 5
        "citizen_id": "120101199005170245",
        "name": "王秀英",
        "birth_date": "1990-05-17",
        "sex": "2",
        "ethnicity": "汉族",  # a label, as in the import: the record keeps the code 01
    }
    query = {
        "kind": "query",
        "residence_township": "110101001",
        "registration_township": "120101001",
        "person": person,
        "current_address": "幸福路1号",
    }
    notification = {
        "kind": "notification",
        "notification_kind": "4",
        "residence_township": "110101001",
        "registration_township": "120101001",
        "person": person,
        "event_date": rules.statistical_year(today)[0].isoformat(),
        "current_address": "幸福路1号",
        "pregnancy_weeks": 12,
    }
    found = {
        "result": "found",
        "birth_date": "1990-05-17",
        "household_type": "1",
        "husband_name": "李伟",
        "husband_residence_code": "120101001",
        "children": {"sons": 1, "daughters": 0, "youngest_birth_date": "2015-03-02"},
        # rule 四: every field is given or listed here as not applying to her
        "not_applicable": ["one_child_certificate_date", "pregnancy_policy_status", "left_on", "marriage_certificate_no"],
    }
    not_found = {
        "result": "not_found",
        "not_found_reason": "1",
        # rule 十一: database, cards, police archive; 第二十五条 (地址有误): 民政 besides 公安 (多方核实)
        "checked_sources": ["4", "5", "1", "2"],
        "remarks": "门牌号不存在",
    }
    return {
        "query": {"query": {"summary": "a query about a woman registered in Tianjin", "value": query}},
        "notification": {"pregnancy": {"summary": "notification kind ④: a pregnancy at the residence place",
                                       "value": notification}},
        "feedback": {
            "found": {"summary": "found: every rule 四 field, or listed in not_applicable", "value": found},
            "not_found": {"summary": "查无此人: a reason, remarks and the sources checked", "value": not_found},
        },
    }


_EXAMPLES = examples(rules.clock())
_LABELS = ("Code fields also take the labels the spreadsheet import takes (`女`, `汉族`); "
           "the record keeps the code.")

QueryBody = Annotated[
    dict[str, Any],
    CodecSchema(Query, filled_by_route=("kind", "residence_township"),
                note=f"`kind` defaults to `query`, `residence_township` to this township. {_LABELS}"),
    Body(title="Query", description="a query about a person, validated by the codec", openapi_examples=_EXAMPLES["query"]),
]
NotificationBody = Annotated[
    dict[str, Any],
    CodecSchema(Notification, filled_by_route=("kind", "residence_township", "registration_township"),
                note="`kind` defaults to `notification`; the sending side's township (residence, or registration "
                     f"with `direction: to_residence`) defaults to this township. {_LABELS}"),
    Body(title="Notification", description="a notification (通报), validated by the codec", openapi_examples=_EXAMPLES["notification"]),
]
FeedbackBody = Annotated[
    dict[str, Any],
    CodecSchema(Feedback, filled_by_route=("kind", "in_reply_to"),
                note=f"`kind` and `in_reply_to` are taken from the route. {_LABELS}"),
    Body(title="Feedback", description="the answer (反馈) to a received query or notification, validated by the codec",
         openapi_examples=_EXAMPLES["feedback"]),
]
