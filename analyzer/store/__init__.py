"""Storage: normalized events to Parquet segments, read through DuckDB views.

Design constraint
-----------------
DuckDB lets one process hold a database file read-write OR many processes hold it read-only,
never both: while a writer holds the file, every other process that opens it, even read-only,
fails at once with a lock error. Research users must query everything collected so far (from
Python, the DuckDB CLI and ``analyzer sql``) WHILE the collector runs. Therefore:

* The collector never keeps the DuckDB file open. It writes sealed Parquet segments,
  ``<data_dir>/segments/<table>/<YYYY-MM-DD>/<table>-<ts_ns>-<seq>.parquet``, each written to
  a ``.<name>.tmp`` file (outside the ``*.parquet`` glob) and atomically renamed, so readers
  never see half a file and a crash (kill -9) loses at most the rows not yet flushed.
* The DuckDB file (default ``data/analyzer.duckdb``) contains only views over
  ``read_parquet('<abs data_dir>/segments/<table>/*/*.parquet', union_by_name = true)``
  (absolute paths, so the DuckDB CLI works from any directory), plus the research views of
  ``sql/views.sql``. ``Store.open()`` creates or refreshes them in one short read-write session
  and closes the file; when the file already carries the current views (a digest is kept in
  it) open() only looks read-only, so the collector can restart while readers are attached.
  If another process holds the file when it must be written, open() raises
  ``DatabaseLockedError`` naming the file and the holder's PID.
* Each table has a zero-row schema segment under the pseudo-day ``0000-00-00`` (sorts first),
  so every view binds before any data arrives and always has every column.
* Compaction (``Store.compact``, also run periodically by a background thread) merges a
  day's small segments into one file (write new, rename in, delete the sources; journaled so a
  crash cannot leave duplicates) and drops duplicate trades while merging.

* Shards (analyzer/cluster): the processes of a sharded collector share one data directory,
  each writing, compacting and cleaning up only the segments tagged with its shard name
  (``writer.py``, ``segments.py``); the views read them all.

Tables are defined once, in ``sql/schema.sql``; the writer derives its Arrow schema from it
(:mod:`analyzer.store.schema`). Trades are idempotent on (venue, symbol, trade_id): the writer
remembers recent ids (seeded from recent segments at open) and compaction dedups again.

Modules: ``writer`` (Store), ``schema`` (table specs from SQL), ``convert`` (events to Arrow,
trade dedup), ``segments`` (file layout, atomic writes), ``compact``, ``catalog`` (the DuckDB
file), ``research`` (read-only access), ``capture`` (raw frame capture, hftbacktest format).
"""

from analyzer.store.errors import (
    DatabaseError,
    DatabaseLockedError,
    DataDirError,
    DataDirLockedError,
    StoreError,
    StoreStateError,
)
from analyzer.store.writer import Store, prepare

__all__ = [
    "DataDirError",
    "DataDirLockedError",
    "DatabaseError",
    "DatabaseLockedError",
    "Store",
    "StoreError",
    "StoreStateError",
    "prepare",
]
