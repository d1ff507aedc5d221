"""BingX: the USDT-M perpetual swap market (``bingx_swap``).

Docs: https://bingx-api.github.io/docs/#/en-us/swapV2/socket/

``spec``: the market, limits and fees; ``schemas``: raw frames and bodies; ``decode``: streams,
gzip, heartbeat, decoding and the book rule; ``rest``: listing, funding, mark and index, open
interest, recent trades; ``emulate``: the local exchange's side.
"""

from analyzer.venues.base import Venue
from analyzer.venues.bingx.decode import BingxFeed, BingxRules
from analyzer.venues.bingx.spec import DOCS, MARKETS

VENUE = Venue(name="bingx", markets=MARKETS, feed=BingxFeed, docs=DOCS,
              emulator="analyzer.venues.bingx.emulate")

__all__ = ["MARKETS", "VENUE", "BingxFeed", "BingxRules"]
