"""Bybit v5 REST: the instrument listing, recent trades, request weights and rate-limit headers.

Docs: https://bybit-exchange.github.io/docs/v5/market/instrument
      https://bybit-exchange.github.io/docs/v5/market/recent-trade
      https://bybit-exchange.github.io/docs/v5/rate-limit

Asked for: the listing, and after a reconnect each symbol's recent trades (Bybit's trade ids,
UUIDs on derivatives, allow no backfill by id: the collector keeps those from its last trade's
time on). Book snapshots come on the websocket, open interest and funding on the tickers
stream. The funding interval of each perpetual comes with the listing (``fundingInterval``,
minutes).
"""

from __future__ import annotations

import logging

import msgspec

from analyzer.events import Instrument, Trade
from analyzer.venues.base import DecodeError, VenueError
from analyzer.venues.bounds import MS
from analyzer.venues.bybit.schemas import instruments_decoder, recent_trades_decoder

log = logging.getLogger(__name__)

INSTRUMENTS_PATH = "/v5/market/instruments-info"
# "limit: [1, 1000]. Default: 500 ... There are now more than 500 linear symbols ... you will
# need to use cursor for pagination or limit". Spot "does not support pagination, so limit,
# cursor are invalid". One page of 1000 holds every category's listing today; a body that
# still names a next page is logged (the interface asks for paths before any body is read).
PAGE_LIMIT = 1000

RECENT_TRADES_PATH = "/v5/market/recent-trade"
# "limit: spot: [1,60], default: 60; others: [1,1000], default: 500" (docs "Get Public Recent
# Trading History"): the most a request returns, newest first.
RECENT_TRADES_LIMIT = {"spot": 60, "linear": 1000, "inverse": 1000}

# Every public request counts 1 against the IP limit of 600 per 5 s (docs "Rate Limit Rules").
REST_WEIGHTS = {"instruments": 1, "trades": 1}

# Sent with every response, per UID and endpoint (docs "Rate Limit Rules"): the remaining
# requests, the limit, and when it resets (ms). The IP limit has no header: a breach answers
# HTTP 403 "access too frequent", after which every session must wait at least 10 minutes.
LIMIT_STATUS_HEADER = "X-Bapi-Limit-Status"
LIMIT_HEADER = "X-Bapi-Limit"
LIMIT_RESET_HEADER = "X-Bapi-Limit-Reset-Timestamp"
IP_BAN_STATUS = 403
IP_BAN_SECONDS = 600

_MARKET = {
    "LinearPerpetual": "perpetual",
    "InversePerpetual": "perpetual",
    "LinearFutures": "future",
    "InverseFutures": "future",
}


def instrument_paths(category: str) -> list[str]:
    if category == "spot":
        return [f"{INSTRUMENTS_PATH}?category=spot"]
    return [f"{INSTRUMENTS_PATH}?category={category}&limit={PAGE_LIMIT}"]


def decode_instruments(
    bodies: list[bytes], venue: str, category: str, ts_local: int,
    funding_hours: dict[str, float] | None = None,
) -> dict[str, Instrument]:
    """The ``Trading`` instruments of the pages ``bodies``; perpetuals' funding intervals go
    into ``funding_hours`` (minutes -> hours)."""
    out: dict[str, Instrument] = {}
    inverse = category == "inverse"
    for body in bodies:
        try:
            page = instruments_decoder.decode(body)
        except (msgspec.DecodeError, ValueError) as exc:
            raise DecodeError(f"instruments-info {category}: {exc}") from None
        if page.retCode != 0 or page.result is None:
            raise VenueError(f"instruments-info {category}: {page.retCode} {page.retMsg}")
        if page.result.nextPageCursor and category != "spot":
            log.warning("instruments-info %s: more than %d instruments, later pages unread",
                        category, PAGE_LIMIT)
        for s in page.result.items:
            if s.status != "Trading":
                continue  # pre-launch, delivering, closed: nothing to follow
            if category == "spot":
                market, expiry, lot = "spot", None, s.lotSizeFilter.basePrecision
            else:
                market = _MARKET.get(s.contractType)
                if market is None:
                    raise DecodeError(f"instruments-info {s.symbol}: contractType "
                                      f"{s.contractType!r}")
                # a perpetual's deliveryTime is a planned delisting, not an expiry
                expiry = s.deliveryTime * MS if market == "future" and s.deliveryTime else None
                lot = s.lotSizeFilter.qtyStep
                if funding_hours is not None and market == "perpetual" and s.fundingInterval:
                    funding_hours[s.symbol] = s.fundingInterval / 60
            out[s.symbol] = Instrument(
                venue, s.symbol, "bybit", market, s.baseCoin, s.quoteCoin, inverse,
                1.0,  # linear: 1 base unit; inverse: 1 USD a contract (BTCUSD, ETHUSD ...)
                s.priceFilter.tickSize, lot, expiry, ts_local,
            )
    return out


def recent_trades_path(category: str, symbol: str) -> str:
    return (f"{RECENT_TRADES_PATH}?category={category}&symbol={symbol}"
            f"&limit={RECENT_TRADES_LIMIT[category]}")


def decode_trades(body: bytes, venue: str, symbol: str, ts_local: int) -> list[Trade]:
    """A recent-trade body as the Trades the publicTrade stream makes of the same executions
    (same id, side, units and kind), oldest first."""
    try:
        page = recent_trades_decoder.decode(body)
    except (msgspec.DecodeError, ValueError) as exc:
        raise DecodeError(f"recent-trade {symbol}: {exc}", "trades") from None
    if page.retCode != 0 or page.result is None:
        raise VenueError(f"recent-trade {symbol}: {page.retCode} {page.retMsg}", "trades")
    out = []
    for t in reversed(page.result.items):
        if t.symbol != symbol:
            raise DecodeError(f"recent-trade {symbol}: a trade of {t.symbol!r}", "trades")
        out.append(Trade(venue, symbol, t.time * MS, ts_local, t.execId, t.price, t.size,
                         "buy" if t.side == "Buy" else "sell",
                         "block_trade" if t.isBlockTrade else "trade"))
    return out


def decode_funding_hours(body: bytes, category: str) -> dict[str, float]:
    """{symbol: hours} of the perpetuals in one instruments-info page."""
    hours: dict[str, float] = {}
    decode_instruments([body], "", category, 0, hours)
    return hours
