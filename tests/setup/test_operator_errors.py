"""Clear errors for operators and safe defaults at rest, through the real `gateway` command.

Each misconfiguration ends the command with one line on stderr saying what is wrong and how to fix it,
a non-zero exit, and no traceback unless `--debug`. Files made by `gateway init` are the owner's only,
and `gateway serve` refuses keys kept in clear unless told otherwise.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.setup.commands import Ran, one_line, run

GATEWAY = Path(sys.executable).with_name("gateway")
NODE = "110101001"
NOWHERE_AMQP = "amqp://guest:guest@127.0.0.1:1/"  # port 1: nothing listens


def run_process(cwd: Path, *args: str, timeout: float = 120, **env: str) -> Ran:
    """The installed `gateway` command in a process of its own (slow on a loaded machine: used sparingly)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    done = subprocess.run([str(GATEWAY), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**clean, **env})
    return Ran(done.returncode, done.stdout, done.stderr)


def last_line(result: Ran) -> str:
    """`serve` logs as it starts (log lines, never a traceback); its verdict is the last line."""
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    return result.stderr.strip().splitlines()[-1]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def initialised(tmp_path: Path) -> Path:
    result = run(tmp_path, "init", GATEWAY_NODES=NODE)
    assert result.returncode == 0, result.stderr
    return tmp_path


@pytest.mark.parametrize("command", [["serve"], ["init"]])
def test_no_gateway_nodes_ends_with_one_line_naming_the_variable(tmp_path, command):
    result = run(tmp_path, *command)
    assert result.returncode == 2
    line = one_line(result)
    assert "GATEWAY_NODES" in line and "set GATEWAY_NODES" in line


def test_a_malformed_setting_names_the_variable_in_one_line(tmp_path):
    result = run(tmp_path, "serve", GATEWAY_NODES="12345")
    assert result.returncode == 2
    line = one_line(result)
    assert line.startswith("configuration error: GATEWAY_NODES:") and "9-digit township code" in line


def test_a_missing_key_says_which_file_and_what_to_run(initialised):
    (initialised / "var" / "keys" / NODE / "signing.pem").unlink()
    result = run(initialised, "serve", GATEWAY_NODES=NODE, GATEWAY_ALLOW_PLAINTEXT_KEYS="1")
    assert result.returncode == 2
    line = one_line(result)
    assert "missing key file" in line and "signing.pem" in line and "gateway keys init" in line


@pytest.mark.parametrize("command", [["db", "current"], ["quarantine", "list"]])
def test_an_unreachable_database_ends_with_one_line_and_exit_3(initialised, command):
    result = run(initialised, *command, GATEWAY_NODES=NODE,
                 GATEWAY_DATABASE_URL="postgresql+asyncpg://postgres:secret@127.0.0.1:1/gateway")
    assert result.returncode == 3
    line = one_line(result)
    assert line.startswith("cannot reach the database postgresql+asyncpg://postgres:***@127.0.0.1:1/gateway")
    assert "check GATEWAY_DATABASE_URL" in line and "secret" not in line


def test_an_unreachable_broker_ends_with_one_line_and_exit_3(initialised):
    result = run(initialised, "queues", "status", GATEWAY_NODES=NODE, GATEWAY_AMQP_URL=NOWHERE_AMQP)
    assert result.returncode == 3
    line = one_line(result)
    assert line.startswith("cannot reach RabbitMQ at amqp://guest:***@127.0.0.1:1/")
    assert "check GATEWAY_AMQP_URL" in line


def test_serve_gives_up_on_an_unreachable_broker_with_one_verdict_line(initialised):
    result = run(initialised, "serve", "--port", "1", GATEWAY_NODES=NODE, GATEWAY_ALLOW_PLAINTEXT_KEYS="1",
                 GATEWAY_AMQP_URL=NOWHERE_AMQP, GATEWAY_BROKER_START_TIMEOUT_S="1")
    assert result.returncode == 3
    assert last_line(result).startswith("cannot reach RabbitMQ at amqp://guest:***@127.0.0.1:1/")


def test_debug_shows_the_traceback(initialised):
    result = run_process(initialised, "--debug", "queues", "status", GATEWAY_NODES=NODE, GATEWAY_AMQP_URL=NOWHERE_AMQP)
    assert result.returncode != 0
    assert "Traceback" in result.stderr and "AMQPConnectionError" in result.stderr


# --- safe defaults at rest ---------------------------------------------------------------------------


def test_init_makes_the_database_file_0600_and_the_data_key_and_authority_folders_0700(initialised):
    data = initialised / "var"
    assert mode(data / "gateway.db") == 0o600
    for extra in data.glob("gateway.db-*"):  # SQLite's -wal and -shm take the database file's mode
        assert mode(extra) == 0o600, extra
    for folder in (data, data / "keys", data / "keys" / NODE, data / "authority"):
        assert mode(folder) == 0o700, folder


def test_folders_are_made_0700_whatever_the_umask(tmp_path):
    from gateway.private_paths import private_dir, private_file

    old = os.umask(0o000)
    try:
        private_file(tmp_path / "a" / "b" / "gateway.db")
    finally:
        os.umask(old)
    assert mode(tmp_path / "a") == mode(tmp_path / "a" / "b") == 0o700
    assert mode(tmp_path / "a" / "b" / "gateway.db") == 0o600
    assert private_dir(tmp_path / "a") == tmp_path / "a"  # an existing folder is left as it is


def test_serve_refuses_private_keys_kept_in_clear(initialised):
    result = run_process(initialised, "serve", GATEWAY_NODES=NODE)  # the installed command, end to end
    assert result.returncode == 2
    line = one_line(result)
    assert "not encrypted at rest" in line
    assert "GATEWAY_KEY_PASSPHRASE" in line and "GATEWAY_ALLOW_PLAINTEXT_KEYS=1" in line


def test_serve_with_plaintext_keys_allowed_gets_past_the_key_check(initialised, caplog):
    result = run(initialised, "serve", "--port", "1", GATEWAY_NODES=NODE, GATEWAY_ALLOW_PLAINTEXT_KEYS="1",
                 GATEWAY_AMQP_URL=NOWHERE_AMQP, GATEWAY_BROKER_START_TIMEOUT_S="1")
    assert "not encrypted at rest" not in result.stderr
    assert "GATEWAY_ALLOW_PLAINTEXT_KEYS=1" in caplog.text  # the log says keys may be in clear
    assert last_line(result).startswith("cannot reach RabbitMQ")  # it went on to connect


def test_serve_accepts_keys_encrypted_with_the_passphrase(tmp_path):
    secret = {"GATEWAY_NODES": NODE, "GATEWAY_KEY_PASSPHRASE": "correct horse battery staple"}
    assert run(tmp_path, "init", **secret).returncode == 0
    assert b"ENCRYPTED PRIVATE KEY" in (tmp_path / "var" / "keys" / NODE / "signing.pem").read_bytes()
    result = run(tmp_path, "serve", "--port", "1", **secret, GATEWAY_AMQP_URL=NOWHERE_AMQP,
                 GATEWAY_BROKER_START_TIMEOUT_S="1")
    assert "not encrypted at rest" not in result.stderr
    assert last_line(result).startswith("cannot reach RabbitMQ")


@pytest.mark.broker
def test_the_demo_says_its_keys_are_kept_unencrypted(tmp_path, amqp_url):
    result = run_process(tmp_path, "demo", "--townships", "2", "--messages", "2", GATEWAY_AMQP_URL=amqp_url)
    assert result.returncode == 0, result.stderr
    assert "keys are kept unencrypted for the demo" in result.stdout
