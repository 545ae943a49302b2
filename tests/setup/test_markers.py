"""Issue 25: markers say which services a test talks to, derived from its fixtures (tests/conftest.py).

`-m database` selects the tests that use PostgreSQL (postgres_url, or database_url's postgresql run),
`-m broker` those that use RabbitMQ (amqp_url), and `-m "not database and not broker and not browser"`
the tests that need none; a module's explicit `database` mark does not drag its SQLite runs along.
Checked by collecting real test files in a child pytest (collection only: nothing connects).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# A module marked `pytestmark = pytest.mark.database` whose tests run on both databases, and one PostgreSQL-only test.
STORE_PG = "tests/tracking/test_case_store_pg.py"
OVERDUE_FROM_MIDNIGHT = f"{STORE_PG}::test_a_case_is_overdue_from_24_00_of_its_last_working_day_on"
PG_ONLY = f"{STORE_PG}::test_postgresql_answers_the_overdue_list_from_the_partial_index_even_with_a_generic_plan"
# No explicit mark at all: PostgreSQL through database_url only.
COLLECTOR = "tests/tracking/test_close_keeps_the_collector_on.py"
COLLECTOR_TEST = f"{COLLECTOR}::test_the_collector_stays_on_for_other_work_while_a_tick_closes_a_month_of_thousands_of_cases"
# amqp_url (the broker) in one test, nothing in the other.
BROKER_LOG = "tests/transport/test_broker_named_in_the_log.py"
LOGGED = f"{BROKER_LOG}::test_connecting_and_reconnecting_log_one_info_line_naming_the_broker_and_never_its_password"
NAMED = f"{BROKER_LOG}::test_the_broker_is_named_by_host_port_and_vhost_without_user_or_password"
# Starts a RabbitMQ of its own: marked `cluster`, and so `broker` too, though it uses no amqp_url.
DEMO_BROKER = "tests/cluster/test_demo_broker.py"
FILES = [STORE_PG, COLLECTOR, BROKER_LOG, DEMO_BROKER]


def selected(expression: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "-m", expression, *FILES],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode in (0, 5), done.stdout + done.stderr  # 5: nothing selected
    return {line for line in done.stdout.splitlines() if "::" in line}


def test_database_selects_the_postgresql_runs_and_leaves_the_sqlite_runs_of_a_module_marked_database() -> None:
    chosen = selected("database")

    assert PG_ONLY in chosen
    assert f"{OVERDUE_FROM_MIDNIGHT}[postgresql]" in chosen
    assert f"{OVERDUE_FROM_MIDNIGHT}[sqlite]" not in chosen
    assert f"{COLLECTOR_TEST}[postgresql]" in chosen  # earned by the fixture, no mark written
    assert f"{COLLECTOR_TEST}[sqlite]" not in chosen
    assert not {t for t in chosen if t.endswith("[sqlite]")}


def test_broker_selects_the_tests_that_use_the_broker_fixture_or_run_brokers_of_their_own() -> None:
    chosen = selected("broker")

    assert LOGGED in chosen
    assert NAMED not in chosen
    assert {t for t in chosen if t.startswith(DEMO_BROKER)}
    assert not {t for t in chosen if not t.startswith((BROKER_LOG, DEMO_BROKER))}


def test_the_fast_selection_is_the_tests_that_need_no_service() -> None:
    chosen = selected("not database and not broker and not browser")

    assert f"{OVERDUE_FROM_MIDNIGHT}[sqlite]" in chosen
    assert f"{COLLECTOR_TEST}[sqlite]" in chosen
    assert NAMED in chosen
    assert not {t for t in chosen if t.endswith("[postgresql]")}
    assert PG_ONLY not in chosen and LOGGED not in chosen
    assert not {t for t in chosen if t.startswith(DEMO_BROKER)}
