"""CCXT's websocket API (``ccxt.pro``, the ``watch*`` methods) as a user runs it, pointed at the
local exchange (run by ``bench_peers.py`` in CCXT's own virtual environment; argument: the
bench's JSON spec).

Docs: https://docs.ccxt.com/#/ccxt.pro.manual (watchOrderBook, watchTrades, watchBidsAsks;
      ``exchange.urls['api']`` overrides; per-method ``options``).

What a user stores: one task per subscription, each awaiting its ``watch*`` method in a loop;
the order book task reads the best bid/ask (``ob['bids'][0]``, ``ob['asks'][0]``) every time
the watch returns, the others keep what they return, in lists (mode ``book``); or the loops
drop what they get (mode ``null``). A watch returns once per event-loop turn at most, so one
return can cover several frames: ``book_reads`` says how many returns there were.

Frames are counted where CCXT hands each decoded message to the exchange class
(``handle_message``): a subclass counts the data messages there (acknowledgements excluded) and
notes the time; about 0.2 µs a frame, next to CCXT's own cost.

Overrides (each printed by the bench): ``exchange.urls['api']``: the websocket URL of the
market and every REST API root at the local exchange; per venue, the documented options listed
in ``VENUES`` below.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import ccxt.pro as ccxtpro
from meter import Meter, report, spec

CONTROL = ("result", "event", "success", "op")  # acknowledgement keys, not data


def rest_roots(ex: Any, rest: str, hosts: tuple[str, ...]) -> list[str]:
    """Point every REST root of ``urls['api']`` on one of ``hosts`` at ``rest``."""
    done = []
    for key, url in list(ex.urls["api"].items()):
        if isinstance(url, str) and url.startswith("https://"):
            host, _, path = url[8:].partition("/")
            if host in hosts:
                ex.urls["api"][key] = f"{rest}/{path}" if path else rest
                done.append(key)
    return done


def binance_usdm(ws: str, rest: str, channels: list[str]) -> tuple[Any, str, list[str]]:
    ex = ccxtpro.binanceusdm({"options": {
        "watchOrderBookRate": "0",  # the recording's diff stream: depth@0ms
        "watchTrades": {"name": "aggTrade"},
        "fetchMarkets": {"types": ["linear"]},
    }})
    old = ex.urls["api"]["ws"]["linear"]
    # ccxt rewrites a URL ending in /ws to Binance's /public/ws or /market/ws; ending in "/"
    # keeps the path the local exchange serves
    ex.urls["api"]["ws"]["linear"] = f"{ws}/ws/"
    keys = rest_roots(ex, rest, ("fapi.binance.com",))
    return ex, "BTC/USDT:USDT", [
        f"urls['api']['ws']['linear'] = {ws}/ws/ (was {old})",
        f"urls['api'][{', '.join(keys)}] = {rest}/<same path> (were https://fapi.binance.com)",
        "options: watchOrderBookRate='0' (depth@0ms), watchTrades.name='aggTrade', "
        "fetchMarkets.types=['linear']",
    ]


def okx_spot(ws: str, rest: str, channels: list[str]) -> tuple[Any, str, list[str]]:
    ex = ccxtpro.okx({"options": {"fetchMarkets": {"types": ["spot"]}}})
    old = ex.urls["api"]["ws"]
    ex.urls["api"]["ws"] = f"{ws}/ws/v5"
    keys = rest_roots(ex, rest, ("www.okx.com", "{hostname}"))
    return ex, "BTC/USDT", [
        f"urls['api']['ws'] = {ws}/ws/v5 (was {old})",
        f"urls['api'][{', '.join(keys)}] = {rest}/<same path>",
        "options: fetchMarkets.types=['spot']; watchOrderBook depth 'books' (the default)",
    ]


VENUES = {"binance_usdm": binance_usdm, "okx_spot": okx_spot}


async def main() -> None:
    s = spec()
    meter = Meter()
    ex, symbol, overrides = VENUES[s["feed"]](s["ws"], s["rest"], s["channels"])
    base = type(ex)
    state = {"n": 0, "last": 0.0}

    class Counted(base):  # type: ignore[misc, valid-type]
        def handle_message(self, client: Any, message: Any) -> Any:
            if isinstance(message, dict) and not any(k in message for k in CONTROL):
                if not state["n"]:
                    meter.first()
                state["n"] += 1
                state["last"] = time.perf_counter()
            return super().handle_message(client, message)

    ex.__class__ = Counted
    book_mode = s["mode"] == "book"
    trades: list[Any] = []
    quotes: list[Any] = []
    tops: list[tuple[float, float]] = []

    async def books() -> None:
        while True:
            ob = await ex.watch_order_book(symbol)
            if book_mode and ob["bids"] and ob["asks"]:
                tops.append((ob["bids"][0][0], ob["asks"][0][0]))

    async def trade_loop() -> None:
        while True:
            got = await ex.watch_trades(symbol)
            if book_mode:
                trades.extend(got)

    async def quote_loop() -> None:
        while True:
            got = await ex.watch_bids_asks([symbol])
            if book_mode:
                quotes.append(got[symbol])

    loops = {"depth": books, "trades": trade_loop, "bookTicker": quote_loop}
    await ex.load_markets()
    tasks = [asyncio.create_task(loops[c]()) for c in s["channels"]]
    try:
        await meter.quiet(lambda: state["n"], s["quiet_s"], s["timeout_s"])
    finally:
        for t in tasks:
            t.cancel()
        errors = [repr(t.exception()) for t in tasks
                  if t.done() and not t.cancelled() and t.exception() is not None]
    ob = ex.orderbooks.get(symbol)
    top = {}
    if ob is not None and ob["bids"] and ob["asks"]:
        top[s["symbol"]] = [float(ob["bids"][0][0]), float(ob["asks"][0][0])]
    report({"frames": state["n"], "wall_s": state["last"] - meter.t_first, "cpu_s": meter.cpu,
            "top": top, "trades": len(trades), "quotes": len(quotes), "book_reads": len(tops),
            "errors": errors, "overrides": overrides})
    await ex.close()


if __name__ == "__main__":
    asyncio.run(main())
