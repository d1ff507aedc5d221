"""The analytics process of a sharded collector: every shard's latest state, from a durable
NATS JetStream consumer (``bus.Consumer``), evaluated each tick by the one-process
collector's ``LiveAnalytics`` (the same pipeline, rows, gauges, opportunities and trend).

Exactly once: a state is *applied* when its last part arrives (it becomes its shard's latest;
its funding marks join the history). Each tick stores its rows, the ``book_snapshots`` of the
windows it used and one ``shard_states`` row per state applied since the last tick, flushes
the store, and only then acknowledges those states' messages. Killed at any point, the process
restarts, reads the newest ``(epoch, seq)`` of each shard from ``shard_states`` and skips (and
acknowledges) what the consumer delivers again up to there: nothing applied twice, nothing
acknowledged unapplied. A flush that failed (disk full) acknowledges nothing: the messages wait
for a later tick.

A shard whose latest state is older than ``[analytics] max_quote_age_seconds`` (it died, or
NATS is behind) has its books taken as out of sync: their rows say so and no basis, curve or
carry uses them.

The ``[portfolio]`` watch values its file against the same inputs
(``analyzer.portfolio.live.state_market``): the instruments, the latest tickers, the books'
windows (a book's levels for a hedge's slippage are its window) and the funding marks; from
the first tick that holds a state of every shard.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from nats.aio.client import Client
from nats.aio.msg import Msg
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector as _PromCollector

from analyzer.analytics.gauges import families as analytics_families
from analyzer.analytics.live import (
    FUNDING_KEEP_NS,
    FUNDING_SCHEMA,
    INSTRUMENT_SCHEMA,
    NS,
    OI_SCHEMA,
    TICKER_SCHEMA,
    LiveAnalytics,
    book_windows,
    funding_mean,
)
from analyzer.cluster import bus
from analyzer.cluster.state import ShardState, decode, decode_funding
from analyzer.config import Config, shards
from analyzer.portfolio.live import state_market
from analyzer.portfolio.market import Market
from analyzer.store import Store
from analyzer.store import segments as seg
from analyzer.store.schema import TABLES

log = logging.getLogger(__name__)

FIRST_STATES_WAIT_S = 60.0  # a shard's start: Collector.start's timeout


class ClusterAnalytics(LiveAnalytics):
    """``LiveAnalytics`` whose inputs are the shards' latest states (``on_state``)."""

    def __init__(self, cfg: Config, store: Store) -> None:
        super().__init__(cfg, [], store)
        self.shards = set(shards(cfg))
        self.portfolio_wait_ns = time.time_ns() + round(FIRST_STATES_WAIT_S * NS)
        self._tick_shards: set[str] = set()  # the shards of this tick's inputs
        self.states: dict[str, bus.Received] = {}  # each shard's latest
        self.decoded: dict[str, tuple[tuple[int, int], ShardState]] = {}
        self.marks: dict[tuple[str, str, int], tuple] = {}
        self.pending_rows: list[tuple[Any, ...]] = []  # shard_states rows not yet stored
        self.pending_msgs: list[Msg] = []  # their messages, acknowledged once stored
        self.applied_total: dict[str, int] = {}
        self.bytes_total: dict[str, int] = {}
        self.acked = 0
        self._inputs = (pl.DataFrame(schema=TICKER_SCHEMA), pl.DataFrame(schema=OI_SCHEMA),
                        pl.DataFrame(schema=INSTRUMENT_SCHEMA))
        self._windows = book_windows([], self.cfg, self.cover, 0)  # this tick's (``_market``)

    def on_state(self, rec: bus.Received) -> None:
        """A complete state from the consumer (in order per shard)."""
        old = self.states.get(rec.shard)
        if old is not None:
            for m in old.msgs:  # superseded: keep the message for its ack, not its payload
                m.data = b""
        self.states[rec.shard] = rec
        funding = decode_funding(rec.payloads[0])
        if funding is not None:
            for row in funding.iter_rows():
                self.marks[(row[1], row[2], row[5])] = row
        n = sum(len(p) for p in rec.payloads.values())
        self.applied_total[rec.shard] = self.applied_total.get(rec.shard, 0) + 1
        self.bytes_total[rec.shard] = self.bytes_total.get(rec.shard, 0) + n
        self.pending_rows.append((time.time_ns(), rec.shard, rec.epoch, rec.seq,
                                  rec.stream_seq, rec.ts, rec.parts, n, rec.books))
        self.pending_msgs += rec.msgs

    async def tick(self, now: int) -> None:
        rows, self.pending_rows = self.pending_rows, []
        msgs, self.pending_msgs = self.pending_msgs, []
        await super().tick(now)
        await self.commit(rows, msgs)

    async def commit(self, rows: list[tuple[Any, ...]], msgs: list[Msg]) -> None:
        """Store ``rows`` (of ``shard_states``) with everything buffered, then acknowledge
        ``msgs``; a failed write keeps them for the next commit."""
        if rows:
            self.store.add_rows("shard_states", pa.Table.from_pylist(
                [dict(zip(TABLES["shard_states"].column_names, r, strict=True)) for r in rows],
                schema=TABLES["shard_states"].arrow_schema))
        await asyncio.to_thread(self.store.flush)
        if not self.store.healthy:  # not stored: acknowledged after a later flush
            self.pending_msgs[:0] = msgs
            return
        await bus.ack_all(msgs)
        self.acked += len(msgs)

    # -- the inputs of a tick: every shard's latest state --

    def _state(self, shard: str) -> ShardState:
        rec = self.states[shard]
        got = self.decoded.get(shard)
        if got is None or got[0] != rec.key:
            got = self.decoded[shard] = (rec.key, decode(
                [rec.payloads[i] for i in range(rec.parts)]))
        return got[1]

    def windows(self, now: int) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
        levels, extra, books = book_windows([], self.cfg, self.cover, now)
        parts = [(levels, extra, books)]
        tickers, oi, insts = [], [], []
        stale_ns = round(self.cfg.max_quote_age_seconds * NS)
        offset = 0
        # (a state applied while the tick awaits its evaluation joins the next tick's inputs)
        self._tick_shards = set(self.states)
        for shard in sorted(self._tick_shards):
            st = self._state(shard)
            fresh = now - self.states[shard].ts <= stale_ns
            shift = pl.col("book") + pl.lit(offset, pl.UInt32)
            parts.append((
                st.levels.with_columns(book=shift), st.extra.with_columns(book=shift),
                st.books.with_columns(book=shift, ts=pl.lit(now, pl.Int64),
                                      in_sync=pl.col("in_sync") & fresh)))
            offset += st.books.height
            tickers.append(st.tickers.with_columns(ts=pl.lit(now, pl.Int64)))
            oi.append(st.oi.with_columns(ts=pl.lit(now, pl.Int64)))
            insts.append(st.instruments)
        self._inputs = (
            pl.concat([pl.DataFrame(schema=TICKER_SCHEMA), *tickers]),
            pl.concat([pl.DataFrame(schema=OI_SCHEMA), *oi]),
            pl.concat([pl.DataFrame(schema=INSTRUMENT_SCHEMA), *insts]),
        )
        levels, extra, books = (pl.concat([p[i] for p in parts]) for i in range(3))
        self._windows = (levels, extra, books)
        return levels, extra, books

    def _tickers(self, now: int) -> pl.DataFrame:
        return self._inputs[0]

    def _open_interest(self, now: int) -> pl.DataFrame:
        return self._inputs[1]

    def _instruments(self) -> pl.DataFrame:
        return self._inputs[2]

    def _funding_mean(self, now: int) -> pl.DataFrame | None:
        for key in [k for k, r in self.marks.items() if r[0] < now - FUNDING_KEEP_NS]:
            del self.marks[key]
        return funding_mean(list(self.marks.values()))

    def _refresh_portfolio(self, now: int) -> None:
        """Once this tick's inputs hold a state of every shard (a position on a shard not heard
        from yet would be refused as an instrument not collected), or ``FIRST_STATES_WAIT_S``
        after the start (a shard still missing: its positions refused, the error counted);
        until then, tried again at each tick."""
        if self._tick_shards >= self.shards or now >= self.portfolio_wait_ns:
            super()._refresh_portfolio(now)
        else:
            self.next_portfolio_ns = 0

    def _market(self, now: int) -> Market:
        """The portfolio's market: this tick's windows (``windows``: a stale shard's books out
        of sync) and inputs, and the funding marks."""
        levels, _, books = self._windows
        marks = pl.DataFrame(list(self.marks.values()), schema=FUNDING_SCHEMA, orient="row")
        return state_market(self._instruments(), self._tickers(now), levels, books, marks, now)


def applied_states(segments_root: Path) -> dict[str, tuple[int, int]]:
    """The newest ``(epoch, seq)`` of each shard in ``shard_states`` (its last two days'
    segments: a state older than the stream keeps is never delivered again)."""
    files = [p for day in seg.days(segments_root, "shard_states")[-2:] for p in seg.segments(day)]
    tables = []
    for p in files:
        with contextlib.suppress(OSError, pa.ArrowException):
            tables.append(pq.read_table(p, columns=["shard", "epoch", "seq"]))
    if not tables:
        return {}
    t = pa.concat_tables(tables, promote_options="permissive")  # (compacted: other nullability)
    out: dict[str, tuple[int, int]] = {}
    for shard in pc.unique(t["shard"]).to_pylist():
        rows = t.filter(pc.equal(t["shard"], shard))
        out[shard] = max(zip(rows["epoch"].to_pylist(), rows["seq"].to_pylist(), strict=True))
    return out


class AnalyticsNode:
    """The analytics process: its store (segments tagged with the consumer's name), the
    consumer, the ticks; ``run(duration)`` / ``stop()`` as ``Collector``'s."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.name = cfg.cluster.consumer
        self.store = Store(Path(cfg.store.data_dir), Path(cfg.store.database),
                           flush_rows=cfg.store.flush_rows,
                           flush_seconds=cfg.store.flush_seconds, shard=self.name, venues=[])
        self.analytics = ClusterAnalytics(cfg, self.store)
        self.started_ns = time.time_ns()
        self.nc: Client | None = None
        self.consumer: bus.Consumer | None = None
        self.tasks: list[asyncio.Task[Any]] = []
        self._stopped = False

    async def start(self) -> None:
        self.store.open()
        applied = applied_states(self.store.segments_root)
        url = self.cfg.cluster.nats_url
        assert url, "the supervisor passes the NATS URL"
        self.nc = await bus.connect(url, f"analyzer-{self.name}")
        self.consumer = bus.Consumer(self.nc.jetstream(), self.cfg.cluster,
                                     self.analytics.on_state, applied)
        await self.consumer.subscribe()
        log.info("%s: consuming from %s", self.name,
                 ", ".join(f"{s} after {e}:{q}" for s, (e, q) in applied.items()) or "the start")
        self.tasks = [asyncio.create_task(self.consumer.run(), name="consume"),
                      asyncio.create_task(self._ticks(), name="ticks")]

    async def run(self, duration: float | None = None) -> None:
        try:
            await self.start()
            if duration is None:
                await asyncio.gather(*self.tasks)
            else:
                await asyncio.sleep(duration)
        finally:
            await self.stop()

    async def _ticks(self) -> None:
        interval = self.cfg.analytics.interval_seconds
        next_tick = time.monotonic() + interval
        while True:
            await asyncio.sleep(max(0.0, next_tick - time.monotonic()))
            next_tick = max(next_tick + interval, time.monotonic())
            await self.analytics.tick(time.time_ns())

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        for t in self.tasks:
            t.cancel()
        for t in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        a = self.analytics
        if self.store.is_open:
            a.close(time.time_ns())  # open opportunities: "collector stopped"
            rows, a.pending_rows = a.pending_rows, []
            msgs, a.pending_msgs = a.pending_msgs, []
            with contextlib.suppress(Exception):  # (the process is stopping: at worst redelivered)
                await a.commit(rows, msgs)  # what was applied is stored, then acknowledged
            self.store.close()
        if self.consumer is not None:
            await self.consumer.close()
        if self.nc is not None:
            with contextlib.suppress(Exception):
                await self.nc.close()


class ConsumerMetrics(_PromCollector):
    """The analytics process's families: the analytics' own, its store's, and the consumer's
    (per shard of origin: the supervisor adds ``shard`` for this process)."""

    def __init__(self, node: AnalyticsNode) -> None:
        self.n = node

    def collect(self) -> Iterator[Metric]:
        from analyzer.metrics import store_families

        a, c = self.n.analytics, self.n.consumer
        yield from analytics_families(a)
        yield from store_families(self.n.store, self.n.started_ns)
        if c is None:
            return
        now = time.time_ns()
        per = [
            ("cluster_states_applied", "Shard states applied (exactly once)", a.applied_total),
            ("cluster_state_bytes_applied", "Payload bytes of the states applied",
             a.bytes_total),
            ("cluster_states_duplicate", "States delivered again after they were applied "
             "(acknowledged, dropped)", c.duplicates),
            ("cluster_states_missed", "States of a shard never applied: gaps in its numbering "
             "(a failed publish, an incomplete state, states the stream no longer kept)",
             c.missed),
            ("cluster_states_incomplete", "States whose parts never all came (their shard "
             "died publishing)", c.incomplete),
        ]
        for name, doc, values in per:
            fam = CounterMetricFamily("analyzer_" + name, doc, labels=["origin"])
            for shard, n in list(values.items()):
                fam.add_metric([shard], n)
            yield fam
        age = GaugeMetricFamily("analyzer_cluster_state_age_seconds", "Age of each shard's "
                                "latest state (its tick, the shard's clock)", labels=["origin"])
        for shard, rec in list(a.states.items()):
            age.add_metric([shard], (now - rec.ts) / 1e9)
        yield age
        pending = GaugeMetricFamily("analyzer_cluster_unacked_messages", "State messages "
                                    "applied and not yet acknowledged (stored at the next "
                                    "tick)", labels=[])
        pending.add_metric([], len(a.pending_msgs))
        yield pending
        errors = CounterMetricFamily("analyzer_cluster_consumer_errors", "Failed fetches and "
                                     "malformed state messages", labels=[])
        errors.add_metric([], c.errors)
        yield errors
