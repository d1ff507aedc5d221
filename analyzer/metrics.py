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
    from analyzer.store import Store

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
        yield from store_families(self.c.store, self.c.started_ns)
        yield from self._capture()
        if self.c.analytics is not None:  # (a shard's run elsewhere: analyzer/cluster)
            yield from analytics_families(self.c.analytics)

    def _feed_health(self, runners: list[FeedRunner]) -> Iterator[Metric]:
        unknown = _counter("unknown_frames", "Frames for streams nobody subscribed to", ["venue"])
        venue_errors = _counter("venue_errors", "Error answers of the venue to our requests (a "
                                "refused subscription)", ["venue"])
        dups = _counter("duplicate_frames", "Frames dropped as already seen", ["venue"])
        reconnects = _counter("reconnects", "Connection endings by reason (close code, stall, "
                              "rotation, error)", ["venue", "reason"])
        connected = _gauge("connections_up", "Open websocket connections", ["venue"])
        rest = _counter("rest_requests", "REST requests by HTTP status", ["venue", "status"])
        throttled = _counter("rest_throttled", "REST answers 429 (Retry-After honoured)",
                             ["venue"])
        bans = _counter("rest_bans", "REST answers 418/403: the venue bans us for a while (the "
                        "queue pauses with its own backoff)", ["venue"])
        rejected = _counter("rest_rejected", "REST requests refused by a full queue (lost)",
                            ["venue"])
        handler_errors = _counter("frame_handler_errors", "Frames or REST answers whose "
                                  "handling raised unexpectedly (counted, skipped)", ["venue"])
        stalls = _counter("stream_stalls", "Streams silent past their own expected rate (book "
                          "out of sync, connection reconnected)", ["venue", "channel"])
        queue = _gauge("queue_depth", "Requests waiting in a venue's rate-limited REST queue",
                       ["venue", "queue"])
        backfilled = _counter("trades_backfilled", "Trades fetched over REST after a gap",
                              ["venue"])
        trade_gaps = _counter("trade_gaps", "Jumps in trade ids (missed trades)", ["venue"])
        for r in runners:
            v = [r.venue]
            unknown.add_metric(v, r.unknown_frames)
            venue_errors.add_metric(v, r.venue_errors)
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
            bans.add_metric(v, r.rest.stats.bans)
            rejected.add_metric(v, r.rest.stats.rejected)
            handler_errors.add_metric(v, r.handler_errors + r.rest.stats.callback_errors)
            for ch, n in list(r.freshness.stalls.items()):
                stalls.add_metric([r.venue, ch], n)
            queue.add_metric([r.venue, "rest"], len(r.rest))
            backfilled.add_metric(v, r.trades_backfilled)
            trade_gaps.add_metric(v, r.trade_gaps)
        yield from (unknown, venue_errors, dups, reconnects, connected, rest, throttled, bans,
                    rejected, handler_errors, stalls, queue, backfilled, trade_gaps)

    def _books(self, runners: list[FeedRunner]) -> Iterator[Metric]:
        gaps = _counter("book_gaps", "Book sequence gaps, crossed books and best bid/ask "
                        "disagreements, each followed by a resync", ["venue", "reason"])
        resyncs = _counter("book_resyncs", "Depth snapshots requested to resync a book", ["venue"])
        refreshes = _counter("book_refreshes", "Fresh snapshots merged into a live book as the "
                             "price neared the last level the previous one showed",
                             ["venue", "result"])
        overflows = _counter("book_buffer_overflows", "Changes dropped from a full buffer while "
                             "a book waited for its snapshot (it resyncs)", ["venue"])
        bbo = _counter("bbo_checks", "Venue best bid/ask compared with the rebuilt book",
                       ["venue", "result"])
        checksums = _counter("book_checksums", "Venue checksums verified on the rebuilt book "
                             "(a mismatch resyncs it)", ["venue", "result"])
        fills = _counter("book_gap_fills", "Book gaps mended from the venue's latest changes "
                         "(venues that serve them), or not (a snapshot resync followed)",
                         ["venue", "result"])
        cases = _counter("book_rule_cases", "Cases a venue's book rule lets through that its "
                         "docs leave open (an id skipping forward, say), by case",
                         ["venue", "case"])
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
            overflows.add_metric([r.venue], s.buffer_overflows)
            refreshes.add_metric([r.venue, "done"], s.refreshes)
            refreshes.add_metric([r.venue, "abandoned"], s.refreshes_abandoned)
            bbo.add_metric([r.venue, "match"], s.bbo_compared - s.bbo_mismatched)
            bbo.add_metric([r.venue, "mismatch"], s.bbo_mismatched)
            if r.books.checksum is not None:
                checksums.add_metric([r.venue, "match"], s.checksums_verified)
                checksums.add_metric([r.venue, "mismatch"], s.checksums_failed)
            if r.books.request_gap_fill is not None:
                fills.add_metric([r.venue, "mended"], s.gap_fills)
                fills.add_metric([r.venue, "snapshot"], s.gap_fills_failed)
            for case, n in list(getattr(r.feed.rules, "cases", {}).items()):
                cases.add_metric([r.venue, case], n)
            for sb in r.books.books.values():
                labels = [r.venue, sb.symbol]
                in_sync.add_metric(labels, 1.0 if sb.in_sync else 0.0)
                levels.add_metric(labels, len(sb.book))
                top = sb.top
                if sb.in_sync and top is not None:
                    m = (top[0] + top[2]) / 2
                    mid.add_metric(labels, m)
                    spread.add_metric(labels, (top[2] - top[0]) / m * 1e4)
        yield from (gaps, resyncs, overflows, refreshes, bbo, checksums, fills, cases, in_sync,
                    levels, mid, spread)

    def _capture(self) -> Iterator[Metric]:
        dropped = _counter("raw_capture_bytes_dropped", "Raw-capture bytes lost: the compressor "
                           "was behind (the capture is shed first) or the disk refused them",
                           ["venue"])
        errors = _counter("raw_capture_write_errors", "Failed raw-capture writes (retried)",
                          ["venue"])
        for venue, cap in list(self.c.captures.items()):
            dropped.add_metric([venue], cap.stats["bytes_dropped"])
            errors.add_metric([venue], cap.stats["write_errors"])
        yield from (dropped, errors)


def store_families(store: Store, started_ns: int) -> Iterator[Metric]:
    """The store's health and losses (also served while the store cannot write)."""
    stats = store.stats
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
    up = _gauge("store_up", "0 while a failed segment write waits for its retry", [])
    up.add_metric([], 1.0 if store.healthy else 0.0)
    dropped = _counter("store_rows_dropped", "Rows lost: shed by a writer that fell behind, "
                       "over the retry cap, unconvertible, or unwritable at close", ["table"])
    for table, n in list(stats.get("rows_dropped_by_table", {}).items()):
        dropped.add_metric([table], n)
    held = _gauge("store_rows_held", "Rows waiting for room in the writer's queue", [])
    held.add_metric([], stats.get("rows_held", 0))
    pending = _gauge("store_rows_pending_retry", "Rows of failed writes held for retry", [])
    pending.add_metric([], stats.get("rows_pending_retry", 0))
    waits = _counter("store_backpressure", "Batches the writer's full queue could not take "
                     "at once (held, never blocking the event loop)", [])
    waits.add_metric([], stats.get("backpressure_waits", 0))
    uptime = _gauge("uptime_seconds", "Seconds since the collector started", [])
    uptime.add_metric([], (time.time_ns() - started_ns) / 1e9)
    yield from (rows, flushes, flush_s, last, failed, up, dropped, held, pending, waits,
                uptime)


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
