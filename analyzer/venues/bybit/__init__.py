"""Bybit v5: spot, linear (USDT and USDC perpetuals and futures) and inverse contracts.

Docs: https://bybit-exchange.github.io/docs/v5/intro

``spec``: markets, limits and fees; ``schemas``: raw frames and bodies; ``decode``: topics,
decoding and the book rule; ``rest``: the listing, weights and rate-limit headers;
``emulate``: the local exchange's side.
"""

from analyzer.venues.base import Venue
from analyzer.venues.bybit.decode import BybitFeed, WsBookRules
from analyzer.venues.bybit.spec import DOCS, MARKETS

VENUE = Venue("bybit", MARKETS, BybitFeed, docs=DOCS, emulator="analyzer.venues.bybit.emulate")

__all__ = ["MARKETS", "VENUE", "BybitFeed", "WsBookRules"]
