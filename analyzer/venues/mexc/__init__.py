"""MEXC: the contract (futures) market's USDT-margined perpetuals.

Docs: https://mexcdevelop.github.io/apidocs/contract_v1_en/

``spec``: the market, limits and fees; ``schemas``: raw frames and bodies; ``decode``: streams,
decoding and the book rule; ``rest``: paths and bodies (listing, snapshots, depth commits,
deals, funding); ``emulate``: the local exchange's side. MEXC's spot market is not offered: its
websocket sends protobuf only (``spec``).
"""

from analyzer.venues.base import Venue
from analyzer.venues.mexc.decode import MexcFeed, MexcRules
from analyzer.venues.mexc.spec import DOCS, MARKETS

VENUE = Venue(name="mexc", markets=MARKETS, feed=MexcFeed, docs=DOCS,
              emulator="analyzer.venues.mexc.emulate")

__all__ = ["MARKETS", "VENUE", "MexcFeed", "MexcRules"]
