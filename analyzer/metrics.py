"""Prometheus exporter (default port 9108).

The hot path only bumps plain integers; this custom collector turns them into metric families
when Prometheus scrapes. Label sets are bounded: venue and channel come from fixed lists, symbol
only from the configuration (a frame for an unknown symbol is counted, never labelled).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector as _PromCollector

from analyzer.analytics.gauges import families as analytics_families
from analyzer.collector import LAG_BUCKETS
from analyzer.venues.base import CHANNELS

if TYPE_CHECKING:
    from analyzer.collector import Collector, FeedRunner

PREFIX = "analyzer_"


def _counter(name: str, doc: str, labels: list[str]) -> CounterMetricFamily:
    return CounterMetricFamily(PREFIX + name, doc, labels=labels)


def _gauge(name: str, doc: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(PREFIX + name, doc, labels=labels)


class CollectorMetrics(_PromCollector):
    """Runs on the exporter thread while the event loop mutates the counters: dicts that may
    grow are copied with list() (atomic under the GIL) before iterating."""

    def __init__(self, collector: Collector) -> None:
        self.c = collector

    def collect(self) -> Iterator[Metric]:
        runners = self.c.runners
        now = time.time_ns()
        frames = _counter("frames", "Frames received and decoded, by venue and channel",
                          ["venue", "channel"])
        errors = _counter("decode_errors", "Frames that failed to decode (counted, skipped)",
                          ["venue", "channel"])
        age = _gauge("last_message_age_seconds", "Seconds since the last frame of a channel",
                     ["venue", "channel"])
        lag = HistogramMetricFamily(
            PREFIX + "exchange_lag_seconds",
            "Local receipt time minus the venue's event time (negative lags count as 0)",
            labels=["venue", "channel"],
        )
        last_lag = _gauge("exchange_lag_last_seconds", "The last lag seen, signed (negative: "
                          "the local clock is behind the venue's)", ["venue", "channel"])
        negative = _counter("negative_lag", "Frames stamped by the venue after we received them "
                            "(clock skew)", ["venue", "channel"])
        for r in runners:
            per_channel: dict[str, list[int]] = {}
            for route in r.feed.routes.values():
                acc = per_channel.setdefault(route.channel, [0, 0])
                acc[0] += route.frames
                acc[1] = max(acc[1], route.last_ns)
            for ch in CHANNELS:
                if ch not in per_channel and ch not in r.decode_errors:
                    continue
                n, last = per_channel.get(ch, (0, 0))
                frames.add_metric([r.venue, ch], n)
                errors.add_metric([r.venue, ch], r.decode_errors.get(ch, 0))
                if last:
                    age.add_metric([r.venue, ch], (now - last) / 1e9)
            errors.add_metric([r.venue, "other"], r.decode_errors.get("other", 0))
            for ch, h in r.lag.items():
                if ch not in per_channel:
                    continue
                cum, buckets = 0, []
                for bound, count in zip((*LAG_BUCKETS, float("inf")), h.counts, strict=True):
                    cum += count
                    buckets.append((_le(bound), cum))
                lag.add_metric([r.venue, ch], buckets, h.sum_ns / 1e9)
                last_lag.add_metric([r.venue, ch], h.last_ns / 1e9)
                negative.add_metric([r.venue, ch], h.negative)
        yield from (frames, errors, age, lag, last_lag, negative)
        yield from self._feed_health(runners)
        yield from self._books(runners)
        yield from self._store()
        yield from analytics_families(self.c.analytics)

    def _feed_health(self, runners: list[FeedRunner]) -> Iterator[Metric]:
        unknown = _counter("unknown_frames", "Frames for streams nobody subscribed to", ["venue"])
        dups = _counter("duplicate_frames", "Frames dropped as already seen", ["venue"])
        reconnects = _counter("reconnects", "Connection endings by reason (close code, stall, "
                              "rotation, error)", ["venue", "reason"])
        connected = _gauge("connections_up", "Open websocket connections", ["venue"])
        rest = _counter("rest_requests", "REST requests by HTTP status", ["venue", "status"])
        throttled = _counter("rest_throttled", "REST answers 429/418 (Retry-After honoured)",
                             ["venue"])
        queue = _gauge("queue_depth", "Requests waiting in a venue's rate-limited REST queue",
                       ["venue", "queue"])
        backfilled = _counter("trades_backfilled", "Trades fetched over REST after a gap",
                              ["venue"])
        trade_gaps = _counter("trade_gaps", "Jumps in trade ids (missed trades)", ["venue"])
        for r in runners:
            v = [r.venue]
            unknown.add_metric(v, r.unknown_frames)
            dups.add_metric(v, r.duplicate_frames)
            reasons: dict[str, int] = {}
            for conn in r.connections:
                for reason, n in list(conn.stats.reconnects.items()):
                    reasons[reason] = reasons.get(reason, 0) + n
            for reason, n in reasons.items():
                reconnects.add_metric([r.venue, reason], n)
            connected.add_metric(v, sum(c.stats.connected for c in r.connections))
            for status, n in list(r.rest.stats.by_status.items()):
                rest.add_metric([r.venue, status], n)
            throttled.add_metric(v, r.rest.stats.throttled)
            queue.add_metric([r.venue, "rest"], len(r.rest))
            backfilled.add_metric(v, r.trades_backfilled)
            trade_gaps.add_metric(v, r.trade_gaps)
        yield from (unknown, dups, reconnects, connected, rest, throttled, queue, backfilled,
                    trade_gaps)

    def _books(self, runners: list[FeedRunner]) -> Iterator[Metric]:
        gaps = _counter("book_gaps", "Book sequence gaps, crossed books and best bid/ask "
                        "disagreements, each followed by a resync", ["venue", "reason"])
        resyncs = _counter("book_resyncs", "Depth snapshots requested to resync a book", ["venue"])
        refreshes = _counter("book_refreshes", "Fresh snapshots merged into a live book as the "
                             "price neared the last level the previous one showed",
                             ["venue", "result"])
        bbo = _counter("bbo_checks", "Venue best bid/ask compared with the rebuilt book",
                       ["venue", "result"])
        in_sync = _gauge("book_in_sync", "1 if the book is in sync with the venue",
                         ["venue", "symbol"])
        levels = _gauge("book_levels", "Price levels held in the book", ["venue", "symbol"])
        mid = _gauge("mid_price", "Mid price of the rebuilt book (quote currency)",
                     ["venue", "symbol"])
        spread = _gauge("spread_bps", "Best ask minus best bid over the mid, basis points",
                        ["venue", "symbol"])
        for r in runners:
            s = r.books.stats
            gaps.add_metric([r.venue, "gap"], s.gaps)
            gaps.add_metric([r.venue, "crossed"], s.crossed)
            gaps.add_metric([r.venue, "bbo_mismatch"], s.bbo_mismatched - s.beyond_snapshot)
            gaps.add_metric([r.venue, "beyond_snapshot"], s.beyond_snapshot)
            resyncs.add_metric([r.venue], s.resyncs)
            refreshes.add_metric([r.venue, "done"], s.refreshes)
            refreshes.add_metric([r.venue, "abandoned"], s.refreshes_abandoned)
            bbo.add_metric([r.venue, "match"], s.bbo_compared - s.bbo_mismatched)
            bbo.add_metric([r.venue, "mismatch"], s.bbo_mismatched)
            for sb in r.books.books.values():
                labels = [r.venue, sb.symbol]
                in_sync.add_metric(labels, 1.0 if sb.in_sync else 0.0)
                levels.add_metric(labels, len(sb.book))
                top = sb.top
                if sb.in_sync and top is not None:
                    m = (top[0] + top[2]) / 2
                    mid.add_metric(labels, m)
                    spread.add_metric(labels, (top[2] - top[0]) / m * 1e4)
        yield from (gaps, resyncs, refreshes, bbo, in_sync, levels, mid, spread)

    def _store(self) -> Iterator[Metric]:
        stats = self.c.store.stats
        rows = _counter("rows_written", "Rows written to the store", ["table"])
        for table, n in list(stats.get("rows_written", {}).items()):
            rows.add_metric([table], n)
        flushes = _counter("flushes", "Store flushes (Parquet segments written)", [])
        flushes.add_metric([], stats.get("flushes", 0))
        flush_s = _counter("flush_seconds", "Total seconds spent writing segments", [])
        flush_s.add_metric([], stats.get("flush_seconds_total", 0.0))
        last = _gauge("last_flush_duration_seconds", "Duration of the last flush", [])
        last.add_metric([], stats.get("last_flush_seconds", 0.0))
        failed = _counter("store_write_errors", "Failed segment writes (retried)", [])
        failed.add_metric([], stats.get("write_errors", 0))
        up = _gauge("store_up", "1 if the last store write succeeded", [])
        up.add_metric([], 0.0 if stats.get("rows_pending_retry") else 1.0)
        uptime = _gauge("uptime_seconds", "Seconds since the collector started", [])
        uptime.add_metric([], (time.time_ns() - self.c.started_ns) / 1e9)
        yield from (rows, flushes, flush_s, last, failed, up, uptime)


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)


def serve(collector: Collector, host: str, port: int) -> CollectorRegistry:
    """Start the exporter on a background thread; returns its registry."""
    from analyzer.collector import CollectorError

    registry = CollectorRegistry()
    registry.register(CollectorMetrics(collector))
    try:
        start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise CollectorError(
            f"cannot serve metrics on {host}:{port}: {exc.strerror or exc} "
            "(set [metrics] port, or --metrics-port for the demo)"
        ) from None
    return registry
