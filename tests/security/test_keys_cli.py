"""`gateway keys …`: an operator can set up an authority and nodes, rotate, revoke and sign."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from gateway.cli.keys_cmds import app
from gateway.security.directory import KeyDirectory


def run(tmp_path, *args: str):
    env = {"GATEWAY_KEYS_DIR": str(tmp_path / "keys"), "GATEWAY_DIRECTORY_PATH": str(tmp_path / "dir.json"),
           "GATEWAY_AUTHORITY_KEY": str(tmp_path / "auth" / "root.pem"), "GATEWAY_KEY_PASSPHRASE": "pass-123"}
    return CliRunner().invoke(app, list(args), env=env)


def test_operator_workflow_from_authority_to_revocation(tmp_path) -> None:
    assert run(tmp_path, "authority", "init", "--name", "root").exit_code == 0
    assert run(tmp_path, "init", "110101001", "--at", "2025-01-01T00:00:00Z").exit_code == 0
    assert run(tmp_path, "init", "310115002", "--no-sm2", "--at", "2025-01-01T00:00:00Z").exit_code == 0
    unsigned = run(tmp_path, "directory", "verify", "--authority-pub", str(tmp_path / "auth" / "root.pub"))
    assert unsigned.exit_code == 1 and "unsigned_directory" in unsigned.output

    rotated = run(tmp_path, "rotate", "110101001", "--at", "2025-02-01T00:00:00Z", "--grace-days", "7")
    assert rotated.exit_code == 0, rotated.output
    directory = KeyDirectory.load(tmp_path / "dir.json")
    assert len(directory.entry("110101001").keys) == 8  # old and new, for two families and two uses

    assert run(tmp_path, "directory", "sign", "--at", "2025-03-01T00:00:00Z", "--valid-days", "7").exit_code == 0
    ok = run(tmp_path, "directory", "verify", "--authority-pub", str(tmp_path / "auth" / "root.pub"), "--at", "2025-03-02T00:00:00Z")
    assert ok.exit_code == 0 and ok.output.startswith("ok: serial 1")
    stale = run(tmp_path, "directory", "verify", "--authority-pub", str(tmp_path / "auth" / "root.pub"), "--at", "2025-03-09T00:00:00Z")
    assert stale.exit_code == 1 and "stale_directory" in stale.output

    kid = KeyDirectory.load(tmp_path / "dir.json").entry("310115002").signing_kid
    assert run(tmp_path, "revoke", "310115002", kid, "--at", "2025-03-05T00:00:00+08:00").exit_code == 0
    doc = json.loads((tmp_path / "dir.json").read_text())
    assert doc["signature"] is None  # changed, so unsigned until signed again
    revoked = [k for k in doc["directory"]["nodes"]["310115002"]["keys"] if k["kid"] == kid]
    assert revoked[0]["revoked_at"] == "2025-03-04T16:00:00.000000Z"


def test_prune_drops_retired_keys_after_their_grace_period(tmp_path) -> None:
    from gateway.security.keys import load_keyring

    run(tmp_path, "init", "110101001", "--at", "2025-01-01T00:00:00Z")
    run(tmp_path, "rotate", "110101001", "--at", "2025-02-01T00:00:00Z", "--grace-days", "7")
    assert run(tmp_path, "prune", "110101001", "--at", "2025-02-05T00:00:00Z").output.startswith("pruned 0")
    assert run(tmp_path, "prune", "110101001", "--at", "2025-02-09T00:00:00Z").output.startswith("pruned 2")
    assert load_keyring("110101001", tmp_path / "keys", b"pass-123").retired == ()


def test_passphrase_is_never_printed(tmp_path) -> None:
    outputs = [run(tmp_path, "init", "110101001").output, run(tmp_path, "rotate", "110101001").output]
    assert all("pass-123" not in out for out in outputs)
