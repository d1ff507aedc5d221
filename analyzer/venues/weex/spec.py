"""WEEX's USDT-margined perpetual market (contract API V3) and its spot market (spot API V3):
endpoints, limits, heartbeat, fees.

Docs: https://www.weex.com/api-doc/contract/Websocket/websocket-intro (V3: connection and
      subscription limits, ping/pong; mirrored at weikestg.info/api-doc/contract/...)
      https://www.weex.com/api-doc/contract/Market_API/GetContractInfo (weights per request)
Fees: https://weexsupport.zendesk.com/hc/en-us/articles/4415852872601 ("WEEX Spot and Futures
      Trading Fee Calculation": futures maker 0.02 %, taker 0.08 %; spot 0.1 % both, in
      support.weex.com "Guide to Spot and Futures Trading Fees on WEEX")

Spot: https://www.weex.com/api-doc/spot/Websocket/websocket-intro (the same limits: 300
      connection requests per IP per 5 minutes, 100 channels and 240 subscribe operations an
      hour per connection); hosts ``api-spot.weex.com`` and ``ws-spot.weex.com`` (ccxt
      ``ts/src/weex.ts`` and ``ts/src/pro/weex.ts``, JKorf/Weex.Net ``WeexSocketClientSpotApi``).
      Fees: 0.1 % maker and taker at the lowest tier (the support article above; ccxt's
      ``fees.spot`` tiers and the listing's ``takerFeeRate``/``makerFeeRate`` "0.001").

``ws_url`` is the host; ``WeexFeed.ws_endpoint`` appends the public path ``/v3/ws/public`` (the
same on both hosts), so the local exchange serves WEEX under ``<base>/v3/ws/public`` as the venue
does. The V2 protocol (``/v2/ws/public``, Bitget-style ``op``/``args``) sunsets: only V3 is spoken
here.
"""

from __future__ import annotations

from analyzer.venues.base import Fees, Market

DOCS = "https://www.weex.com/api-doc/contract/Websocket/websocket-intro"
WS_URL = "wss://ws-contract.weex.com"
WS_PATH = "/v3/ws/public"
REST_URL = "https://api-contract.weex.com"
SPOT_WS_URL = "wss://ws-spot.weex.com"
SPOT_REST_URL = "https://api-spot.weex.com"

# Default (non-VIP) futures fees; no dated futures, so no settlement fee.
FUTURES_FEES = Fees(taker=0.0008, maker=0.0002)
SPOT_FEES = Fees(taker=0.001, maker=0.001)

# Websocket limits (docs "WebSocket API", V2 page and the V3 one per the nemanull probe):
# - 100 channels a connection, 240 subscribe operations an hour per connection. A connection
#   subscribes with one SUBSCRIBE of all its streams (one operation); a book's resync is an
#   UNSUBSCRIBE and a SUBSCRIBE (two): 119 resyncs an hour per connection stay in the budget.
# - 300 connection attempts per IP per 5 minutes (the connection's capped backoff keeps us far
#   below), at most 20 concurrent connections per IP in V3 (100 on the V2 page).
# - Six refused subscriptions on one socket close it with 1007: a refused stream is never sent
#   again by this feed (``WeexFeed.refused``).
MAX_STREAMS = 100
# Our pace of subscribe messages (none documented per second); the budget is the hourly one.
SUBSCRIBE_PER_SECOND = 2.0
# The server pings ``{"event":"ping"}`` about every 60 s and wants an answer (module doc of
# ``decode``); we also ping it with ``{"method":"PING","id":..}`` every 30 s, answered
# ``{"result":true,"id":..}``: the connection's liveness check (WEEX is not known to answer
# websocket pings). The id is one no subscription uses.
PING_ID = 1_000_000
HEARTBEAT = b'{"method":"PING","id":1000000}'
HEARTBEAT_SECONDS = 30.0
# REST (docs, Weight(IP)): exchangeInfo 1, premiumIndex 1, openInterest 2, depth 1, trades 5;
# the IP budget is 500 weight per 10 s (JKorf/Weex.Net's throttle, 3,000 a minute): each feed
# allows itself 1,000 a minute.
WEIGHT_PER_MINUTE = 1000

MARKETS: dict[str, Market] = {
    "weex_futures": Market(
        "weex_futures", "weex", "futures", WS_URL, REST_URL, is_spot=False, fees=FUTURES_FEES,
        weight_per_minute=WEIGHT_PER_MINUTE, max_streams=MAX_STREAMS,
        max_messages_per_second=SUBSCRIBE_PER_SECOND, heartbeat=HEARTBEAT,
        heartbeat_seconds=HEARTBEAT_SECONDS, snapshot_source="ws",
        # 429 is the documented over-limit answer; no ban status or weight header documented
        ban_statuses=(403, 418), used_weight_header=None,
    ),
    # the spot socket speaks the same V3 protocol (subscribe, acks, refusals, pings) and has the
    # same documented limits; its REST weights are its own (``rest``)
    "weex_spot": Market(
        "weex_spot", "weex", "spot", SPOT_WS_URL, SPOT_REST_URL, is_spot=True, fees=SPOT_FEES,
        weight_per_minute=WEIGHT_PER_MINUTE, max_streams=MAX_STREAMS,
        max_messages_per_second=SUBSCRIBE_PER_SECOND, heartbeat=HEARTBEAT,
        heartbeat_seconds=HEARTBEAT_SECONDS, snapshot_source="ws",
        ban_statuses=(403, 418), used_weight_header=None,
    ),
}
