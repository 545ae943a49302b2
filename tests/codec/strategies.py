"""Hypothesis strategies producing valid messages (every rule satisfied)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from hypothesis import strategies as st

from gateway.codec import code_tables
from gateway.codec.citizen_id import check_character
from gateway.codec.divisions import registry

from .conftest import TODAY

_TOWNSHIPS = sorted(c for c in registry()._d if len(c) == 9 and not c.startswith("66"))
_COUNTIES = sorted(c for c in registry()._d if len(c) == 6)

townships = st.sampled_from(_TOWNSHIPS)
cjk = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5)
names = st.text(cjk, min_size=1, max_size=6)
texts = st.text(st.characters(codec="utf-8", categories=["L", "N", "P", "Zs"]), min_size=1, max_size=40).map(
    str.strip
).filter(bool)


def codes(table: str) -> st.SearchStrategy[str]:
    return st.sampled_from(sorted(code_tables.table(table).codes))


def dates(lo: date = date(1950, 1, 1), hi: date = TODAY) -> st.SearchStrategy[date]:
    return st.dates(min_value=lo, max_value=hi)


@st.composite
def citizen_ids(draw: st.DrawFn, born: date | None = None, female: bool | None = None) -> str:
    region = draw(st.sampled_from(_COUNTIES))
    born = born or draw(dates(date(1960, 1, 1), date(2005, 12, 31)))
    seq = draw(st.integers(0, 99))
    sex_digit = draw(st.sampled_from([0, 2, 4, 6, 8] if female else [1, 3, 5, 7, 9] if female is False else range(10)))
    first17 = f"{region}{born:%Y%m%d}{seq:02d}{sex_digit}"
    return first17 + check_character(first17)


@st.composite
def persons(draw: st.DrawFn) -> dict[str, Any]:
    born = draw(dates(date(1960, 1, 1), date(2005, 12, 31)))
    p: dict[str, Any] = {"citizen_id": draw(citizen_ids(born, female=True)), "name": draw(names)}
    if draw(st.booleans()):
        p["birth_date"] = born
    if draw(st.booleans()):
        p["sex"] = "2"
    for field, table in (("ethnicity", "ethnicity"), ("marital_status", "marital_status"), ("education", "education")):
        if draw(st.booleans()):
            p[field] = draw(codes(table))
    if draw(st.booleans()):
        p["id_check_confirmed"] = True
    return p


@st.composite
def two_townships(draw: st.DrawFn) -> tuple[str, str]:
    a = draw(townships)
    b = draw(townships.filter(lambda c: c != a))
    return a, b


@st.composite
def village_addresses(draw: st.DrawFn, township: str) -> str:
    """A registration address at village level inside `township` (seed 002, 第二十四条)."""
    name = registry().get(township).name  # type: ignore[union-attr]
    return name + draw(texts)[:20] + draw(st.sampled_from(["村", "社区", "居委会", "村民委员会"]))


def optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


@st.composite
def queries(draw: st.DrawFn) -> dict[str, Any]:
    res, reg = draw(two_townships())
    local = _drop_none(
        {
            "marital_status": draw(optional(codes("marital_status"))),
            "contraception": draw(optional(codes("contraception"))),
            "sons": draw(optional(st.integers(0, 5))),
            "daughters": draw(optional(st.integers(0, 5))),
            "pregnant": draw(optional(st.booleans())),
            "arrived_on": draw(optional(dates())),
            "husband_name": draw(optional(names)),
        }
    )
    return _drop_none(
        {
            "kind": "query",
            "residence_township": res,
            "registration_township": reg,
            "person": draw(persons()),
            "about_birth": draw(st.booleans()),
            "registration_address": draw(optional(village_addresses(reg))),
            "current_address": draw(optional(texts)),
            "known_locally": local or None,
            "remarks": draw(optional(texts)),
        }
    )


_KIND_VALUES = {
    "child_sex": codes("sex"),
    "pregnancy_outcome": codes("pregnancy_outcome"),
    "policy_status": codes("policy_status"),
    "contraception": codes("contraception").filter(lambda c: c != "00"),
    "pregnancy_weeks": st.integers(1, 45),
    "pregnant": st.booleans(),
    "marriage_certificate_no": texts,
    "remarks": texts,
}


@st.composite
def notifications(draw: st.DrawFn) -> dict[str, Any]:
    from gateway.codec.messages import NOTIFICATION_FIELDS, NOTIFICATION_OPTIONAL

    res, reg = draw(two_townships())
    kind = draw(st.sampled_from(sorted(NOTIFICATION_FIELDS)))
    msg: dict[str, Any] = {
        "kind": "notification",
        "notification_kind": kind,
        "residence_township": res,
        "registration_township": reg,
        "person": draw(persons()),
        # ①–④ happen in the statistical year of the acceptance date (TODAY's: from 1 October 2026)
        "event_date": draw(dates(date(2026, 10, 1) if kind in "1234" else date(2006, 1, 1))),
        "registration_address": draw(village_addresses(reg)),
    }
    if draw(st.booleans()):
        msg["learned_on"] = draw(dates(msg["event_date"]))
    if draw(st.booleans()):
        msg["direction"] = draw(st.sampled_from(["to_registration", "to_residence"]))
    if draw(st.booleans()):
        msg["current_address"] = draw(texts)
    for field in NOTIFICATION_FIELDS[kind]:
        msg[field] = draw(_KIND_VALUES[field])
    for field in NOTIFICATION_OPTIONAL[kind]:
        if field != "marriage_certificate_issued_on" and draw(st.booleans()):
            msg[field] = draw(_KIND_VALUES[field])
    if "marriage_certificate_no" in msg:
        # ⑤ (no valid certificate) names only one expired by the event date: valid three years
        born = msg["person"].get("birth_date", date(2005, 12, 31))
        latest = msg["event_date"].replace(year=msg["event_date"].year - 3) if kind == "5" else TODAY
        msg["marriage_certificate_issued_on"] = draw(dates(born + timedelta(days=1), max(latest, born + timedelta(days=1))))
        if msg["marriage_certificate_issued_on"] > latest:
            del msg["marriage_certificate_no"], msg["marriage_certificate_issued_on"]
    return msg


@st.composite
def found_feedback(draw: st.DrawFn) -> dict[str, Any]:
    born = draw(dates(date(1960, 1, 1), date(2000, 1, 1)))
    sons, daughters = draw(st.integers(0, 4)), draw(st.integers(0, 4))
    children: dict[str, Any] = {"sons": sons, "daughters": daughters}
    youngest = None
    if sons + daughters:
        youngest = draw(dates(born + timedelta(days=1)))
        children["youngest_birth_date"] = youngest
    if draw(st.booleans()):
        children["total"] = sons + daughters
    msg: dict[str, Any] = {
        "kind": "feedback",
        "in_reply_to": draw(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,30}", fullmatch=True)),
        "result": "found",
        "birth_date": born,
        "children": children,
        "household_type": draw(optional(codes("household_type"))),
        "husband_name": draw(optional(names)),
        "husband_residence_code": draw(optional(townships)),
        "pregnancy_policy_status": draw(optional(codes("policy_status"))),
        "left_on": draw(optional(dates(born + timedelta(days=1)))),
        "marriage_certificate_no": draw(optional(texts)),
        "remarks": draw(optional(texts)),
    }
    if sons + daughters == 1 and youngest is not None and draw(st.booleans()):
        msg["one_child_certificate_date"] = draw(dates(youngest))
    if "marriage_certificate_no" in _drop_none(msg):
        # still valid on the acceptance date: issued less than three years before TODAY
        msg["marriage_certificate_issued_on"] = draw(dates(max(born + timedelta(days=1), date(2023, 11, 24))))
    msg = _drop_none(msg)
    from gateway.codec.messages import RULE_FOUR_FIELDS

    msg["not_applicable"] = [f for f in RULE_FOUR_FIELDS if f not in msg]
    return msg


@st.composite
def not_found_feedback(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "kind": "feedback",
        "in_reply_to": draw(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,30}", fullmatch=True)),
        "result": "not_found",
        "not_found_reason": draw(codes("not_found_reason")),
        # rule 十一's three (4, 5, 1), and for reasons 1 and 2 another department or the superior database (第二十五条)
        "checked_sources": draw(st.sampled_from([["4", "5", "1", "2"], ["1", "3", "4", "5"], ["4", "5", "1", "6"],
                                                 ["4", "5", "1", "2", "3", "9"]])),
        "remarks": draw(texts),
    }


messages = st.one_of(queries(), notifications(), found_feedback(), not_found_feedback())
