"""One Binance market of a simulation: a ``SymbolFormat`` per listed instrument, and the REST
answers from the model (depth snapshots are the model's book, ahead of and consistent with
the stream; trades are those released so far), shaped as Binance writes them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from analyzer.venues.binance.emulate import info as listing
from analyzer.venues.binance.emulate import rest as api
from analyzer.venues.binance.emulate.render import MS, SymbolFormat, precisions

if TYPE_CHECKING:
    from analyzer.events import Instrument
    from analyzer.exchange.simulate import SimFeed
    from analyzer.sim import MarketModel

_encode = msgspec.json.encode


class BinanceSim:
    """The ``SimMarket`` of one Binance market (``market``: spot, usdm or coinm)."""

    def __init__(self, market: str, feed_id: str, model: MarketModel) -> None:
        self.market = market
        self.feed_id = feed_id
        self.model = model
        self.formats: dict[str, SymbolFormat] = {}  # every symbol listed so far
        self.index_sent: dict[str, int] = {}  # COIN-M: pair -> time of its last index frame

    def renderer(self, instrument: Instrument) -> SymbolFormat:
        book = self.model.instrument_state(instrument.venue, instrument.symbol).book
        # aggregate ids below the trade ids, deterministic per seed
        f = SymbolFormat(self.market, instrument, book.tid // 2, self.index_sent)
        self.formats[f.symbol] = f
        return f

    def listed(self) -> list[Instrument]:
        return [i for i in self.model.instruments() if i.venue == self.feed_id]

    def _format(self, params: dict[str, str]) -> SymbolFormat:
        symbol = params.get("symbol")
        if not symbol:
            raise api._mandatory("symbol")
        f = self.formats.get(symbol.upper())
        if f is None or self.model.find(self.feed_id, f.symbol) is None:
            raise api._bad_symbol()  # never listed, or expired
        return f

    def rest(self, feed: SimFeed, endpoint: str, params: dict[str, str]) -> bytes:
        model = self.model
        market = self.market
        if endpoint == "exchangeInfo":
            return exchange_info_body(feed, self.listed(), feed.now_ms())
        if endpoint == "ping":
            return b"{}"
        if endpoint == "time":
            return _encode({"serverTime": feed.now_ms()})
        if endpoint == "fundingInfo":
            perps = [i for i in self.listed() if i.market == "perpetual"]
            return funding_info_body(model, self.feed_id, perps)
        if endpoint == "premiumIndex":
            if params.get("symbol"):
                f = self._format(params)
                body = premium_body(market, model, f)
                return _encode(body if market == "usdm" else [body])
            return _encode([
                premium_body(market, model, self.formats[i.symbol])
                for i in sorted(self.listed(), key=lambda i: i.symbol)
            ])
        f = self._format(params)
        spot = market == "spot"
        if endpoint == "depth":
            limit = api._limit(params, 100 if spot else 500, 5000 if spot else 1000)
            return _encode(depth_body(market, model, f, limit))
        if endpoint == "openInterest":
            ctype = contract_types(self.listed())[f.symbol]
            return open_interest_body(market, model, f, ctype)
        limit = api._limit(params, 500, 1000)
        tape = f.tape
        from_id = api._int_param(params, "fromId")
        if endpoint == "trades":
            return trades_body(market, f, tape.rows[-limit:], agg=False)
        if endpoint == "historicalTrades":
            return trades_body(market, f, tape.since(from_id, limit), agg=False)
        # aggTrades: every trade is its own aggregate, so ids map one to one
        start = api._int_param(params, "startTime")
        end = api._int_param(params, "endTime")
        if from_id is not None:
            rows = tape.since(from_id + f.trade_offset, limit)
        elif start is not None:
            i = api._first_at_or_after(tape.rows, start, col=3)
            rows = tape.rows[i : i + limit]
        else:
            rows = tape.rows[-limit:]
        if end is not None:
            rows = [r for r in rows if r[3] <= end]
        return trades_body(market, f, rows, agg=True)

    def depth(self, feed: SimFeed, symbol: str, limit: int) -> dict[str, Any]:
        f = self._format({"symbol": symbol})
        return depth_body(self.market, self.model, f, limit)


# ----------------------------------------------------------------------------------------------
# REST bodies from the model


def _fmt(fmt: bytes, x: float) -> str:
    return (fmt % x).decode()


def trades_body(market: str, f: SymbolFormat, rows: list[tuple[int, float, float, int, bool]],
                agg: bool) -> bytes:
    """historicalTrades / trades, or aggTrades, as Binance writes them."""
    out: list[dict[str, Any]] = []
    size = f.info.contract_size
    for tid, p, q, ms, maker in rows:
        price, qty = _fmt(f.pfmt, p), _fmt(f.qfmt, q)
        if agg:
            entry: dict[str, Any] = {"a": tid - f.trade_offset, "p": price, "q": qty, "f": tid,
                                     "l": tid, "T": ms, "m": maker}
            if market == "spot":
                entry["M"] = True
        else:
            entry = {"id": tid, "price": price, "qty": qty}
            if market == "coinm":
                entry["baseQty"] = f"{q * size / p:.8f}"
            else:
                entry["quoteQty"] = f"{p * q:.8f}"
            entry |= {"time": ms, "isBuyerMaker": maker}
            if market == "spot":
                entry["isBestMatch"] = True
        out.append(entry)
    return _encode(out)


def depth_body(market: str, model: MarketModel, f: SymbolFormat, limit: int) -> dict[str, Any]:
    """A depth snapshot of the model's book now (ahead of, and consistent with, the stream).

    ``lastUpdateId``: spot, the last id of the changes emitted so far (the next change starts
    at +1); futures, the first id of the next change, so that it bridges (``U <= L <= u``): the
    snapshot holds every update before it (ids between two changes are skipped, never used) and
    none of it, and its levels are absolute, so applying it whole gives the right book."""
    snap = model.snapshot(f.info.venue, f.symbol)
    last = snap.last_id
    if market != "spot":
        # model.snapshot() carries the last emitted id only; the next change's first id is
        # the book's ``first_pending`` (which SimBook documents for renderers)
        last = model.instrument_state(f.info.venue, f.symbol).book.first_pending
    pfmt, qfmt = f.pfmt, f.qfmt
    bids = [[(pfmt % p).decode(), (qfmt % q).decode()] for p, q in snap.bids[:limit]]
    asks = [[(pfmt % p).decode(), (qfmt % q).decode()] for p, q in snap.asks[:limit]]
    if market == "spot":
        return {"lastUpdateId": last, "bids": bids, "asks": asks}
    ms = snap.ts_exchange // MS
    body: dict[str, Any] = {"lastUpdateId": last, "E": ms, "T": ms}
    if market == "coinm":
        body["symbol"] = f.symbol
        body["pair"] = f.pair
    body["bids"] = bids
    body["asks"] = asks
    return body


def contract_types(instruments: list[Instrument]) -> dict[str, str]:
    """PERPETUAL, or CURRENT_QUARTER / NEXT_QUARTER by expiry order within each base asset."""
    out: dict[str, str] = {}
    dated: dict[str, list[Instrument]] = {}
    for inst in instruments:
        if inst.expiry is None:
            out[inst.symbol] = "PERPETUAL"
        else:
            dated.setdefault(inst.base, []).append(inst)
    for insts in dated.values():
        for n, inst in enumerate(sorted(insts, key=lambda i: i.expiry or 0)):
            out[inst.symbol] = ("CURRENT_QUARTER", "NEXT_QUARTER")[min(n, 1)]
    return out


def exchange_info_body(feed: Any, instruments: list[Instrument], now_ms: int) -> bytes:
    """exchangeInfo of the instruments listed now (expired contracts are gone)."""
    market = feed.market
    ctypes = contract_types(instruments)
    symbols = []
    for inst in sorted(instruments, key=lambda i: i.symbol):
        pd, qd = precisions(market, inst.tick_size, inst.lot_size)
        tick, lot = f"{inst.tick_size:.{pd}f}", f"{inst.lot_size:.{qd}f}"
        if market == "spot":
            entry = listing._spot_symbol(inst.symbol, tick, lot)
            entry["baseAsset"], entry["quoteAsset"] = inst.base, inst.quote
        else:
            entry = listing._futures_symbol(feed, inst.symbol, tick, lot, now_ms)
            delivery = inst.expiry // MS if inst.expiry is not None else listing.PERPETUAL_DELIVERY
            entry |= {"pair": inst.symbol.split("_", 1)[0], "contractType": ctypes[inst.symbol],
                      "deliveryDate": delivery, "baseAsset": inst.base, "quoteAsset": inst.quote,
                      "pricePrecision": pd, "quantityPrecision": qd}
            if inst.expiry is not None:
                entry["onboardDate"] = delivery - 180 * 86_400_000
            if market == "coinm":
                entry["contractSize"] = int(inst.contract_size)
                entry["marginAsset"] = inst.base
            else:
                entry["marginAsset"] = inst.quote
        symbols.append(entry)
    body: dict[str, Any] = {"timezone": "UTC", "serverTime": now_ms}
    if market == "usdm":
        body["futuresType"] = "U_MARGINED"
    body["rateLimits"] = [
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
         "limit": feed.weight_limit},
        {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
    ]
    body["exchangeFilters"] = []
    if market != "spot":
        assets = sorted({s["marginAsset"] for s in symbols})
        body["assets"] = [
            {"asset": a, "marginAvailable": True, "autoAssetExchange": "0"} for a in assets
        ]
    body["symbols"] = symbols
    return _encode(body)


def premium_body(market: str, model: MarketModel, f: SymbolFormat) -> dict[str, Any]:
    tk = model.ticker(f.info.venue, f.symbol)
    perpetual = f.info.expiry is None
    entry: dict[str, Any] = {"symbol": f.symbol}
    if market == "coinm":
        entry["pair"] = f.pair
    mark = tk.mark_price or 0.0
    index = tk.index_price or mark
    entry |= {
        "markPrice": f"{mark:.8f}",
        "indexPrice": f"{index:.8f}",
        "estimatedSettlePrice": f"{index:.8f}",
        "lastFundingRate": f"{tk.funding_rate:.8f}" if tk.funding_rate is not None else "",
        "interestRate": "0.00010000" if perpetual else "",
        "nextFundingTime": (tk.next_funding_time or 0) // MS,
        "time": tk.ts_exchange // MS,
    }
    return entry


def open_interest_body(market: str, model: MarketModel, f: SymbolFormat,
                       contract_type: str) -> bytes:
    oi = model.open_interest(f.info.venue, f.symbol)
    value = _fmt(f.qfmt, oi.open_interest)
    ms = oi.ts_exchange // MS
    if market == "coinm":
        return _encode({"symbol": f.symbol, "pair": f.pair, "openInterest": value,
                        "contractType": contract_type, "time": ms})
    return _encode({"symbol": f.symbol, "openInterest": value, "time": ms})


def funding_info_body(model: MarketModel, feed_id: str, perpetuals: list[Instrument]) -> bytes:
    venue = model.world.venue(feed_id)
    return _encode([
        {"symbol": i.symbol, "adjustedFundingRateCap": "0.02000000",
         "adjustedFundingRateFloor": "-0.02000000",
         "fundingIntervalHours": int(venue.funding_hours(i.base)), "disclaimer": False}
        for i in sorted(perpetuals, key=lambda i: i.symbol)
    ])

