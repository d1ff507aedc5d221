"""A shard: the one-process collector over its shard's feeds (``analyzer.collector``), whose
analytics tick publishes its state to NATS instead of evaluating it (``state.py``).

The windows are cut on the event loop (the books must not change under them), as the
one-process tick does; encoding (Polars' IPC writer releases the GIL) runs in a worker thread.
A tick whose previous state is still being published is skipped and counted (a NATS server
slower than the tick: the analytics keep the last state, a newer one follows), so the event
loop never queues states.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator
from typing import Any

import polars as pl
from nats.aio.client import Client
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector as _PromCollector

from analyzer.analytics.live import (
    FUNDING_KEEP_NS,
    FUNDING_SCHEMA,
    book_windows,
    instruments_frame,
    open_interest_frame,
    tickers_frame,
)
from analyzer.cluster import bus
from analyzer.cluster.state import ShardState, encode
from analyzer.collector import Collector
from analyzer.config import Config

log = logging.getLogger(__name__)


class ShardCollector(Collector):
    """``Collector`` of one shard (``cfg`` holds only its feeds), publishing its state."""

    def __init__(self, cfg: Config, shard: str) -> None:
        super().__init__(cfg, shard=shard, analytics=False)
        a = cfg.analytics
        self.cover = max([*a.notionals_usd, *cfg.carry.notionals_usd])
        self.nc: Client | None = None
        self.publisher: bus.Publisher | None = None
        self.skipped = 0  # ticks skipped: the previous state was still being published
        self._sent_marks: dict[tuple[str, str, int], int] = {}
        self._publishing: asyncio.Task[None] | None = None

    async def start(self, timeout: float = 60.0) -> None:
        url = self.cfg.cluster.nats_url
        assert url, "the supervisor passes the NATS URL"
        self.nc = await bus.connect(url, f"analyzer-{self.shard}")
        self.publisher = bus.Publisher(self.nc.jetstream(), self.cfg.cluster, str(self.shard))
        await self.publisher.resume()
        await super().start(timeout)

    async def stop(self) -> None:
        await super().stop()
        if self._publishing is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._publishing, 5.0)
        if self.nc is not None:
            with contextlib.suppress(Exception):
                await self.nc.close()

    async def tick(self, now: int) -> None:
        if self.publisher is None:
            return
        if self._publishing is not None and not self._publishing.done():
            self.skipped += 1
            return
        try:
            state = self.state(now)
        except Exception:  # a bug must not stop collection
            log.exception("%s: cutting the state failed", self.shard)
            return
        self._publishing = asyncio.create_task(self._publish(state, now), name="publish")

    def state(self, now: int) -> ShardState:
        """This tick's state (on the loop: the books must not change under the cut)."""
        a = self.cfg.analytics
        levels, extra, books = book_windows(self.runners, a, self.cover, now)
        return ShardState(books, levels, extra, tickers_frame(self.runners, now),
                          open_interest_frame(self.runners, now),
                          instruments_frame(self.runners), self._new_marks(now))

    def _new_marks(self, now: int) -> pl.DataFrame:
        """Funding marks new or changed since the last state (the analytics process keeps
        them: realised funding over 7 days); marks older than 8 days are forgotten here."""
        rows = []
        seen = set()
        for r in self.runners:
            marks = r.funding_marks
            for key in [k for k, t in list(marks.items()) if t.ts_local < now - FUNDING_KEEP_NS]:
                del marks[key]
            for (symbol, nft), t in list(marks.items()):
                key = (r.venue, symbol, nft)
                seen.add(key)
                if self._sent_marks.get(key) != t.ts_local:
                    self._sent_marks[key] = t.ts_local
                    rows.append((t.ts_exchange, r.venue, t.symbol, t.funding_rate,
                                 t.funding_interval_hours, t.next_funding_time))
        for key in [k for k in self._sent_marks if k not in seen]:
            del self._sent_marks[key]
        return pl.DataFrame(rows, schema=FUNDING_SCHEMA, orient="row")

    async def _publish(self, state: ShardState, now: int) -> None:
        assert self.publisher is not None and self.nc is not None
        t0 = time.perf_counter()
        try:
            payloads = await asyncio.to_thread(encode, state, self.nc.max_payload)
        except Exception:
            log.exception("%s: encoding the state failed", self.shard)
            return
        await self.publisher.publish(payloads, now, state.books.height)
        self.publisher.stats.last_seconds = time.perf_counter() - t0


class PublisherMetrics(_PromCollector):
    """A shard's publishing, at scrape time (the supervisor adds the ``shard`` label)."""

    def __init__(self, shard: ShardCollector) -> None:
        self.s = shard

    def collect(self) -> Iterator[Metric]:
        p = self.s.publisher
        if p is None:
            return
        st = p.stats
        yield from _families([
            ("cluster_states_published", "States published to NATS", st.states, True),
            ("cluster_state_parts_published", "Messages the states took (a state larger than "
             "the server's max_payload is split)", st.parts, True),
            ("cluster_state_bytes_published", "Payload bytes of the states published",
             st.bytes, True),
            ("cluster_publish_errors", "States whose publishing failed (the consumer counts "
             "them missed)", st.errors, True),
            ("cluster_states_skipped", "Ticks skipped while the previous state was still "
             "being published", self.s.skipped, True),
            ("cluster_last_state_bytes", "Payload bytes of the last state", st.last_bytes,
             False),
            ("cluster_last_state_seconds", "Encoding and publishing the last state",
             st.last_seconds, False),
        ])


def _families(rows: list[tuple[str, str, Any, bool]]) -> Iterator[Metric]:
    for name, doc, value, counter in rows:
        fam = (CounterMetricFamily if counter else GaugeMetricFamily)(
            "analyzer_" + name, doc, labels=[])
        fam.add_metric([], value)
        yield fam
