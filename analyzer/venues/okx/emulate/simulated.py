"""One OKX market of a simulation: a ``SymbolFormat`` per listed instrument, book snapshots on
subscription, and the REST answers from the model (the listing of every OKX market: OKX has
one REST host, the instrument type picks the market; recent trades: the fills of the trades
released)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from analyzer.exchange.emulator import RestError
from analyzer.venues.okx.emulate import info
from analyzer.venues.okx.emulate.recordings import MARKET_OF_TYPE
from analyzer.venues.okx.emulate.render import SymbolFormat

if TYPE_CHECKING:
    from analyzer.events import Instrument
    from analyzer.exchange.simulate import SimFeed
    from analyzer.sim import MarketModel


class OkxSim:
    """The ``SimMarket`` of one OKX market (``kind``: SPOT, SWAP or FUTURES)."""

    def __init__(self, kind: str, feed_id: str, model: MarketModel, checksums: bool) -> None:
        self.kind = kind
        self.feed_id = feed_id
        self.model = model
        self.checksums = checksums
        self.formats: dict[str, SymbolFormat] = {}
        self.index_sent: dict[str, int] = {}  # index -> time of its last frame

    def renderer(self, instrument: Instrument) -> SymbolFormat:
        f = SymbolFormat(self.kind, instrument, self.model, self.index_sent, self.checksums)
        self.formats[f.symbol] = f
        return f

    def knows(self, inst_id: str) -> bool:
        return self.model.find(self.feed_id, inst_id) is not None

    def snapshot(self, channel: str, inst_id: str, checksums: bool) -> bytes | None:
        f = self.formats.get(inst_id)
        if f is None or self.model.find(self.feed_id, inst_id) is None:
            return None
        return f.snapshot(channel)

    def rest(self, feed: SimFeed, endpoint: str, params: dict[str, str]) -> bytes:
        if endpoint == "time":
            return info.time_body(feed.now_ms())
        if endpoint == "books":
            return info.books_body(self.depth(feed, params.get("instId", ""),
                                              int(params.get("sz", "1") or 1)))
        if endpoint in ("trades", "history-trades"):
            inst = info.inst_id_param(params)
            f = self.formats.get(inst)
            if f is None or self.model.find(self.feed_id, inst) is None:
                raise RestError(400, {"code": "51001", "msg": "Instrument ID does not exist",
                                      "data": []})
            if endpoint == "trades":
                limit = info.trades_limit(params)
                return info.trades_body(inst, f.aggregates(limit), limit)
            limit, after = info.history_params(params)
            return info.trades_body(inst, f.aggregates(len(f.tape.rows)), limit, after)
        kind = info.inst_type_param(params)
        feed_id = MARKET_OF_TYPE.get(kind)
        listed = [i for i in self.model.instruments() if i.venue == feed_id]
        return info.listing_body(kind, listed)

    def depth(self, feed: SimFeed, symbol: str, limit: int) -> dict[str, Any]:
        f = self.formats.get(symbol)
        if f is None or self.model.find(self.feed_id, symbol) is None:
            raise RestError(400, {"code": "51001", "msg": "Instrument ID does not exist",
                                  "data": []})
        snap = self.model.snapshot(self.feed_id, symbol)
        px, qx = f.px, f.qx
        return {"asks": [[px[p], qx[q], "0", "1"] for p, q in snap.asks[:limit]],
                "bids": [[px[p], qx[q], "0", "1"] for p, q in snap.bids[:limit]],
                "ts": str(snap.ts_exchange // 1_000_000)}
