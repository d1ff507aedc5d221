"""WEEX's REST side (contract API V3 and spot API V3): the listing, funding over
``premiumIndex``, open interest, recent trades.

Docs: https://www.weex.com/api-doc/contract/Market_API/GetContractInfo
      https://www.weex.com/api-doc/contract/Market_API/GetCurrentFundingRate
      https://www.weex.com/api-doc/contract/Market_API/GetOpenInterest
      https://www.weex.com/api-doc/contract/Market_API/GetRecentTrades

Weights (docs, ``Weight(IP)``): exchangeInfo 1, premiumIndex 1, openInterest 2, trades 5.

Listing (``GET /capi/v3/market/exchangeInfo``). Every symbol is a USDT-margined perpetual
(``forwardContractFlag`` true; a coin-margined one would be skipped), no expiry. The body has no
status field for contracts (spot's has ``status``): a listed symbol is live, one whose status is
given and is not ``TRADING`` is skipped, and a delisted one that is still subscribed sends an
empty snapshot (``decode``: a dead stream). ``tick_size`` is ``10**-pricePrecision``;
``contractVal`` ("Contract size") is the base units a contract is worth, which is also the size
step (ETHUSDT 0.001 with ``quantityPrecision`` 3; ccxt's recorded body): ``lot_size`` and
``contract_value``. Book and trade sizes on the socket are base units already (trade ``v`` =
``p`` x ``q`` exactly), so nothing on the socket is multiplied; ``contract_size`` is 1.

Open interest (``GET /capi/v3/market/openInterest``): "Current open interest (contracts)"
(docs): contracts x ``contractVal`` in base units, valued at the last mark (USDT ~ USD), as the
other venues' linear contracts are. This is the one size WEEX gives in contracts (the rule is
``oi_base`` here, one place to change if live numbers show it is base units already).

Funding (``GET /capi/v3/market/premiumIndex``, polled: WEEX streams no funding): mark, index,
``lastFundingRate`` (the rate of the settlement at ``nextFundingTime``, as Binance's field of
the same name that this body copies; ``forecastFundingRate`` is the one after) and the interval
``collectCycle``. Its unit: the docs say "Funding interval in minutes" and their sample is 480 (8
h); a third-party summary read it as hours (MEXC's ``collectCycle`` is hours). The rule
(``cycle_hours``): a whole number of hours from 1 to 24 in minutes (60, 120, ... 1440) is
minutes, as documented; else a value from 1 to 24 is hours (what a unit change would look
like), counted as ``funding_cycle_hours``; anything else fits neither: counted as
``funding_cycle_unknown``, logged, and the interval is left unknown (the funding rate is still
stored, never annualised by a guess).

Trades (``GET /capi/v3/market/trades``, weight 5): the latest ``limit`` trades (1 to 1,000,
default 100; no paging back, no time range): ``id`` (a String: digits in the docs' sample,
not the socket's UUID ``t``), ``time`` (ms), ``price``, ``qty`` (base units, as the socket's
``q``), ``isBuyerMaker`` (the socket's ``m``). The order of the list is not documented: it is
sorted here. It is the reconnect's backfill, 1,000 trades asked; which of them are kept and
under which id is the rule of ``decode``'s module doc ("Backfill").

Spot (``weex_spot``, host ``api-spot.weex.com``). Docs:
https://www.weex.com/api-doc/spot/ConfigAPI/GetProductInfo (``GET /api/v3/exchangeInfo``),
https://www.weex.com/api-doc/spot/MarketDataAPI/GetTradeData (``GET /api/v3/market/trades``),
https://www.weex.com/api-doc/spot/MarketDataAPI/GetDepthData. Weights (IP): exchangeInfo 20,
trades 25, depth 5 (JKorf/Weex.Net ``WeexRestClientSpotApiExchangeData``; ccxt's table writes
each times 5). The listing's entries (ccxt's recorded body):
``symbol``, ``status`` ("TRADING"), ``baseAsset``, ``quoteAsset``, ``tickSize`` and
``stepSize`` (the price and size steps), ``enableTrade``. A symbol whose status is given and is
not ``TRADING``, or whose ``enableTrade`` is false, is skipped. When a step is missing (JKorf's
sample body has none) it is ``10**-quoteAssetPrecision`` / ``10**-baseAssetPrecision``, counted
as ``spot_steps_from_precision``; with neither, the symbol is skipped and counted
(``spot_steps_unknown``): a tick or lot made up would be a wrong instrument. Spot sizes are base
units: ``contract_size`` and ``contract_value`` 1. Recent trades: the contract's body (ccxt
parses both with one ``parseTrade``; its sample's ``id`` is a UUID, JKorf's digits): the same
decoder and the same backfill rule. No funding, mark, index or open interest on spot: those
paths are None.
"""

from __future__ import annotations

import logging

import msgspec

from analyzer.events import BookChange, DerivativeTicker, Instrument, OpenInterest, Trade
from analyzer.venues.base import DecodeError, Market
from analyzer.venues.bounds import MS
from analyzer.venues.weex.schemas import (
    EXCHANGE_INFO_DECODER,
    OPEN_INTEREST_DECODER,
    PREMIUM_DECODER,
    RECENT_TRADES_DECODER,
    SPOT_EXCHANGE_INFO_DECODER,
    Premium,
    SpotSymbolInfo,
)
from analyzer.venues.weex.trades import RECENT_TRADES, TradeLedger

log = logging.getLogger(__name__)

INFO_PATH = "/capi/v3/market/exchangeInfo"
PREMIUM_PATH = "/capi/v3/market/premiumIndex"
OPEN_INTEREST_PATH = "/capi/v3/market/openInterest"
TRADES_PATH = "/capi/v3/market/trades"
SPOT_INFO_PATH = "/api/v3/exchangeInfo"
SPOT_TRADES_PATH = "/api/v3/market/trades"
# (spot asks none of premium, open interest or funding info: their keys are there for the core)
SPOT_WEIGHTS = {"instruments": 20, "trades": 25, "depth": 5, "premium": 1, "open_interest": 1,
                "funding_info": 1}
HOUR_MINUTES = 60
MAX_HOURS = 24


def cycle_hours(minutes: int) -> tuple[float | None, str | None]:
    """The funding interval in hours of a ``collectCycle``, and the case it was (None: the
    documented one, minutes): the rule of the module doc."""
    if minutes % HOUR_MINUTES == 0 and 1 <= minutes // HOUR_MINUTES <= MAX_HOURS:
        return minutes / HOUR_MINUTES, None
    if 1 <= minutes <= MAX_HOURS:
        return float(minutes), "funding_cycle_hours"
    return None, "funding_cycle_unknown"


def spot_steps(s: SpotSymbolInfo) -> tuple[float | None, float | None, str | None]:
    """The tick and lot of a spot listing entry, and the case it was (None: both given; the
    rule of the module doc)."""
    tick, lot = s.tickSize, s.stepSize
    if tick is not None and lot is not None:
        return tick, lot, None
    if tick is None and s.quoteAssetPrecision is not None:
        tick = float(f"1e-{s.quoteAssetPrecision}")
    if lot is None and s.baseAssetPrecision is not None:
        lot = float(f"1e-{s.baseAssetPrecision}")
    if tick is None or lot is None:
        return None, None, "spot_steps_unknown"
    return tick, lot, "spot_steps_from_precision"


def oi_base(contracts: float, contract_val: float) -> float:
    """Open interest in base units of ``contracts`` of ``contract_val`` (module doc)."""
    return contracts * contract_val


class WeexRest:
    """The REST requests of WEEX's futures and spot markets; mixed into ``WeexFeed``."""

    market: Market
    venue: str
    spot: bool
    cases: dict[str, int]
    funding_hours: dict[str, float]
    contract_val: dict[str, float]
    marks: dict[str, float]
    ledgers: dict[str, TradeLedger]

    rest_weights: dict[str, int] = {  # noqa: RUF012 (read-only)
        "instruments": 1, "premium": 1, "open_interest": 2, "trades": 5, "depth": 1,
        "funding_info": 1,
    }

    def count(self, case: str) -> None:
        self.cases[case] = self.cases.get(case, 0) + 1

    def rest_headers(self, api_key: str | None) -> dict[str, str] | None:
        """Public data needs no key (the REST client sends a ``User-Agent``, as WEEX wants)."""
        return None

    def instrument_paths(self) -> list[str]:
        return [SPOT_INFO_PATH if self.spot else INFO_PATH]

    def decode_instruments(self, bodies: list[bytes], ts_local: int) -> dict[str, Instrument]:
        if self.spot:
            return self._spot_instruments(bodies, ts_local)
        out: dict[str, Instrument] = {}
        for body in bodies:
            try:
                info = EXCHANGE_INFO_DECODER.decode(body)
            except (msgspec.DecodeError, ValueError) as exc:
                raise DecodeError(f"exchangeInfo: {exc}") from None
            for s in info.symbols:
                if not s.forwardContractFlag or s.status not in ("", "TRADING"):
                    continue
                tick = float(f"1e-{s.pricePrecision}")
                out[s.symbol] = Instrument(
                    self.venue, s.symbol, "weex", "perpetual", s.baseAsset, s.quoteAsset, False,
                    1.0, tick, s.contractVal, None, ts_local, contract_value=s.contractVal,
                )
        return out

    def _spot_instruments(self, bodies: list[bytes], ts_local: int) -> dict[str, Instrument]:
        out: dict[str, Instrument] = {}
        for body in bodies:
            try:
                info = SPOT_EXCHANGE_INFO_DECODER.decode(body)
            except (msgspec.DecodeError, ValueError) as exc:
                raise DecodeError(f"exchangeInfo: {exc}") from None
            for s in info.symbols:
                if s.status not in ("", "TRADING") or not s.enableTrade:
                    continue
                tick, lot, case = spot_steps(s)
                if case is not None:
                    self.count(case)
                if tick is None or lot is None:
                    log.warning("%s %s: no tick or size step listed: skipped", self.venue,
                                s.symbol[:40])
                    continue
                out[s.symbol] = Instrument(
                    self.venue, s.symbol, "weex", "spot", s.baseAsset, s.quoteAsset, False,
                    1.0, tick, lot, None, ts_local, contract_value=1.0,
                )
        return out

    def depth_path(self, symbol: str) -> str | None:
        return None  # the subscription sends the snapshot

    def decode_snapshot(self, body: bytes, symbol: str, ts_local: int) -> BookChange:
        raise DecodeError("WEEX book snapshots come on the socket", "depth")

    def trades_path(self, symbol: str, from_id: int, limit: int = 1000) -> str | None:
        return None  # trade ids are UUIDs

    def recent_trades_path(self, symbol: str) -> str | None:
        """The latest trades (``RECENT_TRADES``, the most the venue gives); asked after a
        reconnect, which the symbol's ledger notes: the next trade snapshot is the new
        subscription's (the rule: module doc of ``decode``)."""
        ledger = self.ledgers.get(symbol)
        if ledger is not None:
            ledger.ask()
        path = SPOT_TRADES_PATH if self.spot else TRADES_PATH
        return f"{path}?symbol={symbol}&limit={RECENT_TRADES}"

    def older_trades_path(self, symbol: str, before_id: str) -> str | None:
        return None  # the venue keeps no pages of older trades

    def decode_trades(self, body: bytes, symbol: str, ts_local: int) -> list[Trade]:
        """The recent trades, each under the id it is handed on with (the socket's for a
        trade the socket brought, else the REST ``id``), oldest first, those the new
        subscription brings left out (the rule: module doc of ``decode``)."""
        try:
            rows = RECENT_TRADES_DECODER.decode(body)
        except (msgspec.DecodeError, ValueError) as exc:
            raise DecodeError(f"trades {symbol[:40]}: {exc}", "trades") from None
        ledger = self.ledgers.get(symbol)
        picked = ledger.backfill(rows) if ledger is not None else \
            [(r, str(r.id)) for r in sorted(rows, key=lambda r: r.time)]
        venue = self.venue
        return [Trade(venue, symbol, r.time * MS, ts_local, tid, r.price, r.qty,
                      "sell" if r.isBuyerMaker else "buy") for r, tid in picked]

    def open_interest_path(self, symbol: str) -> str | None:
        return None if self.spot else f"{OPEN_INTEREST_PATH}?symbol={symbol}"

    def decode_open_interest(
        self, body: bytes, ts_local: int, instrument: Instrument | None, mark: float | None
    ) -> OpenInterest:
        try:
            oi = OPEN_INTEREST_DECODER.decode(body)
        except (msgspec.DecodeError, ValueError) as exc:
            raise DecodeError(f"openInterest: {exc}", "openInterest") from None
        size = instrument.contract_value if instrument is not None else \
            self.contract_val.get(oi.symbol)
        if size is None:
            raise DecodeError(f"openInterest {oi.symbol[:40]}: no instrument listed (contract "
                              "size unknown)", "openInterest")
        base = oi_base(oi.openInterest, size)
        mark = mark if mark is not None else self.marks.get(oi.symbol)
        value = base * mark if mark is not None else None
        return OpenInterest(self.venue, oi.symbol, oi.time * MS, ts_local, base, value)

    def funding_info_path(self) -> str | None:
        return None  # the interval comes with every premiumIndex answer

    def decode_funding_info(self, body: bytes) -> dict[str, float]:
        return {}

    def premium_path(self, symbol: str) -> str | None:
        return None if self.spot else f"{PREMIUM_PATH}?symbol={symbol}"

    def decode_premium(self, body: bytes, symbol: str, ts_local: int) -> list[DerivativeTicker]:
        """Mark, index and funding of ``symbol`` (module doc); entries of other symbols (an
        answer for all of them) are ignored."""
        try:
            decoded = PREMIUM_DECODER.decode(body)
        except (msgspec.DecodeError, ValueError) as exc:
            raise DecodeError(f"premiumIndex {symbol[:40]}: {exc}", "markPrice") from None
        entries: list[Premium] = decoded if isinstance(decoded, list) else [decoded]
        out = []
        for p in entries:
            if p.symbol != symbol:
                continue
            hours, case = cycle_hours(p.collectCycle)
            if case is not None:
                self.count(case)
                if case == "funding_cycle_unknown":
                    log.warning("%s %s: collectCycle %d is neither minutes nor hours of a "
                                "funding interval: interval unknown", self.venue, symbol,
                                p.collectCycle)
            if hours is not None:
                self.funding_hours[symbol] = hours
            self.marks[symbol] = p.markPrice
            out.append(DerivativeTicker(
                self.venue, symbol, p.time * MS, ts_local, mark_price=p.markPrice,
                index_price=p.indexPrice, funding_rate=p.lastFundingRate,
                next_funding_time=p.nextFundingTime * MS, funding_interval_hours=hours,
            ))
        return out
