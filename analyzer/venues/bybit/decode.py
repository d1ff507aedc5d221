"""Bybit v5 public market data of one category: topics, decoding, the book sequencing rule.

Docs: https://bybit-exchange.github.io/docs/v5/ws/connect
      https://bybit-exchange.github.io/docs/v5/websocket/public/orderbook

Frames arrive as ``{"topic": "<topic>", "type": "snapshot"|"delta", "ts": <ms>, "data": ...}``.
The topic is read with a cheap byte slice when the frame starts with it (every recorded data
frame does) and picks a typed decoder built once per stream kind, so each frame is parsed by
msgspec once; a frame laid out differently is parsed twice (envelope, then the typed decoder).

Channels and topics:

    depth         orderbook.<depth>.<SYM>   BookChange; a snapshot (or ``u == 1``) replaces
    trades        publicTrade.<SYM>         Trade (ids are UUIDs: no gaps or backfill by id;
                                            after a reconnect, REST recent trades)
    bookTicker    orderbook.1.<SYM>         Quote (its ``u`` is not the deep book's: -1)
    markPrice     tickers.<SYM>             DerivativeTicker, when mark/index/funding change
    openInterest  tickers.<SYM>             OpenInterest (single side), when it changes
    liquidations  allLiquidation.<SYM>      Liquidation (the old ``liquidation`` is deprecated)

Books. Bybit's book stream is a window of the top ``depth`` levels: a snapshot on subscribe,
then deltas whose ``u`` rises by exactly one per message of the topic. A ``snapshot`` may come
again at any time (Bybit re-sends the latest book after a problem on its side), ``u == 1`` is a
snapshot after a service restart, a delisting or a tick/lot change (even when typed ``delta``),
and the 1-level book re-sends its snapshot with the same ``u`` every 3 s without a change: all
are snapshots and replace the book. There is no checksum.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Literal

import msgspec
from msgspec import UNSET

from analyzer.events import (
    BookChange,
    DerivativeTicker,
    Instrument,
    Liquidation,
    OpenInterest,
    Quote,
    Trade,
)
from analyzer.venues.base import (
    CHANNELS,
    Control,
    DecodeError,
    FeedBase,
    Market,
    OptionError,
    Route,
    Sink,
    UnknownStream,
    VenueError,
)
from analyzer.venues.bounds import MS
from analyzer.venues.bybit import rest
from analyzer.venues.bybit.schemas import (
    DECODERS,
    TOPIC_PREFIX,
    BookFrame,
    LiquidationData,
    LiquidationFrame,
    TickerFrame,
    TradeFrame,
    envelope_decoder,
    reply_decoder,
)
from analyzer.venues.bybit.spec import ARGS_PER_SUBSCRIBE, WS_PATH

# Book depths per category (docs "Orderbook", changelog): 1, 50, 200 and 1000 levels on spot,
# linear and inverse (1000 since 2025-08-14). 500 was removed for futures on 2025-09-11; it is
# kept for linear and inverse only to replay recordings made before (2024 ones use it).
DEPTHS = {"spot": (1, 50, 200, 1000), "linear": (1, 50, 200, 500, 1000),
          "inverse": (1, 50, 200, 500, 1000)}


class Options(msgspec.Struct, forbid_unknown_fields=True):
    """A Bybit feed's own config keys (``[feeds.options]``)."""

    # The deepest book every category offers; pushed every 200 ms (200 levels: 100 ms).
    depth: Literal[1, 50, 200, 500, 1000] = 1000


class WsBookRules:
    """The snapshot comes on the stream itself: a change at or below the snapshot's ``u`` is
    stale (a frame of the old subscription during a resubscribe), the first to apply is
    ``u + 1``, and each later one follows the last by exactly one."""

    checksum = None

    def is_stale(self, snapshot_id: int, ev: BookChange) -> bool:
        return ev.last_id <= snapshot_id

    def bridges(self, snapshot_id: int, ev: BookChange) -> bool:
        return ev.first_id == snapshot_id + 1

    def follows(self, last_id: int, ev: BookChange) -> bool:
        return ev.first_id == last_id + 1


class _Ticker:
    """The merged ticker of one symbol: the last snapshot with every delta since applied."""

    __slots__ = ("funding", "hours", "index", "mark", "next_funding", "oi", "oi_sent",
                 "oi_value", "single_oi", "single_oi_value")

    def __init__(self) -> None:
        self.mark: float | None = None
        self.index: float | None = None
        self.funding: float | None = None
        self.next_funding: int | None = None  # ms
        self.hours: float | None = None
        self.oi: float | None = None  # both sides
        self.oi_value: float | None = None
        self.single_oi: float | None = None
        self.single_oi_value: float | None = None
        self.oi_sent: float | None = None  # the open interest last emitted


class BybitFeed(FeedBase):
    """Topics, subscriptions, decoding and REST bodies of one Bybit category."""

    Options = Options
    inflate = None  # text frames only

    @classmethod
    def check_options(cls, market: Market, options: dict[str, Any] | Options) -> Options:
        opts = options if isinstance(options, Options) else msgspec.convert(options, Options)
        allowed = DEPTHS.get(market.kind, ())
        if opts.depth not in allowed:
            raise OptionError("depth", f"bybit {market.kind} books have {allowed} levels, "
                                       f"not {opts.depth}")
        return opts

    def __init__(
        self,
        market: Market,
        symbols: Iterable[str],
        channels: Iterable[str],
        sink: Sink,
        *,
        options: dict[str, Any] | Options | None = None,
        funding_hours: dict[str, float] | None = None,
    ) -> None:
        opts = self.check_options(market, options or {})
        super().__init__(market, channels, sink, funding_hours)
        self.category = market.kind
        self.depth = opts.depth
        self.snapshot_levels = opts.depth
        unknown = self.channels - set(CHANNELS)
        if unknown:
            raise ValueError(f"unknown channels {sorted(unknown)}")
        self.instruments: dict[str, Instrument] = {}
        self.rules = WsBookRules()
        self.rest_weights = dict(rest.REST_WEIGHTS)
        self.symbols: list[str] = []
        self._req_id = 0
        for symbol in symbols:
            self.add_symbol(symbol)

    # -- topics --

    def add_symbol(self, symbol: str) -> list[str]:
        """Follow one more symbol (a new listing); returns its new topics."""
        symbol = symbol.upper()
        if symbol in self.symbols:
            return []
        self.symbols.append(symbol)
        streams = []
        for topic, channel, kind, handler, extra in self._topics_for(symbol):
            self.routes[topic.encode()] = Route(topic, channel, symbol, DECODERS[kind], handler,
                                                extra=extra)
            streams.append(topic)
        return streams

    def _topics_for(self, s: str) -> list[tuple[str, str, str, Callable[..., None], Any]]:
        ch = self.channels
        out: list[tuple[str, str, str, Callable[..., None], Any]] = []
        book = "depth" in ch
        quote = "bookTicker" in ch
        if book and quote and self.depth == 1:  # one topic serves both
            out.append((f"orderbook.1.{s}", "depth", "book", self._on_book_and_quote, [None] * 4))
        else:
            if book:
                out.append((f"orderbook.{self.depth}.{s}", "depth", "book", self._on_book, None))
            if quote:
                out.append((f"orderbook.1.{s}", "bookTicker", "book", self._on_quote, [None] * 4))
        if "trades" in ch:
            out.append((f"publicTrade.{s}", "trades", "trade", self._on_trades, None))
        if not self.market.is_spot:
            if "markPrice" in ch or "openInterest" in ch:
                channel = "markPrice" if "markPrice" in ch else "openInterest"
                out.append((f"tickers.{s}", channel, "ticker", self._on_ticker, _Ticker()))
            if "liquidations" in ch:
                out.append((f"allLiquidation.{s}", "liquidations", "liquidation",
                            self._on_liquidation, None))
        return out

    @property
    def streams(self) -> list[str]:
        return [r.stream for r in self.routes.values()]

    def book_stream(self, symbol: str) -> str:
        return f"orderbook.{self.depth}.{symbol.upper()}"

    def set_instruments(self, instruments: dict[str, Instrument]) -> None:
        """Bybit sizes are already in the unit system (base coin; inverse: 1-USD contracts);
        contract sizes value inverse open interest."""
        self.instruments.update(instruments)

    # -- requests --

    def ws_endpoint(self, ws_url: str) -> str:
        return ws_url.rstrip("/") + WS_PATH + self.category

    def _requests(self, op: str, streams: list[str]) -> list[bytes]:
        out = []
        for i in range(0, len(streams), ARGS_PER_SUBSCRIBE):
            self._req_id += 1
            out.append(msgspec.json.encode(
                {"op": op, "args": streams[i : i + ARGS_PER_SUBSCRIBE], "req_id": str(self._req_id)}
            ))
        return out

    def subscribe_messages(self, streams: list[str]) -> list[bytes]:
        """Subscribe requests of at most 10 topics each."""
        return self._requests("subscribe", streams)

    def unsubscribe_messages(self, streams: list[str]) -> list[bytes]:
        return self._requests("unsubscribe", streams)

    def rest_headers(self, api_key: str | None) -> dict[str, str] | None:
        return None  # public market data needs no key

    # -- hot path --

    def control(self, frame: bytes) -> Control | None:
        """Pongs and subscription acks; a refused request is left to ``decode`` (which raises
        VenueError); data (every frame that starts with its topic) is None at once."""
        if frame.startswith(TOPIC_PREFIX) or b'"op"' not in frame:
            return None
        try:
            r = reply_decoder.decode(frame)
        except (msgspec.DecodeError, ValueError):
            return None  # decode will say what is wrong with it
        if r.success is False:
            return None
        if r.op == "pong" or (r.op == "ping" and r.ret_msg == "pong"):
            return "pong"
        if r.op in ("subscribe", "unsubscribe"):
            return "ack"
        return "ignore" if r.op else None

    def decode(self, frame: bytes, ts_local: int) -> Route | None:
        """Decode one frame and hand its events to the sink. Returns the route (for stats), or
        None for a reply. Raises DecodeError on a bad frame, UnknownStream for a topic nobody
        subscribed to, VenueError for a refused request."""
        if frame.startswith(TOPIC_PREFIX):
            end = frame.find(b'"', 10)
            route = self.routes.get(frame[10:end])
            if route is None:
                raise UnknownStream(f"unsubscribed topic {frame[10:end][:80]!r}")
        else:
            route = self._slow_route(frame)
            if route is None:
                return None
        try:
            msg = route.decoder.decode(frame)
        except (msgspec.DecodeError, ValueError) as exc:
            raise DecodeError(f"{route.stream}: {exc}", route.channel) from None
        route.last_ns = ts_local
        route.frames += 1
        route.handler(msg, route, ts_local)
        return route

    def _slow_route(self, frame: bytes) -> Route | None:
        """The route of a frame that does not start with its topic, or None for a reply."""
        try:
            env = envelope_decoder.decode(frame)
        except (msgspec.DecodeError, ValueError) as exc:
            raise DecodeError(f"not a Bybit frame: {exc}") from None
        if env.topic is None:
            if env.op is None:
                raise DecodeError(f"not a Bybit frame: {frame[:80]!r}")
            if env.success is False:
                raise VenueError(f"bybit refused {env.op}: {env.ret_msg}")
            return None
        route = self.routes.get(env.topic.encode())
        if route is None:
            raise UnknownStream(f"unsubscribed topic {env.topic[:80]!r}")
        return route

    def _on_book(self, f: BookFrame, route: Route, ts_local: int) -> None:
        d = f.data
        snapshot = f.type == "snapshot" or d.u == 1
        self.sink.on_book(BookChange(self.venue, route.symbol, f.ts * MS, ts_local, snapshot,
                                     d.b, d.a, d.u, d.u))

    def _on_quote(self, f: BookFrame, route: Route, ts_local: int) -> None:
        """The 1-level book as a Quote. It sends snapshots only today; the deltas it sent
        before (recorded in 2023) are merged: a level of size > 0 is the side's new best, a
        size 0 removes it if it is the best."""
        top = route.extra  # [bid price, bid size, ask price, ask size]
        d = f.data
        if f.type == "snapshot" or d.u == 1:
            b, a = d.b, d.a
            if b and a:  # nearly every frame: plain unpacking, no slices or temporaries
                bp, bs = b[0]
                ap, az = a[0]
                top[0] = bp
                top[1] = bs
                top[2] = ap
                top[3] = az
                self.sink.on_quote(Quote(self.venue, route.symbol, f.ts * MS, ts_local,
                                         bp, bs, ap, az, -1))
                return
            top[0:2] = d.b[0] if d.b else (None, None)
            top[2:4] = d.a[0] if d.a else (None, None)
        else:
            for side, levels in ((0, d.b), (2, d.a)):
                for p, s in levels:
                    if s:
                        top[side : side + 2] = p, s
                    elif p == top[side]:
                        top[side : side + 2] = None, None
        if top[0] is not None and top[2] is not None:
            self.sink.on_quote(Quote(self.venue, route.symbol, f.ts * MS, ts_local,
                                     top[0], top[1], top[2], top[3], -1))

    def _on_book_and_quote(self, f: BookFrame, route: Route, ts_local: int) -> None:
        self._on_book(f, route, ts_local)
        self._on_quote(f, route, ts_local)

    def _on_trades(self, f: TradeFrame, route: Route, ts_local: int) -> None:
        venue, symbol, on_trade = self.venue, route.symbol, self.sink.on_trade
        for t in f.data:
            on_trade(Trade(venue, symbol, t.T * MS, ts_local, t.i, t.p, t.v,
                           "buy" if t.S == "Buy" else "sell", "block_trade" if t.BT else "trade"))

    def _on_liquidation(self, f: LiquidationFrame, route: Route, ts_local: int) -> None:
        items = [f.data] if isinstance(f.data, LiquidationData) else f.data
        for liq in items:
            # S is the liquidated position's side: a long ("Buy") is closed by a sell order
            side = "sell" if liq.S == "Buy" else "buy"
            self.sink.on_liquidation(Liquidation(self.venue, route.symbol, liq.T * MS, ts_local,
                                                 side, liq.p, liq.v))

    def _on_ticker(self, f: TickerFrame, route: Route, ts_local: int) -> None:
        st: _Ticker = route.extra
        if f.type == "snapshot":
            oi_sent = st.oi_sent
            st = route.extra = _Ticker()
            st.oi_sent = oi_sent
        d = f.data
        changed = False
        if d.markPrice is not UNSET:
            st.mark, changed = d.markPrice, True
        if d.indexPrice is not UNSET:
            st.index, changed = d.indexPrice, True
        if d.fundingRate is not UNSET:
            st.funding, changed = (d.fundingRate if d.fundingRate != "" else None), True
        if d.nextFundingTime is not UNSET:
            st.next_funding = d.nextFundingTime or None  # "" or 0: none
            changed = True
        if d.fundingIntervalHour is not UNSET:
            st.hours, changed = (d.fundingIntervalHour or None), True
        if d.openInterest is not UNSET:
            st.oi = d.openInterest
        if d.openInterestValue is not UNSET:
            st.oi_value = d.openInterestValue
        if d.singleOpenInterest is not UNSET:
            st.single_oi = d.singleOpenInterest
        if d.singleOpenInterestValue is not UNSET:
            st.single_oi_value = d.singleOpenInterestValue
        symbol, ts = route.symbol, f.ts * MS
        if changed and "markPrice" in self.channels:
            perpetual = st.funding is not None or st.next_funding is not None
            hours = (st.hours or self.funding_hours.get(symbol)) if perpetual else None
            self.sink.on_ticker(DerivativeTicker(
                self.venue, symbol, ts, ts_local, st.mark, st.index, st.funding,
                st.next_funding * MS if st.next_funding else None, hours,
            ))
        if "openInterest" in self.channels:
            self._open_interest(st, symbol, ts, ts_local)

    def _open_interest(self, st: _Ticker, symbol: str, ts: int, ts_local: int) -> None:
        """Open interest is one side's (as every venue counts it): Bybit's ``openInterest`` is
        "the sum of both sides" (docs "Get Open Interest", since 2023-11), its
        ``singleOpenInterest`` (sent since 2026-06) one side. The value is in USD: an inverse
        contract is worth its contract size in USD (Bybit's value is in coin), a linear
        contract's value is in its quote coin (USDT, USDC: taken as USD)."""
        if st.single_oi is not None:
            oi, value = st.single_oi, st.single_oi_value
        elif st.oi is not None:
            oi, value = st.oi / 2, (st.oi_value / 2 if st.oi_value is not None else None)
        else:
            return
        if oi == st.oi_sent:
            return
        st.oi_sent = oi
        if self.category == "inverse":
            inst = self.instruments.get(symbol)
            value = oi * (inst.contract_size if inst is not None else 1.0)
        self.sink.on_open_interest(OpenInterest(self.venue, symbol, ts, ts_local, oi, value))

    # -- REST --

    def instrument_paths(self) -> list[str]:
        return rest.instrument_paths(self.category)

    def decode_instruments(self, bodies: list[bytes], ts_local: int) -> dict[str, Instrument]:
        """The listing; perpetuals' funding intervals go into ``funding_hours`` as well."""
        return rest.decode_instruments(bodies, self.venue, self.category, ts_local,
                                       self.funding_hours)

    def depth_path(self, symbol: str) -> str | None:
        return None  # snapshots come on the websocket

    def decode_snapshot(self, body: bytes, symbol: str, ts_local: int) -> BookChange:
        raise NotImplementedError("bybit book snapshots come on the websocket")

    def trades_path(self, symbol: str, from_id: int, limit: int = 1000) -> str | None:
        return None  # trade ids are UUIDs: no backfill by id

    def recent_trades_path(self, symbol: str) -> str | None:
        return rest.recent_trades_path(self.category, symbol)

    def older_trades_path(self, symbol: str, before_id: str) -> str | None:
        return None  # public trade history is the latest page only

    def decode_trades(self, body: bytes, symbol: str, ts_local: int) -> list[Trade]:
        return rest.decode_trades(body, self.venue, symbol, ts_local)

    def open_interest_path(self, symbol: str) -> str | None:
        return None  # on the tickers stream

    def decode_open_interest(
        self, body: bytes, ts_local: int, instrument: Instrument | None, mark: float | None
    ) -> OpenInterest:
        raise NotImplementedError("bybit open interest comes on the tickers stream")

    def funding_info_path(self) -> str | None:
        return None  # intervals come with the listing (decode_instruments)

    def decode_funding_info(self, body: bytes) -> dict[str, float]:
        """{symbol: hours} from an instruments-info page (should a runner ask for it)."""
        return rest.decode_funding_hours(body, self.category)
