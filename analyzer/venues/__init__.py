"""Venue modules: one file per venue, registered here by feed id."""

from analyzer.venues.binance import MARKETS as BINANCE_MARKETS
from analyzer.venues.binance import BinanceFeed

# feed id -> (market spec, feed class). Adding a venue: one module and one line per market.
VENUES = {venue: (market, BinanceFeed) for venue, market in BINANCE_MARKETS.items()}

__all__ = ["VENUES"]
