"""The deployment files: docker-compose.yml checked by `docker compose config` where the client has
compose, otherwise by a YAML and schema check of what matters (issue 11: nothing published beyond
loopback, no guest, secrets from files); the systemd unit; broker definitions from `topology export`."""

from __future__ import annotations

import configparser
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"


def _compose_available() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30).returncode == 0


def test_compose_file_is_valid() -> None:
    if _compose_available():
        done = subprocess.run(["docker", "compose", "-f", str(COMPOSE), "config", "-q"], capture_output=True,
                              text=True, timeout=60, env={**os.environ, "DEMO_BROKER_PASSWORD": "check"})
        assert done.returncode == 0, done.stderr
    spec = yaml.safe_load(COMPOSE.read_text())
    services = spec["services"]
    assert {"rabbitmq-1", "rabbitmq-2", "rabbitmq-3", "postgres", "gateway-1", "gateway-2", "proxy"} <= services.keys()
    for name, service in services.items():
        assert set(service) <= {"image", "build", "entrypoint", "command", "environment", "env_file", "secrets",
                                "volumes", "ports", "depends_on", "healthcheck", "networks", "restart", "hostname",
                                "ulimits", "profiles"}, name
        for secret in service.get("secrets", []):
            assert secret in spec["secrets"], f"{name}: undeclared secret {secret}"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name}: {source} missing"
            else:
                assert source in spec["volumes"], f"{name}: undeclared volume {source}"


def test_compose_publishes_nothing_beyond_loopback_has_no_guest_and_takes_secrets_from_files() -> None:
    spec = yaml.safe_load(COMPOSE.read_text())
    for name, service in spec["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on all interfaces"
        environment = service.get("environment", {})
        for key, value in environment.items():
            assert not re.search(r"PASS(WORD)?$|SECRET|PASSPHRASE$", key) or "${" in str(value), f"{name}: {key} in clear"
    text = COMPOSE.read_text()
    assert "guest" not in text.replace("no guest", "")
    for secret in spec["secrets"].values():
        assert secret["file"].startswith("./deploy/secrets/")
    assert "deploy/secrets/" in (ROOT / ".gitignore").read_text()
    cluster = (ROOT / "deploy/rabbitmq/cluster.conf").read_text()
    hosts = {spec["services"][f"rabbitmq-{i}"]["hostname"] for i in (1, 2, 3)}
    assert {f"rabbit@{h}" for h in hosts} == set(re.findall(r"nodes\.\d = (\S+)", cluster))
    assert "listeners.tcp = none" in cluster  # AMQP over TLS only


def test_systemd_unit_runs_a_gateway_with_its_secrets_as_credentials() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read_string((ROOT / "deploy/systemd/gateway@.service").read_text())
    service = unit["Service"]
    assert "gateway serve" in service["ExecStart"] and service["User"] == "gateway"
    assert "LoadCredential" in service and "PASSWORD" not in service.get("Environment", "").upper()
    if shutil.which("systemd-analyze"):
        done = subprocess.run(["systemd-analyze", "verify", str(ROOT / "deploy/systemd/gateway@.service")],
                              capture_output=True, text=True, timeout=60)
        assert "Unknown key" not in done.stderr and "Invalid" not in done.stderr, done.stderr


def test_topology_export_gives_users_permissions_policies_and_federation_upstreams(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cret-of-gw1\n")
    env = {**os.environ, "GATEWAY_NODES": "110101001,110101002", "GATEWAY_GATEWAY_ID": "gw1"}
    gateway = Path(os.sys.executable).with_name("gateway")
    done = subprocess.run([str(gateway), "topology", "export", "--user", "gw1", "--password-file", str(secret),
                           "--federate", "province-12=amqps://federation:X@mq.tj.example:5671/%2F"],
                          capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    definitions = json.loads(done.stdout)
    assert [u["name"] for u in definitions["users"]] == ["gw1"]
    assert "s3cret" not in done.stdout and definitions["users"][0]["password_hash"]
    assert definitions["permissions"] == [{"user": "gw1", "vhost": "/", "configure": "^$",
                                           "write": "^township\\.exchange$", "read": "^gateway\\.gw1\\.inbox$"}]
    assert definitions["policies"][0]["definition"] == {"federation-upstream-set": "all"}
    assert definitions["parameters"][0]["component"] == "federation-upstream"
    assert {b["routing_key"] for b in definitions["bindings"]} >= {"110101001", "110101002"}


@pytest.mark.parametrize("password", ["guest", "pässwörd with spaces"])
def test_password_hash_is_rabbitmqs_salted_sha256(password: str) -> None:
    import base64
    import hashlib

    from gateway.adapters.topology import password_hash

    raw = base64.b64decode(password_hash(password, salt=b"\x01\x02\x03\x04"))
    assert raw[:4] == b"\x01\x02\x03\x04" and raw[4:] == hashlib.sha256(b"\x01\x02\x03\x04" + password.encode()).digest()
