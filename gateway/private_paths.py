"""Folders and files that only the gateway's own user may read: keys, the key directory's folder, the
authority, the SQLite database. Created 0700 / 0600 whatever the umask; existing ones are left as
they are (an operator may have chosen a group on purpose; keys are checked when they are read)."""

from __future__ import annotations

import os
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """``mkdir -p`` where every folder it creates is 0700 (``Path.mkdir(mode=…)`` sets only the last)."""
    missing = []
    current = path
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue  # made meanwhile by someone else: theirs to set
        os.chmod(folder, DIR_MODE)  # the umask may have taken bits off; never adds any
    return path


def private_file(path: Path) -> Path:
    """Create an empty file 0600 if there is none (before a library creates it with its own mode)."""
    private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return path
    os.close(fd)
    os.chmod(path, FILE_MODE)
    return path
