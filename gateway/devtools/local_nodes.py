"""What the project's local test services (the RabbitMQ cluster, the PostgreSQL formation) share: their
files handed to the service's own user, a check that the user can reach their folder, a port probe."""

from __future__ import annotations

import os
import socket
from pathlib import Path


def give_to(user_name: str, path: Path) -> None:
    """Started as root, a service runs as its own user: its files must be that user's (no-op otherwise)."""
    if os.geteuid() != 0:
        return
    import pwd

    try:
        user = pwd.getpwnam(user_name)
    except KeyError:
        return
    paths = [path] if path.is_file() else [path, *path.rglob("*")]
    for p in paths:
        os.chown(p, user.pw_uid, user.pw_gid)


def unreachable_parent(folder: Path) -> str | None:
    """Why the service's user could not reach `folder` (a 0700 temporary folder above it), or None."""
    if os.geteuid() != 0:
        return None
    for parent in folder.parents:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            return f"{parent} (mode {oct(mode & 0o777)})"
    return None


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False
