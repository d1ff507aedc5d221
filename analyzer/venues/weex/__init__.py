"""WEEX: USDT-margined perpetual futures (contract API V3, ``weex_futures``) and spot (spot
API V3, ``weex_spot``), so that a spot-perp carry can be formed on one venue.

Docs: https://www.weex.com/api-doc/contract/Websocket/websocket-intro
      https://www.weex.com/api-doc/spot/Websocket/websocket-intro

``spec``: the market, limits, heartbeat and fees; ``schemas``: raw frames and bodies;
``decode``: streams, decoding, the book rule, the heartbeat's answer, and the rule of the
reconnect's trade backfill (REST ids are not the socket's UUIDs: REST trades are matched to the
socket's by millisecond, price, size and side, and only the hole between the old connection's
last trade and the new one's first is kept; ``trades``); ``rest``: the listing, funding over
``premiumIndex`` (and the unit of its interval), open interest, recent trades; ``emulate``: the
local exchange's side (both markets). Spot (``api-spot.weex.com``,
``wss://ws-spot.weex.com/v3/ws/public``) speaks the same V3 socket protocol and is decoded by
the same ``WeexFeed`` and book rule; its own parts (``bookTicker``, the spot listing, REST paths
and weights) and the choices made where the docs are silent are in ``decode``'s module doc
("Spot", "The spot book rule") and ``rest``'s ("Spot"). No real spot frame is recorded.
"""

from analyzer.venues.base import Venue
from analyzer.venues.weex.decode import WeexFeed, WeexRules
from analyzer.venues.weex.spec import DOCS, MARKETS

VENUE = Venue("weex", MARKETS, WeexFeed, docs=DOCS, emulator="analyzer.venues.weex.emulate")

__all__ = ["MARKETS", "VENUE", "WeexFeed", "WeexRules"]
