"""A small store written through the analyzer's own writer: instruments as each venue lists
them, quotes, tickers, books and open interest at chosen prices, for the investor tests."""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

from analyzer.events import BookSnapshot, DerivativeTicker, Instrument, OpenInterest, Quote
from analyzer.store import Store

S = 10**9
H = 3600 * S

# contract sizes as the venues list them (linear sizes in coins after decoding: contract_value
# is the coins a venue's contract is worth; inverse contracts are contract_size USD)
INSTRUMENTS = [
    Instrument("binance_spot", "BTCUSDT", "binance", "spot", "BTC", "USDT", False, 1.0, 0.01,
               1e-5),
    Instrument("binance_usdm", "BTCUSDT", "binance", "perpetual", "BTC", "USDT", False, 1.0, 0.1,
               0.001),
    Instrument("binance_coinm", "BTCUSD_PERP", "binance", "perpetual", "BTC", "USD", True, 100.0,
               0.1, 1.0),
    Instrument("okx_swap", "BTC-USDT-SWAP", "okx", "perpetual", "BTC", "USDT", False, 1.0, 0.1,
               0.001, contract_value=0.01),
    Instrument("okx_swap", "BTC-USD-SWAP", "okx", "perpetual", "BTC", "USD", True, 100.0, 0.1,
               1.0),
    Instrument("bybit_inverse", "BTCUSD", "bybit", "perpetual", "BTC", "USD", True, 1.0, 0.5,
               1.0),
    Instrument("mexc_futures", "BTC_USDT", "mexc", "perpetual", "BTC", "USDT", False, 1.0, 0.1,
               0.0001, contract_value=0.0001),
    Instrument("bingx_swap", "BTC-USDT", "bingx", "perpetual", "BTC", "USDT", False, 1.0, 0.1,
               0.0001),
    Instrument("weex_futures", "BTCUSDT", "weex", "perpetual", "BTC", "USDT", False, 1.0, 0.1,
               0.001, contract_value=0.001),
    Instrument("bybit_linear", "BTCUSDT-25DEC26", "bybit", "future", "BTC", "USDT", False, 1.0,
               0.1, 0.001, expiry=None),
    Instrument("binance_spot", "ETHUSDT", "binance", "spot", "ETH", "USDT", False, 1.0, 0.01,
               1e-4),
]


def build(data: Path, price: float = 50_000.0, *, now: int | None = None,
          funding: dict[str, tuple[float, float]] | None = None, age_s: float = 0.0,
          expiry_days: float = 73.0, future_price: float | None = None,
          books: Iterable[tuple[str, str]] = ()) -> int:
    """Write the store; returns its ``now`` (ns). Every derivative's mark and every spot mid is
    ``price`` (ETH: price / 20) unless said; ``funding``: symbol -> (rate per interval, hours);
    ``age_s``: how old the data is; ``books``: (venue, symbol) that get a stored book of ten
    1-coin (or 1,000-contract) levels 1 USD apart a side."""
    now = now or time.time_ns()
    ts = now - int(age_s * S)
    funding = funding or {}
    with Store(data, data / "analyzer.duckdb") as store:
        for inst in INSTRUMENTS:
            if inst.market == "future":
                inst = Instrument(**{f: getattr(inst, f) for f in inst.__struct_fields__}
                                  | {"expiry": now + int(expiry_days * 86400 * S)})
            store.add(inst)
            px = price / 20 if inst.base == "ETH" else price
            if inst.market == "future" and future_price is not None:
                px = future_price
            if inst.market == "spot":
                store.add(Quote(inst.venue, inst.symbol, ts, ts, px - 1, 1.0, px + 1, 1.0))
                continue
            rate, hours = funding.get(inst.symbol, (None, None))
            store.add(DerivativeTicker(
                inst.venue, inst.symbol, ts, ts, mark_price=px, index_price=price,
                funding_rate=rate if inst.market == "perpetual" else None,
                next_funding_time=now + H if rate is not None else None,
                funding_interval_hours=hours))
            store.add(Quote(inst.venue, inst.symbol, ts, ts, px - 0.5, 1.0, px + 0.5, 1.0))
            store.add(OpenInterest(inst.venue, inst.symbol, ts, ts, 1000.0, 1000.0 * px))
        for venue, symbol in books:
            inst = next(i for i in INSTRUMENTS if (i.venue, i.symbol) == (venue, symbol))
            size = 1000.0 if inst.inverse else 1.0
            store.add(BookSnapshot(venue, symbol, ts, ts, 1,
                                   [(price - 0.5 - k, size) for k in range(10)],
                                   [(price + 0.5 + k, size) for k in range(10)]))
    return now
