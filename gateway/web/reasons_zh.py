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
    (r"^search .* before answering 查无此人 \(rule 十一\); not searched: (.*)$",
     r"查无此人前须核查流动人口数据库、育龄妇女信息卡、公安户籍管理档案（规则十一），未核查：\1"),
    (r"^a 查无此人 for reason \d \(地址不详、姓名笔误\) is answered only after .*$",
     "因地址有误、姓名有误而查无此人的，须到公安和民政或卫生等多个部门核实，或在上级流动人口育龄妇女数据库核查后才反馈（第二十五条）"),
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
    (r"^must lie in the statistical year (\d{4}-\d{2}-\d{2}) – (\d{4}-\d{2}-\d{2}) of the acceptance date, or in the "
     r"statistical year before it .*\((\d+) working days after (\d{4}-\d{2}-\d{2}): until (\d{4}-\d{2}-\d{2})\).*$",
     r"应在受理日期所在统计年度内（\1至\2）；上一统计年度的事件须在获知日期\4后\3个工作日内（至\5）通报，已逾期"),
    (r"^must lie in the statistical year (\d{4}-\d{2}-\d{2}) – (\d{4}-\d{2}-\d{2}) of the acceptance date.*$",
     r"应在受理日期所在统计年度内（\1至\2），或属上一统计年度且在获知日期后5个工作日内通报"),
    (r"^required \(or current_address\): a notification must carry a detailed address$",
     "必填（或填写现居住地详细地址）：通报须有详细地址"),
    # Rule 五: only a query answered 查无此人 is corrected and submitted again.
    (r"^(\d+) sent no query (\S+)$", r"本乡镇（街道）\1没有发出过查询\2"),
    (r"^the query (\S+) has not been answered yet: .*$",
     r"查询\1尚未收到反馈：只有反馈为“查无此人”的查询才能更正后重新上报（规则五）"),
    (r"^the query (\S+) was answered found, not 查无此人: .*$",
     r"查询\1的反馈是查到此人：只有反馈为“查无此人”的查询才能更正后重新上报（规则五）"),
    (r"^(\S+) is a (notification|feedback), not a query: .*$",
     r"\1不是查询：只有反馈为“查无此人”的查询才能更正后重新上报（规则五）"),
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


# File-level reasons of an import (gateway/codec/xlsx_guard.py, bulk_import.py, gateway/api/import_worker.py):
# the whole file is refused, and the clerk is told why in Chinese. The setting a reason names stays as it is,
# for the operator the clerk asks.
_FILE_PATTERNS: list[tuple[re.Pattern[str], str]] = [(re.compile(p), zh) for p, zh in [
    (r"^more than (\d+) rows \((\w+)\): split the file and import each part$", r"超过\1行（\2）：请把文件拆成几份分别导入"),
    (r"^sheet (\S+) has a cell in column (\d+), beyond column (\d+) .*$",
     r"工作表 \1 的第\2列有单元格，超出了第\3列（模板的列数加少量余量）：请删除最后一列之后的各列"),
    (r"^sheet (\S+) spans (\d+) cells \(rows × columns\), more than (\d+) \((\w+)\)$",
     r"工作表 \1 占\2个单元格（行数×列数），超过\3个（\4）"),
    (r"^sheet (\S+) has a malformed (?:cell reference|dimension) (.*)$", r"工作表 \1 的单元格位置\2格式有误"),
    (r"^sheet (\S+) has a malformed row number (.*)$", r"工作表 \1 的行号\2格式有误"),
    (r"^sheet (\S+) refers to row (-?\d+), column (-?\d+), which cannot exist$", r"工作表 \1 引用了不存在的第\2行第\3列"),
    (r"^unpacks to (.+), more than the limit of (.+) \((\w+)\)$", r"解压后为\1，超过上限\2（\3）"),
    (r"^unpacks to more than (.+) \((\w+)\)$", r"解压后超过\1（\2）"),
    (r"^holds more than (\d+) shared strings \((\w+)\)$", r"共享字符串超过\1个（\2）"),
    (r"^has (\d+) parts, more than (\d+)$", r"含\1个部件，超过\2个"),
    (r"^part (\S+) declares a DTD or entities .*$", r"部件 \1 含有DTD或实体声明，工作簿不需要这些，文件不予读取"),
    (r"^part (\S+) is not well-formed XML .*$", r"部件 \1 不是格式正确的XML"),
    (r"^cannot read \(not a zip archive, so not an \.xlsx workbook\)$", "无法读取：不是zip压缩包，因而不是.xlsx工作簿"),
    (r"^not an \.xlsx workbook \(no xl/workbook\.xml\)$", "不是.xlsx工作簿（缺少 xl/workbook.xml）"),
    (r"^is encrypted or password-protected$", "文件已加密或设有密码：请另存为不加密的文件"),
    (r"^is a damaged zip archive .*$", "zip压缩包已损坏"),
    (r"^the import worker stopped while reading this file .*\((?:most often: )?.*?(GATEWAY_\w+).*\)$",
     r"读取此文件时导入进程中止（多为所需内存超过\1的限制）：请检查文件或拆成几份"),
    (r"^reading this file needs more memory than the import worker may use \((\w+)\)$",
     r"读取此文件所需内存超过导入进程的限制（\1）：请检查文件或拆成几份"),
    (r"^the import worker cannot start.*$", "导入进程无法启动：请稍后再试，或告知运维人员"),
    (r"^unsupported file type \(use \.csv or \.xlsx\)$", "文件类型不支持（请用 .csv 或 .xlsx）"),
    (r"^the file is empty: no header row$", "文件是空的：没有表头行"),
    (r"^row 1, column (\d+): unknown column (.*) for (?:query|notification) import$", r"第1行第\1列：没有\2这一列"),
    (r"^row 1, column (\d+): column (.*) appears twice$", r"第1行第\1列：\2列重复"),
    (r"^row 1: missing required column\(s\) (.*)$", r"第1行：缺少必填的列 \1"),
]]
_FILE_NAME = re.compile(r"^([\w.\-() ]+\.(?:xlsx|csv|txt)): (.*)$", re.DOTALL)


def file_reason_in_chinese(reason: str) -> str:
    """A file-level reason ("cards.xlsx: more than 20000 rows …") in Chinese, the file's name kept."""
    m = _FILE_NAME.match(reason)
    name, text = (m[1] + "：", m[2]) if m else ("", reason)
    for pattern, zh in _FILE_PATTERNS:
        if pattern.match(text):
            return name + pattern.sub(zh, text)
    return reason
