"""Research access: read-only DuckDB connections to the views, usable while the collector runs
(the collector never holds the file; see analyzer/store/__init__.py)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from analyzer.store.catalog import connect_or_raise
from analyzer.store.errors import DatabaseError

DEFAULT_DB_PATH = Path("data/analyzer.duckdb")

_HINT = (
    "research reads need no one to hold it read-write: wait for the collector to finish "
    "starting, or close the read-write session"
)


def connect(db_path: Path | str = DEFAULT_DB_PATH) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the views. Raises DatabaseLockedError if a process holds the
    file read-write (the collector does so only for a moment at start-up)."""
    path = Path(db_path)
    if not path.exists():
        raise DatabaseError(
            f"DuckDB file {path} does not exist: run `analyzer collect` or `analyzer demo` first"
        )
    return connect_or_raise(path, read_only=True, hint=_HINT)


def query(db_path: Path | str, sql: str, params: Any = None) -> pl.DataFrame:
    """Run one query on a fresh read-only connection and return the result as a DataFrame
    (empty for statements that return nothing).

    A missing-file error is retried twice: compaction may delete a segment between DuckDB
    listing the files and opening them."""
    for attempt in range(3):
        con = connect(db_path)
        try:
            if params is not None:
                return frame(con, sql, params)
            rel = con.sql(sql)
            return pl.DataFrame() if rel is None else rel.pl()
        except duckdb.IOException as e:
            if attempt == 2 or "No such file" not in str(e):
                raise
            time.sleep(0.05)
        finally:
            con.close()
    raise AssertionError("unreachable")


def frame(con: duckdb.DuckDBPyConnection, sql: str, params: Any) -> pl.DataFrame:
    """A parameterised query's result as a DataFrame."""
    table = con.sql(sql, params=params).to_arrow_table()
    out = pl.from_arrow(table)
    assert isinstance(out, pl.DataFrame)
    return out
