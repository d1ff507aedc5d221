"""Binance: spot, USDⓈ-M and COIN-M futures.

``spec``: markets, limits and fees; ``schemas``: raw frames and bodies; ``decode``: streams,
decoding and book rules; ``rest``: REST paths, weights and bodies; ``emulate``: the local
exchange's side.
"""

from analyzer.venues.base import Venue
from analyzer.venues.binance.decode import BinanceFeed, FuturesRules, SpotRules
from analyzer.venues.binance.spec import DOCS, MARKETS, BinanceMarket
from analyzer.venues.bounds import (
              MAX_FUNDING_HOURS,
              MAX_FUNDING_RATE,
              MAX_ID,
              MAX_MS,
              MAX_PRICE,
              MAX_SIZE,
)

VENUE = Venue("binance", MARKETS, BinanceFeed, docs=DOCS,
              emulator="analyzer.venues.binance.emulate")

__all__ = [
    "MARKETS",
    "MAX_FUNDING_HOURS",
    "MAX_FUNDING_RATE",
    "MAX_ID",
    "MAX_MS",
    "MAX_PRICE",
    "MAX_SIZE",
    "VENUE",
    "BinanceFeed",
    "BinanceMarket",
    "FuturesRules",
    "SpotRules",
]
