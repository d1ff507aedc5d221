"""The DuckDB file: views only, (re)created by Store.open() in one short read-write session.

A view ``_analyzer_store`` records a digest of the applied SQL (which embeds the absolute
segment root). When the file already carries the current digest, open() needs only a
read-only look, so a collector restarts fine while research sessions hold the file read-only.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from analyzer.store.errors import DatabaseError, DatabaseLockedError, holder_pid, is_lock_conflict
from analyzer.store.schema import catalog_sql

META_VIEW = "_analyzer_store"


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def connect_or_raise(db_path: Path, *, read_only: bool, hint: str) -> duckdb.DuckDBPyConnection:
    """duckdb.connect(), turning a lock conflict into DatabaseLockedError (holder PID
    included when DuckDB names it) and other failures into DatabaseError."""
    try:
        return duckdb.connect(str(db_path), read_only=read_only)
    except duckdb.Error as e:
        msg = str(e)
        if is_lock_conflict(msg):
            raise DatabaseLockedError(db_path, holder_pid(msg), hint) from None
        raise DatabaseError(f"cannot open DuckDB file {db_path}: {_first_line(e)}") from None


def _applied_digest(db_path: Path) -> str | None:
    if not db_path.exists():
        return None
    con = connect_or_raise(
        db_path,
        read_only=True,
        hint="the collector needs it only briefly at start; close that "
        "session (research sessions must open it read-only) and retry",
    )
    try:
        row = con.execute(f"SELECT digest FROM {META_VIEW}").fetchone()
    except duckdb.Error:
        return None
    finally:
        con.close()
    return row[0] if row else None


def apply(db_path: Path, segments_root: Path) -> bool:
    """Make the file's views current. Returns True if the file had to be written."""
    stmts, digest = catalog_sql(segments_root)
    if _applied_digest(db_path) == digest:
        return False
    try:
        db_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DatabaseError(f"cannot create {db_path.parent}: {e.strerror}") from None
    con = connect_or_raise(
        db_path,
        read_only=False,
        hint="the views must be (re)created once; close that session "
        "(a DuckDB CLI, notebook or another collector) and retry",
    )
    try:
        con.execute("BEGIN")
        for stmt in stmts:
            con.execute(stmt)
        con.execute(
            f"CREATE OR REPLACE VIEW {META_VIEW} AS SELECT '{digest}' AS digest, "
            f"'{str(segments_root).replace(chr(39), chr(39) * 2)}' AS segments_root"
        )
        con.execute("COMMIT")
    except duckdb.Error as e:
        raise DatabaseError(f"cannot create views in {db_path}: {_first_line(e)}") from None
    finally:
        con.close()
    return True
