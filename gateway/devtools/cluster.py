"""A local RabbitMQ cluster on loopback, made from Debian's ``rabbitmq-server``: for tests, drills, trials.

    python -m gateway.devtools.cluster up   [--dir DIR] [--nodes 3] [--port 5701] [--prefix P]
    python -m gateway.devtools.cluster status [--dir DIR]
    python -m gateway.devtools.cluster down [--dir DIR]

Each node has its own name (``gw5701n1@localhost`` …), AMQP port (5701…), TLS port (5711…), distribution
port (25701…) and its own folders under DIR; the nodes are clustered with each other only. What keeps
it away from the machine's own broker (``rabbit@…`` on 5672/25672), which shares the Erlang cookie:

- node names and ports are checked before anything starts (never ``rabbit@…``, never 5672 or 25672);
- the nodes form the cluster at first boot from a list naming only themselves (``classic_config``
  peer discovery), and ``up`` checks the members before it returns;
- every listener is bound to 127.0.0.1 (``listeners.tcp.1``/``listeners.ssl.1``, and the distribution
  with ``inet_dist_use_interface``); the machine's ``rabbitmq-env.conf`` is replaced by the node's own;
- there is no ``guest``: the first node creates an administrator with a random password kept in
  ``DIR/admin.secret`` (mode 0600); the TLS certificates (a CA of the cluster's own, and a server
  certificate for ``localhost``/``127.0.0.1``) are made here, in ``DIR/tls``.

``LocalCluster`` is a context manager: leaving it (also on an exception) stops every node it started and
removes its folders; ``down`` does the same from the state file of a cluster started by ``up``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import json
import os
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote
from gateway.devtools.local_nodes import give_to, port_open, unreachable_parent

DEFAULT_DIR = Path("/tmp/gateway-cluster")
FORBIDDEN_PORTS = {5672, 5671, 25672, 15672, 4369}
STATE_FILE = "cluster.json"


class ClusterError(RuntimeError):
    pass


@dataclass(frozen=True)
class NodeSpec:
    prefix: str
    index: int
    amqp_port: int
    tls_port: int
    dist_port: int

    @property
    def name(self) -> str:
        return f"{self.prefix}{self.index}@localhost"

    @property
    def short(self) -> str:
        return f"{self.prefix}{self.index}"


@dataclass
class LocalCluster:
    base_dir: Path = DEFAULT_DIR
    size: int = 3
    first_port: int = 5701
    prefix: str = ""  # default: from the first port, "gw5701n" → gw5701n1@localhost …, so two clusters never share a name
    plugins: tuple[str, ...] = ("rabbitmq_federation",)
    admin_user: str = "cluster-admin"
    keep_dir: bool = False
    start_timeout_s: float = 120.0
    nodes: list[NodeSpec] = field(init=False)
    admin_password: str = field(init=False, default="")
    _started: set[str] = field(init=False, default_factory=set)
    _processes: dict[str, subprocess.Popen[bytes]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.base_dir = Path(self.base_dir).resolve()
        self.prefix = self.prefix or f"gw{self.first_port}n"
        if not self.prefix.isalnum() or self.prefix.startswith("rabbit"):
            raise ClusterError(f"node prefix {self.prefix!r} must be alphanumeric and not 'rabbit'")
        self.nodes = [
            NodeSpec(self.prefix, i + 1, self.first_port + i, self.first_port + 10 + i, self.first_port + 20000 + i)
            for i in range(self.size)
        ]
        for node in self.nodes:
            clash = {node.amqp_port, node.tls_port, node.dist_port} & FORBIDDEN_PORTS
            if clash:
                raise ClusterError(f"port {sorted(clash)} belongs to the machine's default broker")

    # --- paths ------------------------------------------------------------------------------------

    @property
    def tls_dir(self) -> Path:
        return self.base_dir / "tls"

    @property
    def ca_file(self) -> Path:
        return self.tls_dir / "ca.pem"

    def node_dir(self, node: NodeSpec) -> Path:
        return self.base_dir / node.short

    def pid_file(self, node: NodeSpec) -> Path:
        return self.node_dir(node) / "pid"

    # --- addresses --------------------------------------------------------------------------------

    def urls(self, user: str, password: str, *, tls: bool = False, vhost: str = "/") -> list[str]:
        """One AMQP URL per node (the gateway's failover list); TLS URLs verify against the cluster's CA."""
        credentials = f"{quote(user, safe='')}:{quote(password, safe='')}"
        path = quote(vhost, safe="")
        if tls:
            return [f"amqps://{credentials}@localhost:{n.tls_port}/{path}?cafile={self.ca_file}" for n in self.nodes]
        return [f"amqp://{credentials}@127.0.0.1:{n.amqp_port}/{path}" for n in self.nodes]

    def admin_urls(self, *, tls: bool = False) -> list[str]:
        return self.urls(self.admin_user, self.admin_password, tls=tls)

    # --- life cycle -------------------------------------------------------------------------------

    def __enter__(self) -> "LocalCluster":
        try:
            self.up()
        except BaseException:
            self.down()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()

    def up(self) -> None:
        if shutil.which("rabbitmq-server") is None or shutil.which("rabbitmqctl") is None:
            raise ClusterError("rabbitmq-server not found: install Debian's rabbitmq-server package")
        if (self.base_dir / STATE_FILE).exists():
            raise ClusterError(f"a cluster is already set up in {self.base_dir}: run `down` first")
        busy = [n for n in self.nodes if port_open(n.amqp_port) or port_open(n.dist_port)]
        if busy:
            raise ClusterError(f"ports of {', '.join(n.name for n in busy)} are in use")
        self.base_dir.mkdir(parents=True, exist_ok=True)
        _check_reachable(self.base_dir)
        self.admin_password = secrets.token_urlsafe(18)
        secret = self.base_dir / "admin.secret"
        secret.write_text(self.admin_password + "\n")
        secret.chmod(0o600)
        make_certificates(self.tls_dir)
        for node in self.nodes:
            self._write_node_files(node)
        self._save_state()
        _give_to_rabbitmq(self.base_dir)
        # Started together: each node boots in ~5-10 s, mostly waiting on itself.
        for node in self.nodes:
            self._spawn(node)
        for node in self.nodes:
            self._await(node)
        self._check_membership()

    def _check_membership(self) -> None:
        """Every node sees exactly the nodes of this cluster (never the machine's own broker)."""
        status = json.loads(self.ctl(self.nodes[0], "cluster_status", "--formatter", "json"))
        running = set(status.get("running_nodes", []))
        ours = {n.name for n in self.nodes}
        if running != ours:
            raise ClusterError(f"cluster formed with {sorted(running)}, expected {sorted(ours)}")

    def down(self) -> None:
        """Stop every node (politely, then by pid), remove the folders. Safe to call twice."""
        for node in self.nodes:
            self._stop(node)
        if not self.keep_dir and self.base_dir.exists():
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def stop_node(self, index: int, *, hard: bool = False) -> None:
        """Stop one node (1-based): ``hard`` kills it (SIGKILL), as a lost machine would be."""
        node = self.nodes[index - 1]
        if hard:
            pid = _read_pid(self.pid_file(node))
            if pid is not None:
                _kill(pid, signal.SIGKILL)
                _wait_gone(pid, 30)
            self._reap(node)
        else:
            self._stop(node)

    def start_node(self, index: int) -> None:
        """Bring a stopped node back; it rejoins the cluster by itself (its membership is on disk)."""
        node = self.nodes[index - 1]
        self._spawn(node)
        self._await(node)

    # --- administration ---------------------------------------------------------------------------

    def ctl(self, node: NodeSpec | int, *args: str, timeout: float = 60) -> str:
        spec = self.nodes[node - 1] if isinstance(node, int) else node
        done = subprocess.run(
            ["rabbitmqctl", "-q", "-n", spec.name, *args],
            capture_output=True, text=True, timeout=timeout, env=self._ctl_env(spec),
        )
        if done.returncode != 0:
            raise ClusterError(f"rabbitmqctl -n {spec.name} {' '.join(args)}: {done.stderr.strip() or done.stdout.strip()}")
        return done.stdout

    def running_node(self) -> NodeSpec:
        for node in self.nodes:
            if port_open(node.amqp_port):
                return node
        raise ClusterError("no node of the cluster is running")

    def add_user(self, user: str, password: str, *, configure: str, write: str, read: str, vhost: str = "/") -> None:
        node = self.running_node()
        self.ctl(node, "add_user", user, password)
        self.ctl(node, "set_permissions", "-p", vhost, user, configure, write, read)

    def delete_user(self, user: str) -> None:
        self.ctl(self.running_node(), "delete_user", user)

    def users(self) -> list[str]:
        out = self.ctl(self.running_node(), "list_users", "--no-table-headers")
        return [line.split("\t")[0] for line in out.splitlines() if line.strip()]

    def import_definitions(self, definitions: dict[str, Any]) -> None:
        path = self.base_dir / f"definitions-{secrets.token_hex(4)}.json"
        path.write_text(json.dumps(definitions))
        _give_to_rabbitmq(path)
        try:
            self.ctl(self.running_node(), "import_definitions", str(path), timeout=120)
        finally:
            path.unlink(missing_ok=True)

    def queue_info(self, queues: list[str]) -> dict[str, tuple[str | None, list[str]]]:
        """Leader and members of quorum queues, in one CLI call: queue → (leader or None, members)."""
        out = self.ctl(self.running_node(), "list_queues", "name", "leader", "members", "--no-table-headers")
        info: dict[str, tuple[str | None, list[str]]] = {}
        for line in out.splitlines():
            parts = line.split("\t")
            if len(parts) >= 3 and parts[0] in queues:
                members = [m.strip(" []\"'") for m in parts[2].split(",") if m.strip(" []\"'")]
                info[parts[0]] = (parts[1].strip() or None, members)
        return info

    def queue_leader(self, queue: str) -> str | None:
        """The node that leads a quorum queue, or None when it has none now."""
        return self.queue_info([queue]).get(queue, (None, []))[0]

    def queue_members(self, queue: str) -> list[str]:
        return self.queue_info([queue]).get(queue, (None, []))[1]

    def node_index(self, name: str) -> int:
        for node in self.nodes:
            if node.name == name:
                return node.index
        raise ClusterError(f"{name} is not a node of this cluster")

    def is_running(self, index: int) -> bool:
        return port_open(self.nodes[index - 1].amqp_port)

    # --- internals --------------------------------------------------------------------------------

    def _write_node_files(self, node: NodeSpec) -> None:
        folder = self.node_dir(node)
        (folder / "mnesia").mkdir(parents=True, exist_ok=True)
        (folder / "log").mkdir(parents=True, exist_ok=True)
        tls = self.tls_dir
        (folder / "rabbitmq.conf").write_text("\n".join([
            "# Written by gateway/devtools/cluster.py: a node of a local test cluster, loopback only.",
            f"listeners.tcp.1 = 127.0.0.1:{node.amqp_port}",
            f"listeners.ssl.1 = 127.0.0.1:{node.tls_port}",
            f"ssl_options.cacertfile = {tls / 'ca.pem'}",
            f"ssl_options.certfile = {tls / 'server.pem'}",
            f"ssl_options.keyfile = {tls / 'server.key'}",
            "ssl_options.verify = verify_none",
            "ssl_options.fail_if_no_peer_cert = false",
            f"default_user = {self.admin_user}",
            f"default_pass = {self.admin_password}",
            "default_user_tags.administrator = true",
            "cluster_partition_handling = pause_minority",
            # The nodes find each other at first boot from this list (no join_cluster step): only the
            # nodes of this cluster are named, so none can ever join the machine's own broker.
            "cluster_formation.peer_discovery_backend = classic_config",
            *(f"cluster_formation.classic_config.nodes.{n.index} = {n.name}" for n in self.nodes),
            "log.file.level = warning",
            "log.console = false",
            "",
        ]))
        (folder / "enabled_plugins").write_text("[" + ",".join(self.plugins) + "].\n")
        # Replaces /etc/rabbitmq/rabbitmq-env.conf, whose NODENAME is the machine's own broker.
        (folder / "rabbitmq-env.conf").write_text(f"NODENAME={node.name}\n")

    def _node_env(self, node: NodeSpec) -> dict[str, str]:
        folder = self.node_dir(node)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}
        env.update({
            "RABBITMQ_NODENAME": node.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(node.amqp_port),
            "RABBITMQ_DIST_PORT": str(node.dist_port),
            "RABBITMQ_MNESIA_BASE": str(folder / "mnesia"),
            "RABBITMQ_LOG_BASE": str(folder / "log"),
            "RABBITMQ_CONFIG_FILE": str(folder / "rabbitmq"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(folder / "advanced.config"),
            "RABBITMQ_PID_FILE": str(self.pid_file(node)),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(folder / "enabled_plugins"),
            "RABBITMQ_CONF_ENV_FILE": str(folder / "rabbitmq-env.conf"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        })
        return env

    def _ctl_env(self, node: NodeSpec) -> dict[str, str]:
        env = self._node_env(node)
        # The CLI's own distribution ports (dist port + 10000 …) then differ from the default broker's CLI.
        return env

    def _spawn(self, node: NodeSpec) -> None:
        if port_open(node.amqp_port):
            raise ClusterError(f"{node.name}: port {node.amqp_port} already in use")
        self.pid_file(node).unlink(missing_ok=True)
        # In the foreground of a child process of ours (not -detached): a node that fails to boot
        # ends that process, and its output (in startup.log) says why.
        log = open(self._startup_log(node), "ab")
        try:
            self._processes[node.name] = subprocess.Popen(
                ["rabbitmq-server"], env=self._node_env(node), stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_raise_open_files,
            )
        finally:
            log.close()
        self._started.add(node.name)

    def _startup_log(self, node: NodeSpec) -> Path:
        return self.node_dir(node) / "log" / "startup.log"

    def _await(self, node: NodeSpec) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        process = self._processes.get(node.name)
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                tail = self._startup_log(node).read_text(errors="replace")[-3000:]
                raise ClusterError(f"{node.name} did not start (exit {process.returncode}):\n{tail}")
            if self.pid_file(node).exists() and port_open(node.amqp_port):
                try:
                    self.ctl(node, "await_startup", timeout=max(5.0, deadline - time.monotonic()))
                    return
                except (ClusterError, subprocess.TimeoutExpired):
                    pass
            time.sleep(0.5)
        raise ClusterError(f"{node.name} did not start within {self.start_timeout_s:.0f}s; see {self._startup_log(node)}")

    def _stop(self, node: NodeSpec) -> None:
        pid = _read_pid(self.pid_file(node))
        if pid is None and not port_open(node.amqp_port):
            self._started.discard(node.name)
            return
        try:
            self.ctl(node, "stop", timeout=60)
        except (ClusterError, subprocess.TimeoutExpired):
            pass
        if pid is not None and not _wait_gone(pid, 30):
            _kill(pid, signal.SIGKILL)
            _wait_gone(pid, 10)
        self._reap(node)

    def _reap(self, node: NodeSpec) -> None:
        self._started.discard(node.name)
        process = self._processes.pop(node.name, None)
        if process is not None:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:  # the `su` wrapper around a node that is gone
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)

    def _save_state(self) -> None:
        state = {
            "base_dir": str(self.base_dir), "size": self.size, "first_port": self.first_port,
            "prefix": self.prefix, "plugins": list(self.plugins), "admin_user": self.admin_user,
            "nodes": [asdict(n) | {"name": n.name} for n in self.nodes],
        }
        (self.base_dir / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")

    @classmethod
    def from_state(cls, base_dir: Path) -> "LocalCluster":
        state = json.loads((Path(base_dir) / STATE_FILE).read_text())
        cluster = cls(Path(state["base_dir"]), size=state["size"], first_port=state["first_port"],
                      prefix=state["prefix"], plugins=tuple(state["plugins"]), admin_user=state["admin_user"])
        secret = cluster.base_dir / "admin.secret"
        if secret.exists():
            cluster.admin_password = secret.read_text().strip()
        return cluster


# --- certificates ---------------------------------------------------------------------------------


def make_certificates(folder: Path, *, days: int = 30) -> None:
    """A CA of the cluster's own and a server certificate for localhost / 127.0.0.1, signed by it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gateway local cluster CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    (folder / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (folder / "server.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file = folder / "server.key"
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_file.chmod(0o600)


# --- processes and files --------------------------------------------------------------------------


def _raise_open_files() -> None:
    # Debian's default soft limit (1,024) is too low for quorum queues (docs/transport.md).
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        target = 65536 if hard == resource.RLIM_INFINITY else min(65536, hard)
        if os.geteuid() == 0:
            resource.setrlimit(resource.RLIMIT_NOFILE, (65536, max(65536, hard if hard != resource.RLIM_INFINITY else 65536)))
        elif soft < target:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):
        pass


def _give_to_rabbitmq(path: Path) -> None:
    give_to("rabbitmq", path)


def _check_reachable(folder: Path) -> None:
    if (where := unreachable_parent(folder)) is not None:
        raise ClusterError(f"{where} is not reachable by the rabbitmq user: put the cluster elsewhere or `chmod o+x` it")


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is gone for our purposes
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _wait_gone(pid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.1)
    return not _alive(pid)


# --- command line ---------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.devtools.cluster", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--port", type=int, default=5701, help="AMQP port of node 1 (TLS +10, distribution +20000)")
    parser.add_argument("--prefix", default="", help="node names PREFIX1@localhost … (default gw<port>n)")
    args = parser.parse_args(argv)
    if args.command == "up":
        cluster = LocalCluster(args.dir, size=args.nodes, first_port=args.port, prefix=args.prefix, keep_dir=True)
        try:
            cluster.up()
        except BaseException:
            cluster.keep_dir = False
            cluster.down()
            raise
        print(f"cluster up: {', '.join(n.name for n in cluster.nodes)}")
        print(f"admin: {cluster.admin_user}, password in {cluster.base_dir / 'admin.secret'}")
        print(f"AMQP: {' '.join(f'127.0.0.1:{n.amqp_port}' for n in cluster.nodes)}; "
              f"TLS: {' '.join(f'localhost:{n.tls_port}' for n in cluster.nodes)} (CA {cluster.ca_file})")
        return 0
    if not (args.dir / STATE_FILE).exists():
        print(f"no cluster in {args.dir}")
        return 0 if args.command == "down" else 1
    cluster = LocalCluster.from_state(args.dir)
    if args.command == "down":
        cluster.down()
        print(f"cluster down: {', '.join(n.name for n in cluster.nodes)} stopped, {cluster.base_dir} removed")
        return 0
    for node in cluster.nodes:
        print(f"{node.name}\t127.0.0.1:{node.amqp_port}\t{'running' if port_open(node.amqp_port) else 'stopped'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
