"""cryptofeed as a user runs it, pointed at the local exchange (run by ``bench_peers.py`` in
cryptofeed's own virtual environment; argument: the bench's JSON spec).

Docs: https://github.com/bmoscon/cryptofeed/blob/master/docs/README.md (FeedHandler, callbacks,
      the exchange classes' ``websocket_endpoints`` / ``rest_endpoints``).

What a user stores: every trade and ticker object cryptofeed builds, and the best bid/ask read
from the book (``book.book.bids.index(0)``) in the L2_BOOK callback, into lists (mode
``book``); or callbacks that return at once (mode ``null``; they only note the first frame's
time). Frames are cryptofeed's own count of websocket messages (``conn.received``, less the
acknowledgements before the first data frame) and its own time of the last one
(``conn.last_message``): nothing is added to its receive path.

Overrides (each printed by the bench):
- the endpoints: a subclass of the exchange class with ``websocket_endpoints`` /
  ``rest_endpoints`` at the local exchange (the class attributes cryptofeed reads them from);
- cryptofeed accepts only ``wss://`` addresses (``WSAsyncConn.__init__``) and the local
  exchange speaks plain ``ws://``: a subclass lifts that one check; reading is unchanged;
- per venue, the subscription's parameters listed in ``VENUES`` below.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import cryptofeed.feed
from cryptofeed import FeedHandler
from cryptofeed.connection import RestEndpoint, Routes, WebsocketEndpoint, WSAsyncConn
from cryptofeed.defines import L2_BOOK, TICKER, TRADES
from cryptofeed.exchanges import OKX, BinanceFutures
from meter import Meter, report, spec

CHANNELS = {"depth": L2_BOOK, "trades": TRADES, "bookTicker": TICKER}


class PlainWS(WSAsyncConn):
    """``WSAsyncConn`` without its ``wss://``-only check."""

    def __init__(self, address: str, conn_id: str, authentication: Any = None,
                 subscription: Any = None, **kwargs: Any) -> None:
        super().__init__("wss://" + address.removeprefix("ws://"), conn_id, authentication,
                         subscription, **kwargs)
        self.address = address


def binance_usdm(ws: str, rest: str) -> tuple[type, dict[str, Any], str, list[str]]:
    class Local(BinanceFutures):
        websocket_endpoints: ClassVar = [WebsocketEndpoint(ws, options={"compression": None})]
        rest_endpoints: ClassVar = [
            RestEndpoint(rest, routes=BinanceFutures.rest_endpoints[0].routes)]
        # the recording's diff stream is the 0 ms one (cryptofeed lists 100/250/500 ms)
        valid_depth_intervals = BinanceFutures.valid_depth_intervals | {"0ms"}

    return Local, {"depth_interval": "0ms"}, "BTC-USDT-PERP", [
        f"websocket_endpoints = [{ws}] (was {BinanceFutures.websocket_endpoints[0].address})",
        f"rest_endpoints = [{rest}] (was {BinanceFutures.rest_endpoints[0].address})",
        "valid_depth_intervals += {'0ms'}; depth_interval='0ms' (the recorded diff stream)",
    ]


def okx_spot(ws: str, rest: str) -> tuple[type, dict[str, Any], str, list[str]]:
    public = OKX.websocket_endpoints[0]
    kinds = ("SPOT", "SWAP")  # two listings: cryptofeed's parser expects a list of bodies

    class Local(OKX):
        websocket_endpoints: ClassVar = [WebsocketEndpoint(
            f"{ws}/ws/v5/public", channel_filter=public.channel_filter,
            options={"compression": None})]
        rest_endpoints: ClassVar = [RestEndpoint(rest, routes=Routes(
            [f"/api/v5/public/instruments?instType={k}" for k in kinds]))]

    return Local, {}, "BTC-USDT", [
        f"websocket_endpoints = [{ws}/ws/v5/public] (was {public.address})",
        f"rest_endpoints = [{rest}], instruments of {'/'.join(kinds)} only "
        f"(was {OKX.rest_endpoints[0].address}, SPOT/SWAP/FUTURES/OPTION)",
    ]


VENUES = {"binance_usdm": binance_usdm, "okx_spot": okx_spot}


def main() -> None:
    s = spec()
    cryptofeed.feed.WSAsyncConn = PlainWS
    # FeedHandler's default config (uvloop's event loop among it), its log file aside
    fh = FeedHandler(config={"uvloop": True, "log": {"filename": "/dev/null", "level": "ERROR"}})
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(consume(s, fh))


async def consume(s: dict[str, Any], fh: FeedHandler) -> None:
    cls, kwargs, symbol, overrides = VENUES[s["feed"]](s["ws"], s["rest"])
    overrides.append("WSAsyncConn: the wss://-only address check lifted (plain ws on loopback)")
    overrides.append(f"event loop: {type(asyncio.get_event_loop()).__module__} (the default)")
    meter = Meter()
    trades: list[Any] = []
    tickers: list[Any] = []
    tops: list[tuple[Any, Any, float]] = []
    conns: list[Any] = []
    base = [0]

    def first(ts: float) -> None:
        meter.first()
        meter.t_first = ts  # the receipt time cryptofeed stamped (conn.last_message's clock)
        base[0] = sum(c.received for c in conns) - 1  # acknowledgements before it

    if s["mode"] == "book":
        async def on_book(book: Any, ts: float) -> None:
            if not meter.t_first:
                first(ts)
            b = book.book
            tops.append((b.bids.index(0)[0], b.asks.index(0)[0], ts))

        async def on_trade(t: Any, ts: float) -> None:
            if not meter.t_first:
                first(ts)
            trades.append(t)

        async def on_ticker(t: Any, ts: float) -> None:
            if not meter.t_first:
                first(ts)
            tickers.append(t)
    else:
        async def on_book(book: Any, ts: float) -> None:
            if not meter.t_first:
                first(ts)

        on_trade = on_ticker = on_book

    callbacks = {L2_BOOK: on_book, TRADES: on_trade, TICKER: on_ticker}
    channels = [CHANNELS[c] for c in s["channels"]]
    feed = cls(symbols=[symbol], channels=channels,
               callbacks={c: callbacks[c] for c in channels}, **kwargs)
    fh.add_feed(feed)
    fh.run(start_loop=False, install_signal_handlers=False)
    await asyncio.sleep(0)
    conns.extend(h.conn for h in feed.connection_handlers)

    def count() -> int:
        return sum(c.received for c in conns) - base[0] if meter.t_first else 0

    await meter.quiet(count, s["quiet_s"], s["timeout_s"])
    frames = count()
    last = max(c.last_message or 0.0 for c in conns)
    book = feed._l2_book.get(symbol)
    top = {}
    if book is not None and len(book.book.bids) and len(book.book.asks):
        top[s["symbol"]] = [float(book.book.bids.index(0)[0]), float(book.book.asks.index(0)[0])]
    report({"frames": frames, "wall_s": last - meter.t_first, "cpu_s": meter.cpu, "top": top,
            "trades": len(trades), "quotes": len(tickers), "book_reads": len(tops),
            "overrides": overrides})


if __name__ == "__main__":
    main()
