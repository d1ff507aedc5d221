"""BingX's markets: the USDT-M perpetual swap (``bingx_swap``) and spot (``bingx_spot``):
endpoints, limits, heartbeat and default fees.

Docs: https://bingx-api.github.io/docs/#/en-us/swapV2/socket/ (connect, gzip, Ping/Pong,
      subscribe, limits: "A websocket is limited to a maximum of 200 topics, and 80403 error
      codes will be returned"; FAQ: "there is a subscription rate limit. Please do not exceed
      10/s")
      https://bingx-api.github.io/docs/#/en-us/swapV2/market-api.html (REST market data)
Fees: https://bingx.com/en/support/costs (perpetual futures, standard users: maker 0.02 %,
      taker 0.05 %; the contracts listing's ``makerFeeRate`` / ``takerFeeRate`` say the same)

One socket URL serves USDT-M and USDC-M perpetuals (``wss://open-api-swap.bingx.com/
swap-market``); coin-M (``BTC-USD``) is another product on other hosts and refuses
``@incrDepth``, so it is not a market here. Every server frame, the ``Ping`` included, is a
gzip-compressed binary frame (permessage-deflate is not negotiated): ``BingxFeed.inflate``.
``ws_url`` is the host; ``BingxFeed.ws_endpoint`` appends ``/swap-market``.
The server sends ``Ping`` about every 5 s and closes a client that has not answered ``Pong`` for
about 30 s: ``control`` calls it a ``ping`` and ``reply`` answers the plain text ``Pong``, so
``heartbeat`` is None (we also send websocket pings, which the server answers).

Spot (``bingx_spot``; ``spot.py``): its own socket, ``wss://open-api-ws.bingx.com/market``
(https://bingx-api.github.io/docs/#/en-us/spot/socket/ : gzip frames too, and a JSON ping
``{"ping":"<id>","time":"<text>"}`` about every 5 s, answered ``{"pong":"<id>","time":..}``),
REST under ``/openApi/spot/v1/``. Limits: the spot docs give none of their own; the swap
socket's 200 topics and the FAQ's 10 subscriptions a second (which is about the API as a
whole) are kept. Fees: spot standard users, maker 0.1 %, taker 0.1 %
(https://bingx.com/en/support/costs; ccxt's ``fees.spot`` constant says the same).
"""

from __future__ import annotations

from analyzer.venues.base import Fees, Market

DOCS = "https://bingx-api.github.io/docs/#/en-us/swapV2/socket/"
WS_URL = "wss://open-api-swap.bingx.com"
WS_PATH = "/swap-market"
REST_URL = "https://open-api.bingx.com"

SPOT_WS_URL = "wss://open-api-ws.bingx.com"
SPOT_WS_PATH = "/market"

SWAP_FEES = Fees(taker=0.0005, maker=0.0002)
SPOT_FEES = Fees(taker=0.001, maker=0.001)

# Websocket: 200 topics a socket (the 201st: error 80403), one topic a subscribe request, and
# under 10 subscribe requests a second (FAQ). The collector paces at half the rate it is given
# (a burst of max/2, then one every 2/max s): 10 gives 5 a second.
MAX_STREAMS = 200
SUBSCRIBE_PER_SECOND = 10.0
# REST: public market endpoints answer ``X-RateLimit-Requests-Remain: 499`` with a window of
# 10 s, i.e. 500 requests per 10 s per IP (3,000 a minute); we allow ourselves 1,200 a minute.
# 429 is rate limiting; 418 a ban after continued 429s; 403 the firewall's 5-minute ban.
WEIGHT_PER_MINUTE = 1200

MARKETS: dict[str, Market] = {
    "bingx_swap": Market(
        "bingx_swap", "bingx", "swap", WS_URL, REST_URL, is_spot=False,
        fees=SWAP_FEES, weight_per_minute=WEIGHT_PER_MINUTE, max_streams=MAX_STREAMS,
        max_messages_per_second=SUBSCRIBE_PER_SECOND, heartbeat=None,
        snapshot_source="ws", ban_statuses=(403, 418), used_weight_header=None,
    ),
    "bingx_spot": Market(
        "bingx_spot", "bingx", "spot", SPOT_WS_URL, REST_URL, is_spot=True,
        fees=SPOT_FEES, weight_per_minute=WEIGHT_PER_MINUTE, max_streams=MAX_STREAMS,
        max_messages_per_second=SUBSCRIBE_PER_SECOND, heartbeat=None,
        snapshot_source="ws", ban_statuses=(403, 418), used_weight_header=None,
    ),
}
