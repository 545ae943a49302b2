"""The clerks' HTML forms: which fields each message has, their Chinese labels and code-table drop-downs,
how posted fields become the codec's JSON record, and how the codec's errors find their fields again.

A form field's name is the record's dotted path without the message kind (``person.citizen_id``), the
same path the codec reports an error at (``query.person.citizen_id``), so every error is shown beside
the field it is about; an error at a path with no field on the form is shown above the form.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.codec import code_tables
from gateway.codec.errors import FieldError
from gateway.web.reasons_zh import in_chinese


@dataclass(frozen=True)
class Field:
    name: str  # dotted path in the record
    label: str
    type: str = "text"  # text, date, number, select, checkbox, textarea, bool, hidden
    table: str | None = None  # code table of a select
    required: bool = False
    wide: bool = False

    @property
    def options(self) -> list[tuple[str, str]]:
        if self.type == "bool":
            return [("true", "是"), ("false", "否")]
        if self.table is None:
            return []
        return [(c.code, f"{c.code} {c.zh}") for c in code_tables.table(self.table).codes.values()]

    @property
    def dom_id(self) -> str:
        return "f-" + self.name.replace(".", "-")


PERSON = [
    Field("person.name", "姓名", required=True),
    Field("person.citizen_id", "公民身份号码", required=True),
    Field("person.birth_date", "出生日期", "date"),
    Field("person.sex", "性别", "select", "sex"),
    Field("person.ethnicity", "民族", "select", "ethnicity"),
    Field("person.marital_status", "婚姻状况", "select", "marital_status"),
    Field("person.id_check_confirmed", "身份号码未通过校验，确认照发", "checkbox"),
]

QUERY_FIELDS = [
    Field("registration_township", "户籍地乡镇（街道）代码（9位）", required=True),
    *PERSON,
    Field("about_birth", "查询生育信息（5个工作日内反馈）", "checkbox"),
    Field("registration_address", "户籍地详细地址", wide=True),
    Field("current_address", "现居住地详细地址", wide=True),
    Field("remarks", "备注", "textarea", wide=True),
    Field("resubmission_of", "更正重报的原查询编号", "hidden"),
]

NOTIFICATION_FIELDS = [
    Field("notification_kind", "通报类别", "select", "notification_kind", required=True),
    Field("registration_township", "户籍地乡镇（街道）代码（9位）", required=True),
    Field("event_date", "事件日期", "date", required=True),
    *PERSON,
    Field("registration_address", "户籍地详细地址", wide=True),
    Field("current_address", "现居住地详细地址", wide=True),
    Field("child_sex", "婴儿性别", "select", "sex"),
    Field("pregnancy_outcome", "妊娠结局", "select", "pregnancy_outcome"),
    Field("policy_status", "政策属性", "select", "policy_status"),
    Field("contraception", "避孕措施", "select", "contraception"),
    Field("pregnancy_weeks", "孕周", "number"),
    Field("pregnant", "是否怀孕", "bool"),
    Field("marriage_certificate_no", "《流动人口婚育证明》编号"),
    Field("remarks", "备注", "textarea", wide=True),
]

# Rule 四: the verified fields of a *found* answer.
FOUND_FIELDS = [
    Field("birth_date", "出生日期", "date"),
    Field("household_type", "户口性质", "select", "household_type"),
    Field("husband_name", "丈夫姓名"),
    Field("husband_residence_code", "丈夫现居住地代码"),
    Field("one_child_certificate_date", "独生子女父母光荣证发证日期", "date"),
    Field("pregnancy_policy_status", "现孕政策属性", "select", "policy_status"),
    Field("children.sons", "男孩数", "number"),
    Field("children.daughters", "女孩数", "number"),
    Field("children.youngest_birth_date", "最小孩子出生日期", "date"),
    Field("left_on", "外出日期", "date"),
    Field("marriage_certificate_no", "《流动人口婚育证明》编号"),
]
# Rule 六: 查无此人 needs a reason, and remarks.
NOT_FOUND_FIELDS = [
    Field("not_found_reason", "查无此人原因", "select", "not_found_reason"),
]
REMARKS = Field("remarks", "备注（查无此人时必填）", "textarea", wide=True)
FEEDBACK_FIELDS = [*FOUND_FIELDS, *NOT_FOUND_FIELDS, REMARKS]


def record_from_form(fields: list[Field], form: Mapping[str, Any]) -> dict[str, Any]:
    """The posted fields as the codec's JSON record: empty fields left out, numbers and flags typed.

    A number that is not one is passed on as typed, so the codec refuses it at its field with its reason.
    """
    record: dict[str, Any] = {}
    for f in fields:
        raw = form.get(f.name)
        if f.type == "checkbox":
            if raw:
                _put(record, f.name, True)
            continue
        text = str(raw).strip() if raw is not None else ""
        if not text:
            continue
        value: Any = text
        if f.type == "number":
            value = int(text) if text.isdigit() else text
        elif f.type == "bool":
            value = text == "true"
        _put(record, f.name, value)
    return record


def _put(record: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for p in parents:
        record = record.setdefault(p, {})
    record[last] = value


def values_of(record: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """A record (e.g. an earlier query) as form values, to pre-fill a form."""
    out: dict[str, str] = {}
    for key, value in record.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(values_of(value, path + "."))
        elif isinstance(value, bool):
            out[path] = "true" if value else ""
        elif value is not None:
            out[path] = str(value)
    return out


def errors_by_field(fields: list[Field], errors: list[FieldError]) -> tuple[dict[str, list[str]], list[str]]:
    """The codec's errors at the form's fields; the rest (no field on the form) for the top of the form."""
    names = {f.name for f in fields}
    at: dict[str, list[str]] = {}
    other: list[str] = []
    for e in errors:
        path = e.path.split(".", 1)[1] if "." in e.path and e.path.split(".", 1)[0] in ("query", "notification", "feedback") else e.path
        if path in ("query", "notification", "feedback"):
            path = ""
        # An error about a group (``children``) goes to its first field.
        target = path if path in names else next((n for n in names if path and n.startswith(path + ".")), None)
        reason = in_chinese(e.reason)
        if target is None:
            other.append(f"{path}: {reason}" if path else reason)
        else:
            at.setdefault(target, []).append(reason)
    return at, other
