"""Codec throughput on one core: validate + encode + decode per record.

    python bench/bench_codec.py [--records 40000]

Records are a realistic mix (40 % queries with locally known facts, 30 % notifications of every
kind, 20 % found and 10 % 查无此人 feedback) with distinct people and townships. Target: ≥ 20,000
records/s.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import time
from datetime import date, timedelta
from typing import Any

from gateway.codec import decode, encode, parse_message
from gateway.codec.citizen_id import check_character
from gateway.codec.divisions import registry

TODAY = date(2026, 11, 23)


def _records(n: int, seed: int = 4) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    reg = registry()
    townships = [c for c in reg._d if len(c) == 9 and not c.startswith("66")]
    counties = [c for c in reg._d if len(c) == 6]
    out: list[dict[str, Any]] = []
    for i in range(n):
        born = date(1977, 1, 1) + timedelta(days=rnd.randrange(365 * 30))
        first17 = f"{rnd.choice(counties)}{born:%Y%m%d}{rnd.randrange(100):02d}{rnd.choice('02468')}"
        person = {"citizen_id": first17 + check_character(first17), "name": "王秀兰", "birth_date": born.isoformat(),
                  "sex": "2", "ethnicity": "01", "marital_status": "21"}
        res, reg_t = rnd.sample(townships, 2)
        r = i % 10
        if r < 4:
            out.append({"kind": "query", "residence_township": res, "registration_township": reg_t, "person": person,
                        "about_birth": r == 0, "registration_address": reg.get(reg_t).name + "某村", "current_address": "某市某区某街1号",
                        "known_locally": {"contraception": "01", "sons": 1, "daughters": 0, "pregnant": False}})
        elif r < 7:
            kind = str(1 + i % 8)
            extra = {"1": {"child_sex": "1"}, "2": {"contraception": "01"}, "3": {"contraception": "00"},
                     "4": {"pregnancy_weeks": 12}, "5": {"remarks": "证件过期"}, "6": {"pregnant": True},
                     "7": {"remarks": "婚育情况存疑"}, "8": {"remarks": "其他"}}[kind]
            out.append({"kind": "notification", "notification_kind": kind, "residence_township": res,
                        "registration_township": reg_t, "person": person, "event_date": "2026-10-01",
                        "registration_address": reg.get(reg_t).name + "某村", **extra})
        elif r < 9:
            out.append({"kind": "feedback", "in_reply_to": f"msg-{i}", "result": "found", "birth_date": born.isoformat(),
                        "household_type": "1", "husband_name": "李强", "husband_residence_code": res,
                        "pregnancy_policy_status": "1", "left_on": "2020-03-01",
                        "children": {"sons": 1, "daughters": 1, "youngest_birth_date": "2019-05-06"},
                        "marriage_certificate_no": f"JH{i:08d}", "marriage_certificate_issued_on": "2025-03-01",
                        "not_applicable": ["one_child_certificate_date"]})
        else:
            out.append({"kind": "feedback", "in_reply_to": f"msg-{i}", "result": "not_found",
                        "not_found_reason": "1", "checked_sources": ["4", "5", "1", "2"], "remarks": "村委会无此地址"})
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=40_000)
    args = parser.parse_args()
    records = _records(args.records)
    for obj in records[:500]:  # warm caches (tables, registry) outside the timing
        decode(encode(parse_message(obj, today=TODAY)), today=TODAY)

    start = time.perf_counter()
    for obj in records:
        decode(encode(parse_message(obj, today=TODAY)), today=TODAY)
    elapsed = time.perf_counter() - start

    rate = len(records) / elapsed
    print(f"cpu: {platform.processor() or platform.machine()}, cores visible: {os.cpu_count()}")
    print(f"{len(records)} records validate+encode+decode in {elapsed:.2f} s: {rate:,.0f} records/s "
          f"({'meets' if rate >= 20_000 else 'BELOW'} the 20,000/s target)")


if __name__ == "__main__":
    main()
