"""Binance's REST side: paths, weights, headers, and the bodies it answers with.

Docs: https://developers.binance.com/docs/derivatives/usds-margined-futures/market-data/rest-api
Weights: a 1000-level depth snapshot costs 20 (futures) or 50 (spot); historical trades 20;
open interest and funding info 1; exchangeInfo 20 (futures) or 20 (spot). The used weight is
reported in ``X-MBX-USED-WEIGHT-1M``; a 429 asks to wait (``Retry-After``), a 418 is an IP ban.
"""

from __future__ import annotations

import msgspec

from analyzer.events import BookChange, Instrument, OpenInterest, Trade
from analyzer.venues.base import DecodeError
from analyzer.venues.binance.schemas import (
    FAR_FUTURE_MS,
    ExchangeInfo,
    agg_trades_decoder,
    funding_decoder,
    info_decoder,
    oi_decoder,
    snapshot_decoder,
    trades_decoder,
)
from analyzer.venues.binance.spec import BinanceMarket
from analyzer.venues.bounds import MS


class BinanceRest:
    """The REST requests of one Binance market; mixed into ``BinanceFeed``."""

    market: BinanceMarket
    venue: str
    trade_stream: str
    snapshot_levels: int

    @property
    def rest_weights(self) -> dict[str, int]:
        return {"depth": self.market.depth_weight, "trades": 20, "instruments": 20,
                "open_interest": 1, "funding_info": 1}

    def rest_headers(self, api_key: str | None) -> dict[str, str] | None:
        """The API key unlocks futures' historicalTrades (trade backfill)."""
        return {"X-MBX-APIKEY": api_key} if api_key else None

    def depth_path(self, symbol: str) -> str:
        return f"{self.market.rest_prefix}/depth?symbol={symbol}&limit={self.snapshot_levels}"

    def decode_snapshot(self, body: bytes, symbol: str, ts_local: int) -> BookChange:
        try:
            s = snapshot_decoder.decode(body)
        except (msgspec.DecodeError, ValueError) as exc:
            raise DecodeError(f"depth snapshot {symbol}: {exc}", "depth") from None
        L = s.lastUpdateId
        return BookChange(self.venue, symbol, s.E * MS, ts_local, True, s.bids, s.asks, L, L)

    def trades_path(self, symbol: str, from_id: int, limit: int = 1000) -> str:
        endpoint = "aggTrades" if self.trade_stream == "aggTrade" else "historicalTrades"
        return (
            f"{self.market.rest_prefix}/{endpoint}?symbol={symbol}&fromId={from_id}&limit={limit}"
        )

    def recent_trades_path(self, symbol: str) -> str | None:
        return None  # trade ids rise by one: the backfill asks from the next id on

    def older_trades_path(self, symbol: str, before_id: str) -> str | None:
        return None

    def decode_trades(self, body: bytes, symbol: str, ts_local: int) -> list[Trade]:
        """A REST trades page (for backfilling trades missed across a reconnect)."""
        v = self.venue
        try:
            if self.trade_stream == "aggTrade":
                return [
                    Trade(v, symbol, t.T * MS, ts_local, str(t.a), t.p, t.q,
                          "sell" if t.m else "buy", "aggTrade")
                    for t in agg_trades_decoder.decode(body)
                ]
            return [
                Trade(v, symbol, t.time * MS, ts_local, str(t.id), t.price, t.qty,
                      "sell" if t.isBuyerMaker else "buy")
                for t in trades_decoder.decode(body)
            ]
        except (msgspec.DecodeError, ValueError) as exc:
            raise DecodeError(f"trades {symbol}: {exc}", "trades") from None

    def open_interest_path(self, symbol: str) -> str:
        return f"{self.market.rest_prefix}/openInterest?symbol={symbol}"

    def decode_open_interest(
        self, body: bytes, ts_local: int, instrument: Instrument | None, mark: float | None
    ) -> OpenInterest:
        try:
            oi = oi_decoder.decode(body)
        except (msgspec.DecodeError, ValueError) as exc:
            raise DecodeError(f"openInterest: {exc}", "openInterest") from None
        value: float | None = None
        if instrument is not None and instrument.inverse:
            value = oi.openInterest * instrument.contract_size  # contracts of N USD
        elif mark is not None:
            value = oi.openInterest * mark  # base units at the mark (USDT ~ USD)
        return OpenInterest(self.venue, oi.symbol, oi.time * MS, ts_local, oi.openInterest, value)

    def funding_info_path(self) -> str | None:
        # both futures markets publish each perpetual's interval (COIN-M's change too: an
        # hourly perpetual read as 8 h would understate its annualised funding 8 times)
        return None if self.market.is_spot else f"{self.market.rest_prefix}/fundingInfo"

    def decode_funding_info(self, body: bytes) -> dict[str, float]:
        try:
            return {f.symbol: f.fundingIntervalHours for f in funding_decoder.decode(body)}
        except (msgspec.DecodeError, ValueError) as exc:
            raise DecodeError(f"fundingInfo: {exc}", "markPrice") from None

    def instrument_paths(self) -> list[str]:
        return [f"{self.market.rest_prefix}/exchangeInfo"]

    def decode_instruments(self, bodies: list[bytes], ts_local: int) -> dict[str, Instrument]:
        out: dict[str, Instrument] = {}
        for body in bodies:
            try:
                info = info_decoder.decode(body)
            except (msgspec.DecodeError, ValueError) as exc:
                raise DecodeError(f"exchangeInfo: {exc}") from None
            self._instruments(info, ts_local, out)
        return out

    def _instruments(self, info: ExchangeInfo, ts_local: int, out: dict[str, Instrument]) -> None:
        for s in info.symbols:
            if (s.status or s.contractStatus or "TRADING") != "TRADING":
                continue  # settling, delivered, pending listing: nothing to follow
            tick = next((f.tickSize for f in s.filters if f.filterType == "PRICE_FILTER"), 0.0)
            lot = next((f.stepSize for f in s.filters if f.filterType == "LOT_SIZE"), 0.0)
            ctype = s.contractType
            if self.market.is_spot:
                market, expiry = "spot", None
            elif ctype == "PERPETUAL" or not s.deliveryDate or s.deliveryDate >= FAR_FUTURE_MS:
                market, expiry = "perpetual", None
            else:
                market, expiry = "future", s.deliveryDate * MS
            inverse = self.market.kind == "coinm"
            out[s.symbol] = Instrument(
                self.venue,
                s.symbol,
                "binance",
                market,
                s.baseAsset,
                s.quoteAsset,
                inverse,
                s.contractSize if inverse else 1.0,
                tick,
                lot,
                expiry,
                ts_local,
            )
