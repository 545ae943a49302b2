"""The workflow tracker's domain (issue 7): pure rules, no I/O, no clock.

Where each rule lives:

* `calendar`          — working days (State Council holidays, 调休 make-up days, unpublished years)
* `deadlines`         — "10 / 5 working days" reply deadlines and their rule-sets (R2)
* `periods`           — reporting months with the 20th cutoff (R1), quarters (R5) and the statistical year
                        (1 Oct – 30 Sep, `statistical_year_of`)
* `cases`             — case states and transitions; open, reply, evaluate, withdraw, recompute
* `feedback`          — reply results (found / 查无此人 and its reasons)
* `strikes`           — three consecutive 查无此人 → one 漏管 (R3)
* `reverification`    — the residence township's re-visit task after 查无此人 (rule 五)
* `feedback_handling` — one reply and all its consequences, in order
* `accounting`        — received / answered / on time / … and pooled rates, roll-ups, month close (R4)
* `scoring`           — the quarterly score formula (R5)
* `reminders`         — due-soon and overdue notices
* `ports`             — `CaseSource`, what the scores command reads cases through
* `data_files`        — loaders for the operator data files (the only module doing I/O)
* `instants`          — UTC storage, China Standard Time rules
"""
