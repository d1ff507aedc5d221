"""The MEXC contract market of a simulation: a ``SymbolFormat`` per listed contract, and the
REST answers from the model (listing, funding) and from each contract's venue book (depth,
depth commits) and released deals, shaped as MEXC writes them (``info``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from analyzer.venues.mexc.emulate import info
from analyzer.venues.mexc.emulate.render import SymbolFormat

if TYPE_CHECKING:
    from analyzer.events import Instrument
    from analyzer.exchange.simulate import SimFeed
    from analyzer.sim import MarketModel

MS = 1_000_000


class MexcSim:
    """The ``SimMarket`` of MEXC's contract market."""

    def __init__(self, feed_id: str, model: MarketModel) -> None:
        self.feed_id = feed_id
        self.model = model
        self.formats: dict[str, SymbolFormat] = {}

    def renderer(self, instrument: Instrument) -> SymbolFormat:
        f = self.formats[instrument.symbol] = SymbolFormat(instrument, self.model)
        return f

    def listed(self) -> list[Instrument]:
        return sorted((i for i in self.model.instruments() if i.venue == self.feed_id),
                      key=lambda i: i.symbol)

    def stream_error(self, symbol: str) -> str | None:
        """Why MEXC would refuse a subscription of this symbol (None: served)."""
        if symbol not in self.formats or self.model.find(self.feed_id, symbol) is None:
            return "Contract doesn't exist!"
        return None

    def _format(self, symbol: str) -> SymbolFormat:
        f = self.formats.get(symbol)
        if f is None or self.model.find(self.feed_id, symbol) is None:
            raise info.no_contract()
        return f

    def _funding(self, f: SymbolFormat, now_ms: int) -> dict[str, Any]:
        tk = self.model.ticker(self.feed_id, f.symbol)
        return info.funding_item(f.symbol, tk.funding_rate or 0.0,
                                 tk.funding_interval_hours or 8.0,
                                 (tk.next_funding_time or 0) // MS, now_ms)

    def rest(self, feed: SimFeed, endpoint: str, params: dict[str, str]) -> bytes:
        now = feed.now_ms()
        name, _, arg = endpoint.partition(":")
        if name == "ping":
            return info.ok(now)
        if name == "detail":
            want = params.get("symbol", "").upper()
            return info.ok([info.contract_item(i, self.formats[i.symbol].cs)
                            for i in self.listed()
                            if i.symbol in self.formats and (not want or i.symbol == want)])
        if name == "funding_rate" and not arg:
            return info.ok([self._funding(self.formats[i.symbol], now) for i in self.listed()
                            if i.symbol in self.formats])
        symbol, _, limit = arg.partition(":")
        f = self._format(symbol.upper())
        if name == "funding_rate":
            return info.ok(self._funding(f, now))
        if name == "depth":
            n = info.limit_of(params.get("limit"), info.DEPTH_LIMIT, info.DEPTH_LIMIT)
            return info.ok(f.depth_body(n))
        if name == "depth_commits":
            return info.ok(f.commits_body(info.limit_of(limit, 1, info.COMMITS_KEPT)))
        if name == "deals":
            n = info.limit_of(params.get("limit"), info.DEALS_LIMIT, info.DEALS_LIMIT)
            return info.ok([{"p": p, "v": round(q / f.cs), "T": 1 if side == "buy" else 2,
                             "O": 3, "M": 2, "t": ms}
                            for p, q, ms, side in reversed(f.tape.rows[-n:])])
        raise info.error(600, "Parameter error")

    def depth(self, feed: SimFeed, symbol: str, limit: int) -> dict[str, Any]:
        """The venue's book now, in base units, best first, with its version."""
        vb = self.formats[symbol].current()
        bids, asks = vb.top(limit)
        return {"bids": bids, "asks": asks, "version": vb.version}

