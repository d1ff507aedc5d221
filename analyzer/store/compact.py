"""Compaction: merge a day's small segments into one file (and dedup trades while merging).

The merge runs in an in-memory DuckDB (never the research file), streaming the sources into a
new segment. Crash safety: a journal ``.compact-<target>.json`` naming the target and its
sources is written before the target is renamed in and removed after the sources are deleted;
:func:`recover` (run at open) finishes an interrupted compaction, so a crash can leave neither
half a file nor rows counted twice. Between the rename and the deletes a concurrent reader can
briefly see both (duplicates, never gaps); a reader that globbed a source just before it was
deleted gets a missing-file error, which ``research.query`` retries.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from analyzer.store import segments as seg
from analyzer.store.schema import TABLES

log = logging.getLogger(__name__)

JOURNAL_PREFIX = ".compact-"
MAX_SEGMENT_BYTES = 128 * 2**20  # segments this large are final: bounds rewrite amplification

# Dedup key per table, where storage is idempotent.
DEDUP_KEYS: dict[str, tuple[str, ...]] = {"trades": ("venue", "symbol", "trade_id")}


@dataclass
class CompactResult:
    files_merged: int = 0
    files_written: int = 0
    rows_written: int = 0
    duplicates_dropped: int = 0


def _sql_str(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _merge_sql(root: Path, table: str, sources: list[Path], target_tmp: Path) -> str:
    spec = TABLES[table]
    cols = ", ".join(f"{c}::{t} AS {c}" for c, t in spec.columns)
    # The zero-row schema segment is read too, so every current column exists.
    files = ", ".join(_sql_str(p) for p in [seg.schema_segment(root, table), *sources])
    sql = f"SELECT {cols} FROM read_parquet([{files}], union_by_name = true)"
    key = DEDUP_KEYS.get(table)
    if key:
        sql += (
            f" QUALIFY row_number() OVER (PARTITION BY {', '.join(key)} ORDER BY ts_local)"
            " = 1 ORDER BY ts_local"
        )
    return f"COPY ({sql}) TO {_sql_str(target_tmp)} (FORMAT parquet, COMPRESSION {seg.COMPRESSION})"


def _finish(journal: Path) -> None:
    """Complete a journaled compaction: delete its sources if its target is in place (else
    the target's temp file), then the journal."""
    try:
        entry = json.loads(journal.read_text())
    except (OSError, ValueError):
        entry = None
    if entry is not None:
        target = journal.parent / entry["target"]
        if target.exists():
            for name in entry["sources"]:
                with contextlib.suppress(FileNotFoundError):
                    (journal.parent / name).unlink()
        else:
            with contextlib.suppress(FileNotFoundError):
                target.with_name(f".{target.name}{seg.TMP_SUFFIX}").unlink()
    journal.unlink(missing_ok=True)


def recover(root: Path, shard: str | None = None) -> int:
    """Finish compactions interrupted by a crash: every one, or (``shard``) the shard's own.
    Call while holding the data-dir lock."""
    journals = [j for j in root.glob(f"*/*/{JOURNAL_PREFIX}*.json")
                if shard is None or seg.segment_shard(j) == shard]
    for j in journals:
        log.warning("finishing interrupted compaction %s", j)
        _finish(j)
    return len(journals)


def compact(
    root: Path,
    older_than_ns: int,
    now_ns: int,
    next_seq: Callable[[], int],
    *,
    fsync: bool = True,
    memory_limit: str = "1GB",
    shard: str | None = None,
) -> CompactResult:
    """Merge, per table and day, the segments written before ``now_ns - older_than_ns`` that
    are smaller than MAX_SEGMENT_BYTES, when there are two or more: every segment, or
    (``shard``) only the shard's own, merged into one of its own (segments.py: ownership)."""
    result = CompactResult()
    cutoff = now_ns - older_than_ns
    con: duckdb.DuckDBPyConnection | None = None
    try:
        for table in TABLES:
            for day in seg.days(root, table):
                sources = [
                    p
                    for p in seg.segments(day)
                    # (another shard's file is not even looked at: it may vanish meanwhile)
                    if (shard is None or seg.segment_shard(p) == shard)
                    and (seg.segment_ts(p) or 0) <= cutoff and p.stat().st_size < MAX_SEGMENT_BYTES
                ]
                if len(sources) < 2:
                    continue
                if con is None:  # one background thread: leave the cores to the collector
                    con = duckdb.connect(
                        config={
                            "threads": 1,
                            "memory_limit": memory_limit,
                            "temp_directory": str(root.parent / ".duckdb_tmp"),
                        }
                    )
                _merge(con, root, table, sources, next_seq(), result, fsync=fsync,
                       shard=shard)
    finally:
        if con is not None:
            con.close()
    return result


def _merge(
    con: duckdb.DuckDBPyConnection,
    root: Path,
    table: str,
    sources: list[Path],
    seq: int,
    result: CompactResult,
    *,
    fsync: bool,
    shard: str | None = None,
) -> None:
    day = sources[0].parent
    ts = max(seg.segment_ts(p) or 0 for p in sources)  # keeps the merged file's age honest
    target = day / seg.segment_name(table, ts, seq, shard)
    tmp = target.with_name(f".{target.name}{seg.TMP_SUFFIX}")
    journal = day / f"{JOURNAL_PREFIX}{target.name}.json"
    rows_in = sum(pq.ParquetFile(p).metadata.num_rows for p in sources)
    journal.write_text(json.dumps({"target": target.name, "sources": [p.name for p in sources]}))
    try:
        (rows_out,) = con.execute(_merge_sql(root, table, sources, tmp)).fetchone() or (0,)
        if fsync:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp, target)
    except BaseException:
        _finish(journal)  # target not in place: drops the temp file, keeps the sources
        raise
    _finish(journal)
    result.files_merged += len(sources)
    result.files_written += 1
    result.rows_written += rows_out
    result.duplicates_dropped += rows_in - rows_out
