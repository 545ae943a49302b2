"""A local pg_auto_failover formation on loopback, from Debian's packages: for tests, drills, trials.

    python -m gateway.devtools.pg_formation up     [--dir DIR] [--monitor-port 5441] [--ports 5442,5443]
    python -m gateway.devtools.pg_formation status [--dir DIR] [--json]
    python -m gateway.devtools.pg_formation down   [--dir DIR]

and the test tools a failover drill needs (each acts on the current primary unless ``--node NAME``):

    python -m gateway.devtools.pg_formation switchover     # planned: `pg_autoctl perform switchover`
    python -m gateway.devtools.pg_formation stop-primary   # its keeper and PostgreSQL stopped (--immediate)
    python -m gateway.devtools.pg_formation hang-primary   # SIGSTOP of its keeper and PostgreSQL: the port
                                                           # still accepts, nothing answers
    python -m gateway.devtools.pg_formation resume         # every hung node continued, every stopped one
                                                           # started again (it rejoins as a secondary)

One monitor and two PostgreSQL 15 nodes (``node1``, ``node2``) with synchronous replication (the
default of pg_auto_failover: ``synchronous_standby_names = 'ANY 1 (…)'``), built by ``pg_autoctl``
(packages ``postgresql-15-auto-failover`` and ``pg-auto-failover-cli``). What keeps it away from the
machine's own cluster on 5432:

- its ports are checked before anything starts (never 5432, none in use);
- every server listens on 127.0.0.1 only (``--listen``), with data, configuration, state and pid files
  all under DIR (its own XDG_CONFIG_HOME / XDG_DATA_HOME / XDG_RUNTIME_DIR);
- it runs as the ``postgres`` user (PostgreSQL refuses root), DIR owned by it.

Each node's keeper (``pg_autoctl run``) runs detached, in a session of its own, its log in
``DIR/<name>.log``. ``up`` returns when a primary and a secondary are in sync and prints the gateway's
URL (``GATEWAY_DATABASE_URL``): the multi-host form SQLAlchemy and asyncpg accept, one ``host=`` per
node in the query (the netloc form ``host1:p1,host2:p2`` fails parsing a port)::

    postgresql+asyncpg://postgres@/postgres?host=127.0.0.1:5442&host=127.0.0.1:5443&target_session_attrs=read-write

``PgFormation`` is a context manager: leaving it (also on an exception) stops every process and
removes DIR; ``down`` does the same from the state file of a formation started by ``up``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable
from typing import Any
from gateway.devtools.local_nodes import give_to, port_open, unreachable_parent

DEFAULT_DIR = Path("/tmp/gateway-pg-formation")
PG_BIN = Path("/usr/lib/postgresql/15/bin")
FORBIDDEN_PORTS = {5432}  # the machine's own cluster
STATE_FILE = "formation.json"
RUN_AS = "postgres"
PACKAGES = "postgresql-15-auto-failover pg-auto-failover-cli"


class FormationError(RuntimeError):
    pass


@dataclass(frozen=True)
class NodeState:
    """One node as the monitor sees it (``pg_autoctl show state``)."""

    name: str
    port: int
    reported: str
    assigned: str
    healthy: bool

    @property
    def role(self) -> str:
        if self.reported == self.assigned == "primary":
            return "primary"
        if self.reported == self.assigned == "secondary":
            return "secondary"
        if self.reported == self.assigned == "wait_primary":  # takes writes, no standby in sync yet
            return "primary-alone"
        return "changing"


@dataclass
class PgFormation:
    base_dir: Path = DEFAULT_DIR
    monitor_port: int = 5441
    node_ports: tuple[int, ...] = (5442, 5443)
    database: str = "postgres"
    keep_dir: bool = False
    start_timeout_s: float = 120.0
    _processes: list[subprocess.Popen[bytes]] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        self.base_dir = Path(self.base_dir).resolve()
        self.node_ports = tuple(self.node_ports)
        ports = [self.monitor_port, *self.node_ports]
        if len(self.node_ports) != 2:
            raise FormationError("a formation here has two nodes (a primary and its synchronous secondary)")
        if len(set(ports)) != len(ports):
            raise FormationError(f"ports {ports} must differ")
        clash = set(ports) & FORBIDDEN_PORTS
        if clash:
            raise FormationError(f"port {sorted(clash)} belongs to the machine's own PostgreSQL")

    # --- names and paths --------------------------------------------------------------------------

    @property
    def node_names(self) -> list[str]:
        return [f"node{i + 1}" for i in range(len(self.node_ports))]

    @property
    def monitor_dir(self) -> Path:
        return self.base_dir / "monitor"

    def node_dir(self, name: str) -> Path:
        return self.base_dir / name

    def log_file(self, name: str) -> Path:
        return self.base_dir / f"{name}.log"

    def port_of(self, name: str) -> int:
        return self.monitor_port if name == "monitor" else self.node_ports[self.node_names.index(name)]

    def _data_dir(self, name: str) -> Path:
        return self.monitor_dir if name == "monitor" else self.node_dir(name)

    def keeper_pid_file(self, name: str) -> Path:
        # pg_autoctl keeps it at XDG_RUNTIME_DIR/pg_autoctl/<the data dir's absolute path>/pg_autoctl.pid
        return self.base_dir / "run" / "pg_autoctl" / str(self._data_dir(name)).lstrip("/") / "pg_autoctl.pid"

    @property
    def monitor_uri(self) -> str:
        return f"postgres://autoctl_node@127.0.0.1:{self.monitor_port}/pg_auto_failover?sslmode=disable"

    def url(self, database: str | None = None) -> str:
        """The gateway's database URL: every node, the driver picking the one that takes writes."""
        hosts = "&".join(f"host=127.0.0.1:{port}" for port in self.node_ports)
        return f"postgresql+asyncpg://postgres@/{database or self.database}?{hosts}&target_session_attrs=read-write"

    def node_url(self, name: str, database: str | None = None) -> str:
        """One node only (to look at a secondary, say)."""
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port_of(name)}/{database or self.database}"

    # --- life cycle -------------------------------------------------------------------------------

    def __enter__(self) -> "PgFormation":
        try:
            self.up()
        except BaseException:
            self.down()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()

    def up(self) -> None:
        if shutil.which("pg_autoctl") is None or not (PG_BIN / "pg_ctl").exists():
            raise FormationError(f"pg_autoctl or PostgreSQL 15 not found: apt-get install {PACKAGES}")
        if (self.base_dir / STATE_FILE).exists():
            raise FormationError(f"a formation is already set up in {self.base_dir}: run `down` first")
        if self.base_dir.exists() and any(self.base_dir.iterdir()):
            # It is given to the postgres user and removed by `down`: never a folder holding anything else.
            raise FormationError(f"{self.base_dir} is not empty: give the formation a folder of its own")
        busy = [p for p in (self.monitor_port, *self.node_ports) if port_open(p)]
        if busy:
            raise FormationError(f"ports {busy} are in use")
        for sub in ("", "config", "data", "run"):
            (self.base_dir / sub).mkdir(parents=True, exist_ok=True)
        self.base_dir.chmod(0o755)
        _check_reachable(self.base_dir)
        self._save_state()
        _give_to_postgres(self.base_dir)

        self._ctl("create", "monitor", "--pgdata", str(self.monitor_dir), "--pgport", str(self.monitor_port),
                  *self._server_options())
        self._spawn("monitor")
        self._await(self._monitor_answers, "the monitor to answer")
        for index, name in enumerate(self.node_names):
            self._ctl("create", "postgres", "--pgdata", str(self.node_dir(name)), "--pgport", str(self.port_of(name)),
                      "--name", name, "--monitor", self.monitor_uri, *self._server_options(), timeout=180)
            self._spawn(name)
            if index == 0:  # the second node is cloned from a running primary
                self._await(lambda: any(n.name == name and n.reported in ("single", "primary") for n in self.state()),
                            f"{name} to run as the primary")
        self.await_ready()

    def _server_options(self) -> list[str]:
        return ["--hostname", "127.0.0.1", "--listen", "127.0.0.1", "--auth", "trust", "--no-ssl",
                "--pgctl", str(PG_BIN / "pg_ctl")]

    def down(self) -> None:
        """Stop every keeper and server (politely, then by pid), remove DIR. Safe to call twice."""
        for name in [*reversed(self.node_names), "monitor"]:
            self._continue(name)
            self._stop(name)
        for process in self._processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        self._processes.clear()
        if not self.keep_dir and (self.base_dir / STATE_FILE).exists():  # only a folder this made
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def await_ready(self, timeout_s: float | None = None) -> NodeState:
        """Wait for one primary and one secondary in sync (both as assigned); the primary is returned."""
        self._await(self.ready, "a primary and a synchronous secondary", timeout_s)
        return self.primary()

    def ready(self) -> bool:
        try:
            nodes = self.state()
        except FormationError:
            return False
        roles = sorted(n.role for n in nodes)
        if roles != ["primary", "secondary"] or not all(n.healthy for n in nodes):
            return False
        return self.synchronous(next(n for n in nodes if n.role == "primary"))

    def synchronous(self, primary: NodeState) -> bool:
        """The primary waits for a standby's commit, and its standby is one it waits for.

        Asked of the primary itself (``pg_stat_replication``), not with ``pg_autoctl show settings``:
        pg_auto_failover 2.0's ``formation_settings()`` crashed the monitor (signal 11) when asked
        during a failover, every time, and each crash set the failover back."""
        try:
            done = subprocess.run(
                [str(PG_BIN / "psql"), "-X", "-A", "-t", "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres",
                 "-d", "postgres", "-c", "select current_setting('synchronous_standby_names') <> '' and "
                 "exists (select 1 from pg_stat_replication where sync_state in ('sync', 'quorum'))"],
                capture_output=True, text=True, timeout=10, env=self._env() | {"PGCONNECT_TIMEOUT": "3"},
                stdin=subprocess.DEVNULL, **self._user(),
            )
        except subprocess.TimeoutExpired:  # a hung primary
            return False
        return done.returncode == 0 and done.stdout.strip() == "t"

    # --- what the monitor says --------------------------------------------------------------------

    def state(self) -> list[NodeState]:
        raw = json.loads(self._ctl("show", "state", "--pgdata", str(self.monitor_dir), "--json", timeout=20))
        return [NodeState(n["nodename"], int(n["nodeport"]), n["current_group_state"], n["assigned_group_state"],
                          n.get("health") == 1) for n in raw]

    def primary(self) -> NodeState:
        for node in self.state():
            if node.role == "primary":
                return node
        raise FormationError("the formation has no primary now")

    def status(self) -> dict[str, Any]:
        monitor_up = self._monitor_answers()
        nodes = self.state() if monitor_up else []
        seen = {n.name: n for n in nodes}
        primary = next((n for n in nodes if n.role == "primary" and self._keeper_condition(n.name) == "running"), None)
        rows = []
        for name in self.node_names:
            node = seen.get(name)
            rows.append({
                "name": name, "port": self.port_of(name),
                "role": node.role if node else "unknown",
                "reported": node.reported if node else None, "assigned": node.assigned if node else None,
                "healthy": node.healthy if node else None,
                "keeper": self._keeper_condition(name),
            })
        return {"monitor": {"port": self.monitor_port, "keeper": self._keeper_condition("monitor"), "answers": monitor_up},
                "nodes": rows, "synchronous": primary is not None and self.synchronous(primary), "url": self.url()}

    # --- test tools: the faults a drill needs -----------------------------------------------------

    def switchover(self) -> NodeState:
        """A planned switchover (the secondary promoted, the old primary following it)."""
        self._ctl("perform", "switchover", "--pgdata", str(self.monitor_dir), "--wait", "60", timeout=90)
        return self.await_ready()

    def stop_node(self, name: str | None = None) -> str:
        """Stop a node's keeper and PostgreSQL at once (``pg_autoctl stop --immediate``), as a lost machine."""
        name = name or self.primary().name
        self._ctl("stop", "--immediate", "--pgdata", str(self.node_dir(name)))
        keeper = _read_pid(self.keeper_pid_file(name))
        if keeper is not None and not _wait_gone(keeper, 30):
            raise FormationError(f"{name}'s keeper {keeper} did not stop")
        return name

    def hang_node(self, name: str | None = None) -> str:
        """SIGSTOP a node's keeper and every PostgreSQL process of it: its port still accepts connections
        (the kernel completes them), nothing answers — the hung host the gateway must ride through."""
        name = name or self.primary().name
        pids = self._processes_of(name)
        if not pids:
            raise FormationError(f"{name} is not running")
        for pid in pids:  # the keeper first, so that it does not see its PostgreSQL stop
            _kill(pid, signal.SIGSTOP)
        return name

    def resume(self) -> list[str]:
        """Continue every hung node, start every stopped one again; the names acted on are returned."""
        acted = []
        for name in self.node_names:
            if self._continue(name):
                acted.append(name)
            elif self._keeper_condition(name) == "stopped":
                self._spawn(name)
                acted.append(name)
        return acted

    # --- internals --------------------------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        return {
            "PATH": f"{PG_BIN}:/usr/bin:/bin", "HOME": str(self.base_dir), "LANG": "C.UTF-8",
            "XDG_CONFIG_HOME": str(self.base_dir / "config"), "XDG_DATA_HOME": str(self.base_dir / "data"),
            "XDG_RUNTIME_DIR": str(self.base_dir / "run"),
            "PG_AUTOCTL_MONITOR": "",  # never a monitor from the caller's environment
        }

    def _user(self) -> dict[str, Any]:
        if os.geteuid() != 0:
            return {}
        return {"user": RUN_AS, "group": RUN_AS, "extra_groups": []}

    def _ctl(self, *args: str, timeout: float = 60) -> str:
        try:
            done = subprocess.run(["pg_autoctl", *args], capture_output=True, text=True, timeout=timeout,
                                  env=self._env(), cwd=self.base_dir, stdin=subprocess.DEVNULL, **self._user())
        except subprocess.TimeoutExpired as exc:
            raise FormationError(f"pg_autoctl {' '.join(args)}: no answer within {timeout:.0f}s") from exc
        if done.returncode != 0:
            tail = (done.stderr.strip() or done.stdout.strip())[-2000:]
            raise FormationError(f"pg_autoctl {' '.join(args)} (exit {done.returncode}): {tail}")
        return done.stdout

    def _spawn(self, name: str) -> None:
        """``pg_autoctl run`` in a session of its own, detached, its output in DIR/<name>.log."""
        log = open(self.log_file(name), "ab")
        try:
            self._processes.append(subprocess.Popen(
                ["pg_autoctl", "run", "--pgdata", str(self._data_dir(name))], env=self._env(), cwd=self.base_dir,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                **self._user(),
            ))
        finally:
            log.close()
        _give_to_postgres(self.log_file(name))

    def _await(self, condition: Callable[[], bool], what: str, timeout_s: float | None = None) -> None:
        deadline = time.monotonic() + (timeout_s or self.start_timeout_s)
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.5)
        logs = ", ".join(str(self.log_file(n)) for n in ["monitor", *self.node_names])
        raise FormationError(f"waited {timeout_s or self.start_timeout_s:.0f}s for {what}; see {logs}")

    def _monitor_answers(self) -> bool:
        if not port_open(self.monitor_port):
            return False
        try:
            self._ctl("show", "state", "--pgdata", str(self.monitor_dir), timeout=10)
            return True
        except FormationError:
            return False

    def _processes_of(self, name: str) -> list[int]:
        """The keeper and its descendants, and the postmaster (from postmaster.pid) and its children."""
        children: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                ppid = _parent(int(entry.name))
                if ppid is not None:
                    children.setdefault(ppid, []).append(int(entry.name))
        roots = [pid for pid in (_read_pid(self.keeper_pid_file(name)),
                                 _read_pid(self._data_dir(name) / "postmaster.pid")) if pid is not None and _alive(pid)]
        found: list[int] = []
        queue = list(roots)
        while queue:
            pid = queue.pop(0)
            if pid not in found:
                found.append(pid)
                queue.extend(children.get(pid, []))
        return found

    def _continue(self, name: str) -> bool:
        pids = self._processes_of(name)
        stopped = [pid for pid in pids if _process_state(pid) == "T"]
        for pid in reversed(pids):
            _kill(pid, signal.SIGCONT)
        return bool(stopped)

    def _keeper_condition(self, name: str) -> str:
        pid = _read_pid(self.keeper_pid_file(name))
        if pid is None or not _alive(pid):
            return "stopped"
        return "hung" if _process_state(pid) == "T" else "running"

    def _stop(self, name: str) -> None:
        data = self._data_dir(name)
        keeper = _read_pid(self.keeper_pid_file(name))
        if keeper is not None and _alive(keeper):
            try:
                self._ctl("stop", "--pgdata", str(data), timeout=20)
            except FormationError:
                pass
            if not _wait_gone(keeper, 30):
                _kill(keeper, signal.SIGKILL)
                _wait_gone(keeper, 10)
        postmaster = _read_pid(data / "postmaster.pid")
        if postmaster is not None and _alive(postmaster) and _is_postgres_of(postmaster, data):
            _kill(postmaster, signal.SIGQUIT)  # immediate shutdown
            if not _wait_gone(postmaster, 20):
                _kill(postmaster, signal.SIGKILL)
                _wait_gone(postmaster, 10)

    def _save_state(self) -> None:
        state = {"base_dir": str(self.base_dir), "monitor_port": self.monitor_port,
                 "node_ports": list(self.node_ports), "database": self.database}
        (self.base_dir / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")

    @classmethod
    def from_state(cls, base_dir: Path) -> "PgFormation":
        state = json.loads((Path(base_dir) / STATE_FILE).read_text())
        return cls(Path(state["base_dir"]), monitor_port=state["monitor_port"],
                   node_ports=tuple(state["node_ports"]), database=state["database"])


# --- processes and files --------------------------------------------------------------------------


def _give_to_postgres(path: Path) -> None:
    give_to("postgres", path)


def _check_reachable(folder: Path) -> None:
    if (where := unreachable_parent(folder)) is not None:
        raise FormationError(f"{where} is not reachable by the postgres user: put the formation elsewhere or `chmod o+x` it")


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()  # after the command name, which may hold spaces


def _process_state(pid: int) -> str | None:
    fields = _stat_fields(pid)
    return fields[0] if fields else None


def _parent(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[1]) if fields else None


def _is_postgres_of(pid: int, data: Path) -> bool:
    try:
        return str(data) in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False


def _alive(pid: int) -> bool:
    state = _process_state(pid)
    return state is not None and state != "Z"  # a zombie is gone for our purposes


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


def _print_status(formation: PgFormation, as_json: bool) -> None:
    status = formation.status()
    if as_json:
        print(json.dumps(status))
        return
    monitor = status["monitor"]
    print(f"monitor\t127.0.0.1:{monitor['port']}\t{'answering' if monitor['answers'] else 'not answering'}"
          f"\tkeeper {monitor['keeper']}")
    for node in status["nodes"]:
        print(f"{node['name']}\t127.0.0.1:{node['port']}\t{node['role']}\treported {node['reported']}, "
              f"assigned {node['assigned']}\tkeeper {node['keeper']}")
    print(f"synchronous replication: {'on' if status['synchronous'] else 'off'}")
    print(f"URL: {status['url']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.devtools.pg_formation", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["up", "status", "down", "switchover", "stop-primary", "hang-primary", "resume"])
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--monitor-port", type=int, default=5441)
    parser.add_argument("--ports", default="5442,5443", help="the two nodes' ports, comma-separated")
    parser.add_argument("--node", default=None, help="stop-primary / hang-primary: this node, not the primary")
    parser.add_argument("--json", action="store_true", help="status: one JSON object")
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            ports = tuple(int(p) for p in args.ports.split(","))
            formation = PgFormation(args.dir, monitor_port=args.monitor_port, node_ports=ports, keep_dir=True)
            if (formation.base_dir / STATE_FILE).exists():  # refused before the clean-up below could touch it
                raise FormationError(f"a formation is already set up in {formation.base_dir}: run `down` first")
            try:
                formation.up()
            except BaseException:
                formation.keep_dir = False
                formation.down()
                raise
            primary = formation.primary()
            print(f"formation up: monitor 127.0.0.1:{formation.monitor_port}, "
                  + ", ".join(f"{n} 127.0.0.1:{formation.port_of(n)}" for n in formation.node_names)
                  + f"; primary {primary.name}, synchronous replication on; logs in {formation.base_dir}")
            print(formation.url())
            return 0
        if not (args.dir / STATE_FILE).exists():
            print(f"no formation in {args.dir}")
            return 0 if args.command == "down" else 1
        formation = PgFormation.from_state(args.dir)
        if args.command == "down":
            formation.down()
            print(f"formation down: every process stopped, {formation.base_dir} removed")
        elif args.command == "status":
            _print_status(formation, args.json)
        elif args.command == "switchover":
            print(f"switched over: {formation.switchover().name} is the primary")
        elif args.command == "stop-primary":
            print(f"stopped {formation.stop_node(args.node)} (keeper and PostgreSQL, --immediate)")
        elif args.command == "hang-primary":
            print(f"hung {formation.hang_node(args.node)} (SIGSTOP of its keeper and PostgreSQL processes)")
        else:
            acted = formation.resume()
            print(f"resumed {', '.join(acted)}" if acted else "nothing to resume")
    except FormationError as exc:
        print(f"pg_formation: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
