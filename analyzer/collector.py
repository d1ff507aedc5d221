"""The collector: venues -> decode -> books -> store, with metrics.

One asyncio loop. Each feed (a venue market) has its websocket connections, its books, its
rate-limited REST queue and its counters; frames are processed inline in the receive loop
(decode, book, buffer for storage), so there is no queue to grow between receipt and state and
a slow consumer slows the socket (TCP backpressure) instead of eating memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import time
from bisect import bisect_left
from collections import deque
from fnmatch import fnmatchcase
from pathlib import Path

from analyzer.analytics.live import LiveAnalytics
from analyzer.analytics.state import latest_ticker
from analyzer.config import Config, Feed
from analyzer.events import (
    BookChange,
    DerivativeTicker,
    Gap,
    Instrument,
    Liquidation,
    OpenInterest,
    Quote,
    Trade,
)
from analyzer.feed.books import BookKeeper
from analyzer.feed.connection import Connection, ConnectionSettings, Hooks
from analyzer.feed.freshness import Freshness
from analyzer.feed.rest import RestError, RestQueue
from analyzer.store import Store
from analyzer.store.capture import RawCapture
from analyzer.venues import VENUES
from analyzer.venues.base import DecodeError, UnknownStream, VenueError

log = logging.getLogger(__name__)

# pages of a venue's trade history read back after a reconnect, at most (of 100 trades or so)
MAX_BACKFILL_PAGES = 50
# exchange-to-local lag buckets, seconds
LAG_BUCKETS = (0.0, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_LAG_NS = tuple(int(b * 1e9) for b in LAG_BUCKETS)


class CollectorError(Exception):
    """The collector cannot start (bad symbol, unreachable venue metadata, store locked)."""


class LagHistogram:
    """Local receipt time minus the venue's event time, as plain counts (cheap on the hot path).
    A negative lag means the clocks disagree: it is counted apart and lands in the 0 bucket
    (a Prometheus histogram's sum must not go down); the last lag is kept signed."""

    __slots__ = ("counts", "last_ns", "negative", "sum_ns")

    def __init__(self) -> None:
        self.counts = [0] * (len(_LAG_NS) + 1)  # counts[i]: lag <= LAG_BUCKETS[i]; last: +Inf
        self.sum_ns = 0
        self.negative = 0
        self.last_ns = 0

    def observe_ns(self, lag_ns: int) -> None:
        self.last_ns = lag_ns
        if lag_ns < 0:
            self.negative += 1
            lag_ns = 0
        self.counts[bisect_left(_LAG_NS, lag_ns)] += 1
        self.sum_ns += lag_ns


class FeedRunner:
    """One venue market: its feed decoder, books, connections, REST queue and counters.
    Implements the venue ``Sink``."""

    def __init__(self, cfg: Feed, store: Store, capture: RawCapture | None) -> None:
        market, feed_cls = VENUES[cfg.venue]
        self.cfg = cfg
        self.venue = cfg.venue
        self.market = market
        self.store = store
        self.capture = capture
        names = [s.upper() for s in cfg.symbols]
        self.patterns = [s for s in names if "*" in s or "?" in s]
        self.symbols = [s for s in names if s not in self.patterns]  # resolved ones join later
        self.funding_hours: dict[str, float] = {}
        self.feed = feed_cls(
            market, self.symbols, cfg.channels, self,
            options=cfg.options, funding_hours=self.funding_hours,
        )
        self.weights = self.feed.rest_weights
        self._inflate = self.feed.inflate  # None: text frames
        self.rest = RestQueue(
            cfg.rest_url or market.rest_url,
            cfg.rest_weight_per_minute or market.weight_per_minute,
            headers=self.feed.rest_headers(cfg.api_key),
            ban_statuses=market.ban_statuses, used_weight_header=market.used_weight_header,
        )
        ws = market.snapshot_source == "ws"
        self.books = BookKeeper(
            self.venue, self.symbols if "depth" in cfg.channels else [], self.feed.rules,
            self._request_snapshot, self._on_gap, store.add,
            # a socket's book is the venue's own window of it: no horizon to refresh
            snapshot_levels=None if ws else self.feed.snapshot_levels,
            refresh_fraction=0.0 if ws else cfg.book_refresh_fraction,
            refresh_seconds=cfg.book_refresh_seconds, ws_snapshots=ws,
            request_gap_fill=(self._request_gap_fill
                              if self.feed.gap_fill_path("", 0) is not None else None),
        )
        self.instruments: dict[str, Instrument] = {}
        self.marks: dict[str, float] = {}
        # the latest of each symbol (COIN-M index tickers under their pair), for analytics
        self.tickers: dict[str, DerivativeTicker] = {}
        self.open_interest: dict[str, OpenInterest] = {}
        self.funding_marks: dict[tuple[str, int], DerivativeTicker] = {}
        self.last_quote_id: dict[str, int] = {}
        # quotes without ids: venue time of the last and the quotes seen at that time
        self.last_quote_seen: dict[str, tuple[int, set[tuple[float, ...]]]] = {}
        self.last_trade_ns: dict[str, int] = {}  # venue time of each symbol's last trade
        self._backfill_since: dict[str, int] = {}  # see _on_opened
        # book resubscriptions: symbol -> (monotonic time of the last, wait before the next)
        self._resubscribed: dict[str, tuple[float, float]] = {}
        self._resubscribe_due: set[str] = set()
        self._connected_before = False
        self.connections: list[Connection] = []
        self.connection_of: dict[str, Connection] = {}  # stream -> the connection carrying it
        self.freshness = Freshness(cfg.stream_stall_factor, cfg.stream_stall_min_seconds)
        self._tasks: list[asyncio.Task] = []
        self._refresh_soon = asyncio.Event()
        # counters read by the metrics exporter
        self.decode_errors: dict[str, int] = {}
        self.handler_errors = 0  # frames whose handling raised something other than DecodeError
        self.venue_errors = 0  # the venue refused a request (a subscription): its error frames
        # the last frames that failed to decode: (channel, why, the frame's start), to look at
        self.bad_frames: deque[tuple[str, str, bytes]] = deque(maxlen=50)
        self.unknown_frames = 0
        self.duplicate_frames = 0
        self.trade_gaps = 0
        self.trades_backfilled = 0
        self.lag: dict[str, LagHistogram] = {
            ch: LagHistogram() for ch in ("depth", "trades", "bookTicker", "markPrice")
        }
        self._lag_depth = self.lag["depth"].observe_ns
        self._lag_trades = self.lag["trades"].observe_ns
        self._lag_quotes = self.lag["bookTicker"].observe_ns

    # -- start-up --

    async def _listed(self, tries: int | None = None) -> tuple[dict[str, Instrument], int]:
        """The venue's tradable instruments, from its listing (``tries``: RestQueue.get)."""
        bodies = []
        for path in self.feed.instrument_paths():
            body = await self.rest.get(path, self.weights["instruments"], tries=tries)
            ts = time.time_ns()
            if self.capture is not None:
                self.capture.write_rest(ts, path, body)
            bodies.append(body)
        return self.feed.decode_instruments(bodies, ts), ts

    def _matches(self, listed: dict[str, Instrument]) -> list[str]:
        return [s for s in listed if any(fnmatchcase(s, p) for p in self.patterns)]

    async def load_instruments(self, tries: int = 4) -> None:
        """Read the listing and resolve the symbols. A REST failure is a one-line CollectorError
        naming the venue, the URL and the cause: a few quick retries of a network error (some
        4 s against a closed port), none of a ban, whose backoff is minutes."""
        url = self.rest.base_url + self.feed.instrument_paths()[0]
        try:
            known, ts = await self._listed(tries)
        except (RestError, DecodeError) as exc:
            cause = " ".join(str(exc).split())
            raise CollectorError(
                f"{self.venue}: cannot read instruments from {url}: {cause}"
            ) from None
        missing = [s for s in self.symbols if s not in known]
        if missing:
            raise CollectorError(
                f"unknown symbol{'s' if len(missing) > 1 else ''} on {self.venue}: "
                f"{', '.join(missing)} (not trading in the venue's listing)"
            )
        for s in self._matches(known):
            if s not in self.symbols:
                self.symbols.append(s)
                self.feed.add_symbol(s)
                if "depth" in self.cfg.channels:
                    self.books.add(s, request=False)
        for s in self.symbols:
            self.instruments[s] = known[s]
            self.store.add(known[s])
        self.feed.set_instruments(self.instruments)
        path = self.feed.funding_info_path()
        if path is not None and "markPrice" in self.cfg.channels:
            try:
                self._on_funding_info(
                    await self.rest.get(path, self.weights["funding_info"], tries=tries), ts)
            except (RestError, DecodeError) as exc:  # a refinement: 8 h is the default
                log.warning("%s: funding info unavailable (%s); assuming 8 h", self.venue, exc)

    def _on_funding_info(self, body: bytes, ts: int) -> None:
        self.funding_hours.update(self.feed.decode_funding_info(body))

    def _rest_decode_error(self, what: str, exc: DecodeError) -> None:
        """A REST body that failed its checks: counted with the stream frames of its channel."""
        n = self.decode_errors.get(exc.channel, 0) + 1
        self.decode_errors[exc.channel] = n
        if n <= 10 or n % 1000 == 0:
            log.warning("%s: bad %s body (%s)", self.venue, what, exc)

    async def _refresh_funding_info(self) -> None:
        """Funding intervals change while a contract lives (8 h -> 4 h -> 1 h): re-read hourly."""
        path = self.feed.funding_info_path()
        assert path is not None
        while True:
            await asyncio.sleep(3600)
            self.rest.submit(path, self.weights["funding_info"], self._funding_info_refreshed,
                             key="fundingInfo")

    def _funding_info_refreshed(self, body: bytes, ts: int) -> None:
        try:
            self._on_funding_info(body, ts)
        except DecodeError as exc:
            self._rest_decode_error("funding info", exc)

    def start(self, tasks: list[asyncio.Task]) -> None:
        self._tasks = tasks
        self._connect(self.feed.streams)
        tasks.append(asyncio.create_task(self.rest.run(), name=f"{self.venue}-rest"))
        tasks.append(asyncio.create_task(self._refresh_instruments(),
                                         name=f"{self.venue}-instruments"))
        if ("openInterest" in self.cfg.channels and not self.market.is_spot
                and self.feed.open_interest_path("") is not None):  # else on the stream
            tasks.append(asyncio.create_task(self._poll_open_interest(), name=f"{self.venue}-oi"))
        if ("markPrice" in self.cfg.channels and not self.market.is_spot
                and self.feed.premium_path("") is not None):  # else on the stream
            tasks.append(asyncio.create_task(self._poll_premium(), name=f"{self.venue}-premium"))
        if self.feed.funding_info_path() is not None and "markPrice" in self.cfg.channels:
            tasks.append(asyncio.create_task(self._refresh_funding_info(),
                                             name=f"{self.venue}-funding"))
        tasks.append(asyncio.create_task(self._watch_streams(), name=f"{self.venue}-freshness"))
        self.books.start()

    def _connect(self, streams: list[str]) -> None:
        """Connections for ``streams``, at most the venue's streams per connection each."""
        per = min(self.cfg.streams_per_connection, self.market.max_streams)
        settings = ConnectionSettings(
            stall_seconds=self.cfg.stall_seconds,
            max_age_seconds=min(self.cfg.max_connection_age_seconds,
                                self.market.max_connection_age_seconds),
            subscribe_interval=2.0 / self.market.max_messages_per_second,
            subscribe_burst=max(1, int(self.market.max_messages_per_second // 2)),
            backoff_max=self.cfg.backoff_max_seconds,
            healthy_seconds=self.cfg.healthy_seconds,
        )
        inflate = self._inflate
        hooks = Hooks(
            self.feed.control, self.market.heartbeat, self.market.heartbeat_seconds,
            reply=self.feed.reply, inflate=inflate,
            raw=self.capture.write_binary if inflate and self.capture else None,
            bad=self._inflate_failed,
        )
        # (a venue may serve its streams on several paths, each on connections of its own)
        routes = self.feed.ws_routes(self.cfg.ws_url or self.market.ws_url, streams)
        for url, routed in routes.items():
            for i in range(0, len(routed), per):
                part = routed[i : i + per]
                conn = Connection(
                    f"{self.venue}#{len(self.connections)}", url,
                    functools.partial(self.feed.subscribe_messages, part),
                    self.on_frame, settings, on_connected=self._on_connected,
                    on_opened=self._on_opened, hooks=hooks,
                )
                self.connections.append(conn)
                for stream in part:
                    self.connection_of[stream] = conn
                self._tasks.append(asyncio.create_task(conn.run(), name=conn.name))

    # -- listings: expiries and new quarterlies --

    async def _refresh_instruments(self) -> None:
        """Re-read the listing every ``instruments_seconds``, and soon after a contract's own
        ticker reaches its expiry (venue time, so it also works for a fast simulated clock):
        expired symbols are retired, new symbols matching a configured glob followed."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._refresh_soon.wait(), self.cfg.instruments_seconds)
                await asyncio.sleep(1.0)  # let the venue finish the roll
            self._refresh_soon.clear()
            try:
                listed, _ = await self._listed()
            except (RestError, DecodeError) as exc:
                log.warning("%s: instrument refresh failed (%s); retrying later", self.venue, exc)
                continue
            self.roll(listed)

    def roll(self, listed: dict[str, Instrument]) -> None:
        for s in [s for s in self.symbols if s not in listed]:
            log.info("%s: %s is no longer listed (expired): retired", self.venue, s)
            self.symbols.remove(s)
            self.books.remove(s)
        new = [s for s in self._matches(listed) if s not in self.symbols]
        streams = []
        for s in new:
            log.info("%s: %s listed: following it", self.venue, s)
            self.symbols.append(s)
            self.instruments[s] = listed[s]
            self.store.add(listed[s])
            streams += self.feed.add_symbol(s)
            if "depth" in self.cfg.channels:
                self.books.add(s)
        if streams:
            self._connect(streams)

    # -- hot path --

    def on_frame(self, frame: bytes, ts_local: int) -> None:
        # (a compressed venue's frames arrive inflated: the connection captured them raw)
        if self.capture is not None and self._inflate is None:
            self.capture.write(ts_local, frame)
        try:
            self.feed.decode(frame, ts_local)
        except UnknownStream:
            self.unknown_frames += 1
        except VenueError as exc:  # a refused request: not a malformed frame
            self.venue_errors += 1
            if self.venue_errors <= 10 or self.venue_errors % 1000 == 0:
                log.warning("%s: venue error #%d: %s", self.venue, self.venue_errors, exc)
        except DecodeError as exc:
            self._count_decode_error(exc, frame)
        except Exception as exc:  # a bug or a value no check caught: count it, keep the stream
            self.handler_errors += 1
            if self.handler_errors <= 10 or self.handler_errors % 1000 == 0:
                log.error("%s: handling a frame failed #%d (%s: %s); frame %r", self.venue,
                          self.handler_errors, type(exc).__name__, exc, frame[:200])

    def _inflate_failed(self, exc: Exception, frame: bytes) -> None:
        self._count_decode_error(DecodeError(f"does not inflate: {exc}"), frame)

    def _count_decode_error(self, exc: DecodeError, frame: bytes) -> None:
        channel = getattr(exc, "channel", "other")
        n = self.decode_errors.get(channel, 0) + 1
        self.decode_errors[channel] = n
        self.bad_frames.append((channel, str(exc)[:200], frame[:300]))
        if n <= 10 or n % 1000 == 0:  # a sample, not a flood
            log.warning("%s: decode error #%d (%s); frame %r", self.venue, n, exc, frame[:200])

    def on_book(self, ev: BookChange) -> None:
        if ev.ts_exchange:
            self._lag_depth(ev.ts_local - ev.ts_exchange)
        self.books.on_change(ev)

    def on_trade(self, ev: Trade) -> None:
        self._lag_trades(ev.ts_local - ev.ts_exchange)
        self.last_trade_ns[ev.symbol] = ev.ts_exchange
        self.store.add(ev)

    def on_trade_gap(self, symbol: str, first_missing: int, last_missing: int) -> None:
        """Trades ``first_missing..last_missing`` never arrived (a reconnect): fetch them."""
        self.trade_gaps += 1
        self._backfill(symbol, first_missing, last_missing)

    def on_duplicate(self) -> None:
        self.duplicate_frames += 1

    def on_quote(self, ev: Quote) -> None:
        if ev.update_id >= 0:  # venues whose quotes carry an update id
            if ev.update_id <= self.last_quote_id.get(ev.symbol, -1):
                self.duplicate_frames += 1  # overlap of a rotated connection
                return
            self.last_quote_id[ev.symbol] = ev.update_id
        else:  # no id: a quote older than the last, or the same again, is the overlap's
            key = (ev.bid_price, ev.bid_size, ev.ask_price, ev.ask_size)
            last = self.last_quote_seen.get(ev.symbol)
            if last is None or ev.ts_exchange > last[0]:
                self.last_quote_seen[ev.symbol] = (ev.ts_exchange, {key})
            elif ev.ts_exchange < last[0] or key in last[1]:
                self.duplicate_frames += 1
                return
            else:
                last[1].add(key)
        if ev.ts_exchange:
            self._lag_quotes(ev.ts_local - ev.ts_exchange)
        self.store.add(ev)
        self.books.on_venue_quote(ev)

    def on_ticker(self, ev: DerivativeTicker) -> None:
        self.lag["markPrice"].observe_ns(ev.ts_local - ev.ts_exchange)
        if ev.mark_price is not None:
            self.marks[ev.symbol] = ev.mark_price
        self.tickers[ev.symbol] = latest_ticker(self.tickers.get(ev.symbol), ev)
        if ev.funding_rate is not None and ev.next_funding_time is not None:
            # the last ticker of each funding period: what realised funding is read from
            self.funding_marks[(ev.symbol, ev.next_funding_time)] = ev
        inst = self.instruments.get(ev.symbol)
        if inst is not None and inst.expiry is not None and ev.ts_exchange >= inst.expiry:
            self._refresh_soon.set()  # its last ticker: the contract has settled
        self.store.add(ev)

    def on_open_interest(self, ev: OpenInterest) -> None:
        """Open interest on the stream (venues that publish it there)."""
        self.open_interest[ev.symbol] = ev
        self.store.add(ev)

    def on_liquidation(self, ev: Liquidation) -> None:
        self.store.add(ev)

    # -- books and REST --

    def _request_snapshot(self, symbol: str) -> None:
        path = self.feed.depth_path(symbol)
        if path is None:  # snapshots on the socket: resubscribe this book's stream alone
            self._resubscribe(symbol)
            return

        def done(body: bytes, ts: int) -> None:
            if self.capture is not None:
                self.capture.write_rest(ts, path, body)
            try:
                self.books.on_snapshot(self.feed.decode_snapshot(body, symbol, ts))
            except DecodeError as exc:
                log.error("%s: bad depth snapshot for %s: %s", self.venue, symbol, exc)
                self.decode_errors["depth"] = self.decode_errors.get("depth", 0) + 1
                self.books.snapshot_failed(symbol)  # (ignored if retired at an expiry meanwhile)

        self.rest.submit(path, self.weights["depth"], done, key=f"depth:{symbol}")

    def _resubscribe(self, symbol: str) -> None:
        """Resubscribe a book's stream (its snapshot comes with it), paced per book: a venue
        whose snapshot is bad at once (crossed) would otherwise be asked again at the message
        rate and close the connection. The wait doubles from 0.5 s while resyncs follow each
        other within 10 s, up to 30 s; a resync after a calmer spell goes at once (a venue
        whose ids skip now and then, resynced by a strict rule, is not slowed down)."""
        now = time.monotonic()
        last, wait = self._resubscribed.get(symbol, (-math.inf, 0.0))
        if now - last > 10.0:
            wait = 0.0
        if now < last + wait:
            if symbol not in self._resubscribe_due:
                self._resubscribe_due.add(symbol)
                asyncio.get_running_loop().call_later(last + wait - now, self._resubscribe_now,
                                                      symbol)
            return
        self._resubscribed[symbol] = (now, min(30.0, max(0.5, wait * 2)))
        stream = self.feed.book_stream(symbol)
        conn = self.connection_of.get(stream)
        if conn is not None:
            conn.send(self.feed.unsubscribe_messages([stream])
                      + self.feed.subscribe_messages([stream]))

    def _resubscribe_now(self, symbol: str) -> None:
        self._resubscribe_due.discard(symbol)
        sb = self.books.books.get(symbol)
        if sb is not None and not sb.in_sync:  # (a snapshot may have come meanwhile)
            self._resubscribe(symbol)

    def _request_gap_fill(self, symbol: str, last_id: int) -> None:
        path = self.feed.gap_fill_path(symbol, last_id)
        assert path is not None

        def done(body: bytes, ts: int) -> None:
            if self.capture is not None:
                self.capture.write_rest(ts, path, body)
            try:
                changes = self.feed.decode_gap_fill(body, symbol, ts)
            except DecodeError as exc:
                self._rest_decode_error("gap fill", exc)
                self.books.gap_fill_failed(symbol)
                return
            self.books.on_gap_fill(symbol, changes)

        if not self.rest.submit(path, self.weights["gap_fill"], done, key=f"fill:{symbol}"):
            self.books.gap_fill_failed(symbol)  # (a full queue; a duplicate is already asked)

    async def _watch_streams(self) -> None:
        """Once a second: a watched stream silent past its own expected rate takes its book out
        of sync at once (nothing is computed from a frozen book) and reconnects its
        connection, whose new subscription resyncs it (analyzer/feed/freshness.py)."""
        while True:
            await asyncio.sleep(1.0)
            now = time.time_ns()
            for route, gap_ns in self.freshness.check(list(self.feed.routes.values()), now):
                log.warning("%s: %s silent for %.1fs (expected a frame every %.2fs): stale",
                            self.venue, route.stream, (now - route.last_ns) / 1e9, gap_ns / 1e9)
                if route.channel == "depth":
                    self.books.invalidate(route.symbol, "stale")
                conn = self.connection_of.get(route.stream)
                if conn is not None:
                    conn.restart("stall")

    def _on_gap(self, gap: Gap) -> None:
        if gap.reason == "checksum":
            log.warning("%s %s: book checksum %d, ours %d: resyncing", gap.venue, gap.symbol,
                        gap.expected_id, gap.received_id)
        elif gap.expected_id < 0:  # not a break in the ids: a stale stream, a bad snapshot
            log.warning("%s %s: book %s: resyncing", gap.venue, gap.symbol, gap.reason)
        else:
            log.warning("%s %s: book %s (had %d, change follows %d): resyncing", gap.venue,
                        gap.symbol, gap.reason, gap.expected_id, gap.received_id)
        self.store.add(gap)

    def _on_opened(self) -> None:
        """A connection is open and has subscribed nothing yet: the last trades seen now are
        where a backfill of recent trades starts (the new subscriptions' first trades, arriving
        while the rest is subscribed, must not move it past the outage)."""
        for symbol, ns in self.last_trade_ns.items():
            self._backfill_since[symbol] = min(ns, self._backfill_since.get(symbol, ns))

    def _on_connected(self) -> None:
        """After a reconnect, fetch the trades since the last one seen: trades lost with the old
        connection would otherwise go unnoticed until the next trade arrives (or never, if the
        market goes quiet). The store drops the ones the stream also delivers. Venues whose
        trade ids rise by one are asked from the next id on; the others for their recent trades
        (``recent_trades_path``), kept from the last trade's time on."""
        for symbol, last in list(self.feed.last_trade_id.items()):
            self._backfill(symbol, last + 1, None)
        if self._connected_before and "trades" in self.cfg.channels:
            for symbol in list(self.symbols):
                self._recent_trades(symbol, self._backfill_since.pop(symbol, None))
        self._backfill_since.clear()
        self._connected_before = True

    def _recent_trades(self, symbol: str, since: int | None, path: str | None = None,
                       pages: int = 0) -> None:
        """``since``: venue time of the symbol's last trade before the outage (None: none
        seen, every recent trade is kept). A page that does not reach back to ``since`` is
        followed by the next older one where the venue pages its history
        (``older_trades_path``), up to ``MAX_BACKFILL_PAGES``."""
        path = path or self.feed.recent_trades_path(symbol)
        if path is None:
            return

        def done(body: bytes, ts: int) -> None:
            decoded = self._rest_trades(body, symbol, ts)
            if decoded is None:
                return
            trades = [t for t in decoded if since is None or t.ts_exchange >= since]
            if since is not None and decoded and len(trades) == len(decoded):
                # even the oldest trade the venue returned is newer than our last: older
                # pages, if the venue has them, else a hole beyond what it keeps. A page may
                # cut a trade made of several fills: the next one starts with it, whole.
                oldest = min(decoded, key=lambda t: t.ts_exchange)
                older = self.feed.older_trades_path(symbol, oldest.trade_id)
                if older is not None and older != path and pages + 1 < MAX_BACKFILL_PAGES:
                    self._keep_backfilled([t for t in trades if t is not oldest])
                    self._recent_trades(symbol, since, older, pages + 1)
                    return
                self._keep_backfilled(trades)
                self.trade_gaps += 1
                # a hole the venue keeps no trades of: on record, with its bounds (venue ns)
                self.store.add(Gap(self.venue, symbol, ts, "trades_missing", since,
                                   oldest.ts_exchange, "none"))
                log.warning("%s %s: recent trades reach back only to %d; trades between %d and "
                            "then may be missing", self.venue, symbol, oldest.ts_exchange, since)
                return
            self._keep_backfilled(trades)

        self.rest.submit(path, self.weights["trades"], done, key=f"recent:{symbol}:{pages}")

    def _rest_trades(self, body: bytes, symbol: str, ts: int) -> list[Trade] | None:
        """A REST trades page, or None if it failed its checks (counted)."""
        try:
            return self.feed.decode_trades(body, symbol, ts)
        except DecodeError as exc:
            self._rest_decode_error("trades", exc)
            return None

    def _keep_backfilled(self, trades: list[Trade]) -> None:
        for t in trades:
            self.store.add(t)
        self.trades_backfilled += len(trades)

    def _backfill(self, symbol: str, first: int, last: int | None) -> None:
        """Fetch trades ``first..last`` (``last`` None: up to the newest) over REST."""
        limit = 1000 if last is None else min(1000, last - first + 1)
        path = self.feed.trades_path(symbol, first, limit)
        if path is None:
            return

        def done(body: bytes, ts: int) -> None:
            decoded = self._rest_trades(body, symbol, ts)
            if decoded is None:
                return
            trades = [t for t in decoded
                      if int(t.trade_id) >= first and (last is None or int(t.trade_id) <= last)]
            self._keep_backfilled(trades)
            got = max((int(t.trade_id) for t in trades), default=first - 1)
            if trades and (got < last if last is not None else len(trades) == limit):
                self._backfill(symbol, got + 1, last)

        self.rest.submit(path, self.weights["trades"], done, key=f"trades:{symbol}:{first}")

    async def _poll_open_interest(self) -> None:
        while True:
            for symbol in self.symbols:
                path = self.feed.open_interest_path(symbol)
                assert path is not None
                self.rest.submit(
                    path, self.weights["open_interest"],
                    lambda body, ts, s=symbol: self._on_open_interest(s, body, ts),
                    key=f"oi:{symbol}",
                )
            await asyncio.sleep(self.cfg.open_interest_seconds)

    async def _poll_premium(self) -> None:
        while True:
            for symbol in self.symbols:
                path = self.feed.premium_path(symbol)
                assert path is not None
                self.rest.submit(
                    path, self.weights["premium"],
                    lambda body, ts, s=symbol: self._on_premium(s, body, ts),
                    key=f"premium:{symbol}",
                )
            await asyncio.sleep(self.cfg.premium_seconds)

    def _on_premium(self, symbol: str, body: bytes, ts: int) -> None:
        if self.capture is not None:
            self.capture.write_rest(ts, self.feed.premium_path(symbol) or "", body)
        try:
            tickers = self.feed.decode_premium(body, symbol, ts)
        except DecodeError as exc:
            self._rest_decode_error("premium", exc)
            return
        for ev in tickers:
            self.on_ticker(ev)

    def _on_open_interest(self, symbol: str, body: bytes, ts: int) -> None:
        try:
            ev = self.feed.decode_open_interest(body, ts, self.instruments.get(symbol),
                                                self.marks.get(symbol))
        except DecodeError as exc:
            self._rest_decode_error("open interest", exc)
            return
        self.open_interest[symbol] = ev
        self.store.add(ev)

    def resume_trades(self, last: dict[tuple[str, str], tuple[str, int]]) -> None:
        """A restarted shard (analyzer/cluster): from the newest trade of each symbol already
        stored (``Store.last_trades``), the first connection backfills what was missed while
        it was down, as a reconnect does: from the next id where ids rise by one, else the
        venue's recent trades from that trade's time on. The store drops what it holds."""
        if "trades" not in self.cfg.channels:
            return
        for symbol in self.symbols:
            got = last.get((self.venue, symbol))
            if got is None:
                continue
            trade_id, ts = got
            if trade_id.isdecimal() and self.feed.trades_path(symbol, 0, 1) is not None:
                self.feed.last_trade_id[symbol] = int(trade_id)
            elif ts:
                self.last_trade_ns[symbol] = ts
                self._connected_before = True

    def stop(self) -> None:
        for c in self.connections:
            c.stop()


class Collector:
    """All feeds of a config, the store, the raw capture and the periodic jobs.

    ``shard``: this is one process of a sharded collector (analyzer/cluster): its store tags
    its segments with that name, and at start each feed resumes its trades from the newest
    stored (``FeedRunner.resume_trades``). ``analytics`` False: no live analytics here (a
    shard's run in the analytics process, from the state it publishes)."""

    def __init__(self, cfg: Config, *, shard: str | None = None,
                 analytics: bool = True) -> None:
        self.cfg = cfg
        self.shard = shard
        data_dir = Path(cfg.store.data_dir)
        self.store = Store(
            data_dir, Path(cfg.store.database),
            flush_rows=cfg.store.flush_rows, flush_seconds=cfg.store.flush_seconds,
            shard=shard, venues=[f.venue for f in cfg.feeds] if shard else None,
        )
        self.captures: dict[str, RawCapture] = {}
        self.runners: list[FeedRunner] = []
        for feed in cfg.feeds:
            capture = None
            if cfg.store.raw_capture:
                capture = self.captures.get(feed.venue) or RawCapture(
                    data_dir / "raw", feed.venue, shed_when_behind=True)
                self.captures[feed.venue] = capture
            self.runners.append(
                FeedRunner(feed, self.store, capture)
            )
        self.analytics = LiveAnalytics(cfg, self.runners, self.store) if analytics else None
        self.started_ns = time.time_ns()
        self.tasks: list[asyncio.Task] = []

    async def start(self, timeout: float = 60.0) -> None:
        """Open the store, read every venue's instruments, start the feeds. Raises one-line
        CollectorError naming each venue that failed and why, or that was still starting after
        ``timeout`` seconds and the last failure it saw."""
        self.store.open()
        loads = {asyncio.create_task(r.load_instruments(), name=f"{r.venue}-listing"): r
                 for r in self.runners}
        try:
            _, pending = await asyncio.wait(loads, timeout=timeout)
        finally:  # the timeout, or start() itself cancelled
            for t in loads:
                t.cancel()
            await asyncio.gather(*loads, return_exceptions=True)
        problems = []
        for t, r in loads.items():
            if t in pending or t.cancelled():
                problems.append(f"{r.venue}: "
                                f"{r.rest.last_failure or f'no answer from {r.rest.base_url} yet'}")
            elif (exc := t.exception()) is not None:
                if not isinstance(exc, CollectorError):
                    raise exc
                problems.append(str(exc))
        if pending:
            raise CollectorError(f"stopped after {timeout:g} s while still starting: "
                                 + "; ".join(problems))
        if problems:
            raise CollectorError("; ".join(problems))
        for r in self.runners:
            if self.shard is not None:
                r.resume_trades(self.store.last_trades)
            r.start(self.tasks)
        self.tasks.append(asyncio.create_task(self._housekeeping(), name="housekeeping"))

    async def run(self, duration: float | None = None) -> None:
        """Start, then collect until cancelled or for ``duration`` seconds from this call,
        start-up included. A start-up still going when ``duration`` ends raises CollectorError
        ("stopped after 15 s while still starting: <venue>: <cause>"), not a quiet return:
        nothing was collected, and a scripted run must not pass for a good one."""
        t0 = time.monotonic()
        try:
            if duration is None:
                await self.start()
                await asyncio.gather(*self.tasks)
            else:
                await self.start(min(duration, 60.0))
                await asyncio.sleep(max(0.0, t0 + duration - time.monotonic()))
        finally:
            await self.stop()

    async def stop(self) -> None:
        for r in self.runners:
            r.stop()
        for t in self.tasks:
            t.cancel()
        for t in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self.tasks.clear()
        for c in self.captures.values():
            c.close()
        if self.analytics is not None:  # open opportunities: "collector stopped"
            self.analytics.close(time.time_ns())
        self.store.close()

    async def _housekeeping(self) -> None:
        interval = self.cfg.analytics.interval_seconds
        next_tick = time.monotonic() + interval
        while True:
            await asyncio.sleep(0.1)
            now = time.time_ns()
            if time.monotonic() >= next_tick:
                next_tick = max(next_tick + interval, time.monotonic())  # no catch-up bursts
                await self.tick(now)
            self.store.maybe_flush(now)

    async def tick(self, now: int) -> None:
        """Every ``[analytics] interval_seconds`` (a shard publishes its state instead)."""
        if self.analytics is not None:
            await self.analytics.tick(now)
