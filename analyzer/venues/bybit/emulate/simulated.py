"""One Bybit market of a simulation: a ``SymbolFormat`` per listed instrument, the snapshots a
subscription starts with, and the REST answers from the model (the listing, recent trades)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from analyzer.venues.bybit.emulate import info
from analyzer.venues.bybit.emulate.render import SymbolFormat

if TYPE_CHECKING:
    from analyzer.events import Instrument
    from analyzer.exchange.emulator import Session
    from analyzer.exchange.simulate import SimFeed
    from analyzer.sim import MarketModel


def split_topic(topic: bytes) -> tuple[str, int, str] | None:
    """(kind, depth, symbol) of a topic (``orderbook.50.BTCUSDT`` -> orderbook, 50, BTCUSDT;
    depth 0 for other kinds); None for a topic that is not one of these."""
    parts = topic.decode(errors="replace").split(".")
    if len(parts) == 3 and parts[0] == "orderbook" and parts[1].isdigit():
        return "orderbook", int(parts[1]), parts[2]
    if len(parts) == 2 and parts[0] in ("publicTrade", "tickers", "allLiquidation"):
        return parts[0], 0, parts[1]
    return None


class BybitSim:
    """The ``SimMarket`` of one Bybit category."""

    def __init__(self, category: str, feed_id: str, model: MarketModel) -> None:
        self.category = category
        self.feed_id = feed_id
        self.model = model
        self.formats: dict[str, SymbolFormat] = {}

    def renderer(self, instrument: Instrument) -> SymbolFormat:
        f = self.formats[instrument.symbol] = SymbolFormat(self.category, instrument, self.model)
        return f

    def listed(self) -> list[Instrument]:
        return [i for i in self.model.instruments() if i.venue == self.feed_id]

    # -- the websocket side (called by the market's control handler) --

    def topic_error(self, topic: bytes) -> str | None:
        """Why Bybit would refuse this topic (None: it is served)."""
        parts = split_topic(topic)
        if parts is None:
            return "handler not found"
        kind, depth, symbol = parts
        f = self.formats.get(symbol)
        if f is None or self.model.find(self.feed_id, symbol) is None:
            return "symbol not found"
        if kind == "orderbook" and depth != 1 and depth not in f.depths:
            return "handler not found"
        if kind in ("tickers", "allLiquidation") and not f.derivative:
            return "handler not found"
        return None

    def subscribed(self, session: Session, topic: bytes) -> None:
        """Send what a new subscription starts with: a book's or a ticker's snapshot."""
        parts = split_topic(topic)
        if parts is None:
            return
        kind, depth, symbol = parts
        f = self.formats.get(symbol)
        if f is None or self.model.find(self.feed_id, symbol) is None:
            return
        if kind == "orderbook":
            if depth == 1:
                frame = f.top_snapshot()
                if frame is not None:
                    session.send(frame)
            else:
                f.subscribe_book(session, depth)
        elif kind == "tickers" and f.derivative:
            session.send(f.ticker_snapshot())

    def unsubscribed(self, session: Session, topic: bytes) -> None:
        parts = split_topic(topic)
        if parts is not None and parts[0] == "orderbook" and parts[2] in self.formats:
            self.formats[parts[2]].forget(session, parts[1])

    # -- REST --

    def rest(self, feed: SimFeed, endpoint: str, params: dict[str, str]) -> bytes:
        now = feed.now_ms()
        if endpoint == "time":
            return info.envelope({"timeSecond": str(now // 1000),
                                  "timeNano": str(now * 1_000_000)}, now)
        if endpoint == "instruments":
            venue = self.model.world.venue(self.feed_id)
            minutes = {i.symbol: round(venue.funding_hours(i.base) * 60)
                       for i in self.listed() if i.market == "perpetual"}
            return info.instruments_body(self.category, params, self.listed(), minutes, now)
        symbol = params.get("symbol", "").upper()
        f = self.formats.get(symbol)
        if f is None:
            info.category_of(params, self.category)
            raise info.params_error("params error: symbol invalid")
        limit = info.trades_limit(params, self.category)
        rows = [{"execId": f.trade_id(tid).decode(), "symbol": symbol,
                 "price": f.px[p].decode(), "size": f.qx[q].decode(),
                 "side": "Buy" if side == "buy" else "Sell", "time": str(ms),
                 "isBlockTrade": False}
                for tid, p, q, ms, side in f.tape.rows[-limit:]]
        return info.recent_trades_body(self.category, params, rows, now)

    def depth(self, feed: SimFeed, symbol: str, limit: int) -> dict[str, Any]:
        f = self.formats[symbol]
        bids, asks = f.depth(limit)
        return {"bids": bids, "asks": asks}
