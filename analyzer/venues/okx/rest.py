"""OKX's REST side: the instrument listing, and recent trades after a reconnect.

Docs: https://www.okx.com/docs-v5/en/#public-data-rest-api-get-instruments
      https://www.okx.com/docs-v5/en/#order-book-trading-market-data-get-trades
GET /api/v5/public/instruments?instType=SPOT|SWAP|FUTURES: 20 requests per 2 s per IP and
instrument type. GET /api/v5/market/trades?instId=..&limit=..: "up to 500 most recent" trades,
newest first (limit: max 500, default 100), 100 requests per 2 s per IP. Book snapshots come on
the socket, open interest and funding on their channels, and trade ids are not consecutive (no
backfill by id): the other path methods return None.

Recent trades are single fills, while the ``trades`` channel sends one aggregate per taker
order, price and source whose ``tradeId`` is its last fill's and ``count`` the fills in it
(docs "Trades channel"; the REST answer has no ``count``). ``aggregate`` rebuilds the channel's
trades from the fills, so that a backfilled trade carries the id, size and kind the stream gave
the same execution and the store's (venue, symbol, trade_id) key drops it when the stream had
it: consecutive fills (ids one apart) with the same time, side, price and source are one
aggregate. The REST answer names no taker order: two orders filled one after the other at the
same millisecond, side and price become one trade (the volume is kept; a trade count is not).
"""

from __future__ import annotations

import msgspec

from analyzer.events import BookChange, Instrument, OpenInterest, Trade
from analyzer.venues.base import DecodeError, Market, VenueError
from analyzer.venues.bounds import MS
from analyzer.venues.okx.schemas import (
    INSTRUMENTS_DECODER,
    REST_TRADES_DECODER,
    InstrumentInfo,
    RestTrade,
)

MARKET_TYPES = {"SPOT": "spot", "SWAP": "perpetual", "FUTURES": "future"}
TRADES_PATH = "/api/v5/market/trades"
# GET /api/v5/market/history-trades: the last 3 months, 100 a page, paged by tradeId (type=1)
HISTORY_TRADES_PATH = "/api/v5/market/history-trades"
HISTORY_TRADES_LIMIT = 100
TRADES_LIMIT = 500  # "The maximum is 500; the default is 100"


def instrument(info: InstrumentInfo, venue: str, ts_local: int) -> Instrument:
    """One listed instrument in the unit system of ``analyzer.events``.

    Spot: base/quote from baseCcy/quoteCcy, sizes in base units. Derivatives: base and quote
    from the underlying (uly ``BTC-USDT`` of BTC-USDT-SWAP: base BTC, quote USDT; ``BTC-USD`` of
    the inverse BTC-USD-SWAP: base BTC, quote USD). A linear contract is worth ctVal * ctMult
    coins, its ``contract_value``: the feed converts its sizes to base units, so its
    ``contract_size`` is 1 and ``lot_size`` lotSz contracts in base units; an inverse one is
    worth ctVal * ctMult USD, its ``contract_size``, and its sizes stay contracts, as does
    ``lot_size``. ``expiry``: a dated future's expTime; a swap's expTime,
    when set, is a delisting date, not an expiry."""
    kind = info.instType
    if kind == "SPOT":
        return Instrument(venue, info.instId, "okx", "spot", info.baseCcy, info.quoteCcy, False,
                          1.0, info.tickSz, info.lotSz, None, ts_local)
    if not isinstance(info.ctVal, float):
        raise DecodeError(f"instrument {info.instId}: no ctVal")
    inverse = info.ctType == "inverse"
    size = info.ctVal * (info.ctMult if isinstance(info.ctMult, float) else 1.0)
    if info.uly.count("-") == 1:
        base, quote = info.uly.split("-")
    elif inverse:  # no underlying: an inverse contract is worth ctVal USD, settled in the coin
        base, quote = info.settleCcy, info.ctValCcy
    else:  # a linear one is worth ctVal coins, settled in the quote
        base, quote = info.ctValCcy, info.settleCcy
    expiry = info.expTime * MS if kind == "FUTURES" and isinstance(info.expTime, int) else None
    if inverse:
        return Instrument(venue, info.instId, "okx", MARKET_TYPES[kind], base, quote, True, size,
                          info.tickSz, info.lotSz, expiry, ts_local)
    return Instrument(venue, info.instId, "okx", MARKET_TYPES[kind], base, quote, False, 1.0,
                      info.tickSz, info.lotSz * size, expiry, ts_local, contract_value=size)


def _follows(fill: RestTrade, last: RestTrade) -> bool:
    """``fill`` is the next match of the same taker order at the same price as ``last``."""
    return (fill.ts == last.ts and fill.side == last.side and fill.px == last.px
            and fill.source == last.source and fill.tradeId.isdigit()
            and last.tradeId.isdigit() and int(fill.tradeId) == int(last.tradeId) + 1)


def aggregate(fills: list[RestTrade]) -> list[tuple[RestTrade, float, int]]:
    """The fills (oldest first) as the trades channel aggregates them: (last fill, summed
    size, fills), oldest first (module doc)."""
    out: list[tuple[RestTrade, float, int]] = []
    for f in fills:
        if out and _follows(f, out[-1][0]):
            _, size, count = out[-1]
            # the sum of decimal texts, without the binary noise of adding floats
            out[-1] = (f, round(size + f.sz, 12), count + f.count)
        else:
            out.append((f, f.sz, f.count))
    return out


class OkxRest:
    """The REST requests of one OKX market; mixed into ``OkxFeed``."""

    market: Market
    venue: str
    derivatives: bool
    size_factor: dict[str, float]

    # one request each, against the 20 per 2 s of the listing (trades allow 100 per 2 s)
    rest_weights: dict[str, int] = {"instruments": 1, "trades": 1}  # noqa: RUF012 (read-only)

    def rest_headers(self, api_key: str | None) -> dict[str, str] | None:
        """Public data needs no key."""
        return None

    def instrument_paths(self) -> list[str]:
        return [f"/api/v5/public/instruments?instType={self.market.kind}"]

    def decode_instruments(self, bodies: list[bytes], ts_local: int) -> dict[str, Instrument]:
        """The live instruments of the listing bodies (suspended, pre-open, expired, test and
        rebasing ones are nothing to follow), by instId."""
        out: dict[str, Instrument] = {}
        for body in bodies:
            try:
                listing = INSTRUMENTS_DECODER.decode(body)
            except (msgspec.DecodeError, ValueError) as exc:
                raise DecodeError(f"instruments: {exc}") from None
            if listing.code != "0":
                raise VenueError(f"instruments: OKX error {listing.code}: {listing.msg}")
            for info in listing.data:
                if info.state == "live" and info.instType == self.market.kind:
                    out[info.instId] = instrument(info, self.venue, ts_local)
        return out

    def depth_path(self, symbol: str) -> str | None:
        return None  # the subscription sends the snapshot

    def decode_snapshot(self, body: bytes, symbol: str, ts_local: int) -> BookChange:
        raise DecodeError("OKX book snapshots come on the socket", "depth")

    def trades_path(self, symbol: str, from_id: int, limit: int = 1000) -> str | None:
        return None  # no backfill by trade id (yet)

    def recent_trades_path(self, symbol: str) -> str | None:
        return f"{TRADES_PATH}?instId={symbol}&limit={TRADES_LIMIT}"

    def older_trades_path(self, symbol: str, before_id: str) -> str | None:
        """history-trades pages by tradeId (``type=1``): ``after`` returns the fills older than
        it, so the page after the aggregate ``before_id`` (its last fill's id) holds it whole."""
        if not before_id.isdigit():
            return None
        return (f"{HISTORY_TRADES_PATH}?instId={symbol}&type=1&after={int(before_id) + 1}"
                f"&limit={HISTORY_TRADES_LIMIT}")

    def decode_trades(self, body: bytes, symbol: str, ts_local: int) -> list[Trade]:
        """A trades body as the Trades the trades channel makes of the same executions: its
        aggregates (module doc), sizes in the unit system as ``_on_trades`` converts them,
        side the taker's; oldest first."""
        try:
            page = REST_TRADES_DECODER.decode(body)
        except (msgspec.DecodeError, ValueError) as exc:
            raise DecodeError(f"trades {symbol}: {exc}", "trades") from None
        if page.code != "0":
            raise VenueError(f"trades {symbol}: OKX error {page.code}: {page.msg}", "trades")
        factor = 1.0
        if self.derivatives:
            found = self.size_factor.get(symbol)
            if found is None:
                raise DecodeError(f"trades {symbol}: no instrument listed (contract size "
                                  "unknown)", "trades")
            factor = found
        for t in page.data:
            if t.instId != symbol:
                raise DecodeError(f"trades {symbol}: a trade of {t.instId!r}", "trades")
        return [Trade(self.venue, symbol, t.ts * MS, ts_local, t.tradeId, t.px, size * factor,
                      t.side, "aggTrade" if count > 1 else "trade")
                for t, size, count in aggregate(page.data[::-1])]

    def open_interest_path(self, symbol: str) -> str | None:
        return None  # the open-interest channel

    def decode_open_interest(
        self, body: bytes, ts_local: int, instrument: Instrument | None, mark: float | None
    ) -> OpenInterest:
        raise DecodeError("OKX open interest comes on the socket", "openInterest")

    def funding_info_path(self) -> str | None:
        return None  # the interval comes with every funding-rate frame

    def decode_funding_info(self, body: bytes) -> dict[str, float]:
        return {}
