"""What the audit trail keeps outside the database: its key and its head checkpoint.

- The key (``GATEWAY_AUDIT_KEY_FILE``, default ``<data dir>/audit.key``): 32 random bytes as hex, made
  0600 by ``gateway init`` (or by the first append on a database that holds no keyed record yet).
  Gateways sharing one database share it (copy the file, or point the setting at one secret).
- The checkpoint (``GATEWAY_AUDIT_HEAD_FILE``, default ``<data dir>/audit.head``): the seq and hash of
  the newest record this host appended, rewritten atomically (a temporary file, fsync, rename) at most
  once a second as the chain grows. It never moves back: a host that appended less recently than
  another one on the same data dir leaves the newer head in place.

Whoever can write the database but not these files cannot rewrite the trail unseen; whoever holds the
key can. So the backups of these files are kept apart from the database's.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from gateway.access.audit import KEY_BYTES, AuditKey, Checkpoint
from gateway.private_paths import FILE_MODE, private_dir


# One writer of a checkpoint at a time in this process, so the read-compare-replace never moves it back.
_WRITING = threading.Lock()


class AuditFileError(RuntimeError):
    """The key or the checkpoint cannot be used; the message names the file and what to do."""


@dataclass(frozen=True)
class AuditFiles:
    key_path: Path
    head_path: Path

    @classmethod
    def in_folder(cls, folder: Path) -> AuditFiles:
        return cls(folder / "audit.key", folder / "audit.head")

    def key(self) -> AuditKey | None:
        """The key, or None when there is no key file."""
        try:
            text = self.key_path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise AuditFileError(f"the audit key {self.key_path} cannot be read: {type(exc).__name__}") from None
        if os.name == "posix" and self.key_path.stat().st_mode & 0o077:
            raise AuditFileError(f"the audit key {self.key_path} is readable by others: chmod 600 it")
        try:
            return AuditKey(bytes.fromhex(text))
        except ValueError:
            raise AuditFileError(f"the audit key {self.key_path} is not {KEY_BYTES} bytes of hex") from None

    def create_key(self) -> AuditKey:
        """Make the key file (0600) unless one exists; the key in the file either way. Made aside and
        linked into place, so two processes creating it at once end with one key, whole."""
        if (existing := self.key()) is not None:  # (a read-only secret mount is never written to)
            return existing
        private_dir(self.key_path.parent)
        fd, temporary = tempfile.mkstemp(dir=self.key_path.parent, prefix=".audit-key-")
        try:
            os.fchmod(fd, FILE_MODE)
            os.write(fd, (secrets.token_bytes(KEY_BYTES).hex() + "\n").encode())
            os.fsync(fd)
            os.close(fd)
            try:
                os.link(temporary, self.key_path)
            except FileExistsError:
                pass  # another process made it first: theirs is the key
        finally:
            os.unlink(temporary)
        key = self.key()
        assert key is not None
        return key

    def checkpoint(self) -> Checkpoint | None:
        """The head kept, or None when there is no checkpoint file."""
        try:
            data = json.loads(self.head_path.read_text(encoding="utf-8"))
            return Checkpoint(int(data["seq"]), str(data["record_hash"]))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            raise AuditFileError(f"the audit checkpoint {self.head_path} cannot be read") from None

    def write_checkpoint(self, head: Checkpoint) -> None:
        """Replace the checkpoint with ``head`` unless it already holds a newer one."""
        with _WRITING:
            self._replace_checkpoint(head)

    def _replace_checkpoint(self, head: Checkpoint) -> None:
        try:
            kept = self.checkpoint()
        except AuditFileError:
            kept = None  # unreadable (a crash mid-write before rename cannot cause it): replaced
        if kept is not None and kept.seq >= head.seq:
            return
        private_dir(self.head_path.parent)
        fd, temporary = tempfile.mkstemp(dir=self.head_path.parent, prefix=".audit-head-")
        try:
            os.fchmod(fd, FILE_MODE)
            os.write(fd, json.dumps({"seq": head.seq, "record_hash": head.record_hash}).encode() + b"\n")
            os.fsync(fd)
            os.close(fd)
            os.replace(temporary, self.head_path)
        except BaseException:
            _unlink_quietly(temporary)
            raise


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
