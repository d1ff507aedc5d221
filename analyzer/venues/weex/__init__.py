"""WEEX: USDT-margined perpetual futures, contract API V3.

Docs: https://www.weex.com/api-doc/contract/Websocket/websocket-intro

``spec``: the market, limits, heartbeat and fees; ``schemas``: raw frames and bodies;
``decode``: streams, decoding, the book rule, the heartbeat's answer, and the rule of the
reconnect's trade backfill (REST ids are not the socket's UUIDs: REST trades are matched to the
socket's by millisecond, price, size and side, and only the hole between the old connection's
last trade and the new one's first is kept; ``trades``); ``rest``: the listing, funding over
``premiumIndex`` (and the unit of its interval), open interest, recent trades; ``emulate``: the
local exchange's side. Spot (``api-spot.weex.com``, ``wss://ws-spot.weex.com/v3/ws``) is not
collected yet.
"""

from analyzer.venues.base import Venue
from analyzer.venues.weex.decode import WeexFeed, WeexRules
from analyzer.venues.weex.spec import DOCS, MARKETS

VENUE = Venue("weex", MARKETS, WeexFeed, docs=DOCS, emulator="analyzer.venues.weex.emulate")

__all__ = ["MARKETS", "VENUE", "WeexFeed", "WeexRules"]
