"""The codec's refusal reasons in Chinese, for the clerks' forms.

The codec speaks English to API clients and operators (its reasons are part of the JSON API); a clerk
reads the same reason in Chinese. A reason no pattern knows is shown as it is, never hidden.
"""

from __future__ import annotations

import re

_PATTERNS: list[tuple[re.Pattern[str], str]] = [(re.compile(p), zh) for p, zh in [
    (r"^wrong check character '(.)', expected '(.)'.*$", r"校验码应为“\2”，填的是“\1”（确认号码无误时，勾选“身份号码未通过校验，确认照发”）"),
    (r"^must be 18 characters \(or a 15-digit legacy number\), got (\d+)$", r"应为18位（或15位旧号码），填了\1位"),
    (r"^character (\d+) \('(.)'\) must be a digit$", r"第\1位“\2”应为数字"),
    (r"^character 18 \('(.)'\) must be a digit or 'X'$", r"第18位“\1”应为数字或X"),
    (r"^impossible birth date (\d+).*$", r"号码中的出生日期\1不存在"),
    (r"^birth date (\d+) is in the future$", r"号码中的出生日期\1在将来"),
    (r"^unknown region: no province code (\d+)$", r"号码前两位\1不是省级代码"),
    (r"^region (\d+) is not a county code in the registry.*$", r"号码前六位\1不是已知的县级代码（可能已撤销）"),
    (r"^must not be empty$", "不能为空"),
    (r"^required$", "必填"),
    (r"^field required$", "必填"),
    (r"^required when result is not_found \(rule 六\)$", "查无此人时必填（规则六）"),
    (r"^required when result is not_found$", "查无此人时必填"),
    (r"^required when result is found$", "查到此人时必填"),
    (r"^not allowed when result is not_found$", "查无此人时不填此项"),
    (r"^only allowed when result is not_found$", "仅在查无此人时填写"),
    (r"^must differ from residence_township$", "不能与现居住地相同"),
    (r"^required for notification kind (\d+)$", r"第\1类通报必填"),
    (r"^not used with notification kind (\d+)$", r"第\1类通报不填此项"),
    (r"^an operation notification needs the measure taken$", "计划生育手术通报须填写所采取的措施"),
    (r"^does not agree with the citizen ID \(sex code (\d)\)$", r"与公民身份号码不符（号码所示性别代码为\1）"),
    (r"^does not agree with the citizen ID \((\d{4}-\d{2}-\d{2})\)$", r"与公民身份号码不符（号码所示出生日期为\1）"),
    (r"^given but there are no children$", "没有子女时不填"),
    (r"^must be after birth_date$", "应晚于出生日期"),
    (r"^must not be before the person's birth date$", "不能早于本人出生日期"),
    (r"^must be a 9-digit township code$", "应为9位乡镇（街道）代码"),
    (r"^must be a 6-digit county or 9-digit township code$", "应为6位县级或9位乡镇（街道）代码"),
    (r"^unknown township code (\d+)$", r"没有这个乡镇（街道）代码：\1"),
    (r"^unknown division code (\d+)$", r"没有这个区划代码：\1"),
    (r"^unknown code '([^']*)' in table .*$", r"代码“\1”不在代码表中"),
    (r"^must be a date YYYY-MM-DD.*$", "应为日期，格式 年-月-日"),
    (r"^impossible date (.*)$", r"日期不存在：\1"),
    (r"^must not be after the reference date (.*)$", r"不能晚于\1"),
    (r"^not in the future$", "不能是将来的日期"),
    (r"^must not contain control characters.*$", "含有不可见的控制字符"),
    (r"^unknown field$", "不认识的字段"),
    (r"^Input should be a valid integer.*$", "应为整数"),
    (r"^Input should be greater than or equal to (\d+)$", r"不能小于\1"),
    (r"^Input should be less than or equal to (\d+)$", r"不能大于\1"),
    (r"^String should have at most (\d+) characters?$", r"不能超过\1个字"),
    (r"^township (\d+) is not hosted by this gateway$", r"本网关不承载乡镇（街道）\1"),
    (r"^no gateway serves township (\d+).*$", r"没有网关承载乡镇（街道）\1"),
]]


def in_chinese(reason: str) -> str:
    for pattern, zh in _PATTERNS:
        if pattern.match(reason):
            return pattern.sub(zh, reason)
    return reason
