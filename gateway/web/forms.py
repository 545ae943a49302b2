"""The clerks' HTML forms: which fields each message has, their Chinese labels and code-table drop-downs,
how posted fields become the codec's JSON record, and how the codec's errors find their fields again.

A form field's name is the record's dotted path without the message kind (``person.citizen_id``), the
same path the codec reports an error at (``query.person.citizen_id``), so every error is shown beside
the field it is about; an error at a path with no field on the form is shown above the form.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.codec import code_tables
from gateway.codec.errors import FieldError
from gateway.web.reasons_zh import in_chinese


NOT_APPLICABLE = "not_applicable"  # the form's and the record's name of rule 四's "不适用" list


@dataclass(frozen=True)
class Field:
    name: str  # dotted path in the record
    label: str
    # text, date, number, select, checkbox, textarea, bool, hidden; choice (a select of `choices`, no blank);
    # checkboxes (a list of codes of `table`, one checkbox each)
    type: str = "text"
    table: str | None = None  # code table of a select or of checkboxes
    required: bool = False
    wide: bool = False
    may_not_apply: bool = False  # rule 四: a "不适用" checkbox, listing the field in not_applicable
    choices: tuple[tuple[str, str], ...] = ()

    @property
    def options(self) -> list[tuple[str, str]]:
        if self.type == "bool":
            return [("true", "是"), ("false", "否")]
        if self.choices:
            return list(self.choices)
        if self.table is None:
            return []
        if self.type == "checkboxes":
            return [(c.code, c.zh) for c in code_tables.table(self.table).codes.values()]
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
    Field("registration_address", "户籍地详细地址（写到村（居）委会）", wide=True),
    Field("current_address", "现居住地详细地址", wide=True),
    Field("remarks", "备注", "textarea", wide=True),
    Field("resubmission_of", "更正重报的原查询编号", "hidden"),
]

DIRECTIONS = (("to_registration", "向户籍地通报"), ("to_residence", "向现居住地通报"))
NOTIFICATION_FIELDS = [
    Field("notification_kind", "通报类别", "select", "notification_kind", required=True),
    # 向现居住地通报 is sent by the registration township (seed 002, 第三十一条(二)4); the service checks the route.
    Field("direction", "通报方向", "choice", choices=DIRECTIONS, required=True),
    Field("registration_township", "户籍地乡镇（街道）代码（9位，向户籍地通报时填写）"),
    Field("residence_township", "现居住地乡镇（街道）代码（9位，向现居住地通报时填写）"),
    Field("event_date", "事件日期", "date", required=True),
    Field("learned_on", "获知日期（不填即为事件日期）", "date"),
    *PERSON,
    Field("registration_address", "户籍地详细地址（写到村（居）委会）", wide=True),
    Field("current_address", "现居住地详细地址", wide=True),
    Field("child_sex", "婴儿性别", "select", "sex"),
    Field("pregnancy_outcome", "妊娠结局", "select", "pregnancy_outcome"),
    Field("policy_status", "政策属性", "select", "policy_status"),
    Field("contraception", "避孕措施", "select", "contraception"),
    Field("pregnancy_weeks", "孕周", "number"),
    Field("pregnant", "是否怀孕", "bool"),
    Field("marriage_certificate_no", "《流动人口婚育证明》编号"),
    Field("marriage_certificate_issued_on", "婚育证明发证日期", "date"),
    Field("remarks", "备注", "textarea", wide=True),
]

# Rule 四: the verified fields of a *found* answer. Each one the codec may accept as not applicable
# (RULE_FOUR_FIELDS) has a "不适用" checkbox: a found answer gives every field or says it does not apply.
FOUND_FIELDS = [
    Field("birth_date", "出生日期", "date"),
    Field("household_type", "户口性质", "select", "household_type", may_not_apply=True),
    Field("husband_name", "丈夫姓名", may_not_apply=True),
    Field("husband_residence_code", "丈夫现居住地代码", may_not_apply=True),
    Field("one_child_certificate_date", "独生子女父母光荣证发证日期", "date", may_not_apply=True),
    Field("pregnancy_policy_status", "现孕政策属性", "select", "policy_status", may_not_apply=True),
    Field("children.sons", "男孩数", "number"),
    Field("children.daughters", "女孩数", "number"),
    Field("children.youngest_birth_date", "最小孩子出生日期（有子女时必填）", "date"),
    Field("left_on", "外出日期", "date", may_not_apply=True),
    Field("marriage_certificate_no", "《流动人口婚育证明》编号", may_not_apply=True),
    Field("marriage_certificate_issued_on", "婚育证明发证日期（填写编号时必填）", "date"),
]
# Rule 六: 查无此人 needs a reason, and remarks; 第二十五条 / rule 十一: the sources checked.
NOT_FOUND_FIELDS = [
    Field("not_found_reason", "查无此人原因", "select", "not_found_reason"),
    Field("checked_sources", "已核查的来源（流动人口数据库、育龄妇女信息卡、公安户籍均须核查；地址有误、姓名有误时另须民政或卫生，或上级数据库）", "checkboxes", "checked_source", wide=True),
]
REMARKS = Field("remarks", "备注（查无此人时必填）", "textarea", wide=True)
FEEDBACK_FIELDS = [*FOUND_FIELDS, *NOT_FOUND_FIELDS, REMARKS]


def record_from_form(fields: list[Field], form: Mapping[str, Any]) -> dict[str, Any]:
    """The posted fields as the codec's JSON record: empty fields left out, numbers and flags typed.

    A number that is not one is passed on as typed, so the codec refuses it at its field with its reason.
    """
    record: dict[str, Any] = {}
    not_applicable = _list_of(form, NOT_APPLICABLE)
    for f in fields:
        raw = form.get(f.name)
        if f.type == "checkbox":
            if raw:
                _put(record, f.name, True)
            continue
        if f.type == "checkboxes":
            chosen = _list_of(form, f.name)
            if chosen:
                _put(record, f.name, chosen)
            continue
        if f.may_not_apply and f.name in not_applicable:
            # Ticked 不适用: listed, and whatever was typed is passed on too, so the codec can say both were given.
            record.setdefault(NOT_APPLICABLE, []).append(f.name)
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


def _list_of(form: Mapping[str, Any], name: str) -> list[str]:
    """Every value posted under `name` (checkboxes), blanks left out."""
    getlist = getattr(form, "getlist", None)
    raw = getlist(name) if getlist is not None else form.get(name, [])
    values = [raw] if isinstance(raw, str) else list(raw or [])
    return [str(v).strip() for v in values if str(v).strip()]


def form_values(form: Mapping[str, Any]) -> dict[str, Any]:
    """What was posted, to show the form again as typed: one text per field, lists for checkboxes."""
    values: dict[str, Any] = {k: str(v) for k, v in form.items() if isinstance(v, str)}
    for name in {k for k in form.keys()}:
        many = _list_of(form, name)
        if len(many) > 1 or name in (NOT_APPLICABLE, "checked_sources"):
            values[name] = many
    return values


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
        elif isinstance(value, list):
            out[path] = ", ".join(str(v) for v in value)
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
        if path == NOT_APPLICABLE and (named := re.match(r"names (\S+), which is given", e.reason)):
            path = named.group(1).rstrip(",")  # a 不适用 ticked beside a filled field: shown at that field
        # An error about a group (``children``) goes to its first field.
        target = path if path in names else next((n for n in names if path and n.startswith(path + ".")), None)
        reason = in_chinese(e.reason)
        if target is None:
            other.append(f"{path}: {reason}" if path else reason)
        else:
            at.setdefault(target, []).append(reason)
    return at, other
