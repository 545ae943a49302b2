"""`gateway backup` and `gateway restore` refuse what would lose or mix data, before writing anything.

A restore goes only into an empty data dir and an empty database (exit 2 otherwise, one line saying
which); a backup with any byte changed is refused (exit 1) with the target left as it was. The backup
file is the owner's only and lists every file it holds with its SHA-256.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import tarfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.adapters.sql.backup import MANIFEST, POSTGRES_MEMBER, SQLITE_MEMBER, Locations, backup, libpq_conninfo
from gateway.adapters.sql.engine import is_sqlite
from gateway.adapters.sql.migrate import head_revision
from gateway.scenarios.scratch import created_database
from tests.setup import commands
from tests.setup.commands import Ran, one_line

NODES = "110101001,120101001"
PASSPHRASE = "backup-test-passphrase"


def run(cwd: Path, env: dict[str, str], *args: str) -> Ran:
    """The Typer app in this process, in ``cwd`` (made if missing), with only the given GATEWAY_* variables."""
    cwd.mkdir(parents=True, exist_ok=True)
    return commands.run(cwd, *args, **env)


def _env(folder: Path, database_url: str | None) -> dict[str, str]:
    env = {"GATEWAY_NODES": NODES, "GATEWAY_KEY_PASSPHRASE": PASSPHRASE, "GATEWAY_DATA_DIR": str(folder / "var")}
    return env | ({"GATEWAY_DATABASE_URL": database_url} if database_url else {})


@pytest.fixture
def source_and_target(database_url: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[dict, dict]]:
    """The GATEWAY_* variables of an initialised gateway, and of a fresh data dir and database."""
    if is_sqlite(database_url):
        yield _env(tmp_path / "source", None), _env(tmp_path / "target", None)
        return
    server = request.getfixturevalue("postgres_server_url")
    with created_database(server, f"gw_restore_{uuid.uuid4().hex[:12]}") as fresh:
        yield _env(tmp_path / "source", database_url), _env(tmp_path / "target", fresh)


@pytest.fixture
def backup_file(source_and_target, tmp_path: Path) -> Path:
    source, _ = source_and_target
    assert run(tmp_path / "source", source, "init").returncode == 0
    (Path(source["GATEWAY_DATA_DIR"]) / "directory.json.tmp").write_text("{}")  # a rename's leftover
    path = tmp_path / "gateway.backup"
    made = run(tmp_path / "source", source, "backup", str(path))
    assert made.returncode == 0, made.stderr
    return path


def _tables(env: dict[str, str]) -> int:
    url = env.get("GATEWAY_DATABASE_URL")
    if url is None:
        database = Path(env["GATEWAY_DATA_DIR"]) / "gateway.db"
        if not database.exists():
            return 0
        url = f"sqlite+aiosqlite:///{database}"

    async def count() -> int:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                found = await conn.execute(text(
                    "SELECT count(*) FROM sqlite_master WHERE type='table'" if url.startswith("sqlite") else
                    "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"))
                return int(found.scalar_one())
        finally:
            await engine.dispose()

    return asyncio.run(count())


def _nothing_written(target: dict[str, str]) -> None:
    data_dir = Path(target["GATEWAY_DATA_DIR"])
    assert not data_dir.exists() or not [p for p in data_dir.rglob("*") if p.is_file() and p.stat().st_size], \
        sorted(data_dir.rglob("*"))
    assert _tables(target) == 0


def _flip_byte_in(backup: Path, member: str) -> None:
    with tarfile.open(backup) as tar:
        info = tar.getmember(member)
        offset = info.offset_data + info.size // 2
    data = bytearray(backup.read_bytes())
    data[offset] ^= 0x01
    backup.write_bytes(bytes(data))


def test_the_backup_is_the_owners_only_and_lists_every_file_with_its_sha256(backup_file, source_and_target):
    source, _ = source_and_target
    assert backup_file.stat().st_mode & 0o777 == 0o600
    with tarfile.open(backup_file) as tar:
        manifest = json.loads(tar.extractfile(MANIFEST).read())  # type: ignore[union-attr]
        names = tar.getnames()
    assert manifest["format_version"] == 1
    assert manifest["alembic_revision"] == head_revision()
    sqlite = "GATEWAY_DATABASE_URL" not in source
    assert manifest["database_kind"] == ("sqlite" if sqlite else "postgresql")
    assert manifest["database"]["name"] == (SQLITE_MEMBER if sqlite else POSTGRES_MEMBER)
    listed = {f["name"] for f in manifest["files"]}
    assert {"directory", "authority_key", "authority_pub", "keys/110101001/signing.pem",
            "keys/120101001/encryption.pem"} <= listed
    # The database travels once, through the backup API or pg_dump: not as a copy of a live file.
    assert "data/gateway.db" not in listed and "data/directory.json.tmp" not in listed
    # init keeps nothing else there but the audit trail's key (and, once records exist, its checkpoint).
    assert {name for name in listed if name.startswith("data/")} <= {"data/audit.key", "data/audit.head"}
    assert all(len(f["sha256"]) == 64 for f in manifest["files"])
    assert set(names) == listed | {MANIFEST, "manifest.sha256", manifest["database"]["name"]}


def test_restore_refuses_a_data_dir_that_holds_keys(backup_file, source_and_target, tmp_path):
    _, target = source_and_target
    keys = Path(target["GATEWAY_DATA_DIR"]) / "keys" / "110101001"
    keys.mkdir(parents=True)
    (keys / "signing.pem").write_text("another gateway's key")
    refused = run(tmp_path / "target", target, "restore", str(backup_file))
    assert refused.returncode == 2
    line = one_line(refused)
    assert "is not empty" in line and "keys/110101001/signing.pem" in line and "nothing was written" in line
    assert (keys / "signing.pem").read_text() == "another gateway's key"
    assert _tables(target) == 0


def test_restore_refuses_a_database_that_holds_tables(backup_file, source_and_target, tmp_path):
    _, target = source_and_target
    env_without_nodes = {k: v for k, v in target.items() if k != "GATEWAY_NODES"}
    assert run(tmp_path / "target", env_without_nodes, "db", "upgrade").returncode == 0  # tables, and no keys
    refused = run(tmp_path / "target", target, "restore", str(backup_file))
    assert refused.returncode == 2
    assert "not empty" in one_line(refused) and "tables" in one_line(refused)
    assert not (Path(target["GATEWAY_DATA_DIR"]) / "keys").exists()


@pytest.mark.parametrize("member", ["database", "keys/110101001/signing.pem", MANIFEST])
def test_a_backup_with_one_byte_changed_is_refused_before_anything_is_written(
    backup_file, source_and_target, tmp_path, member
):
    _, target = source_and_target
    with tarfile.open(backup_file) as tar:
        database = next(n for n in tar.getnames() if n.startswith("database/"))
    _flip_byte_in(backup_file, database if member == "database" else member)
    refused = run(tmp_path / "target", target, "restore", str(backup_file))
    assert refused.returncode == 1
    line = one_line(refused)
    assert "SHA-256" in line and "nothing was written" in line
    _nothing_written(target)


def test_a_restore_into_another_kind_of_database_is_refused(backup_file, source_and_target, tmp_path):
    source, _ = source_and_target
    # A PostgreSQL backup into the default SQLite; an SQLite one into a PostgreSQL the refusal never reaches.
    other = _env(tmp_path / "other", None if "GATEWAY_DATABASE_URL" in source
                 else "postgresql+asyncpg://postgres@127.0.0.1:1/nowhere")
    refused = run(tmp_path / "other", other, "restore", str(backup_file))
    assert refused.returncode == 2
    assert "configure a" in one_line(refused)
    assert not (tmp_path / "other" / "var").exists()


def test_the_formations_multi_host_url_becomes_libpqs_host_and_port_lists():
    conninfo, env = libpq_conninfo("postgresql+asyncpg://gw:s3cret@/township?host=127.0.0.1:5442&host=127.0.0.1:5443"
                                   "&target_session_attrs=read-write&command_timeout=5")
    assert conninfo == "host=127.0.0.1,127.0.0.1 port=5442,5443 dbname=township user=gw target_session_attrs=read-write"
    assert env == {"PGPASSWORD": "s3cret"}  # never on the command line
    one, _ = libpq_conninfo("postgresql+asyncpg://postgres@db.example:6432/gw?ssl=require")
    assert one == "host=db.example port=6432 dbname=gw user=postgres sslmode=require"


def test_an_sqlite_database_written_to_while_it_is_backed_up_is_copied_as_of_one_commit(tmp_path):
    """The online backup API copies one consistent state: every transaction in the copy whole or not at all."""
    data_dir = tmp_path / "var"
    data_dir.mkdir()
    database = data_dir / "gateway.db"
    setup = sqlite3.connect(database)
    setup.execute("PRAGMA journal_mode=WAL")
    setup.execute("CREATE TABLE legs (pair INTEGER NOT NULL, side TEXT NOT NULL)")
    setup.commit()
    setup.close()
    stop, committed = threading.Event(), []

    def writer() -> None:
        conn = sqlite3.connect(database, timeout=30)
        pair = 0
        while not stop.is_set():
            with conn:  # one transaction: a query and its answer, say
                conn.execute("INSERT INTO legs VALUES (?, 'query')", (pair,))
                conn.execute("INSERT INTO legs VALUES (?, 'answer')", (pair,))
            committed.append(pair)
            pair += 1
        conn.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while len(committed) < 200:
            time.sleep(0.01)
        url = f"sqlite+aiosqlite:///{database}"
        done = backup(Locations(url, data_dir, data_dir / "keys", data_dir / "directory.json",
                                data_dir / "authority" / "authority.key", data_dir / "authority" / "authority.pub"),
                      tmp_path / "live.backup")
        during = len(committed)
    finally:
        stop.set()
        thread.join()
    with tarfile.open(done.path) as tar:
        (tmp_path / "copy.db").write_bytes(tar.extractfile(SQLITE_MEMBER).read())  # type: ignore[union-attr]
    copy = sqlite3.connect(tmp_path / "copy.db")
    assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    sides = dict(copy.execute("SELECT pair, count(*) FROM legs GROUP BY pair").fetchall())
    copy.close()
    assert 200 <= len(sides) <= during + 1
    assert set(sides.values()) == {2}  # no query without its answer
    assert sorted(sides) == list(range(len(sides)))  # and no gap: a prefix of the commits


def test_a_backup_of_an_unreachable_postgresql_says_so_in_one_line_with_exit_3(tmp_path):
    refused = run(tmp_path, _env(tmp_path, "postgresql+asyncpg://postgres@127.0.0.1:1/nowhere"), "backup",
                  str(tmp_path / "gateway.backup"))
    assert refused.returncode == 3
    assert "cannot reach the database" in one_line(refused)
    assert not (tmp_path / "gateway.backup").exists()
    assert not list(tmp_path.glob(".gateway-backup-*"))  # its work folder (a database copy) removed


def test_a_formations_multi_host_url_is_backed_up_from_the_host_that_answers(postgres_url, tmp_path):
    parsed = make_url(postgres_url)
    formation = (f"postgresql+asyncpg://{parsed.username}@/{parsed.database}"
                 f"?host=127.0.0.1:1&host={parsed.host}:{parsed.port or 5432}&target_session_attrs=read-write")
    env = _env(tmp_path, postgres_url)
    assert run(tmp_path, env, "init").returncode == 0
    made = run(tmp_path, env | {"GATEWAY_DATABASE_URL": formation}, "backup", str(tmp_path / "gateway.backup"))
    assert made.returncode == 0, made.stderr
    assert f"postgresql database at revision {head_revision()}" in made.stdout


def test_keys_kept_in_the_data_dir_come_back_where_the_new_machine_keeps_its_keys(tmp_path):
    source = _env(tmp_path / "source", None)
    assert run(tmp_path / "source", source, "init").returncode == 0
    (Path(source["GATEWAY_DATA_DIR"]) / "audit").mkdir()
    (Path(source["GATEWAY_DATA_DIR"]) / "audit" / "checkpoint.json").write_text('{"seq": 7}')
    assert run(tmp_path / "source", source, "backup", str(tmp_path / "gateway.backup")).returncode == 0
    target = _env(tmp_path / "target", None) | {"GATEWAY_KEYS_DIR": str(tmp_path / "etc-keys")}
    restored = run(tmp_path / "target", target, "restore", str(tmp_path / "gateway.backup"))
    assert restored.returncode == 0, restored.stderr
    assert sorted(p.name for p in (tmp_path / "etc-keys" / "110101001").iterdir()) == ["encryption.pem", "signing.pem"]
    assert (tmp_path / "etc-keys" / "110101001" / "signing.pem").stat().st_mode & 0o777 == 0o600
    assert not (tmp_path / "target" / "var" / "keys").exists()
    # Whatever else the gateway keeps in its data dir comes back there.
    assert (tmp_path / "target" / "var" / "audit" / "checkpoint.json").read_text() == '{"seq": 7}'


def test_restore_refuses_a_keys_folder_elsewhere_that_holds_another_nodes_keys(backup_file, source_and_target, tmp_path):
    other = tmp_path / "etc-keys" / "130102001"
    other.mkdir(parents=True)
    (other / "signing.pem").write_text("another node's key")
    target = source_and_target[1] | {"GATEWAY_KEYS_DIR": str(tmp_path / "etc-keys")}
    refused = run(tmp_path / "target", target, "restore", str(backup_file))
    assert refused.returncode == 2
    assert "keys folder" in one_line(refused) and "130102001/signing.pem" in one_line(refused)
    assert not (tmp_path / "target" / "var").exists()
    assert _tables(target) == 0
