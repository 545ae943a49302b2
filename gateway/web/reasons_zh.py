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
    # Issue 13's rules (wire version 2).
    (r"^required when result is found \(rule 四\): give it or list it in not_applicable$",
     "查到此人时必填（规则四）：请填写，或勾选“不适用”"),
    (r"^required when there are children \(rule 四: 最小子女出生日期\)$", "有子女时必填（规则四：最小子女出生日期）"),
    (r"^only allowed when result is found$", "仅在查到此人时勾选“不适用”"),
    (r"^names a field twice$", "同一项勾选了两次“不适用”"),
    (r"^names (\w+), which is given$", r"已填写的项目不能再勾选“不适用”（\1）"),
    (r"^required when result is not_found: list the sources checked.*$", "查无此人时须勾选已核查的来源"),
    (r"^lists a source twice$", "同一来源选了两次"),
    (r"^check the floating-population database \(4\) or at least two of .*$",
     "查无此人前须核查流动人口数据库，或公安户籍、民政婚姻登记、卫生健康中至少两项（第二十五条：多方核实）"),
    (r"^must name the registration township (\d+) \(([^)]*)\) and then the 村/社区/居委会$",
     r"应写明户籍地乡镇（街道）\2（\1），并写到村（居）委会"),
    (r"^must reach village or community level.*$", "应写到村（居）委会一级（乡镇之后写明村、社区、居委会或组）"),
    (r"^must not be before event_date$", "不能早于事件日期"),
    (r"^must not be after the acceptance date (\d{4}-\d{2}-\d{2})$", r"不能晚于受理日期\1"),
    (r"^required with marriage_certificate_no .*$", "填写婚育证明编号时必填发证日期（婚育证明有效期3年）"),
    (r"^given without marriage_certificate_no$", "未填婚育证明编号时不填发证日期"),
    (r"^must be after the person's birth date$", "应晚于本人出生日期"),
    (r"^the certificate expired on (\d{4}-\d{2}-\d{2}) .*$",
     r"婚育证明已于\1期满（有效期3年）：请填写新证，或在编号处勾选“不适用”"),
    (r"^the certificate is valid until (\d{4}-\d{2}-\d{2}) \(exclusive\).*$",
     r"婚育证明有效至\1（不含），不属第⑤类（无有效婚育证明）通报"),
    (r"^must lie in the statistical year (\d{4}-\d{2}-\d{2}) – (\d{4}-\d{2}-\d{2}) of the acceptance date.*$",
     r"应在受理日期所在统计年度内（\1至\2）"),
    (r"^required \(or current_address\): a notification must carry a detailed address$",
     "必填（或填写现居住地详细地址）：通报须有详细地址"),
    (r"^must be this node, (\d+)$", r"应为本乡镇（街道）\1（向现居住地通报只能由户籍地发出）"),
    (r"^township (\d+) is not hosted by this gateway$", r"本网关不承载乡镇（街道）\1"),
    (r"^no gateway serves township (\d+).*$", r"没有网关承载乡镇（街道）\1"),
    (r"^(\d+) withdrew (\S+) before it was answered.*$", r"现居住地乡镇（街道）\1已撤回这条查询，无需反馈"),
    (r"^(\S+) was withdrawn already$", r"这条查询已撤回"),
    (r"^(\S+) was (already )?answered (meanwhile )?by (\S+); it cannot be withdrawn$", r"这条查询已有反馈，不能撤回"),
]]


def in_chinese(reason: str) -> str:
    for pattern, zh in _PATTERNS:
        if pattern.match(reason):
            return pattern.sub(zh, reason)
    return reason
