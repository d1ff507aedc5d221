"""Binance spot, USDⓈ-M and COIN-M market data: streams, decoding, book sequencing rules.

Docs: https://developers.binance.com/docs/binance-spot-api-docs/web-socket-streams
      https://developers.binance.com/docs/derivatives/usds-margined-futures/websocket-market-streams
      https://developers.binance.com/docs/derivatives/coin-margined-futures/websocket-market-streams

Combined streams arrive as ``{"stream": "<name>", "data": {...}}``. The stream name is read
with a cheap byte slice and picks a typed decoder built once per stream kind, so each frame is
parsed by msgspec exactly once (schemas in ``schemas.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Literal

import msgspec

from analyzer.events import (
    BookChange,
    DerivativeTicker,
    Instrument,
    Liquidation,
    Quote,
    Trade,
)
from analyzer.venues.base import DecodeError, FeedBase, OptionError, Route, Sink, UnknownStream
from analyzer.venues.binance.rest import BinanceRest
from analyzer.venues.binance.schemas import (
    DATA_DECODERS,
    DECODERS,
    STREAM_PREFIX,
    AggTradeMsg,
    BookTickerMsg,
    DepthUpdate,
    ForceOrderMsg,
    IndexPriceMsg,
    MarkPriceMsg,
    TradeMsg,
    envelope_decoder,
)
from analyzer.venues.binance.spec import BinanceMarket, route_of
from analyzer.venues.bounds import MS


class FuturesRules:
    """USDⓈ-M and COIN-M: drop ``u < L``; first applied ``U <= L <= u``; then ``pu == prev u``."""

    checksum = None

    def is_stale(self, snapshot_id: int, ev: BookChange) -> bool:
        return ev.last_id < snapshot_id

    def bridges(self, snapshot_id: int, ev: BookChange) -> bool:
        return ev.first_id <= snapshot_id <= ev.last_id

    def follows(self, last_id: int, ev: BookChange) -> bool:
        return ev.prev_id == last_id


class SpotRules:
    """Spot: drop ``u <= L``; first applied ``U <= L + 1 <= u``; then ``U == prev u + 1``."""

    checksum = None

    def is_stale(self, snapshot_id: int, ev: BookChange) -> bool:
        return ev.last_id <= snapshot_id

    def bridges(self, snapshot_id: int, ev: BookChange) -> bool:
        return ev.first_id <= snapshot_id + 1 <= ev.last_id

    def follows(self, last_id: int, ev: BookChange) -> bool:
        return ev.first_id == last_id + 1



class Options(msgspec.Struct, forbid_unknown_fields=True):
    """A Binance feed's own config keys (``[feeds.options]``)."""

    depth_speed: Literal["0ms", "100ms", "250ms", "500ms", "1000ms"] = "100ms"
    trade_stream: Literal["trade", "aggTrade"] = "trade"


class BinanceFeed(BinanceRest, FeedBase):
    """Streams, subscriptions and decoding of one Binance market (REST: ``BinanceRest``)."""

    Options = Options
    market: BinanceMarket
    snapshot_levels = 1000  # depth?limit=: levels a side of a REST snapshot holds at most
    # Binance sends no control frame worth separating from data (its pings are websocket
    # pings), and only text: the connection skips both hooks (the fast path).
    control = None
    inflate = None

    @classmethod
    def check_options(cls, market: BinanceMarket, options: dict[str, Any] | Options) -> Options:
        opts = options if isinstance(options, Options) else msgspec.convert(options, Options)
        if market.is_spot and opts.depth_speed not in ("100ms", "1000ms"):
            raise OptionError("depth_speed",
                              f"spot offers 100ms or 1000ms, not {opts.depth_speed}")
        return opts

    def __init__(
        self,
        market: BinanceMarket,
        symbols: Iterable[str],
        channels: Iterable[str],
        sink: Sink,
        *,
        options: dict[str, Any] | Options | None = None,
        funding_hours: dict[str, float] | None = None,
    ) -> None:
        options = self.check_options(market, options or {})
        super().__init__(market, channels, sink, funding_hours)
        self.symbols = [s.upper() for s in symbols]
        self.depth_speed = options.depth_speed
        self.trade_stream = options.trade_stream
        self.rules = SpotRules() if market.is_spot else FuturesRules()
        # Binance trade and aggregate-trade ids rise by exactly 1 per symbol (last_trade_id): a
        # jump is a gap to backfill over REST, an id at or below the last is a duplicate.
        for symbol in self.symbols:
            self._route(symbol)

    def _route(self, symbol: str) -> list[str]:
        streams = []
        for stream, channel, kind, handler in self._streams_for(symbol):
            key = stream.encode()
            if key not in self.routes:  # COIN-M's index stream is shared by a pair's contracts
                self.routes[key] = Route(
                    stream, channel, symbol, DECODERS[kind], handler, extra=DATA_DECODERS[kind]
                )
                streams.append(stream)
        return streams

    def add_symbol(self, symbol: str) -> list[str]:
        """Follow one more symbol (a newly listed quarterly); returns its new streams."""
        symbol = symbol.upper()
        if symbol in self.symbols:
            return []
        self.symbols.append(symbol)
        return self._route(symbol)

    def _streams_for(self, symbol: str) -> list[tuple[str, str, str, Callable[..., None]]]:
        s = symbol.lower()
        out: list[tuple[str, str, str, Callable[..., None]]] = []
        if "depth" in self.channels:
            out.append((f"{s}@depth@{self.depth_speed}", "depth", "depth", self._on_depth))
        if "trades" in self.channels:
            if self.trade_stream == "aggTrade":
                out.append((f"{s}@aggTrade", "trades", "aggTrade", self._on_agg_trade))
            else:
                out.append((f"{s}@trade", "trades", "trade", self._on_trade))
        if "bookTicker" in self.channels:
            out.append((f"{s}@bookTicker", "bookTicker", "bookTicker", self._on_book_ticker))
        if not self.market.is_spot:
            if "markPrice" in self.channels:
                out.append((f"{s}@markPrice@1s", "markPrice", "markPrice", self._on_mark))
                if self.market.kind == "coinm":  # COIN-M's mark frame has no index
                    pair = s.split("_")[0]
                    out.append((f"{pair}@indexPrice@1s", "markPrice", "indexPrice", self._on_index))
            if "liquidations" in self.channels:
                out.append((f"{s}@forceOrder", "liquidations", "forceOrder", self._on_force))
        return out

    @property
    def streams(self) -> list[str]:
        return list(dict.fromkeys(r.stream for r in self.routes.values()))

    def subscribe_messages(self, streams: list[str], first_id: int = 1) -> list[bytes]:
        """SUBSCRIBE requests of at most 200 streams each."""
        return [
            msgspec.json.encode(
                {"method": "SUBSCRIBE", "params": streams[i : i + 200], "id": first_id + n}
            )
            for n, i in enumerate(range(0, len(streams), 200))
        ]

    def unsubscribe_messages(self, streams: list[str]) -> list[bytes]:
        return [
            msgspec.json.encode({"method": "UNSUBSCRIBE", "params": streams[i : i + 200],
                                 "id": 100_000 + n})
            for n, i in enumerate(range(0, len(streams), 200))
        ]

    def book_stream(self, symbol: str) -> str:
        return f"{symbol.lower()}@depth@{self.depth_speed}"

    def set_instruments(self, instruments: dict[str, Instrument]) -> None:
        """Binance sizes are already in the unit system (base units; COIN-M contracts)."""

    def ws_endpoint(self, ws_url: str) -> str:
        return ws_url.rstrip("/") + "/stream"

    def ws_routes(self, ws_url: str, streams: list[str]) -> dict[str, list[str]]:
        """USDⓈ-M (``BinanceMarket.routes``): books and best bid/ask on ``/public/stream``, the
        other streams on ``/market/stream``; the other markets: ``/stream``."""
        if not self.market.routes:
            return super().ws_routes(ws_url, streams)
        base = ws_url.rstrip("/")
        out: dict[str, list[str]] = {}
        for stream in streams:
            out.setdefault(f"{base}/{route_of(stream)}/stream", []).append(stream)
        return out

    # -- hot path --

    def decode(self, frame: bytes, ts_local: int) -> Route | None:
        """Decode one frame and hand its events to the sink. Returns the route (for stats), or
        None for a control reply. Raises DecodeError on a bad frame."""
        if frame.startswith(STREAM_PREFIX):
            end = frame.find(b'"', 11)
            route = self.routes.get(frame[11:end])
            if route is None:
                raise UnknownStream(f"unsubscribed stream {frame[11:end][:80]!r}")
            try:
                msg = route.decoder.decode(frame)
            except (msgspec.DecodeError, ValueError) as exc:
                raise DecodeError(f"{route.stream}: {exc}", route.channel) from None
            route.last_ns = ts_local
            route.frames += 1
            route.handler(msg.data, route.symbol, ts_local)
            return route
        return self._decode_slow(frame, ts_local)

    def _decode_slow(self, frame: bytes, ts_local: int) -> Route | None:
        """Frames that do not start with the compact envelope: replies, errors, or JSON laid
        out differently (whitespace, key order)."""
        try:
            env = envelope_decoder.decode(frame)
        except (msgspec.DecodeError, ValueError) as exc:
            raise DecodeError(f"not a Binance frame: {exc}") from None
        if env.stream is None or not env.data:
            if env.code is not None and env.id is None:
                raise DecodeError(f"venue error {env.code}: {env.msg}")
            return None  # {"result": null, "id": n} and friends
        route = self.routes.get(env.stream.encode())
        if route is None:
            raise UnknownStream(f"unsubscribed stream {env.stream[:80]!r}")
        try:
            data = route.extra.decode(env.data)  # the "data" member alone
        except (msgspec.DecodeError, ValueError) as exc:
            raise DecodeError(f"{route.stream}: {exc}", route.channel) from None
        route.last_ns = ts_local
        route.frames += 1
        route.handler(data, route.symbol, ts_local)
        return route

    def _on_depth(self, d: DepthUpdate, symbol: str, ts_local: int) -> None:
        self.sink.on_book(
            BookChange(self.venue, symbol, d.E * MS, ts_local, False, d.b, d.a, d.U, d.u, d.pu)
        )

    def _on_book_ticker(self, d: BookTickerMsg, symbol: str, ts_local: int) -> None:
        self.sink.on_quote(
            Quote(self.venue, symbol, d.E * MS, ts_local, d.b, d.B, d.a, d.A, d.u)
        )

    def _trade_is_new(self, symbol: str, trade_id: int) -> bool:
        last = self.last_trade_id.get(symbol)
        if last is not None:
            if trade_id <= last:
                self.sink.on_duplicate()
                return False
            if trade_id != last + 1:
                self.sink.on_trade_gap(symbol, last + 1, trade_id - 1)
        self.last_trade_id[symbol] = trade_id
        return True

    def _on_trade(self, d: TradeMsg, symbol: str, ts_local: int) -> None:
        if not self._trade_is_new(symbol, d.t):
            return
        kind = "trade" if d.X == "MARKET" else d.X.lower()
        side = "sell" if d.m else "buy"
        self.sink.on_trade(
            Trade(self.venue, symbol, d.T * MS, ts_local, str(d.t), d.p, d.q, side, kind)
        )

    def _on_agg_trade(self, d: AggTradeMsg, symbol: str, ts_local: int) -> None:
        if not self._trade_is_new(symbol, d.a):
            return
        side = "sell" if d.m else "buy"
        self.sink.on_trade(
            Trade(self.venue, symbol, d.T * MS, ts_local, str(d.a), d.p, d.q, side, "aggTrade")
        )

    def _on_mark(self, d: MarkPriceMsg, symbol: str, ts_local: int) -> None:
        self.sink.on_ticker(
            DerivativeTicker(
                self.venue,
                symbol,
                d.E * MS,
                ts_local,
                mark_price=d.p,
                index_price=d.i,
                funding_rate=d.r if isinstance(d.r, float) else None,  # "": no funding
                next_funding_time=d.T * MS if d.T else None,
                funding_interval_hours=self.funding_hours.get(symbol, 8.0) if d.T else None,
            )
        )

    def _on_index(self, d: IndexPriceMsg, symbol: str, ts_local: int) -> None:
        # COIN-M publishes the index per pair (BTCUSD), shared by the perpetual and quarterlies.
        self.sink.on_ticker(DerivativeTicker(self.venue, d.i, d.E * MS, ts_local, index_price=d.p))

    def _on_force(self, d: ForceOrderMsg, symbol: str, ts_local: int) -> None:
        o = d.o
        self.sink.on_liquidation(
            Liquidation(self.venue, symbol, o.T * MS, ts_local, o.S.lower(), o.ap or o.p, o.q)
        )
