"""One backup file per gateway, and a restore that checks it before it writes anything.

A backup is a tar file: ``manifest.json`` (format version, when, which gateway release, the database's
kind and Alembic revision, and every member with its size, mode and SHA-256), ``manifest.sha256`` (the
manifest's own digest, so no byte of the file goes unchecked), the database, and the files of the data
dir a gateway needs to come back: keys as they are at rest, the key directory, the directory authority,
anything else kept there. Transient files are left out (the SQLite database's own files, which go
through the online backup API instead, and ``*.tmp`` files written before a rename).

- SQLite: ``sqlite3.Connection.backup``, SQLite's online backup API: a consistent copy while a
  gateway keeps writing (in WAL mode the copy is one read transaction; writers are not blocked).
- PostgreSQL: ``pg_dump -Fc`` (one consistent snapshot) and ``pg_restore --single-transaction``
  (all or nothing), the engine's documented tools; the gateway's SQLAlchemy URL is turned into libpq's
  connection string, the multi-host form of a failover formation included.

A restore reads the whole file and checks every digest, the database kind and the revision before it
touches the target; it refuses a target that is not empty (a data dir holding files, a database
holding tables).
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import sqlite3
import stat
import subprocess
import tarfile
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.private_paths import FILE_MODE, private_dir

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MANIFEST_DIGEST = "manifest.sha256"
SQLITE_MEMBER = "database/gateway.sqlite3"
POSTGRES_MEMBER = "database/gateway.pgdump"
# Written beside a file and renamed over it (the key directory, keys): never worth keeping.
_TRANSIENT_SUFFIXES = (".tmp",)
_SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")
_CHUNK = 1 << 20

DatabaseKind = Literal["sqlite", "postgresql"]


class BackupError(Exception):
    """A backup or restore that cannot be done; the message is the operator's one line."""

    exit_code = 1


class TargetNotEmpty(BackupError):
    """The restore's data dir or database already holds a gateway's data: nothing was written."""

    exit_code = 2


class TargetMismatch(BackupError):
    """The backup is of another kind of database than the one configured: nothing was written."""

    exit_code = 2


class DamagedBackup(BackupError):
    """The file is not a backup, or one of its bytes changed: nothing was written."""

    exit_code = 1


class DatabaseUnreachable(BackupError):
    """pg_dump or pg_restore could not connect to the server."""

    exit_code = 3


class Member(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    size: int = Field(ge=0)
    mode: int = Field(ge=0, le=0o777)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    format_version: int
    created_at: datetime
    gateway_version: str
    database_kind: DatabaseKind
    alembic_revision: str | None
    # Where each root of the members was on the machine backed up (informative: a restore writes each
    # root where its own settings put it).
    roots: dict[str, str]
    database: Member
    files: list[Member]


@dataclass(frozen=True)
class Locations:
    """Where a gateway keeps what a backup holds: its database URL, data dir and key files."""

    database_url: str
    data_dir: Path
    keys_dir: Path
    directory_path: Path
    authority_key: Path
    authority_pub: Path

    def roots(self) -> dict[str, Path]:
        """Each location by what it holds: the keys (a folder), the key directory and the authority's keys
        (one file each), and the data dir for the rest. A backup stores files under these names and a
        restore writes each where its own settings put it: inside the data dir or not, on either side."""
        return {"keys": self.keys_dir.resolve(), "directory": self.directory_path.resolve(),
                "authority_key": self.authority_key.resolve(), "authority_pub": self.authority_pub.resolve(),
                "data": self.data_dir.resolve()}

    def sqlite_path(self) -> Path | None:
        if database_kind(self.database_url) != "sqlite":
            return None
        database = make_url(self.database_url).database
        if not database or database == ":memory:" or database.startswith("file:"):
            raise BackupError(f"the SQLite database {database or ':memory:'!r} is not a file: nothing to back up or restore")
        return Path(database).resolve()


@dataclass(frozen=True)
class BackupDone:
    path: Path
    manifest: Manifest

    @property
    def size(self) -> int:
        return self.path.stat().st_size


@dataclass(frozen=True)
class RestoreDone:
    manifest: Manifest
    written: list[Path]


def database_kind(url: str) -> DatabaseKind:
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        return "sqlite"
    if backend == "postgresql":
        return "postgresql"
    raise BackupError(f"cannot back up a {backend} database: the gateway runs on SQLite or PostgreSQL")


def gateway_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("township-gateway")
    except PackageNotFoundError:
        return "unknown"


# ---------------------------------------------------------------------------------------------------
# Backing up


def backup(locations: Locations, target: Path) -> BackupDone:
    """Write the backup of ``locations`` to ``target`` (mode 0600), replacing it only when complete."""
    target = target.resolve()
    kind = database_kind(locations.database_url)
    private_dir(target.parent)
    work = Path(tempfile.mkdtemp(prefix=".gateway-backup-", dir=target.parent))  # 0700: it holds the database
    try:
        if kind == "sqlite":
            source = locations.sqlite_path()
            assert source is not None
            if not source.exists():
                raise BackupError(f"no SQLite database at {source}: nothing to back up (run `gateway init`)")
            staged, member_name = work / "gateway.sqlite3", SQLITE_MEMBER
            _sqlite_copy(source, staged)
            revision = _sqlite_revision(staged)  # the copy's own: the revision of what is restored
        else:
            staged, member_name = work / "gateway.pgdump", POSTGRES_MEMBER
            # Asked before the dump: the revision changes only when a release migrates, never under load.
            revision = current_revision(locations.database_url)
            _pg_dump(locations.database_url, staged)
        database = Member(name=member_name, size=staged.stat().st_size, mode=FILE_MODE, sha256=_file_sha256(staged))
        skip = {target, *(_sqlite_files(locations.sqlite_path()) if kind == "sqlite" else ())}
        files = list(_collect(locations.roots(), skip={*skip, work}))
        manifest = Manifest(
            format_version=FORMAT_VERSION, created_at=datetime.now(timezone.utc), gateway_version=gateway_version(),
            database_kind=kind, alembic_revision=revision,
            roots={name: str(path) for name, path in locations.roots().items()},
            database=database, files=[member for member, _ in files],
        )
        manifest_bytes = manifest.model_dump_json(indent=2).encode() + b"\n"
        partial = work / "backup.tar"
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
            _add_bytes(tar, MANIFEST, manifest_bytes, 0o600)
            _add_bytes(tar, MANIFEST_DIGEST, hashlib.sha256(manifest_bytes).hexdigest().encode() + b"\n", 0o600)
            with staged.open("rb") as db:
                tar.addfile(_info(member_name, database.size, FILE_MODE), db)
            for member, data in files:
                _add_bytes(tar, member.name, data, member.mode)
            raw.flush()
            os.fsync(raw.fileno())
        os.chmod(partial, FILE_MODE)
        os.replace(partial, target)
        return BackupDone(target, manifest)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _sqlite_copy(source: Path, staged: Path) -> None:
    # Read-only: a backup never changes the gateway's database (nor creates one where there is none).
    src = sqlite3.connect(f"{source.as_uri()}?mode=ro", uri=True, timeout=30)
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    os.close(fd)
    dst = sqlite3.connect(staged)
    try:
        src.backup(dst)
        # One self-contained file: the copy keeps no -wal beside it.
        dst.execute("PRAGMA journal_mode=DELETE")
    finally:
        dst.close()
        src.close()


def _sqlite_revision(path: Path) -> str | None:
    conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        if conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='alembic_version'").fetchone() is None:
            return None
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        return None if row is None else str(row[0])
    finally:
        conn.close()


def _sqlite_files(path: Path | None) -> list[Path]:
    return [] if path is None else [path, *(path.with_name(path.name + side) for side in _SQLITE_SIDE_FILES)]


def _collect(roots: dict[str, Path], skip: set[Path]) -> Iterator[tuple[Member, bytes]]:
    """Every regular file under each root, read once: its bytes are what is hashed and what is stored.
    A file is stored once, under the first root that holds it (the keys folder before the data dir)."""
    taken = set(skip)
    for name, root in roots.items():
        if root.is_file():
            paths = [(root, name)]
        elif root.is_dir():
            paths = [(path, f"{name}/{path.relative_to(root).as_posix()}") for path in sorted(root.rglob("*"))]
        else:
            continue  # not there (a data dir never set up, a province key configured but absent)
        for path, member_name in paths:
            if any(path == t or path.is_relative_to(t) for t in taken) or path.name.endswith(_TRANSIENT_SUFFIXES):
                continue
            info = path.lstat()
            if not stat.S_ISREG(info.st_mode):
                continue  # folders come back with the files; sockets, links and the like are not the gateway's
            data = path.read_bytes()
            yield Member(name=member_name, size=len(data), mode=stat.S_IMODE(info.st_mode),
                         sha256=hashlib.sha256(data).hexdigest()), data
        taken.add(root)


def _info(name: str, size: int, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, mode, int(datetime.now(timezone.utc).timestamp())
    return info


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mode: int) -> None:
    tar.addfile(_info(name, len(data), mode), io.BytesIO(data))


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------------
# Checking a backup


def read_manifest(path: Path) -> Manifest:
    """The backup's manifest once every byte of the file is checked against it; else DamagedBackup."""
    try:
        with tarfile.open(path, mode="r:") as tar:
            return _checked(tar)
    except FileNotFoundError:
        raise BackupError(f"no backup file at {path}") from None
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise DamagedBackup(f"{path} is not a readable gateway backup ({exc}): nothing was written") from None


def _checked(tar: tarfile.TarFile) -> Manifest:
    members = tar.getmembers()
    by_name: dict[str, tarfile.TarInfo] = {}
    for info in members:
        if info.name in by_name:
            raise DamagedBackup(f"the backup holds {info.name} twice: nothing was written")
        by_name[info.name] = info
    manifest_bytes = _member_bytes(tar, by_name, MANIFEST)
    recorded = _member_bytes(tar, by_name, MANIFEST_DIGEST).strip().decode("ascii", "replace")
    if hashlib.sha256(manifest_bytes).hexdigest() != recorded:
        raise DamagedBackup("the backup's manifest does not match its SHA-256: the file was changed or damaged; "
                            "nothing was written")
    try:
        manifest = Manifest.model_validate_json(manifest_bytes)
    except ValidationError as exc:
        raise DamagedBackup(f"the backup's manifest is not one this release reads ({exc.error_count()} problems): "
                            "nothing was written") from None
    if manifest.format_version != FORMAT_VERSION:
        raise DamagedBackup(f"backup format {manifest.format_version} is not one this release reads "
                            f"(it reads {FORMAT_VERSION}): nothing was written")
    expected = {MANIFEST, MANIFEST_DIGEST, manifest.database.name, *(m.name for m in manifest.files)}
    extra = sorted(set(by_name) - expected)
    if extra:
        raise DamagedBackup(f"the backup holds {extra[0]}, which its manifest does not list: nothing was written")
    for member in (manifest.database, *manifest.files):
        _safe_name(member.name)
        info = by_name.get(member.name)
        if info is None:
            raise DamagedBackup(f"the backup lacks {member.name}, which its manifest lists: the file is truncated "
                                "or damaged; nothing was written")
        if not info.isreg() or info.size != member.size or _stream_sha256(tar, info) != member.sha256:
            raise DamagedBackup(f"{member.name} in the backup does not match its SHA-256 in the manifest: the file "
                                "was changed or damaged; nothing was written")
    return manifest


def _member_bytes(tar: tarfile.TarFile, by_name: dict[str, tarfile.TarInfo], name: str) -> bytes:
    info = by_name.get(name)
    if info is None or not info.isreg() or info.size > 64 * 1024 * 1024:
        raise DamagedBackup(f"the file has no {name}: it is not a gateway backup, or it is damaged; nothing was written")
    extracted = tar.extractfile(info)
    assert extracted is not None
    return extracted.read()


def _stream_sha256(tar: tarfile.TarFile, info: tarfile.TarInfo) -> str:
    digest = hashlib.sha256()
    extracted = tar.extractfile(info)
    assert extracted is not None
    while chunk := extracted.read(_CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


_ROOT_NAMES = ("data", "keys", "directory", "authority_key", "authority_pub")


def _safe_name(name: str) -> None:
    parts = name.split("/")
    if (name.startswith("/") or any(p in ("", ".", "..") for p in parts)
            or (name not in (SQLITE_MEMBER, POSTGRES_MEMBER) and parts[0] not in _ROOT_NAMES)):
        raise DamagedBackup(f"the backup names a file {name!r} outside the gateway's folders: nothing was written")


# ---------------------------------------------------------------------------------------------------
# Restoring


def restore(locations: Locations, source: Path) -> RestoreDone:
    """Restore ``source`` into the empty database and data dir of ``locations``.

    Order: the whole file checked; the backup's database kind against the configured one; the revision
    against this release's; the target empty; then the database (one step: a rename on SQLite, one
    transaction on PostgreSQL), then the files."""
    from gateway.adapters.sql.migrate import head_revision

    source = source.resolve()
    manifest = read_manifest(source)
    kind = database_kind(locations.database_url)
    if manifest.database_kind != kind:
        raise TargetMismatch(f"the backup holds a {manifest.database_kind} database and GATEWAY_DATABASE_URL names a "
                             f"{kind} one: configure a {manifest.database_kind} database to restore it; nothing was written")
    if manifest.alembic_revision is not None and manifest.alembic_revision not in known_revisions():
        raise TargetMismatch(f"the backup's database is at revision {manifest.alembic_revision}, which this release "
                             f"does not know (its newest is {head_revision()}): restore it with the release that made "
                             f"it ({manifest.gateway_version}) or a newer one; nothing was written")
    plan = _plan_files(locations, manifest)
    sqlite_target = locations.sqlite_path()
    if sqlite_target is not None:
        _refuse_sqlite_with_tables(sqlite_target)
    else:
        _refuse_postgres_with_tables(locations.database_url)
    with tarfile.open(source, mode="r:") as tar:
        database = tar.extractfile(manifest.database.name)
        assert database is not None
        if sqlite_target is not None:
            _sqlite_restore(database, sqlite_target)
        else:
            _pg_restore(database, locations.database_url, work_dir=source.parent)
        written = []
        for member, path in plan:
            extracted = tar.extractfile(member.name)
            assert extracted is not None
            _write_new(path, extracted.read(), member.mode)
            written.append(path)
    return RestoreDone(manifest, written)


def _plan_files(locations: Locations, manifest: Manifest) -> list[tuple[Member, Path]]:
    """Where each file of the backup goes; TargetNotEmpty when the data dir or a key location holds files."""
    roots = locations.roots()
    leave = set(_sqlite_files(locations.sqlite_path()))
    for name, variable in (("data", "GATEWAY_DATA_DIR"), ("keys", "GATEWAY_KEYS_DIR")):
        folder = roots[name]
        held = sorted(p for p in folder.rglob("*") if not p.is_dir() and p not in leave) if folder.is_dir() else []
        if held:
            what = "data dir" if name == "data" else "keys folder"
            raise TargetNotEmpty(f"the {what} {folder} is not empty (it holds {held[0].relative_to(folder)}"
                                 f"{f' and {len(held) - 1} more' if len(held) > 1 else ''}): restore into an empty "
                                 f"{what} ({variable}); nothing was written")
    plan: list[tuple[Member, Path]] = []
    targets: set[Path] = set()
    for member in manifest.files:
        root_name, _, rest = member.name.partition("/")
        root = roots[root_name]
        path = root / rest if rest else root
        if path in targets:
            raise TargetMismatch(f"two files of the backup would be restored to {path} under this configuration: "
                                 "configure the key locations as they were when it was made; nothing was written")
        targets.add(path)
        if path.exists():
            # A province's public key installed beforehand is fine as it is, if it is the same file.
            if root_name not in ("data", "keys") and path.is_file() and _file_sha256(path) == member.sha256:
                continue
            raise TargetNotEmpty(f"{path} already exists: restore into empty key locations; nothing was written")
        plan.append((member, path))
    return plan


def _refuse_sqlite_with_tables(path: Path) -> None:
    if not path.exists() or path.stat().st_size == 0:
        return
    try:
        conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
        try:
            tables = conn.execute("SELECT count(*) FROM sqlite_master WHERE type='table'").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise TargetNotEmpty(f"{path} exists and is not an empty SQLite database ({exc}): move it away first; "
                             "nothing was written") from None
    if tables:
        raise TargetNotEmpty(f"the database {path} is not empty ({tables} tables): restore into an empty database; "
                             "nothing was written")


def _sqlite_restore(database: IO[bytes], target: Path) -> None:
    private_dir(target.parent)
    fd, staged_name = tempfile.mkstemp(prefix=".restore-", suffix=".sqlite3", dir=target.parent)
    staged = Path(staged_name)
    try:
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(database, out, _CHUNK)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(staged, FILE_MODE)
        conn = sqlite3.connect(staged)
        try:
            verdict = conn.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            conn.close()
        if verdict != "ok":
            raise DamagedBackup(f"the backup's SQLite database fails its integrity check ({verdict}): nothing was written")
        for side in _sqlite_files(target)[1:]:
            side.unlink(missing_ok=True)  # an empty database's leftovers: the restored file replaces it whole
        os.replace(staged, target)
    finally:
        staged.unlink(missing_ok=True)


def _write_new(path: Path, data: bytes, mode: int) -> None:
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.chmod(path, mode)


# ---------------------------------------------------------------------------------------------------
# PostgreSQL through its own client tools


_SSL_MODES = {"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}
# Query parameters of the URL that libpq knows by the same name (asyncpg's own ones are left out).
_LIBPQ_PARAMS = {"target_session_attrs", "sslmode", "sslrootcert", "sslcert", "sslkey", "application_name",
                 "connect_timeout", "options"}


def libpq_conninfo(url: str) -> tuple[str, dict[str, str]]:
    """libpq's connection string for the gateway's SQLAlchemy URL, and the environment it needs.

    ``postgresql+asyncpg://u:p@/db?host=h1:5442&host=h2:5443&target_session_attrs=read-write`` becomes
    ``host=h1,h2 port=5442,5443 dbname=db user=u target_session_attrs=read-write``; the password goes
    in PGPASSWORD, never on a command line another user can read in ``ps``."""
    parsed: URL = make_url(url)
    hosts: list[str] = []
    ports: list[str] = []
    query_hosts = parsed.query.get("host")
    if query_hosts:
        for entry in (query_hosts,) if isinstance(query_hosts, str) else query_hosts:
            host, _, port = entry.rpartition(":") if re.search(r":\d+$", entry) else (entry, "", "")
            hosts.append(host)
            ports.append(port or str(parsed.port or 5432))
    elif parsed.host:
        hosts.append(parsed.host)
        ports.append(str(parsed.port or 5432))
    fields: dict[str, str] = {}
    if hosts:
        fields["host"] = ",".join(hosts)
        fields["port"] = ",".join(ports)
    if parsed.database:
        fields["dbname"] = parsed.database
    if parsed.username:
        fields["user"] = parsed.username
    for key, value in parsed.query.items():
        value = value if isinstance(value, str) else value[-1]
        if key in _LIBPQ_PARAMS:
            fields[key] = value
        elif key == "ssl" and value in _SSL_MODES:  # asyncpg's name for sslmode
            fields["sslmode"] = value
    env = {"PGPASSWORD": parsed.password} if parsed.password else {}
    return " ".join(f"{key}={_quote(value)}" for key, value in fields.items()), env


def _quote(value: str) -> str:
    if value and not re.search(r"[\s'\\]", value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def pg_tool(name: str) -> str:
    """The PostgreSQL client program: on PATH, else the newest under /usr/lib/postgresql/<v>/bin."""
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"),
                      key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0)
    if versions:
        return str(versions[-1])
    raise BackupError(f"{name} not found (PATH, /usr/lib/postgresql/<version>/bin): install the PostgreSQL client "
                      "(Debian: apt-get install postgresql-client) of the server's version or newer")


def _run_pg(args: list[str], env: dict[str, str], what: str) -> None:
    done = subprocess.run(args, capture_output=True, text=True, env={**os.environ, **env}, check=False)
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        reason = " ".join(lines)[:300] if lines else f"exit {done.returncode}"
        if "connection to server" in reason:
            raise DatabaseUnreachable(f"{what} cannot reach the database: {reason}; check GATEWAY_DATABASE_URL and "
                                      "that the database server is running")
        raise BackupError(f"{what} failed: {reason}")


def _pg_dump(url: str, staged: Path) -> None:
    conninfo, env = libpq_conninfo(url)
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    os.close(fd)
    # Owners and grants are the old server's; a restore makes the restoring user the owner of everything.
    _run_pg([pg_tool("pg_dump"), "--format=custom", "--no-owner", "--no-acl", f"--file={staged}",
             f"--dbname={conninfo}"], env, "pg_dump")


def _pg_restore(database: IO[bytes], url: str, work_dir: Path) -> None:
    conninfo, env = libpq_conninfo(url)
    work = Path(tempfile.mkdtemp(prefix=".gateway-restore-", dir=work_dir))
    try:
        staged = work / "gateway.pgdump"
        with staged.open("wb") as out:
            shutil.copyfileobj(database, out, _CHUNK)
        _run_pg([pg_tool("pg_restore"), "--single-transaction", "--exit-on-error", "--no-owner", "--no-acl",
                 f"--dbname={conninfo}", str(staged)], env, "pg_restore")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _refuse_postgres_with_tables(url: str) -> None:
    from sqlalchemy import text

    async def count(engine: AsyncEngine) -> int:
        async with engine.connect() as conn:
            found = await conn.execute(text("SELECT count(*) FROM information_schema.tables "
                                            "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"))
            return int(found.scalar_one())

    tables = _with_engine(url, count)
    if tables:
        raise TargetNotEmpty(f"the database {make_url(url).database} is not empty ({tables} tables): restore into an "
                             "empty database (createdb, then GATEWAY_DATABASE_URL); nothing was written")


# ---------------------------------------------------------------------------------------------------
# The revision


def known_revisions() -> set[str]:
    """Every revision this release ships: a backup at one of them can be restored (and migrated)."""
    from alembic.script import ScriptDirectory

    from gateway.adapters.sql.migrate import alembic_config

    return {script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()}


def current_revision(url: str) -> str | None:
    """The configured database's Alembic revision, as `gateway db current` reads it."""
    from gateway.adapters.sql import migrate

    return _with_engine(url, migrate.current_revision)


T = TypeVar("T")


def _with_engine(url: str, work: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    import asyncio

    from gateway.adapters.sql.direct_pg import dispose
    from gateway.adapters.sql.engine import create_engine

    async def go() -> T:
        engine = create_engine(url)
        try:
            return await work(engine)
        finally:
            await dispose(engine)

    return asyncio.run(go())
