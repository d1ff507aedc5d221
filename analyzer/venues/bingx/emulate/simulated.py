"""The BingX swap market of a simulation: a ``SymbolFormat`` per listed instrument, the book
snapshot on subscription, REST answers from the model (listing, premiumIndex with the interval,
open interest as its USDT value at the mark, recent trades of the tape, settled funding)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from analyzer.exchange.emulator import RestError
from analyzer.venues.bingx.emulate import info
from analyzer.venues.bingx.emulate.render import SymbolFormat

if TYPE_CHECKING:
    from analyzer.events import Instrument
    from analyzer.exchange.simulate import SimFeed
    from analyzer.sim import MarketModel

MS = 1_000_000
NO_SYMBOL = info.error(109425, "Symbol does not exist")


class BingxSim:
    """The ``SimMarket`` of the BingX swap market."""

    def __init__(self, feed_id: str, model: MarketModel) -> None:
        self.feed_id = feed_id
        self.model = model
        self.formats: dict[str, SymbolFormat] = {}

    def renderer(self, instrument: Instrument) -> SymbolFormat:
        f = SymbolFormat(instrument, self.model)
        self.formats[f.symbol] = f
        return f

    def knows(self, symbol: str) -> bool:
        return symbol in self.formats and self.model.find(self.feed_id, symbol) is not None

    def snapshot(self, symbol: str) -> bytes | None:
        return self.formats[symbol].snapshot() if self.knows(symbol) else None

    def _premium(self, symbol: str) -> dict[str, Any]:
        f = self.formats[symbol]
        t = self.model.ticker(self.feed_id, symbol)
        return info.premium(symbol, f.px[t.mark_price or 0.0], f.px[t.index_price or 0.0],
                            t.funding_rate or 0.0, (t.next_funding_time or 0) // MS,
                            t.funding_interval_hours or 8.0)

    def rest(self, feed: SimFeed, endpoint: str, params: dict[str, str]) -> bytes:
        symbol = params.get("symbol", "")
        if endpoint == "contracts":
            listed = [i for i in self.model.instruments() if i.venue == self.feed_id]
            return info.body([info.contract(i.symbol, i.base, i.quote, i.tick_size, i.lot_size,
                                            n) for n, i in enumerate(listed)])
        if endpoint == "premiumIndex" and not symbol:
            return info.body([self._premium(s) for s in self.formats if self.knows(s)])
        if not self.knows(symbol):
            raise RestError(200, NO_SYMBOL)
        if endpoint == "premiumIndex":
            return info.body(self._premium(symbol))
        if endpoint == "openInterest":
            oi = self.model.open_interest(self.feed_id, symbol)
            mark = self.model.ticker(self.feed_id, symbol).mark_price or 0.0
            return info.body({"openInterest": f"{oi.open_interest * mark:.2f}",
                              "symbol": symbol, "time": self.model.now_ns // MS})
        if endpoint == "trades":
            f = self.formats[symbol]
            px, qx = f.px, f.qx
            limit = info.limit_of(params)
            return info.trades([(ms, px[p], qx[q], sell) for ms, p, q, sell
                                in f.tape.rows[-limit:]], limit)
        if endpoint == "fundingRate":
            rows = [{"symbol": symbol, "fundingRate": f"{s.rate:.8f}",
                     "fundingTime": s.ts // MS}
                    for s in self.model.funding_history(self.feed_id, symbol)]
            return info.body(rows[::-1][: info.limit_of(params, 100)])
        raise RestError(404, info.error(100400, "Invalid parameter"))

    def depth(self, feed: SimFeed, symbol: str, limit: int) -> dict[str, Any]:
        if not self.knows(symbol):
            raise RestError(200, NO_SYMBOL)
        f = self.formats[symbol]
        snap = self.model.snapshot(self.feed_id, symbol)
        px, qx = f.px, f.qx
        return {"T": snap.ts_exchange // MS, "lastUpdateId": snap.last_id,
                "bids": [[px[p], qx[q]] for p, q in snap.bids[:limit]],
                "asks": [[px[p], qx[q]] for p, q in snap.asks[:limit]]}
