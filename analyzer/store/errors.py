"""Storage exceptions. Every message is one line, fit for a log or a CLI error."""

from __future__ import annotations

import re

_PID = re.compile(r"\(PID (\d+)\)")


class StoreError(Exception):
    """Base class of every storage error."""


class DatabaseLockedError(StoreError):
    """The DuckDB file is held by another process, so it cannot be opened as asked."""

    def __init__(self, db_path: object, pid: int | None, detail: str = "") -> None:
        self.db_path = str(db_path)
        self.pid = pid
        holder = f"another process (PID {pid})" if pid is not None else "another process"
        msg = f"DuckDB file {self.db_path} is held by {holder}"
        super().__init__(f"{msg}; {detail}" if detail else msg)


class DataDirLockedError(StoreError):
    """Another Store is already writing to this data directory."""


class DataDirError(StoreError):
    """The data directory cannot be created or written."""


class DatabaseError(StoreError):
    """The DuckDB file cannot be opened, or the views cannot be created in it."""


class StoreStateError(StoreError):
    """The Store is used before open() or after close()."""


def holder_pid(duckdb_message: str) -> int | None:
    """The PID DuckDB names in its lock-conflict message, if it names one."""
    m = _PID.search(duckdb_message)
    return int(m.group(1)) if m else None


def is_lock_conflict(duckdb_message: str) -> bool:
    """True for DuckDB's "Could not set lock on file" I/O error."""
    return "Could not set lock on file" in duckdb_message
