"""BingX swap's REST side: the listing, funding, mark and index, open interest, recent trades.

Docs: https://bingx-api.github.io/docs/#/en-us/swapV2/market-api.html
GET /openApi/swap/v2/quote/contracts: the listing (``pricePrecision``, ``quantityPrecision``,
``status`` 1 listed; no contract size: ``size`` is "0" and sizes everywhere are base units, REST
``bids`` equal ``bidsCoin``). GET /openApi/swap/v2/quote/premiumIndex?symbol=: ``markPrice``,
``indexPrice``, ``lastFundingRate`` (the running rate of the coming settlement),
``nextFundingTime`` (absolute ms) and, in answers since 2024, ``fundingIntervalHours`` (1, 4 or
8); without ``symbol`` every listed contract's row (~240 KB): the funding info, read at start and
hourly. GET /openApi/swap/v2/quote/openInterest?symbol=: ``openInterest`` is the USDT *value* of
the open positions, not contracts nor coins (BTC-USDT answered 287,039,550.4 at a 77,190 mark,
3,719 BTC; ccxt reads it as ``openInterestValue``): the coins are the value over the mark.
GET /openApi/swap/v2/quote/trades?symbol=&limit=: the latest trades, without ids.
All public: 500 requests per 10 s per IP (``X-RateLimit-Requests-Remain``), one each here.

Funding interval: ``fundingIntervalHours`` of the symbol's premiumIndex row, else of the
funding info; an answer without it (as before 2024) leaves the interval None and counts
``interval_unknown`` (logged once per symbol): it is never assumed. The history endpoint
(``/openApi/swap/v2/quote/fundingRate``: settled ``fundingTime``s) gives it as the step between
successive times: ``interval_from_history``, for a caller that polls it.

Trade ids. BingX sends none, on the socket or over REST, and duplicates were seen (ccxt#18650,
#25639). A trade is named by what it is: ``<ms>:<b|s>:<price>:<size>:<n>``, where ``n`` counts
the trades of one frame (or one REST page) with the same time, side, price and size (one taker
order filling several makers at one price gives several such rows; the real frame in the
fixtures has 11 of them in one millisecond): the same execution gets the same id from the
stream and from REST, so the store's (venue, symbol, trade_id) key keeps it once.
"""

from __future__ import annotations

import itertools
import logging
from collections import Counter

import msgspec

from analyzer.events import BookChange, DerivativeTicker, Instrument, OpenInterest, Trade
from analyzer.venues.base import DecodeError, Market, VenueError
from analyzer.venues.bingx.schemas import (
    CONTRACTS_DECODER,
    FUNDING_HISTORY_DECODER,
    OPEN_INTEREST_DECODER,
    PREMIUM_DECODER,
    REST_TRADES_DECODER,
    Premium,
)
from analyzer.venues.bounds import MS

log = logging.getLogger(__name__)

HOUR_MS = 3_600_000
CONTRACTS_PATH = "/openApi/swap/v2/quote/contracts"
PREMIUM_PATH = "/openApi/swap/v2/quote/premiumIndex"
FUNDING_HISTORY_PATH = "/openApi/swap/v2/quote/fundingRate"
OPEN_INTEREST_PATH = "/openApi/swap/v2/quote/openInterest"
TRADES_PATH = "/openApi/swap/v2/quote/trades"
TRADES_LIMIT = 1000  # "default 500, max 1000"
LISTED = 1  # contracts ``status``


def trade_key(ms: int, sell: bool, price: float, size: float, n: int) -> str:
    """A trade's id (module doc)."""
    return f"{ms}:{'s' if sell else 'b'}:{price!r}:{size!r}:{n}"


def interval_from_history(times_ms: list[int]) -> float | None:
    """The funding interval in hours: the smallest step between successive settlement times
    (a missed row makes a step twice as long, never shorter); None for fewer than two."""
    ts = sorted(set(times_ms))
    steps = [b - a for a, b in itertools.pairwise(ts) if b > a]
    if not steps:
        return None
    hours = min(steps) / HOUR_MS
    return hours if 0 < hours <= 24 else None


def _check(code: int, msg: str, what: str, channel: str = "other") -> None:
    if code != 0:
        raise VenueError(f"{what}: BingX error {code}: {msg[:200]}", channel)


class BingxRest:
    """The REST requests of the BingX swap market; mixed into ``BingxFeed``."""

    market: Market
    venue: str
    funding_hours: dict[str, float]
    marks: dict[str, float]
    last_price: dict[str, float]
    interval_unknown: int
    _unknown_logged: set[str]

    rest_weights: dict[str, int] = {  # noqa: RUF012 (read-only)
        "instruments": 1, "trades": 1, "open_interest": 1, "premium": 1, "funding_info": 1}

    def rest_headers(self, api_key: str | None) -> dict[str, str] | None:
        """Public data needs no key."""
        return None

    def instrument_paths(self) -> list[str]:
        return [CONTRACTS_PATH]

    def decode_instruments(self, bodies: list[bytes], ts_local: int) -> dict[str, Instrument]:
        """The listed (status 1) USDT- and USDC-margined perpetuals, by symbol: linear, sizes
        in base units (contract size 1), tick and lot from the precisions."""
        out: dict[str, Instrument] = {}
        for body in bodies:
            try:
                listing = CONTRACTS_DECODER.decode(body)
            except (msgspec.DecodeError, ValueError) as exc:
                raise DecodeError(f"contracts: {exc}") from None
            _check(listing.code, listing.msg, "contracts")
            for c in listing.data:
                if c.status != LISTED or "-" not in c.symbol:
                    continue
                out[c.symbol] = Instrument(
                    self.venue, c.symbol, "bingx", "perpetual", c.asset, c.currency, False, 1.0,
                    10.0 ** -c.pricePrecision, 10.0 ** -c.quantityPrecision, None, ts_local)
        return out

    def depth_path(self, symbol: str) -> str | None:
        return None  # the subscription sends the snapshot (``action: all``)

    def decode_snapshot(self, body: bytes, symbol: str, ts_local: int) -> BookChange:
        raise DecodeError("BingX book snapshots come on the socket", "depth")

    def trades_path(self, symbol: str, from_id: int, limit: int = 1000) -> str | None:
        return None  # no trade ids

    def recent_trades_path(self, symbol: str) -> str | None:
        return f"{TRADES_PATH}?symbol={symbol}&limit={TRADES_LIMIT}"

    def older_trades_path(self, symbol: str, before_id: str) -> str | None:
        return None  # public history pages by id only (v1 historicalTrades needs a key)

    def decode_trades(self, body: bytes, symbol: str, ts_local: int) -> list[Trade]:
        """A recent-trades page as the stream's trades (ids: module doc), oldest first."""
        try:
            page = REST_TRADES_DECODER.decode(body)
        except (msgspec.DecodeError, ValueError) as exc:
            raise DecodeError(f"trades {symbol}: {exc}", "trades") from None
        _check(page.code, page.msg, f"trades {symbol}", "trades")
        rows = sorted(page.data or [], key=lambda t: t.time)
        seen: Counter[tuple[int, bool, float, float]] = Counter()
        out = []
        for t in rows:
            key = (t.time, t.isBuyerMaker, t.price, t.qty)
            n = seen[key]
            seen[key] = n + 1
            out.append(Trade(self.venue, symbol, t.time * MS, ts_local,
                             trade_key(t.time, t.isBuyerMaker, t.price, t.qty, n), t.price,
                             t.qty, "sell" if t.isBuyerMaker else "buy"))
        return out

    def open_interest_path(self, symbol: str) -> str | None:
        return f"{OPEN_INTEREST_PATH}?symbol={symbol}"

    def decode_open_interest(
        self, body: bytes, ts_local: int, instrument: Instrument | None, mark: float | None
    ) -> OpenInterest:
        """Open interest in coins (the USDT value over the mark) and its USD value."""
        try:
            doc = OPEN_INTEREST_DECODER.decode(body)
        except (msgspec.DecodeError, ValueError) as exc:
            raise DecodeError(f"open interest: {exc}", "openInterest") from None
        _check(doc.code, doc.msg, "open interest", "openInterest")
        d = doc.data
        if d is None:
            raise DecodeError("open interest: no data", "openInterest")
        # the mark (the runner's, else the last polled or streamed), else the last trade's
        # price: the coins are an estimate until a mark is known
        mark = mark or self.marks.get(d.symbol) or self.last_price.get(d.symbol)
        if not mark:
            raise DecodeError(f"open interest {d.symbol}: no price yet to turn its USDT "
                              "value into coins", "openInterest")
        return OpenInterest(self.venue, d.symbol, d.time * MS, ts_local, d.openInterest / mark,
                            d.openInterest)

    def funding_info_path(self) -> str | None:
        return PREMIUM_PATH  # every symbol's row, with its fundingIntervalHours

    def decode_funding_info(self, body: bytes) -> dict[str, float]:
        """Every row's interval; its mark is kept too (the funding info is read before the
        streams start: the first open interest polled has a price to be turned into coins)."""
        rows = self._premiums(body, "funding info")
        for p in rows:
            self.marks.setdefault(p.symbol, p.markPrice)
        return {p.symbol: p.fundingIntervalHours for p in rows
                if p.fundingIntervalHours is not None}

    def premium_path(self, symbol: str) -> str | None:
        return f"{PREMIUM_PATH}?symbol={symbol}"

    def decode_premium(self, body: bytes, symbol: str, ts_local: int) -> list[DerivativeTicker]:
        """Mark, index and funding (rate, next time, interval: module doc) of a symbol. The
        answer carries no time: ``ts_exchange`` is the local receipt time."""
        out = []
        for p in self._premiums(body, f"premiumIndex {symbol}"):
            if p.symbol != symbol:
                raise DecodeError(f"premiumIndex {symbol}: a row of {p.symbol[:40]!r}",
                                  "markPrice")
            hours = p.fundingIntervalHours
            if hours is not None:
                self.funding_hours[symbol] = hours
            else:
                hours = self.funding_hours.get(symbol)
                if hours is None:
                    self.interval_unknown += 1
                    if symbol not in self._unknown_logged:
                        self._unknown_logged.add(symbol)
                        log.warning("%s %s: no funding interval in premiumIndex nor the "
                                    "funding info: left unknown", self.venue, symbol)
            self.marks[symbol] = p.markPrice
            out.append(DerivativeTicker(
                self.venue, symbol, ts_local, ts_local, mark_price=p.markPrice,
                index_price=p.indexPrice, funding_rate=p.lastFundingRate,
                next_funding_time=p.nextFundingTime * MS, funding_interval_hours=hours))
        return out

    def _premiums(self, body: bytes, what: str) -> list[Premium]:
        try:
            doc = PREMIUM_DECODER.decode(body)
        except (msgspec.DecodeError, ValueError) as exc:
            raise DecodeError(f"{what}: {exc}", "markPrice") from None
        _check(doc.code, doc.msg, what, "markPrice")
        if doc.data is None:
            return []
        return doc.data if isinstance(doc.data, list) else [doc.data]

    def funding_history_path(self, symbol: str, limit: int = 10) -> str:
        return f"{FUNDING_HISTORY_PATH}?symbol={symbol}&limit={limit}"

    def decode_funding_history(self, body: bytes, symbol: str) -> float | None:
        """The interval of a symbol from its settled funding times (``interval_from_history``);
        stored as the symbol's funding hours when found."""
        try:
            doc = FUNDING_HISTORY_DECODER.decode(body)
        except (msgspec.DecodeError, ValueError) as exc:
            raise DecodeError(f"funding history {symbol}: {exc}", "markPrice") from None
        _check(doc.code, doc.msg, f"funding history {symbol}", "markPrice")
        hours = interval_from_history([r.fundingTime for r in doc.data or []
                                       if r.symbol == symbol])
        if hours is not None:
            self.funding_hours[symbol] = hours
        return hours
