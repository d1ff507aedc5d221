"""MEXC: the contract (futures) market's USDT-margined perpetuals (``mexc_futures``) and the
spot market (``mexc_spot``), so that a spot-perp carry can be formed on one venue.

Docs: https://mexcdevelop.github.io/apidocs/contract_v1_en/
      https://mexcdevelop.github.io/apidocs/spot_v3_en/

``spec``: the markets, limits and fees; ``schemas``: raw frames and bodies; ``decode``: the
contract market's streams, decoding and the book rule of both markets; ``rest``: contract paths
and bodies (listing, snapshots, depth commits, deals, funding); ``spot``: the spot market's
streams, decoding and REST (its feed class, which ``MexcFeed`` builds for a spot market);
``protobuf``: the wire format of spot's frames; ``emulate``: the local exchange's side of both.
"""

from analyzer.venues.base import Venue
from analyzer.venues.mexc.decode import MexcFeed, MexcRules
from analyzer.venues.mexc.spec import DOCS, MARKETS

VENUE = Venue(name="mexc", markets=MARKETS, feed=MexcFeed, docs=DOCS,
              emulator="analyzer.venues.mexc.emulate")

__all__ = ["MARKETS", "VENUE", "MexcFeed", "MexcRules"]
