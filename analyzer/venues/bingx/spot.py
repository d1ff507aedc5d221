"""BingX spot market data (``bingx_spot``): the swap feed's protocol where it is the same,
spot's own socket, frame layout, heartbeat, trades and REST where it is not.

Docs: https://bingx-api.github.io/docs/#/en-us/spot/socket/ (gzip, heartbeat, subscribe)
      https://bingx-api.github.io/docs/#/en-us/spot/socket/market.html (trade, bookTicker,
      incrDepth: "incremental + full depth, 1000 levels, every 500 ms")
      https://bingx-api.github.io/docs/#/en-us/spot/market-api.html (symbols, trades)
Users: ccxt ``ts/src/pro/bingx.ts`` (spot frames, ping, acks), JKorf/BingX.Net
``BingXSocketClientSpotApi.cs`` and ``BingXSpotSymbolOrderBook.cs`` (spot incrDepth, its ids
treated as consecutive), ``UnitTests/Subscriptions/Spot/*.txt`` and ``Endpoints/Spot/*.txt``.
No real BingX spot frame has been recorded anywhere we know of: the layouts below are those
of the docs' and these clients' samples; the tests use them and the local exchange.

Same as swap (``decode.BingxFeed``): gzip on every frame (``inflate``), ``<symbol>@<channel>``
streams (``BTC-USDT``), one ``{"id","reqType","dataType"}`` request per topic (JKorf sends
``reqType: sub`` on spot too) whose ``id`` is the stream, error answers (a refused stream's data
is an UnknownStream), the book streams subscribed last, the ``ws`` snapshot source.

Different on spot:
- the socket: ``wss://open-api-ws.bingx.com/market`` (``ws_endpoint``).
- the heartbeat: the server sends ``{"ping":"<id>","time":"<text>"}`` (about every 5 s, per
  the docs) and wants ``{"pong":"<id>","time":"<text>"}`` back (``reply``; ccxt answers so);
  a bare ``Ping`` (the swap form) is still answered ``Pong``.
- acks: ``{"id":..,"code":0,"msg":"SUCCESS","timestamp":..}`` (no ``data``).
- the layout: ``{"code":0,"data":{...},"dataType":"<stream>","success":true}``: ``data``
  comes before ``dataType``, so the fast path finds the stream from the frame's end
  (``rfind``); any other layout goes through the slow path's envelope.
- channels: ``depth`` = ``@incrDepth``, ``trades`` = ``@trade``, ``bookTicker`` =
  ``@bookTicker`` (Quotes, id -1: no id in the book's space); no mark, funding, index or open
  interest (spot has none).
- trades: one trade a frame with the venue's id ``t`` (digits as text; an integer over REST,
  ``/openApi/spot/v1/market/trades``): the id is the trade's id, read as an integer and written
  back as its decimal text, so that the stream and REST name a trade alike and the store keeps
  it once (no content key as on swap). The samples' ids (33,685,717 in 2022-04, 57,903,921 in
  2023-07 on the socket, 76,909,154 in 2023-12 over REST) grow as one counter: one id space.
  Consecutive ids per symbol are not documented, so no id-gap backfill (``last_trade_id``
  stays empty); a reconnect reads the recent trades (at most 100 a page: ``TRADES_LIMIT``).

Books. ``@incrDepth``: ``action: all`` (the whole book, up to 1,000 levels a side) then
``action: update`` frames of changed levels (absolute sizes, 0 deletes), each with a
``lastUpdateId``; the time is the data's ``time`` or ``timestamp``, else the envelope's
``timestamp``. The spot docs say nothing of how the ids step; the swap docs' rule is "the
previous plus one, reconnect otherwise", and JKorf treats spot's ids as consecutive. The skips
probed on swap were never probed on spot. So spot uses the swap's rule as it is, in the same
``BingxRules.follows`` (one place): +1 follows; any other forward step is a gap and a
resubscription of that stream (``cases["id_skip"]`` / ``["id_jump"]``), an id not above the
last is stale (``cases["id_back"]`` below it); ``max_id_skip`` (default 1) is the same option.
If BingX spot pushes no update ids at all on some symbol (a partial-depth-like push), a frame
without ``lastUpdateId`` is a DecodeError, never a book.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from analyzer.events import BookChange, Instrument, Trade
from analyzer.venues.base import DecodeError, Route
from analyzer.venues.bingx.decode import PING, PONG, BingxFeed
from analyzer.venues.bingx.rest import _check
from analyzer.venues.bingx.schemas import (
    BOOK_TICKER_DECODER,
    SPOT_DEPTH_DECODER,
    SPOT_PING_DECODER,
    SPOT_SYMBOLS_DECODER,
    SPOT_TRADE_DECODER,
    SPOT_TRADES_DECODER,
    SpotDepthFrame,
    SpotTradeFrame,
)
from analyzer.venues.bingx.spec import SPOT_WS_PATH
from analyzer.venues.bounds import MS

SPOT_DATA_PREFIX = b'{"code":0,"data":'
DATA_TYPE = b'"dataType":"'
PING_PREFIX = b'{"ping":'
SPOT_CHANNELS = {"depth": "incrDepth", "trades": "trade", "bookTicker": "bookTicker"}
SYMBOLS_PATH = "/openApi/spot/v1/common/symbols"
TRADES_PATH = "/openApi/spot/v1/market/trades"
TRADES_LIMIT = 100  # "default 100, maximum 100"
ONLINE = 1  # symbols ``status``


class BingxSpotFeed(BingxFeed):
    """Streams, subscriptions, decoding and REST of the BingX spot market (module doc)."""

    # -- streams -------------------------------------------------------------------------------

    def _streams_for(self, symbol: str) -> list[tuple[str, str, Any, Callable[..., None]]]:
        handlers: dict[str, tuple[Any, Callable[..., None]]] = {
            "depth": (SPOT_DEPTH_DECODER, self._on_spot_depth),
            "trades": (SPOT_TRADE_DECODER, self._on_spot_trade),
            "bookTicker": (BOOK_TICKER_DECODER, self._on_book_ticker),
        }
        return [(f"{symbol}@{SPOT_CHANNELS[ch]}", ch, *handlers[ch])
                for ch in SPOT_CHANNELS if ch in self.channels]

    def add_symbol(self, symbol: str) -> list[str]:
        if symbol in self.symbols:
            return []
        self.symbols.append(symbol)
        out = []
        for stream, channel, decoder, handler in self._streams_for(symbol):
            self.routes[stream.encode()] = Route(stream, channel, symbol, decoder, handler)
            out.append(stream)
        return out

    def ws_endpoint(self, ws_url: str) -> str:
        return ws_url.rstrip("/") + SPOT_WS_PATH

    # -- frames --------------------------------------------------------------------------------

    def control(self, frame: bytes) -> Any:
        """``ping`` (the JSON ping, or a bare ``Ping``), ``ack`` (code 0 to a request of
        ours, without data); None for data and errors."""
        if frame.startswith(SPOT_DATA_PREFIX):
            return None
        if frame.startswith(PING_PREFIX) or frame == PING:
            return "ping"
        head = frame[:120]
        if b'"id":' in head and b'"code":0,' in head and b'"data":{' not in frame \
                and b'"data":[' not in frame:
            return "ack"
        return None

    def reply(self, frame: bytes) -> bytes:
        if frame == PING:
            return PONG
        try:
            ping = SPOT_PING_DECODER.decode(frame)
        except (msgspec.DecodeError, ValueError):
            return PONG
        return msgspec.json.encode({"pong": ping.ping, "time": ping.time})

    def decode(self, frame: bytes, ts_local: int) -> Route | None:
        if frame.startswith(SPOT_DATA_PREFIX):
            i = frame.rfind(DATA_TYPE)
            if i > 0:
                start = i + len(DATA_TYPE)
                route = self.routes.get(frame[start : frame.find(b'"', start)])
                if route is not None and not self.refused:  # (``_dispatch``, inlined)
                    try:
                        msg = route.decoder.decode(frame)
                    except (msgspec.DecodeError, ValueError) as exc:
                        raise DecodeError(f"{route.stream}: {exc}", route.channel) from None
                    route.handler(msg, route, ts_local)
                    route.last_ns = ts_local
                    route.frames += 1
                    return route
        return self._decode_slow(frame, ts_local)

    def _decode_slow(self, frame: bytes, ts_local: int) -> Route | None:
        if frame.startswith(PING_PREFIX):
            return None
        return super()._decode_slow(frame, ts_local)

    def _on_spot_depth(self, msg: SpotDepthFrame, route: Route, ts_local: int) -> None:
        d = msg.data
        if d.action == "all":
            snapshot = True
        elif d.action == "update":
            snapshot = False
        else:
            raise DecodeError(f"{route.stream}: action {d.action[:20]!r}", "depth")
        ms = d.time or d.timestamp or msg.timestamp
        self.sink.on_book(BookChange(
            self.venue, route.symbol, ms * MS, ts_local, snapshot, d.bids, d.asks,
            d.lastUpdateId, d.lastUpdateId))

    def _on_spot_trade(self, msg: SpotTradeFrame, route: Route, ts_local: int) -> None:
        t = msg.data
        self.last_price[route.symbol] = t.p
        self.sink.on_trade(Trade(self.venue, route.symbol, t.T * MS, ts_local, str(t.t), t.p,
                                 t.q, "sell" if t.m else "buy"))

    # -- REST ----------------------------------------------------------------------------------

    def instrument_paths(self) -> list[str]:
        return [SYMBOLS_PATH]

    def decode_instruments(self, bodies: list[bytes], ts_local: int) -> dict[str, Instrument]:
        """The online (status 1) spot pairs, by symbol: base and quote from ``BASE-QUOTE``,
        tick and lot from ``tickSize`` / ``stepSize``."""
        out: dict[str, Instrument] = {}
        for body in bodies:
            try:
                listing = SPOT_SYMBOLS_DECODER.decode(body)
            except (msgspec.DecodeError, ValueError) as exc:
                raise DecodeError(f"symbols: {exc}") from None
            _check(listing.code, listing.msg, "symbols")
            for s in listing.data.symbols if listing.data else []:
                base, dash, quote = s.symbol.partition("-")
                if s.status != ONLINE or not dash:
                    continue
                out[s.symbol] = Instrument(self.venue, s.symbol, "bingx", "spot", base, quote,
                                           False, 1.0, s.tickSize, s.stepSize, None, ts_local)
        return out

    def recent_trades_path(self, symbol: str) -> str | None:
        return f"{TRADES_PATH}?symbol={symbol}&limit={TRADES_LIMIT}"

    def decode_trades(self, body: bytes, symbol: str, ts_local: int) -> list[Trade]:
        """A recent-trades page, by the venue's ids, oldest first."""
        try:
            page = SPOT_TRADES_DECODER.decode(body)
        except (msgspec.DecodeError, ValueError) as exc:
            raise DecodeError(f"trades {symbol}: {exc}", "trades") from None
        _check(page.code, page.msg, f"trades {symbol}", "trades")
        rows = sorted(page.data or [], key=lambda t: (t.time, t.id))
        return [Trade(self.venue, symbol, t.time * MS, ts_local, str(t.id), t.price, t.qty,
                      "sell" if t.buyerMaker else "buy")
                for t in rows]

    def open_interest_path(self, symbol: str) -> str | None:
        return None  # spot: none

    def funding_info_path(self) -> str | None:
        return None

    def premium_path(self, symbol: str) -> str | None:
        return None


__all__ = ["SPOT_CHANNELS", "BingxSpotFeed"]
