"""The JSON API and the spreadsheet import read the same labels the same way (one reading in the codec,
``code_tables.code_for_input``): what one accepts the other accepts, what one refuses the other refuses
with the same reason; the wire carries the codes."""

from __future__ import annotations

from datetime import date

import pytest

from gateway.access.principal import Role
from gateway.codec.bulk_import import Importer
from tests.access.helpers import signed_in_client
from tests.gateways import REGISTRATION, RESIDENCE, sample_query, running_gateway

HEADER = ("现居住地乡镇代码", "户籍地乡镇代码", "姓名", "身份证号码", "出生日期", "性别", "民族")
TODAY = date(2026, 3, 10)


def imported(sex: str, ethnicity: str):
    person = sample_query()["person"]
    row = (RESIDENCE, REGISTRATION, person["name"], person["citizen_id"], person["birth_date"], sex, ethnicity)
    return Importer("query", today=TODAY).run([HEADER, row])


@pytest.fixture
async def gateway():
    async with running_gateway() as gw:
        yield gw


async def posted(gateway, http, sex: str, ethnicity: str):
    query = sample_query()
    query["person"] = {**query["person"], "sex": sex, "ethnicity": ethnicity}
    return await http.post(f"/nodes/{RESIDENCE}/queries", json=query)


@pytest.mark.parametrize("sex, ethnicity, codes", [
    ("女", "汉族", ("2", "01")), ("女性", "汉族", ("2", "01")), ("2", "01", ("2", "01")),
    ("female", "1", ("2", "01")), (" 女 ", "壮族", ("2", "08")),
])
async def test_a_label_the_import_accepts_the_json_api_accepts_and_both_keep_the_code(gateway, sex, ethnicity, codes):
    report = imported(sex, ethnicity)
    assert report.errors == []
    person = report.good[0].message.person
    async with signed_in_client(gateway, Role.CLERK, RESIDENCE) as http:
        response = await posted(gateway, http, sex, ethnicity)
        assert response.status_code == 202, response.text
        shown = (await http.get(f"/nodes/{RESIDENCE}/messages/{response.json()['message_id']}")).json()
    assert (shown["body"]["person"]["sex"], shown["body"]["person"]["ethnicity"]) == (person.sex, person.ethnicity)
    assert (person.sex, person.ethnicity) == codes


@pytest.mark.parametrize("sex, ethnicity, field, reason", [
    ("女的", "汉族", "sex", "unknown code '女的' in table sex (GB/T 2261.1-2003)"),
    ("女", "火星族", "ethnicity", "unknown code '火星族' in table ethnicity (GB/T 3304-1991)"),
])
async def test_a_label_the_import_refuses_the_json_api_refuses_with_the_same_reason(gateway, sex, ethnicity, field, reason):
    report = imported(sex, ethnicity)
    assert [(e.field, e.reason) for e in report.errors] == [(f"person.{field}", reason)]
    async with signed_in_client(gateway, Role.CLERK, RESIDENCE) as http:
        response = await posted(gateway, http, sex, ethnicity)
    assert response.status_code == 422
    assert response.json() == {"detail": [{"loc": ["body", "query", "person", field], "msg": reason, "type": "value_error"}]}


def test_the_wire_still_takes_codes_only():
    from gateway.codec.errors import CodecError
    from gateway.codec.messages import parse_message

    query = sample_query()
    query["person"] = {**query["person"], "sex": "女"}
    with pytest.raises(CodecError) as refused:
        parse_message(query)
    assert [e.path for e in refused.value.errors] == ["query.person.sex"]
    assert parse_message(query, labels=True).person.sex == "2"
