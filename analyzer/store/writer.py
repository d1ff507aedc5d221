"""The batched writer: events in, sealed Parquet segments out (see analyzer/store/__init__.py).

Threads: the caller's (the collector's event loop) only appends to per-table lists and hands
full or old lists to a bounded queue; one writer thread converts them to Arrow, drops
duplicate trades and writes segments (pyarrow releases the GIL while encoding and writing);
an optional compactor thread merges old segments.

Slow consumer (a disk slower than the market): the caller never blocks, because its thread is
the event loop that answers the venues' pings. A batch the full writer queue cannot take is
held in memory, in order, and handed over as soon as the queue has room. Past ``max_held_rows``
held rows, whole held batches are dropped and counted per table (``rows_dropped_by_table``),
least valuable first: sampled book levels and computed analytics (recomputable with
``analyzer backfill`` from what is kept), then best bid/ask quotes, then tickers, open
interest and liquidations; trades, gaps, instruments and opportunities last. Memory is bounded
by the queue (``queue_batches`` x ``flush_rows`` events), the held rows and the writer's retry
buffer (``max_retry_rows`` rows in Arrow); with the defaults about 0.8 M + 0.5 M events (a
stored event is ~150-250 bytes in Python: ~0.3 GB) plus 2 M Arrow rows (~0.2 GB).

Shards (``shard``, analyzer/cluster): the processes of a sharded collector share the data
directory. Each holds the directory lock ``.store.lock`` shared and its own
``.store-<shard>.lock`` exclusively (a second process of one shard is refused, and so is a
one-process store, which holds ``.store.lock`` exclusively, while any shard runs); each tags
its segments with its name and recovers, cleans up and compacts only its own
(``segments.py``). ``prepare`` makes the directories, schema segments and views once, before
the shards start, so that they never race to create them.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import logging
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from analyzer.store import catalog
from analyzer.store import compact as compaction
from analyzer.store import segments as seg
from analyzer.store.convert import CONVERTERS, TABLE_CONVERTERS, TradeDedup
from analyzer.store.errors import DataDirError, DataDirLockedError, StoreError, StoreStateError
from analyzer.store.schema import EVENT_TABLES, TABLES

log = logging.getLogger(__name__)

_time_ns = time.time_ns

# on_flush(table, rows, seconds): called on the writer thread after each segment is written.
FlushCallback = Callable[[str, int, float], None]


class _Buffer:
    __slots__ = ("arrow", "rows", "since_ns", "table")

    def __init__(self, table: str, *, arrow: bool = False) -> None:
        self.table = table
        self.arrow = arrow  # rows are Arrow tables (add_rows), not events
        self.rows: list[Any] = []
        self.since_ns = 0  # wall time the oldest buffered row was added


def _new_stats() -> dict[str, Any]:
    return {
        "rows_written": dict.fromkeys(TABLES, 0),  # per table; book_snapshots counts levels
        "segments_written": dict.fromkeys(TABLES, 0),
        "flushes": 0,  # segments written, all tables
        "last_flush_seconds": 0.0,  # convert + write of the last segment
        "flush_seconds_total": 0.0,
        "duplicates_dropped": 0,  # trades already written (writer; compaction adds its own)
        "write_errors": 0,  # failed segment writes (each retried)
        "last_error": None,
        "rows_pending_retry": 0,  # rows held after failed writes
        "rows_dropped": 0,  # rows lost: retry cap exceeded, unconvertible, or failing at close
        "backpressure_waits": 0,  # batches the full writer queue could not take at once
        "backpressure_seconds": 0.0,  # flush()/close() time spent waiting for queue room
        "rows_held": 0,  # rows waiting for room in the writer queue (the caller never blocks)
        "batches_shed": 0,  # held batches dropped because the writer was too far behind
        "rows_dropped_by_table": dict.fromkeys(TABLES, 0),  # every drop, whatever the cause
        "events_ignored": 0,  # events of types that are not stored (BookChange)
        "compactions": 0,
        "compaction_files_merged": 0,
        "compaction_duplicates_dropped": 0,
    }


class Store:
    """Buffered, crash-safe storage of normalized events; see the package docstring.

    ``stats`` (a plain dict, updated in place; keys in ``_new_stats``) and the optional
    ``on_flush`` callback are what a metrics exporter reads."""

    def __init__(
        self,
        data_dir: Path,
        db_path: Path,
        *,
        flush_rows: int = 50_000,
        flush_seconds: float = 1.0,
        queue_batches: int = 16,
        max_held_rows: int = 500_000,
        max_retry_rows: int = 2_000_000,
        retry_seconds: float = 1.0,
        compact_every_s: float | None = 300.0,
        compact_older_than_s: float = 300.0,
        dedup_window_s: float = 3600.0,
        dedup_max_ids: int = 200_000,
        fsync: bool = True,
        on_flush: FlushCallback | None = None,
        shard: str | None = None,
        venues: Sequence[str] | None = None,
    ) -> None:
        self.shard = shard
        # the venues whose recent trades seed the dedup (None: every venue's)
        self._venues = set(venues) if venues is not None else None
        # (venue, symbol) -> (trade_id, ts_exchange) of the newest trade stored within the
        # dedup window, read at open (a restarted shard backfills from there)
        self.last_trades: dict[tuple[str, str], tuple[str, int]] = {}
        self.data_dir = Path(data_dir).absolute()
        self.segments_root = self.data_dir / "segments"
        self.db_path = Path(db_path).absolute()
        self.stats: dict[str, Any] = _new_stats()
        self._flush_rows = max(1, flush_rows)
        self._flush_ns = int(flush_seconds * 1e9)
        self._max_retry_rows = max_retry_rows
        self._max_held_rows = max_held_rows
        self._held: deque[tuple[Any, ...]] = deque()  # jobs the full queue could not take
        self._retry_ns = int(retry_seconds * 1e9)
        self._compact_every_s = compact_every_s
        self._compact_older_ns = int(compact_older_than_s * 1e9)
        self._fsync = fsync
        self._on_flush = on_flush
        self._dedup = TradeDedup(int(dedup_window_s * 1e9), dedup_max_ids)
        self._all_buffers = {cls: _Buffer(t) for cls, t in EVENT_TABLES.items()}
        self._buffers: dict[type, _Buffer] = {}  # empty unless open: add() then raises
        # computed rows (analytics, sampled book levels), fed as Arrow tables by add_rows()
        self._row_buffers = {t: _Buffer(t, arrow=True) for t in TABLES if t != "trades"}
        self._queue: queue.Queue[tuple[Any, ...]] = queue.Queue(maxsize=max(1, queue_batches))
        self._seq = itertools.count()
        self._pending: dict[str, deque[pa.Table]] = {t: deque() for t in TABLES}
        self._retry_after: dict[str, int] = dict.fromkeys(TABLES, 0)
        self._ready_days: set[Path] = set()
        self._compact_lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock_fds: list[int] = []
        self._state = "new"

    # -- lifecycle -----------------------------------------------------------------------

    def open(self) -> None:
        """Create directories and schema segments, (re)create the views in the DuckDB file,
        seed the trade dedup from recent segments and start the writer. Raises StoreError
        subclasses with one-line messages."""
        if self._state != "new":
            raise StoreStateError(f"Store for {self.data_dir} was already opened")
        try:
            for t in TABLES:
                (self.segments_root / t).mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise DataDirError(f"cannot create {self.segments_root}: {e.strerror}") from None
        self._lock_data_dir()
        try:
            try:
                compaction.recover(self.segments_root, self.shard)
                seg.remove_temp_files(self.segments_root, self.shard)
                for spec in TABLES.values():
                    seg.ensure_schema_segment(self.segments_root, spec)
            except OSError as e:
                raise DataDirError(f"cannot prepare {self.segments_root}: {e}") from None
            catalog.apply(self.db_path, self.segments_root)
            self._seed_dedup()
        except BaseException:
            self._unlock_data_dir()
            raise
        self._buffers = self._all_buffers
        self._state = "open"
        self._threads = [
            threading.Thread(target=self._writer_loop, name="store-writer", daemon=True)
        ]
        if self._compact_every_s:
            self._threads.append(
                threading.Thread(target=self._compact_loop, name="store-compactor", daemon=True)
            )
        for th in self._threads:
            th.start()

    def close(self) -> None:
        """Flush everything, stop the threads, release the data directory. Idempotent."""
        if self._state != "open":
            self._state = "closed"
            return
        self.flush()
        self._buffers = {}
        self._state = "closed"
        self._stop.set()
        self._queue.put(("stop",))
        for th in self._threads:
            th.join()
        lost = {t: sum(a.num_rows for a in q) for t, q in self._pending.items() if q}
        if lost:
            log.error("store closing with %d rows that could not be written: dropped",
                      sum(lost.values()))
            for table, n in lost.items():
                self._count_dropped(table, n)
            self.stats["rows_pending_retry"] = 0
        self._unlock_data_dir()

    def __enter__(self) -> Store:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- hot path --------------------------------------------------------------------------

    def add(self, event: Any) -> None:
        """Buffer one event; hands the table's buffer to the writer at ``flush_rows`` events
        (blocking only if the writer queue is full). Unstored types are counted and ignored."""
        buf = self._buffers.get(type(event))
        if buf is None:
            self._not_stored(event)
            return
        rows = buf.rows
        rows.append(event)
        n = len(rows)
        if n >= self._flush_rows:
            self._submit(buf)
        elif n == 1:
            buf.since_ns = _time_ns()

    def add_rows(self, table: str, rows: pa.Table) -> None:
        """Buffer computed rows (an Arrow table holding at least the table's columns, e.g.
        analytics results); written with the table's next segment like events are."""
        if self._state != "open":
            raise StoreStateError(f"Store for {self.data_dir} is not open")
        buf = self._row_buffers[table]  # KeyError: trades take events (they are deduped)
        if not buf.rows:
            buf.since_ns = _time_ns()
        buf.rows.append(rows)
        if len(buf.rows) >= self._flush_rows:
            self._submit(buf)

    def maybe_flush(self, now_ns: int | None = None) -> None:
        """Hand over every buffer whose oldest row is ``flush_seconds`` old (wall clock, ns).
        Does not wait for the write."""
        if self._held:  # hand over what a full queue held back, even when nothing new came
            self._release_held()
        now = _time_ns() if now_ns is None else now_ns
        for buf in self._every_buffer():
            if buf.rows and now - buf.since_ns >= self._flush_ns:
                self._submit(buf)

    def _every_buffer(self) -> list[_Buffer]:
        if not self._buffers:
            return []
        return [*self._buffers.values(), *self._row_buffers.values()]

    def flush(self) -> None:
        """Hand over every buffer and wait until the writer has written it (failed writes are
        retried once more here, then kept for later retries: see ``stats``). Blocks: for a
        clean stop and for tests, not for the event loop's hot path."""
        if self._state != "open":
            raise StoreStateError(f"Store for {self.data_dir} is not open")
        for buf in self._every_buffer():
            if buf.rows:
                self._submit(buf)
        while self._held:
            job = self._held.popleft()
            self.stats["rows_held"] -= _job_rows(job)
            self._put(job)
        done = threading.Event()
        self._put(("barrier", done))
        done.wait()

    def compact(self, older_than_s: float = 300.0) -> compaction.CompactResult:
        """Merge each day's segments older than ``older_than_s`` into one file, dropping
        duplicate trades; runs in the calling thread (the compactor thread calls it too)."""
        if self._state != "open":
            raise StoreStateError(f"Store for {self.data_dir} is not open")
        with self._compact_lock:
            t0 = time.perf_counter()
            res = compaction.compact(
                self.segments_root,
                int(older_than_s * 1e9),
                _time_ns(),
                lambda: next(self._seq),
                fsync=self._fsync,
                shard=self.shard,
            )
        st = self.stats
        st["compactions"] += 1
        st["compaction_files_merged"] += res.files_merged
        st["compaction_duplicates_dropped"] += res.duplicates_dropped
        if res.files_merged:
            log.info(
                "compacted %d segments into %d in %.2fs (%d duplicates dropped)",
                res.files_merged,
                res.files_written,
                time.perf_counter() - t0,
                res.duplicates_dropped,
            )
        return res

    # -- caller-side helpers -----------------------------------------------------------------

    def _not_stored(self, event: Any) -> None:
        if self._state != "open":
            raise StoreStateError(f"Store for {self.data_dir} is not open")
        self.stats["events_ignored"] += 1

    def _submit(self, buf: _Buffer) -> None:
        """Hand a buffer to the writer without ever blocking (see the module doc)."""
        rows, buf.rows = buf.rows, []
        job = ("rows" if buf.arrow else "batch", buf.table, rows)
        if self._held:
            self._release_held()
        if not self._held:
            try:
                self._queue.put_nowait(job)
                return
            except queue.Full:
                pass
        self.stats["backpressure_waits"] += 1
        self._held.append(job)
        self.stats["rows_held"] += _job_rows(job)
        if self.stats["rows_held"] > self._max_held_rows:
            self._shed()

    def _release_held(self) -> None:
        while self._held:
            try:
                self._queue.put_nowait(self._held[0])
            except queue.Full:
                return
            self.stats["rows_held"] -= _job_rows(self._held.popleft())

    def _shed(self) -> None:
        """Drop held batches, least valuable table first, oldest first, until under the cap."""
        st = self.stats
        while st["rows_held"] > self._max_held_rows and len(self._held) > 1:
            victim = min(range(len(self._held)),
                         key=lambda i: (_KEEP_RANK.get(self._held[i][1], 0), i))
            job = self._held[victim]
            del self._held[victim]
            n = _job_rows(job)
            st["rows_held"] -= n
            self._count_dropped(job[1], n)
            st["batches_shed"] += 1
            if st["batches_shed"] <= 10 or st["batches_shed"] % 100 == 0:  # a sample
                log.error("store: writer behind, %d rows held: dropped %d %s rows (%d rows "
                          "dropped so far)", st["rows_held"], n, job[1], st["rows_dropped"])

    def _count_dropped(self, table: str, n: int) -> None:
        self.stats["rows_dropped"] += n
        by = self.stats["rows_dropped_by_table"]
        by[table] = by.get(table, 0) + n

    @property
    def is_open(self) -> bool:
        return self._state == "open"

    @property
    def healthy(self) -> bool:
        """False while a failed segment write waits for its retry (``store_up``)."""
        return not any(self._retry_after.values())

    def _put(self, job: tuple[Any, ...]) -> None:
        """Blocking hand-over, for flush() and close() only."""
        try:
            self._queue.put_nowait(job)
            return
        except queue.Full:
            pass
        # Backpressure: the writer is behind. Block (never drop), and count it.
        t0 = time.perf_counter()
        self.stats["backpressure_waits"] += 1
        while True:
            try:
                self._queue.put(job, timeout=1.0)
                break
            except queue.Full:
                if not self._threads[0].is_alive():
                    raise StoreError("store writer thread has stopped") from None
        self.stats["backpressure_seconds"] += time.perf_counter() - t0

    # -- writer thread -----------------------------------------------------------------------

    def _writer_loop(self) -> None:
        while True:
            timeout = self._retry_ns / 1e9 if self.stats["rows_pending_retry"] else None
            try:
                job = self._queue.get(timeout=timeout)
            except queue.Empty:
                self._drain_all(force=False)
                continue
            try:
                kind = job[0]
                if kind == "batch":
                    self._write_batch(job[1], job[2])
                elif kind == "rows":
                    self._write_batch(job[1], job[2], converter=TABLE_CONVERTERS[job[1]])
                elif kind == "barrier":
                    self._drain_all(force=True)
                    job[1].set()
                elif kind == "stop":
                    self._drain_all(force=True)
                    return
            except Exception:  # a bug here must not stop the writer; the batch is counted
                log.exception("store writer: unexpected error on %s job", job[0])
                if job[0] in ("batch", "rows"):
                    self._count_dropped(job[1], _job_rows(job))
                elif job[0] == "barrier":
                    job[1].set()

    def _write_batch(self, table: str, events: list[Any],
                     converter: Callable[[Sequence[Any]], pa.Table] | None = None) -> None:
        t0 = time.perf_counter()
        if table == "trades":
            events, dups = self._dedup.filter(events)
            self.stats["duplicates_dropped"] += dups
            if not events:
                return
        arrow = self._convert(table, events, converter or CONVERTERS[table])
        if arrow is None:
            return
        self._pending[table].append(arrow)
        self.stats["rows_pending_retry"] += arrow.num_rows
        self._drain(table, force=False, t0=t0)
        self._enforce_retry_cap()

    def _convert(self, table: str, events: Sequence[Any],
                 convert: Callable[[Sequence[Any]], pa.Table]) -> pa.Table | None:
        try:
            return convert(events)
        except (pa.ArrowException, TypeError, ValueError, AttributeError, KeyError):
            pass
        # Some event carries a value of the wrong type: keep the others, count the bad ones.
        good: list[Any] = []
        for e in events:
            try:
                convert([e])
                good.append(e)
            except (pa.ArrowException, TypeError, ValueError, AttributeError, KeyError) as exc:
                self._count_dropped(table, e.num_rows if isinstance(e, pa.Table) else 1)
                log.error("store: dropping unconvertible %s event %r: %s", table, e, exc)
        return convert(good) if good else None

    def _drain_all(self, *, force: bool) -> None:
        for table, q in self._pending.items():
            if q:
                self._drain(table, force=force, t0=None)

    def _drain(self, table: str, *, force: bool, t0: float | None) -> None:
        """Write the table's pending batches in order, stopping at the first failure. After a
        failure, attempts wait ``retry_seconds`` unless forced (flush/close)."""
        q = self._pending[table]
        if not force and _time_ns() < self._retry_after[table]:
            return
        while q:
            arrow = q[0]
            try:
                self._write_segment(table, arrow, t0)
            except Exception as e:  # OSError (disk full, permissions) or an Arrow I/O error
                self.stats["write_errors"] += 1
                self.stats["last_error"] = f"{table}: {e}"
                self._retry_after[table] = _time_ns() + self._retry_ns
                log.error(
                    "store: writing %d %s rows failed (%s); %d rows held for retry",
                    arrow.num_rows,
                    table,
                    e,
                    self.stats["rows_pending_retry"],
                )
                return
            q.popleft()
            self.stats["rows_pending_retry"] -= arrow.num_rows
            self._retry_after[table] = 0
            t0 = None

    def _write_segment(self, table: str, arrow: pa.Table, t0: float | None) -> None:
        start = time.perf_counter() if t0 is None else t0
        now = _time_ns()
        day_dir = self.segments_root / table / seg.day_of(now)
        if day_dir not in self._ready_days:
            day_dir.mkdir(parents=True, exist_ok=True)
            # The table directory may have been lost and recreated: restore its schema segment.
            seg.ensure_schema_segment(self.segments_root, TABLES[table])
            self._ready_days.add(day_dir)
        path = day_dir / seg.segment_name(table, now, next(self._seq), self.shard)
        try:
            seg.write_atomic(path, arrow, fsync=self._fsync)
        except BaseException:
            self._ready_days.discard(day_dir)
            raise
        secs = time.perf_counter() - start
        st = self.stats
        st["rows_written"][table] += arrow.num_rows
        st["segments_written"][table] += 1
        st["flushes"] += 1
        st["last_flush_seconds"] = secs
        st["flush_seconds_total"] += secs
        if self._on_flush is not None:
            try:
                self._on_flush(table, arrow.num_rows, secs)
            except Exception:
                log.exception("store: on_flush callback failed")

    def _enforce_retry_cap(self) -> None:
        while self.stats["rows_pending_retry"] > self._max_retry_rows:
            # Drop the oldest held batch of the table holding the most rows.
            table = max(self._pending, key=lambda t: sum(a.num_rows for a in self._pending[t]))
            arrow = self._pending[table].popleft()
            self.stats["rows_pending_retry"] -= arrow.num_rows
            self._count_dropped(table, arrow.num_rows)
            if table == "trades":
                self._dedup.forget(arrow)
            log.error(
                "store: retry buffer over %d rows: dropped %d %s rows",
                self._max_retry_rows,
                arrow.num_rows,
                table,
            )

    # -- compactor thread --------------------------------------------------------------------

    def _compact_loop(self) -> None:
        assert self._compact_every_s
        while not self._stop.wait(self._compact_every_s):
            try:
                self.compact(self._compact_older_ns / 1e9)
            except Exception:
                log.exception("store: compaction failed (will retry)")

    # -- open helpers ------------------------------------------------------------------------

    def _lock_data_dir(self) -> None:
        if self.shard is None:
            self._lock_fds = [self._lock(".store.lock", fcntl.LOCK_EX, str(os.getpid()))]
            return
        self._lock_fds = [self._lock(".store.lock", fcntl.LOCK_SH, SHARDS_HOLDER)]
        try:
            self._lock_fds.append(self._lock(f".store-{self.shard}.lock", fcntl.LOCK_EX,
                                             str(os.getpid())))
        except BaseException:
            self._unlock_data_dir()
            raise

    def _lock(self, name: str, mode: int, holder: str) -> int:
        """flock ``name`` in the data directory (shared or exclusive), writing ``holder`` into
        it: what a refused process names."""
        path = self.data_dir / name
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise DataDirError(f"cannot create {path}: {e.strerror}") from None
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
        except OSError:
            held = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            by = ("the shards of a sharded collector" if held == SHARDS_HOLDER
                  else f"another Store (PID {held})")
            raise DataDirLockedError(
                f"data directory {self.data_dir} is in use by {by}"
            ) from None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, holder.encode(), 0)
        except OSError as e:  # a full disk, most likely
            os.close(fd)
            raise DataDirError(f"cannot write {path}: {e.strerror}") from None
        return fd

    def _unlock_data_dir(self) -> None:
        for fd in self._lock_fds:
            os.close(fd)  # releases the flock
        self._lock_fds = []

    def _seed_dedup(self) -> None:
        """Remember the trade ids of segments written within the dedup window (today's and,
        around midnight, yesterday's newest), so a restart that replays trades stores them
        once."""
        window = self._dedup.window_ns
        since = _time_ns() - window
        files = [
            p
            for day in seg.days(self.segments_root, "trades")[-2:]
            for p in seg.segments(day)
            if (seg.segment_ts(p) or 0) >= since
        ]
        if not files:
            return
        cols = ["venue", "symbol", "trade_id", "ts_local", "ts_exchange"]
        tables = []
        for p in files:
            with contextlib.suppress(OSError, pa.ArrowException):
                tables.append(pq.read_table(p, columns=cols))
        if not tables:
            return
        # (compacted segments, written by DuckDB, differ from the writer's in nullability)
        t = pa.concat_tables(tables, promote_options="permissive")
        if self._venues is not None:
            t = t.filter(pc.is_in(t["venue"], pa.array(sorted(self._venues), pa.string())))
            if not t.num_rows:
                return
        newest = pc.max(t["ts_local"]).as_py()
        t = t.filter(pc.greater_equal(t["ts_local"], newest - window))
        for key, group in _group_by_key(t):
            self._dedup.remember(key[0], key[1], group["ts_local"], group["trade_id"])
            last = max(range(len(group["trade_id"])), key=lambda i: (
                group["ts_exchange"][i] or 0, _id_order(group["trade_id"][i])))
            self.last_trades[key] = (group["trade_id"][last], group["ts_exchange"][last] or 0)
        log.info("store: dedup seeded with %d trade ids from %d segments", t.num_rows, len(files))


SHARDS_HOLDER = "shards"  # what the shards write into .store.lock (they hold it shared)

# what a full writer keeps longest (higher: kept longer); unlisted tables rank 0 (dropped first:
# sampled book levels and analytics, which `analyzer backfill` recomputes)
_KEEP_RANK = {"quotes": 1, "derivative_tickers": 2, "open_interest": 2, "liquidations": 2,
              "trades": 3, "gaps": 3, "instruments": 3, "opportunities": 3, "shard_states": 3}


def _job_rows(job: tuple[Any, ...]) -> int:
    if job[0] == "rows":  # Arrow tables of computed rows
        return sum(t.num_rows for t in job[2])
    return len(job[2])


def _group_by_key(t: pa.Table) -> list[tuple[tuple[str, str], dict[str, list[Any]]]]:
    out: dict[tuple[str, str], dict[str, list[Any]]] = {}
    d = t.to_pydict()
    for v, s, tid, ts, tx in zip(d["venue"], d["symbol"], d["trade_id"], d["ts_local"],
                                 d["ts_exchange"], strict=True):
        g = out.get((v, s))
        if g is None:
            g = out[(v, s)] = {"trade_id": [], "ts_local": [], "ts_exchange": []}
        g["trade_id"].append(tid)
        g["ts_local"].append(ts)
        g["ts_exchange"].append(tx)
    return list(out.items())


def _id_order(trade_id: str | None) -> int:
    """Decimal ids order numerically (ties of one venue time); others do not order."""
    return int(trade_id) if trade_id and trade_id.isdecimal() else -1


def prepare(data_dir: Path, db_path: Path) -> None:
    """The directories, schema segments and DuckDB views of a store, made once by the
    supervisor of a sharded collector before its shards open the store (raises StoreError
    subclasses with one-line messages)."""
    root = Path(data_dir).absolute() / "segments"
    probe = Store(data_dir, db_path, shard="-")  # refused while a one-process store holds it
    try:
        root.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataDirError(f"cannot create {root.parent}: {e.strerror}") from None
    probe._lock_fds = [probe._lock(".store.lock", fcntl.LOCK_SH, SHARDS_HOLDER)]
    probe._unlock_data_dir()
    try:
        for spec in TABLES.values():
            (root / spec.name).mkdir(parents=True, exist_ok=True)
            seg.ensure_schema_segment(root, spec)
    except OSError as e:
        raise DataDirError(f"cannot prepare {root}: {e}") from None
    catalog.apply(Path(db_path).absolute(), root)
