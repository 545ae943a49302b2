"""The three messages townships exchange, as validated records.

Every cross-field rule is a named check (see `RULES` and docs/codec.md); a record breaking one
is refused with the rule's reason at the field to correct. Nothing here reads files except
through the cached code-table and division loaders, and the reference date for "not in the
future" comes from the validation context (`{"today": date}`) when given.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    model_validator,
)

from gateway.codec import citizen_id
from gateway.codec.errors import CodecError
from gateway.workflow.calendar import WorkingDayCalendar
from gateway.workflow.periods import statistical_year_of
from gateway.codec.rules import (
    CodeOf,
    Count,
    DivisionCode,
    PastDate,
    Text,
    TownshipCode,
    Violations,
    accepted_date,
    certificate_expires_on,
    clerk_input,
    CLERK_INPUT_CONTEXT,
    LABELS_CONTEXT,
    fail,
    reference_date,
    statistical_year,
    strict_completeness,
    submission_context,
    submission_due,
    village_level_problem,
)

# Rule names → what they demand. The names appear in docs/codec.md and in tests.
RULES: dict[str, str] = {
    "citizen_id_passes_gb11643": "The citizen ID passes every GB 11643 check (region, birth date, check "
    "character) unless the sender sets id_check_confirmed, which then travels with the record.",
    "birth_date_agrees_with_citizen_id": "A given birth date equals the one in the citizen ID (unless confirmed).",
    "sex_agrees_with_citizen_id": "A given sex 1/2 matches the parity of ID digit 17 (unless confirmed).",
    "dates_not_in_future": "No date lies after the reference date (validation context `today`, else today in China).",
    "townships_differ": "Residence and registration townships are different townships.",
    "event_not_before_birth": "A notification's event date is not before the person's birth date.",
    "notification_has_address": "A notification carries a detailed residence or registration address (seed 002, 第二十四条).",
    "notification_kind_fields": "Each notification kind carries its required fields and no fields of other kinds.",
    "children_total_is_sons_plus_daughters": "If a total number of children is given it equals sons + daughters.",
    "youngest_child_only_with_children": "No youngest child's birth date when there are no children.",
    "youngest_child_born_after_mother": "The youngest child was born after the mother.",
    "left_after_birth": "The date she left is after her birth date.",
    "one_child_certificate_needs_a_child": "A one-child parents' certificate date needs at least one child, "
    "and with exactly one child is not before that child's birth.",
    "found_has_verified_core": "A found answer carries the verified birth date and the children counts.",
    "not_found_has_reason_and_remarks": "A 查无此人 answer carries a reason and remarks (rule 六).",
    "not_found_has_no_verified_fields": "A 查无此人 answer carries no verified fields.",
    # Wire version 2 (issue 13): the rules as the seeds state them.
    "found_carries_every_rule_four_field": "A found answer carries every field of rule 四 or lists it in "
    "not_applicable; with children, the youngest child's birth date is given.",
    "not_applicable_lists_absent_fields": "not_applicable names only rule 四 fields that are absent, each once, "
    "and only in a found answer.",
    "not_found_states_checked_sources": "A 查无此人 answer lists the sources checked (checked_sources, table "
    "checked_source): as entered, each of rule 十一's 流动人口数据库, 育龄妇女信息卡 and 公安户籍管理档案, and for "
    "reasons 地址有误/姓名有误 also 民政 or 卫生 (多方核实) or the superior database (第二十五条); on the wire, the "
    "floating-population database or two of 公安/民政/卫生.",
    "registration_address_reaches_village": "A registration address names the registration township and a "
    "village- or community-level part after it (seed 002, 第二十四条).",
    "event_in_statistical_year": "A notification of kind ①–④ has its event date in the statistical year "
    "(1 October – 30 September) of the acceptance date, or in the one before it while its 5 working days "
    "from learned_on run (seed 002, 第二十四条; seed 000, 第一篇 七: 发现当月).",
    "learned_on_between_event_and_acceptance": "learned_on (default: the event date) is not before the event "
    "and not after the acceptance date.",
    "marriage_certificate_has_issue_date": "A 《流动人口婚育证明》 number comes with its issue date, which is "
    "after the person's birth and not after the acceptance date.",
    "marriage_certificate_valid_three_years": "A 婚育证明 is valid for three years from its issue date: a found "
    "answer reports one still valid on the acceptance date; a kind ⑤ notification (no valid certificate) "
    "names only one expired by the event date.",
}

NotificationDirection = Literal["to_registration", "to_residence"]


def _certificate_issue_rules(
    v: Violations, number: str | None, issued_on: Any, born: Any, accepted: Any, prefix: str = ""
) -> None:
    if number is not None and issued_on is None:
        v.add("marriage_certificate_has_issue_date", prefix + "marriage_certificate_issued_on",
              "required with marriage_certificate_no (the 婚育证明 is valid for three years from it)")
    if issued_on is None:
        return
    if number is None:
        v.add("marriage_certificate_has_issue_date", prefix + "marriage_certificate_issued_on",
              "given without marriage_certificate_no")
    if born is not None and issued_on <= born:
        v.add("marriage_certificate_has_issue_date", prefix + "marriage_certificate_issued_on",
              "must be after the person's birth date")
    if issued_on > accepted:
        v.add("marriage_certificate_has_issue_date", prefix + "marriage_certificate_issued_on",
              f"must not be after the acceptance date {accepted.isoformat()}")


def _village_rule(v: Violations, address: str | None, township: str) -> None:
    if address is not None and (problem := village_level_problem(address, township)) is not None:
        v.add("registration_address_reaches_village", "registration_address", problem)


def _citizen_id_format(value: str) -> str:
    # Only the form is checked here (never confirmable); the logic checks that a sender may
    # confirm run in Person, where the confirmation flag is visible.
    number, _upgraded_from, malformed = citizen_id.normalise(value)
    if malformed:
        raise fail("; ".join(malformed))
    return number


CitizenId = Annotated[
    str,
    Field(
        description="GB 11643 citizen ID: 18 characters (15-digit legacy numbers are upgraded)",
        json_schema_extra={"pattern": "^([0-9]{17}[0-9Xx]|[0-9]{15})$"},
    ),
    AfterValidator(_citizen_id_format),
]
MessageId = Annotated[
    str,
    Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:\-]*$"),
]


class Record(BaseModel):
    # strict: the wire carries JSON types exactly (a count is a number, not "3"); the only
    # conversions are ISO dates (rules.IsoDate) and whitespace trimming.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, str_strip_whitespace=True)


class Person(Record):
    citizen_id: CitizenId
    name: Text(50)
    birth_date: PastDate | None = None
    sex: CodeOf("sex") | None = None
    ethnicity: CodeOf("ethnicity") | None = None
    marital_status: CodeOf("marital_status") | None = None
    education: CodeOf("education") | None = None
    id_check_confirmed: bool = Field(
        False,
        description="The sender confirms an ID that fails a GB 11643 logic check; the recipient sees this flag.",
    )

    def id_findings(self) -> citizen_id.IdInspection:
        return citizen_id.inspect(self.citizen_id)

    @model_validator(mode="after")
    def _id_rules(self, info: ValidationInfo) -> Person:
        if self.id_check_confirmed:
            return self
        today = reference_date(info)
        v = Violations()
        quick = citizen_id.passes(self.citizen_id, today)
        if quick is None:
            for problem in citizen_id.inspect(self.citizen_id, today=today).doubtful:
                v.add("citizen_id_passes_gb11643", "citizen_id", problem + " (set id_check_confirmed to send it anyway)")
        else:
            born, sex = quick
            if self.birth_date is not None and self.birth_date != born:
                v.add(
                    "birth_date_agrees_with_citizen_id",
                    "birth_date",
                    f"does not agree with the citizen ID ({born.isoformat()})",
                )
            if self.sex in ("1", "2") and self.sex != sex:
                v.add("sex_agrees_with_citizen_id", "sex", f"does not agree with the citizen ID (sex code {sex})")
        v.raise_if_any()
        return self


class LocalFacts(Record):
    """What the residence place knows locally, sent with a query to help the search."""

    marital_status: CodeOf("marital_status") | None = None
    contraception: CodeOf("contraception") | None = None
    sons: Count | None = None
    daughters: Count | None = None
    youngest_child_birth_date: PastDate | None = None
    pregnant: bool | None = None
    arrived_on: PastDate | None = None
    marriage_certificate_no: Text(40) | None = None
    marriage_certificate_issued_on: PastDate | None = None
    husband_name: Text(50) | None = None

    @model_validator(mode="after")
    def _rules(self, info: ValidationInfo) -> LocalFacts:
        v = Violations()
        if strict_completeness(info) or self.marriage_certificate_issued_on is not None:
            _certificate_issue_rules(
                v, self.marriage_certificate_no, self.marriage_certificate_issued_on, None, accepted_date(info)
            )
        v.raise_if_any()
        return self


class Query(Record):
    kind: Literal["query"]
    residence_township: TownshipCode
    registration_township: TownshipCode
    person: Person
    about_birth: bool = Field(False, description="A query about birth information: 5 working days instead of 10.")
    registration_address: Text(200) | None = None
    current_address: Text(200) | None = None
    known_locally: LocalFacts | None = None
    remarks: Text(500) | None = None
    resubmission_of: MessageId | None = Field(
        None, description="The earlier query answered 查无此人 that this corrected query re-submits (rule 五)."
    )

    @model_validator(mode="after")
    def _rules(self, info: ValidationInfo) -> Query:
        v = Violations()
        if self.residence_township == self.registration_township:
            v.add("townships_differ", "registration_township", "must differ from residence_township")
        if strict_completeness(info):
            _village_rule(v, self.registration_address, self.registration_township)
        v.raise_if_any()
        return self


# Which optional fields each notification kind requires; a field not listed for the kind
# must be absent. Kinds are numbered ① to ⑧ as in seed 002, 范文篇10 第二十四条.
NOTIFICATION_FIELDS: dict[str, tuple[str, ...]] = {
    "1": ("child_sex",),
    "2": ("contraception",),
    "3": ("contraception",),
    "4": ("pregnancy_weeks",),
    "5": ("remarks",),
    "6": ("pregnant",),
    "7": ("remarks",),
    "8": ("remarks",),
}
NOTIFICATION_OPTIONAL: dict[str, tuple[str, ...]] = {
    "1": ("pregnancy_outcome", "policy_status", "remarks"),
    "2": ("remarks",),
    "3": ("remarks",),
    "4": ("policy_status", "remarks"),
    "5": ("marriage_certificate_no", "marriage_certificate_issued_on"),
    "6": ("pregnancy_weeks", "remarks"),
    "7": ("marriage_certificate_no", "marriage_certificate_issued_on"),
    "8": ("marriage_certificate_no", "marriage_certificate_issued_on"),
}
# Seed 002, 第二十四条: ①–④ are events 统计年度内 (in the statistical year).
STATISTICAL_YEAR_KINDS = frozenset({"1", "2", "3", "4"})
KIND_SPECIFIC = (
    "child_sex",
    "pregnancy_outcome",
    "policy_status",
    "contraception",
    "pregnancy_weeks",
    "pregnant",
    "marriage_certificate_no",
    "marriage_certificate_issued_on",
    "remarks",
)


class Notification(Record):
    kind: Literal["notification"]
    notification_kind: CodeOf("notification_kind")
    residence_township: TownshipCode
    registration_township: TownshipCode
    person: Person
    event_date: PastDate
    direction: NotificationDirection = Field(
        "to_registration",
        description="to_registration: the residence township notifies the registration township (the usual way); "
        "to_residence: the registration township notifies the residence township about its outflow population "
        "(seed 002, 第三十一条 (二) 4). The recipient must reply (范文篇7 (五)).",
    )
    learned_on: PastDate | None = Field(
        None, description="The day the sender learned of the event; the codec sets it to event_date when absent."
    )
    registration_address: Text(200) | None = None
    current_address: Text(200) | None = None
    child_sex: CodeOf("sex") | None = None
    pregnancy_outcome: CodeOf("pregnancy_outcome") | None = None
    policy_status: CodeOf("policy_status") | None = None
    contraception: CodeOf("contraception") | None = None
    pregnancy_weeks: Annotated[int, Field(ge=1, le=45)] | None = None
    pregnant: bool | None = None
    marriage_certificate_no: Text(40) | None = None
    marriage_certificate_issued_on: PastDate | None = None
    remarks: Text(500) | None = None

    @property
    def sender_township(self) -> str:
        return self.registration_township if self.direction == "to_residence" else self.residence_township

    @property
    def recipient_township(self) -> str:
        """The township that must reply (范文篇7: 收到通知单的一方必须及时回复)."""
        return self.residence_township if self.direction == "to_residence" else self.registration_township

    @model_validator(mode="after")
    def _rules(self, info: ValidationInfo) -> Notification:
        v = Violations()
        accepted = accepted_date(info)
        if self.learned_on is None:
            # The model is frozen; the default depends on another field, so it is set here once.
            object.__setattr__(self, "learned_on", self.event_date)
        assert self.learned_on is not None
        if self.learned_on < self.event_date:
            v.add("learned_on_between_event_and_acceptance", "learned_on", "must not be before event_date")
        if self.learned_on > accepted:
            v.add("learned_on_between_event_and_acceptance", "learned_on",
                  f"must not be after the acceptance date {accepted.isoformat()}")
        if strict_completeness(info):
            _village_rule(v, self.registration_address, self.registration_township)
            if self.notification_kind in STATISTICAL_YEAR_KINDS:
                self._statistical_year_rule(v, accepted, info)
            _certificate_issue_rules(
                v, self.marriage_certificate_no, self.marriage_certificate_issued_on, self.person.birth_date, accepted
            )
            issued = self.marriage_certificate_issued_on
            if self.notification_kind == "5" and issued is not None and certificate_expires_on(issued) > self.event_date:
                v.add("marriage_certificate_valid_three_years", "marriage_certificate_issued_on",
                      f"the certificate is valid until {(certificate_expires_on(issued)).isoformat()} (exclusive), "
                      "so kind ⑤ (no valid certificate) does not apply")
        if self.residence_township == self.registration_township:
            v.add("townships_differ", "registration_township", "must differ from residence_township")
        if self.person.birth_date is not None and self.event_date < self.person.birth_date:
            v.add("event_not_before_birth", "event_date", "must not be before the person's birth date")
        if self.registration_address is None and self.current_address is None:
            v.add(
                "notification_has_address",
                "registration_address",
                "required (or current_address): a notification must carry a detailed address",
            )
        kind = self.notification_kind
        required = NOTIFICATION_FIELDS.get(kind, ())
        allowed = required + NOTIFICATION_OPTIONAL.get(kind, ())
        for name in KIND_SPECIFIC:
            present = getattr(self, name) is not None
            if name in required and not present:
                v.add("notification_kind_fields", name, f"required for notification kind {kind}")
            elif present and name not in allowed:
                v.add("notification_kind_fields", name, f"not used with notification kind {kind}")
        if kind == "2" and self.contraception == "00":
            v.add("notification_kind_fields", "contraception", "an operation notification needs the measure taken")
        v.raise_if_any()
        return self


    def _statistical_year_rule(self, v: Violations, accepted: date, info: ValidationInfo) -> None:
        # ①–④ are events 统计年度内; one of the last days of a statistical year is still notified in
        # the next while its 5 working days from learned_on run (第二十四条; seed 000: 发现当月), and
        # counts in the statistical year of its own date (gateway.workflow.periods.statistical_year_of).
        first, last = statistical_year(accepted)
        if first <= self.event_date <= last:
            return
        learned_on = self.learned_on or self.event_date
        window = ""
        if statistical_year_of(self.event_date) == statistical_year_of(accepted) - 1:
            due, days = submission_due(info, learned_on)
            if accepted <= due:
                return
            window = f" ({days} working days after {learned_on.isoformat()}: until {due.isoformat()})"
        v.add("event_in_statistical_year", "event_date",
              f"must lie in the statistical year {first.isoformat()} – {last.isoformat()} of the acceptance date, "
              f"or in the statistical year before it and be submitted within the working days after learned_on"
              f"{window} (notification kind {self.notification_kind}: 统计年度内)")


class Children(Record):
    sons: Count
    daughters: Count
    total: Count | None = Field(None, description="If given, must equal sons + daughters.")
    youngest_birth_date: PastDate | None = None

    @model_validator(mode="after")
    def _rules(self) -> Children:
        v = Violations()
        if self.total is not None and self.total != self.sons + self.daughters:
            v.add(
                "children_total_is_sons_plus_daughters",
                "total",
                f"must equal sons + daughters ({self.sons + self.daughters})",
            )
        if self.youngest_birth_date is not None and self.sons + self.daughters == 0:
            v.add("youngest_child_only_with_children", "youngest_birth_date", "given but there are no children")
        v.raise_if_any()
        return self


FOUND_FIELDS = (
    "birth_date",
    "household_type",
    "husband_name",
    "husband_residence_code",
    "one_child_certificate_date",
    "pregnancy_policy_status",
    "children",
    "left_on",
    "marriage_certificate_no",
    "marriage_certificate_issued_on",
)
# The rule 四 fields a found answer must give or declare not applicable (birth date and the
# children counts are always given; 备注 is free remarks, and an empty one says there are none).
RULE_FOUR_FIELDS = (
    "household_type",
    "husband_name",
    "husband_residence_code",
    "one_child_certificate_date",
    "pregnancy_policy_status",
    "left_on",
    "marriage_certificate_no",
)
NotApplicableField = Literal[RULE_FOUR_FIELDS]  # type: ignore[valid-type]  # the same names, one list
# The sources of table checked_source the seeds name.
# Rule 十一 (seed 000): 户籍所在地对查询和通报信息进行查找的依据是,流动人口数据库——育龄妇女信息卡——
# 公安户籍管理档案: every 查无此人 has searched all three, in that order.
RULE_ELEVEN_SOURCES = ("4", "5", "1")
# Seed 002 第二十五条: 对因地址不详、姓名笔误等原因造成的"查无此人"情况,应到公安、卫生、民政等相关部门多方
# 核实或在上级流动人口育龄妇女数据库核查后才反馈: for reasons 1 (地址有误) and 2 (姓名有误), at least two
# of the departments (公安 is one, and rule 十一 has it searched already) or the superior database.
DEPARTMENT_SOURCES = frozenset({"1", "2", "3"})
SUPERIOR_DATABASE_SOURCE = "6"
ARTICLE_25_REASONS = frozenset({"1", "2"})
# Wire version 2 as issue 13 shipped it: the floating-population database or two departments. The
# receiving gateway keeps to it: every answer the rules above accept meets it, and answers stored or in
# flight from a gateway of that release stay readable (a receiver cannot see what was searched anyway).
DATABASE_SOURCE = "4"


SOURCE_NAMES = {"1": "公安户籍 (1)", "2": "民政婚姻登记 (2)", "3": "卫生健康 (3)", "4": "流动人口数据库 (4)",
                "5": "育龄妇女信息卡 (5)", "6": "上级流动人口育龄妇女数据库 (6)"}


class Feedback(Record):
    kind: Literal["feedback"]
    in_reply_to: MessageId
    result: Literal["found", "not_found"]
    # found: the verified fields of rule 四
    birth_date: PastDate | None = None
    household_type: CodeOf("household_type") | None = None
    husband_name: Text(50) | None = None
    husband_residence_code: DivisionCode | None = None
    one_child_certificate_date: PastDate | None = None
    pregnancy_policy_status: CodeOf("policy_status") | None = None
    children: Children | None = None
    left_on: PastDate | None = None
    marriage_certificate_no: Text(40) | None = None
    marriage_certificate_issued_on: PastDate | None = None
    not_applicable: list[NotApplicableField] | None = Field(
        None,
        description="Rule 四 fields that do not apply to this person (no husband, no certificate, not pregnant…), "
        "named explicitly instead of left blank.",
        max_length=len(RULE_FOUR_FIELDS),
    )
    # not_found: rule 六
    not_found_reason: CodeOf("not_found_reason") | None = None
    checked_sources: list[CodeOf("checked_source")] | None = Field(
        None, description="Sources checked before answering 查无此人 (第二十五条, rule 十一).", max_length=10
    )
    remarks: Text(500) | None = None

    @model_validator(mode="after")
    def _rules(self, info: ValidationInfo) -> Feedback:
        v = Violations()
        strict = strict_completeness(info)
        if self.result == "not_found":
            if self.not_found_reason is None:
                v.add("not_found_has_reason_and_remarks", "not_found_reason", "required when result is not_found")
            if self.remarks is None:
                v.add("not_found_has_reason_and_remarks", "remarks", "required when result is not_found (rule 六)")
            for name in FOUND_FIELDS:
                if getattr(self, name) is not None:
                    v.add("not_found_has_no_verified_fields", name, "not allowed when result is not_found")
            if self.not_applicable is not None:
                v.add("not_applicable_lists_absent_fields", "not_applicable", "only allowed when result is found")
            if strict or self.checked_sources is not None:
                self._checked_sources_rules(v, clerk_input(info))
            v.raise_if_any()
            return self
        if self.not_found_reason is not None:
            v.add("not_found_has_reason_and_remarks", "not_found_reason", "only allowed when result is not_found")
        if self.checked_sources is not None:
            v.add("not_found_states_checked_sources", "checked_sources", "only allowed when result is not_found")
        self._not_applicable_rules(v, strict)
        if strict or self.marriage_certificate_issued_on is not None:
            self._certificate_rules(v, accepted_date(info))
        if self.birth_date is None:
            v.add("found_has_verified_core", "birth_date", "required when result is found")
        if self.children is None:
            v.add("found_has_verified_core", "children", "required when result is found")
        born = self.birth_date
        kids = self.children
        if born is not None and kids is not None and kids.youngest_birth_date is not None:
            if kids.youngest_birth_date <= born:
                v.add("youngest_child_born_after_mother", "children.youngest_birth_date", "must be after birth_date")
        if born is not None and self.left_on is not None and self.left_on <= born:
            v.add("left_after_birth", "left_on", "must be after birth_date")
        if self.one_child_certificate_date is not None and kids is not None:
            n = kids.sons + kids.daughters
            if n == 0:
                v.add("one_child_certificate_needs_a_child", "one_child_certificate_date", "given but there are no children")
            elif n == 1 and kids.youngest_birth_date and self.one_child_certificate_date < kids.youngest_birth_date:
                v.add(
                    "one_child_certificate_needs_a_child",
                    "one_child_certificate_date",
                    "must not be before the child's birth",
                )
        v.raise_if_any()
        return self

    def _checked_sources_rules(self, v: Violations, from_clerk: bool) -> None:
        sources = self.checked_sources or []
        if not sources:
            v.add("not_found_states_checked_sources", "checked_sources",
                  "required when result is not_found: list the sources checked (table checked_source)")
            return
        if len(set(sources)) != len(sources):
            v.add("not_found_states_checked_sources", "checked_sources", "lists a source twice")
        departments = DEPARTMENT_SOURCES.intersection(sources)
        if not from_clerk:
            if DATABASE_SOURCE not in sources and len(departments) < 2:
                v.add("not_found_states_checked_sources", "checked_sources",
                      "check the floating-population database (4) or at least two of 公安户籍 (1), 民政婚姻登记 (2), "
                      "卫生健康 (3) before answering 查无此人 (第二十五条: 多方核实)")
            return
        missing = [code for code in RULE_ELEVEN_SOURCES if code not in sources]
        if missing:
            v.add("not_found_states_checked_sources", "checked_sources",
                  f"search {', '.join(SOURCE_NAMES[c] for c in RULE_ELEVEN_SOURCES)} before answering 查无此人 "
                  f"(rule 十一); not searched: {', '.join(SOURCE_NAMES[c] for c in missing)}")
        # One reason at a time for the field (a form shows one): rule 十一's search comes first.
        elif (self.not_found_reason in ARTICLE_25_REASONS and SUPERIOR_DATABASE_SOURCE not in sources
                and len(departments) < 2):
            v.add("not_found_states_checked_sources", "checked_sources",
                  f"a 查无此人 for reason {self.not_found_reason} (地址不详、姓名笔误) is answered only after checking with "
                  "several departments, 公安户籍 (1) and 民政婚姻登记 (2) or 卫生健康 (3), or in the superior "
                  "floating-population database (6) (第二十五条: 多方核实)")

    def _not_applicable_rules(self, v: Violations, strict: bool) -> None:
        listed = self.not_applicable or []
        if len(set(listed)) != len(listed):
            v.add("not_applicable_lists_absent_fields", "not_applicable", "names a field twice")
        for name in RULE_FOUR_FIELDS:
            present = getattr(self, name) is not None
            if present and name in listed:
                v.add("not_applicable_lists_absent_fields", "not_applicable", f"names {name}, which is given")
            elif strict and not present and name not in listed:
                v.add("found_carries_every_rule_four_field", name,
                      "required when result is found (rule 四): give it or list it in not_applicable")
        kids = self.children
        if strict and kids is not None and kids.sons + kids.daughters > 0 and kids.youngest_birth_date is None:
            v.add("found_carries_every_rule_four_field", "children.youngest_birth_date",
                  "required when there are children (rule 四: 最小子女出生日期)")

    def _certificate_rules(self, v: Violations, accepted: date) -> None:
        _certificate_issue_rules(
            v, self.marriage_certificate_no, self.marriage_certificate_issued_on, self.birth_date, accepted
        )
        issued = self.marriage_certificate_issued_on
        if issued is not None and certificate_expires_on(issued) <= accepted:
            v.add("marriage_certificate_valid_three_years", "marriage_certificate_issued_on",
                  f"the certificate expired on {certificate_expires_on(issued).isoformat()} (有效期为3年, 届满需重新办理新证): "
                  "report the renewed certificate, or list marriage_certificate_no in not_applicable if she holds no valid one")


class Withdrawal(Record):
    """The residence township withdraws its query before any reply: the registration township's case is
    closed as withdrawn and not counted (case state ``withdrawn``). It names no person: only the query."""

    kind: Literal["withdrawal"]
    withdraws: MessageId = Field(description="The query withdrawn (its message id).")
    residence_township: TownshipCode
    registration_township: TownshipCode

    @model_validator(mode="after")
    def _rules(self) -> Withdrawal:
        if self.residence_township == self.registration_township:
            v = Violations()
            v.add("townships_differ", "registration_township", "must differ from residence_township")
            v.raise_if_any()
        return self


Message = Annotated[Query | Notification | Feedback | Withdrawal, Field(discriminator="kind")]
MESSAGE_ADAPTER: TypeAdapter[Message] = TypeAdapter(Message)
MODELS: dict[str, type[Record]] = {"query": Query, "notification": Notification, "feedback": Feedback,
                                   "withdrawal": Withdrawal}


def parse_message(
    obj: Any,
    *,
    today: date | None = None,
    accepted_on: date | None = None,
    labels: bool = False,
    calendar: WorkingDayCalendar | None = None,
    submission_working_days: int | None = None,
) -> Message:
    """Validate a message object (a dict as a clerk would POST it, with `kind`). `accepted_on`
    is the day the gateway accepts it (China time), for the rules relative to acceptance. With
    `labels`, code fields also take the labels the spreadsheet import takes (`女`, `汉族`;
    `code_tables.code_for_input`), and the record holds the codes. `calendar` and
    `submission_working_days` count a notification's working days after `learned_on` (the rule
    `event_in_statistical_year`); without them, 5 days Monday to Friday."""
    from gateway.codec.error_paths import codec_error_from

    context: dict[str, Any] = {CLERK_INPUT_CONTEXT: True}
    if labels:
        context[LABELS_CONTEXT] = True
    if today:
        context["today"] = today
    if accepted_on:
        context["accepted_on"] = accepted_on
    context.update(submission_context(calendar, submission_working_days))
    try:
        return MESSAGE_ADAPTER.validate_python(obj, context=context)
    except ValidationError as exc:
        raise codec_error_from(exc) from None


__all__ = [
    "RULES",
    "Children",
    "CodecError",
    "Feedback",
    "LocalFacts",
    "Message",
    "Notification",
    "Person",
    "Withdrawal",
    "Query",
    "parse_message",
]
