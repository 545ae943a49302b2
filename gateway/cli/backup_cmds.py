"""`gateway backup FILE` and `gateway restore FILE`: one file that brings a gateway back.

The work is in gateway/adapters/sql/backup.py; these commands read the settings, call it, and print.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from gateway.cli.service_cmds import _settings

if TYPE_CHECKING:
    from gateway.adapters.sql.backup import Locations


def _locations() -> Locations:
    from gateway.adapters.sql.backup import Locations

    settings = _settings()
    return Locations(
        database_url=settings.resolved_database_url, data_dir=settings.data_dir,
        keys_dir=settings.resolved_keys_dir, directory_path=settings.resolved_directory_path,
        authority_key=settings.resolved_authority_key, authority_pub=settings.resolved_authority_pub,
    )


def _refused(exc: Exception) -> typer.Exit:
    typer.echo(f"refused: {exc}", err=True)
    return typer.Exit(getattr(exc, "exit_code", 1))


def backup(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="the backup file to write (mode 0600; replaced when complete)")],
) -> None:
    """Write the database and the data dir (keys as they are at rest, the key directory) to FILE.

    SQLite is copied with its online backup API and PostgreSQL with pg_dump: a running gateway can be
    backed up. Keep FILE as you keep the keys."""
    from gateway.adapters.sql.backup import BackupError
    from gateway.adapters.sql.backup import backup as write_backup

    try:
        done = write_backup(_locations(), file)
    except BackupError as exc:
        raise _refused(exc) from None
    manifest = done.manifest
    typer.echo(f"backup: {done.path} ({manifest.database_kind} database at revision "
               f"{manifest.alembic_revision or 'none'}, {len(manifest.files)} files, {done.size} bytes)")


def restore(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="a file written by `gateway backup`")],
) -> None:
    """Restore FILE into the configured database and data dir, which must be empty.

    Every byte of FILE is checked against its manifest before anything is written; exit 1 when the file
    is damaged, 2 when the target is not empty or of another kind."""
    from gateway.adapters.sql.backup import BackupError, current_revision
    from gateway.adapters.sql.backup import restore as restore_backup
    from gateway.adapters.sql.migrate import head_revision
    from gateway.cli.db_cmds import _describe

    locations = _locations()
    try:
        done = restore_backup(locations, file)
    except BackupError as exc:
        raise _refused(exc) from None
    manifest = done.manifest
    typer.echo(f"restored: {manifest.database_kind} database and {len(manifest.files)} files "
               f"(backup of {manifest.created_at.isoformat(timespec='seconds')}, gateway {manifest.gateway_version}) "
               f"into {locations.data_dir}")
    revision = current_revision(locations.database_url)
    typer.echo(_describe(revision, head_revision()))
    if revision != manifest.alembic_revision:
        typer.echo(f"the restored database is at revision {revision}, the backup's manifest says "
                   f"{manifest.alembic_revision}", err=True)
        raise typer.Exit(1)
