"""Table definitions, read from ``sql/schema.sql`` (the one place column types are written).

Each storage view in schema.sql lists its stored columns as ``name::TYPE AS name`` lines; this
module parses those into :class:`TableSpec` objects whose Arrow schema the writer uses, so the
Parquet segments and the SQL views cannot disagree (tests/test_store.py also checks the types
DuckDB reports for the views).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from analyzer.events import (
    BookSnapshot,
    DerivativeTicker,
    Gap,
    Instrument,
    Liquidation,
    OpenInterest,
    Quote,
    Trade,
)

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"
SCHEMA_SQL = SQL_DIR / "schema.sql"
VIEWS_SQL = SQL_DIR / "views.sql"
SEGMENTS_PLACEHOLDER = "{segments}"

SQL_TO_ARROW: dict[str, pa.DataType] = {
    "VARCHAR": pa.string(),
    "BIGINT": pa.int64(),
    "INTEGER": pa.int32(),
    "SMALLINT": pa.int16(),
    "DOUBLE": pa.float64(),
    "BOOLEAN": pa.bool_(),
}

# Which event type feeds which table. BookChange is not stored (it is replayable from the raw
# capture); the book is stored as sampled BookSnapshots.
EVENT_TABLES: dict[type, str] = {
    Instrument: "instruments",
    Trade: "trades",
    Quote: "quotes",
    BookSnapshot: "book_snapshots",
    DerivativeTicker: "derivative_tickers",
    OpenInterest: "open_interest",
    Liquidation: "liquidations",
    Gap: "gaps",
}

_VIEW = re.compile(r"CREATE\s+OR\s+REPLACE\s+VIEW\s+(\w+)\s+AS\b", re.IGNORECASE)
_COLUMN = re.compile(r"^\s*(\w+)::(\w+)\s+AS\s+(\w+)\s*,?\s*(?:--.*)?$")


@dataclass(frozen=True)
class TableSpec:
    """One stored table: its name, stored columns and the view that reads its segments."""

    name: str
    columns: tuple[tuple[str, str], ...]  # (column, SQL type), in storage order
    view_sql: str  # CREATE OR REPLACE VIEW ..., with SEGMENTS_PLACEHOLDER for the segment root
    arrow_schema: pa.Schema

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c for c, _ in self.columns)

    def empty(self) -> pa.Table:
        return self.arrow_schema.empty_table()


def parse_schema(sql: str) -> dict[str, TableSpec]:
    """Parse schema.sql text into table specs, keyed by table name, in file order."""
    tables: dict[str, TableSpec] = {}
    for stmt in duckdb.extract_statements(sql):
        text = stmt.query.strip()
        m = _VIEW.search(text)
        if m is None:
            raise ValueError(f"schema.sql: expected only CREATE OR REPLACE VIEW, got {text[:60]!r}")
        name = m.group(1)
        cols: list[tuple[str, str]] = []
        for line in text.splitlines():
            c = _COLUMN.match(line)
            if c is None:
                continue
            col, sql_type, alias = c.groups()
            if col != alias or sql_type.upper() not in SQL_TO_ARROW:
                raise ValueError(f"schema.sql: {name}: cannot store column line {line.strip()!r}")
            cols.append((col, sql_type.upper()))
        if not cols or f"{SEGMENTS_PLACEHOLDER}/{name}/" not in text:
            raise ValueError(f"schema.sql: view {name} has no stored columns or segment glob")
        schema = pa.schema([pa.field(c, SQL_TO_ARROW[t]) for c, t in cols])
        tables[name] = TableSpec(name, tuple(cols), text, schema)
    return tables


def render(view_sql: str, segments_root: Path) -> str:
    """Substitute the absolute segment root (a SQL string literal's content) into a view."""
    return view_sql.replace(SEGMENTS_PLACEHOLDER, str(segments_root).replace("'", "''"))


def catalog_sql(segments_root: Path) -> tuple[list[str], str]:
    """Every statement Store.open() applies (storage views, then research views) and a digest
    of them, used to skip the read-write open when the file is already up to date."""
    stmts = [render(t.view_sql, segments_root) for t in TABLES.values()]
    stmts += [s.query.strip() for s in duckdb.extract_statements(VIEWS_SQL.read_text())]
    digest = hashlib.sha256("\n;\n".join(stmts).encode()).hexdigest()[:16]
    return stmts, digest


TABLES: dict[str, TableSpec] = parse_schema(SCHEMA_SQL.read_text())
missing = set(EVENT_TABLES.values()) - set(TABLES)
if missing:  # fail at import, not at the first flush
    raise RuntimeError(f"sql/schema.sql lacks tables {sorted(missing)}")
del missing
