"""The column layout of bulk-import files: Chinese header → field path and value kind.

docs/codec-import.md documents the same table for clerks, and the templates in `templates/`
are generated from it, so the three cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ValueKind = Literal["text", "id", "code", "township", "date", "int", "bool", "choice"]


@dataclass(frozen=True, slots=True)
class Column:
    header: str
    path: str  # dotted field path in the message, e.g. "person.citizen_id"
    kind: ValueKind
    table: str | None = None  # code table for kind "code"
    required: bool = False
    example: str = ""
    note: str = ""
    choices: tuple[tuple[str, str], ...] = ()  # kind "choice": (label a clerk types, value)


PERSON_COLUMNS: tuple[Column, ...] = (
    Column("姓名", "person.name", "text", required=True, example="王秀兰"),
    Column("身份证号码", "person.citizen_id", "id", required=True, example="11010519491231002X",
           note="18位(15位旧号码按GB 11643规则升位); Excel中请设为文本格式"),
    Column("出生日期", "person.birth_date", "date", example="1949-12-31", note="须与身份证号码一致"),
    Column("性别", "person.sex", "code", "sex", example="2", note="代码或名称(女/女性)"),
    Column("民族", "person.ethnicity", "code", "ethnicity", example="01", note="GB/T 3304 代码或名称"),
    Column("婚姻状况", "person.marital_status", "code", "marital_status", example="21"),
    Column("文化程度", "person.education", "code", "education", example="71"),
    Column("身份证号码已核实确认", "person.id_check_confirmed", "bool", example="否",
           note="是: 号码未通过校验但经核实确认无误, 随记录发送"),
)

ROUTING_COLUMNS: tuple[Column, ...] = (
    Column("现居住地乡镇代码", "residence_township", "township", required=True, example="110101001"),
    Column("户籍地乡镇代码", "registration_township", "township", required=True, example="410102001"),
)

ADDRESS_COLUMNS: tuple[Column, ...] = (
    Column("户籍地址", "registration_address", "text", example="河南省郑州市中原区林山寨街道某社区",
           note="登记到村(居)委会一级: 须含户籍地乡镇(街道)名称及其后的村/社区/居委会/组"),
    Column("现居住地址", "current_address", "text", example="北京市东城区某胡同1号"),
)

QUERY_COLUMNS: tuple[Column, ...] = (
    ROUTING_COLUMNS
    + PERSON_COLUMNS
    + (Column("查询出生信息", "about_birth", "bool", example="否", note="是: 5个工作日内反馈"),)
    + ADDRESS_COLUMNS
    + (
        Column("本地掌握婚姻状况", "known_locally.marital_status", "code", "marital_status"),
        Column("本地掌握节育措施", "known_locally.contraception", "code", "contraception", example="01"),
        Column("本地掌握儿子数", "known_locally.sons", "int", example="1"),
        Column("本地掌握女儿数", "known_locally.daughters", "int", example="0"),
        Column("本地掌握最小子女出生日期", "known_locally.youngest_child_birth_date", "date"),
        Column("本地掌握是否怀孕", "known_locally.pregnant", "bool"),
        Column("来本地日期", "known_locally.arrived_on", "date"),
        Column("婚育证明号码", "known_locally.marriage_certificate_no", "text"),
        Column("婚育证明发证日期", "known_locally.marriage_certificate_issued_on", "date",
               note="填婚育证明号码时必填(有效期3年)"),
        Column("丈夫姓名", "known_locally.husband_name", "text"),
        Column("备注", "remarks", "text"),
    )
)

NOTIFICATION_COLUMNS: tuple[Column, ...] = (
    (Column("通报类别", "notification_kind", "code", "notification_kind", required=True, example="1",
            note="1-8, 见 schemas/codes/notification_kind.json"),)
    + ROUTING_COLUMNS
    + PERSON_COLUMNS
    + (
        Column("事件日期", "event_date", "date", required=True, example="2026-10-01",
               note="类别1-4须在受理日所在统计年度内(上年10月1日至本年9月30日)"),
        Column("知悉日期", "learned_on", "date", note="不填则同事件日期; 不得早于事件日期"),
        Column("通报方向", "direction", "choice", example="向户籍地",
               note="向户籍地(默认: 现居住地通报户籍地) 或 向现居住地(户籍地通报现居住地, 第三十一条)",
               choices=(("向户籍地", "to_registration"), ("向现居住地", "to_residence"))),
    )
    + ADDRESS_COLUMNS
    + (
        Column("子女性别", "child_sex", "code", "sex", example="1", note="类别1必填"),
        Column("妊娠结局", "pregnancy_outcome", "code", "pregnancy_outcome", note="类别1可填"),
        Column("政策属性", "policy_status", "code", "policy_status", note="类别1、4可填"),
        Column("节育措施", "contraception", "code", "contraception", note="类别2、3必填"),
        Column("孕周", "pregnancy_weeks", "int", note="类别4必填, 类别6可填"),
        Column("是否怀孕", "pregnant", "bool", note="类别6必填"),
        Column("婚育证明号码", "marriage_certificate_no", "text", note="类别5、7、8可填"),
        Column("婚育证明发证日期", "marriage_certificate_issued_on", "date",
               note="填婚育证明号码时必填; 类别5须为已过期(发证满3年)的证明"),
        Column("备注", "remarks", "text", note="类别5、7、8必填"),
    )
)

LAYOUTS: dict[str, tuple[Column, ...]] = {"query": QUERY_COLUMNS, "notification": NOTIFICATION_COLUMNS}
