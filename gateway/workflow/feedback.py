"""What a registration township can answer (反馈), rule 四 and 六.

Either *found* (the verified fields travel in the message itself, handled by the codec), or
*no such person* (查无此人) with one of the reasons listed in rule 四. Rule 六/十二 ask for the reason
to be explained in the remarks column; we require remarks when the reason is "other".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class FeedbackResult(StrEnum):
    FOUND = "found"
    NO_SUCH_PERSON = "no_such_person"  # 查无此人


class NoSuchPersonReason(StrEnum):
    WRONG_ADDRESS = "wrong_address"  # 地址有误
    WRONG_NAME = "wrong_name"  # 姓名有误
    WRONG_ID_NUMBER = "wrong_id_number"  # 身份证号码有误
    OTHER = "other"  # 其它见备注


@dataclass(frozen=True)
class Feedback:
    """A reply as it counts for the workflow (not its content)."""

    answered_at: datetime  # UTC, the instant the gateway accepted the reply
    result: FeedbackResult
    on_time: bool
    late_because: str | None = None  # why it is not on time, in words
    reason: NoSuchPersonReason | None = None
    remarks: str = ""
    message_id: str = ""
