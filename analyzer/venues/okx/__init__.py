"""OKX v5: spot, perpetual swaps and dated futures (linear and inverse).

Docs: https://www.okx.com/docs-v5/en/

``spec``: markets, limits and fees; ``schemas``: raw frames and bodies; ``decode``: streams,
decoding, book rules and checksum; ``rest``: the instrument listing; ``emulate``: the local
exchange's side.
"""

from analyzer.venues.base import Venue
from analyzer.venues.bounds import (
              MAX_FUNDING_HOURS,
              MAX_FUNDING_RATE,
              MAX_ID,
              MAX_MS,
              MAX_PRICE,
              MAX_SIZE,
)
from analyzer.venues.okx.decode import OkxFeed, OkxRules, book_checksum
from analyzer.venues.okx.spec import DOCS, MARKETS

VENUE = Venue(name="okx", markets=MARKETS, feed=OkxFeed, docs=DOCS,
              emulator="analyzer.venues.okx.emulate")

__all__ = [
    "MARKETS",
    "MAX_FUNDING_HOURS",
    "MAX_FUNDING_RATE",
    "MAX_ID",
    "MAX_MS",
    "MAX_PRICE",
    "MAX_SIZE",
    "VENUE",
    "OkxFeed",
    "OkxRules",
    "book_checksum",
]
