"""The seeds set targets, not a score: each township and region against each, met or not, with the gap."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest

from gateway.workflow.accounting import Counts, Level, roll_up
from gateway.workflow.data_files import DEFAULT_SCORING_FILE, DEFAULT_TARGETS_FILE, DataFileError, load_score_formula, load_targets
from gateway.workflow.sender_accounting import SenderCounts
from gateway.workflow.targets import Target, TargetSet, check, check_all, summary

TARGETS = load_targets(DEFAULT_TARGETS_FILE)


def target(figure: str) -> Target:
    return next(t for t in TARGETS.targets if t.figure == figure)


def test_rule_13_feedback_rate_target_is_100_percent_of_queries_received() -> None:
    # Rule 十三: 向现居住地反馈…的比率,必须是查询信息总数的100%.
    t = target("feedback_rate")
    assert t.at_least == 1 and "十三" in t.source
    missed = check(t, Counts(received=40, answered=39).feedback_rate)
    assert missed.met is False and missed.gap_points == Fraction(5, 2) and missed.gap_text == "-2.5pp"
    assert check(t, Counts(received=40, answered=40).feedback_rate).met is True


def test_notification_feedback_target_is_100_percent_every_notification_received_is_answered() -> None:
    # Seed 000 两地信息通报协调制度: 收到通知单的一方必须及时回复; seed 002 第二十五条: 有接收必反馈;
    # 范文篇6: 重点服务管理对象信息反馈率100%; seed 001 薛城区: 流动人口协查通报率、反馈率…均达到100%.
    t = target("notification_feedback_rate")
    assert t.at_least == 1
    assert all(words in t.source for words in ("收到通知单的一方必须及时回复", "有接收必反馈", "范文篇6", "薛城区"))
    one_unanswered = check(t, Counts(notifications_received=50, notifications_answered=49).notification_feedback_rate)
    assert one_unanswered.met is False and one_unanswered.gap_points == 2  # 98 % was enough before
    assert check(t, Counts(notifications_received=50, notifications_answered=50).notification_feedback_rate).met


def test_seed_001_sets_98_percent_for_submission_and_accuracy_and_96_for_matching() -> None:
    # Seed 001 三、工作目标: 信息登记入库率、准确率达98%以上; 信息提交、反馈、协查率达98%以上; 信息匹配率达96%以上.
    thresholds = {t.figure: t.at_least for t in TARGETS.targets}
    assert thresholds == {
        "feedback_rate": 1,
        "notification_feedback_rate": 1,
        "matching_rate": Fraction(96, 100),
        "submission_rate": Fraction(98, 100),
        "accuracy": Fraction(98, 100),
    }


def test_a_figure_with_nothing_to_judge_is_neither_met_nor_missed() -> None:
    checks = check_all(TARGETS, Counts(), SenderCounts())
    assert all(c.met is None and c.gap_text == "—" for c in checks)
    assert summary(checks) == "0/0"


def test_a_region_is_held_against_the_targets_on_its_pooled_counts() -> None:
    # 100 % + 90 % in two townships: the county's 95 % (pooled, 190/200), not the mean of rates.
    rows = {"430521101": Counts(received=100, answered=100), "430521102": Counts(received=100, answered=90)}
    county = roll_up(rows, Level.COUNTY)["430521"]
    (checked,) = [c for c in check_all(TARGETS, county, None) if c.target.figure == "feedback_rate"]
    assert checked.value == Fraction(19, 20) and checked.gap_points == 5


def test_the_sender_is_held_against_accuracy_and_submission() -> None:
    sender = SenderCounts(queries_sent=50, queries_answered=50, own_error_no_such_person=2,
                          notifications_sent=10, notifications_judged=10, notifications_on_time=10)
    checks = {c.target.figure: c for c in check_all(TARGETS, None, sender)}
    assert checks["accuracy"].value == Fraction(24, 25) and checks["accuracy"].gap_text == "-2.0pp"
    assert checks["submission_rate"].met is True


def test_a_target_on_an_unknown_figure_or_outside_0_to_100_percent_is_refused() -> None:
    with pytest.raises(ValueError, match="not a reply figure"):
        Target("happiness", Fraction(1), "reply", "nowhere")
    with pytest.raises(ValueError, match=r"in \(0, 1\]"):
        Target("accuracy", Fraction(98), "sender", "seed 001")


def test_the_weighted_score_is_a_local_convention_its_file_says_who_set(tmp_path: Path) -> None:
    doc = json.loads(DEFAULT_SCORING_FILE.read_text())
    assert doc["status"] == "local convention" and doc["set_by"]
    assert load_score_formula(DEFAULT_SCORING_FILE).set_by == doc["set_by"]
    del doc["set_by"]
    unsigned = tmp_path / "scoring.json"
    unsigned.write_text(json.dumps(doc))
    with pytest.raises(DataFileError, match="set_by"):
        load_score_formula(unsigned)


def test_every_target_names_its_seed() -> None:
    assert all("seed 00" in t.source for t in TARGETS.targets)
    assert isinstance(TARGETS, TargetSet) and TARGETS.version
