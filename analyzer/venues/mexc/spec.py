"""MEXC's markets: the contract (futures) market and spot: endpoints, limits, heartbeat and
default fees.

Docs: https://mexcdevelop.github.io/apidocs/contract_v1_en/ (stored as
      mexcdevelop/apidocs ``contract_v1_en/index.html``, 2025-08: "WebSocket API", "Market
      endpoints", "How is depth information maintained")
Fees: https://www.mexc.com/en-GB/learn/article/how-to-use-mx-token-for-mexc-trading-fee-discounts-get-up-to-50-off/1
      (2025-09-02, "Futures Fee Rates ... without holding MX": maker 0 %, taker 0.02 %; the
      docs' ``contract/detail`` example shows the older 0.02 % / 0.06 %, and each contract
      carries its own ``makerFeeRate`` / ``takerFeeRate``: 0 / 0.0002 in a 2025 ``push.contract``)

Futures, ``mexc_futures``: the USDT-margined perpetual contracts (``BTC_USDT``) of
``wss://contract.mexc.com/edge`` and ``https://contract.mexc.com/api/v1/contract/...``. The
coin-margined contracts (``BTC_USD``) share the endpoints but are left out of the listing
(``rest.py``).

Spot (``mexc_spot``; ``spot.py``): https://mexcdevelop.github.io/apidocs/spot_v3_en/ (stored as
mexcdevelop/apidocs ``source/index.html.md`` of branch spot_v3_en, c0de8fff 2025-08-08:
"Websocket Market Streams", "LIMITS", "Market Data Endpoints"). Socket
``wss://wbs-api.mexc.com/ws``: protobuf push frames only since 2025 (the docs' channels became
the ``aggre`` ones in mexcdevelop/apidocs#264; the old JSON channels are refused "Not Subscribed
successfully! [...]. Reason： Blocked!", as public clients record), read by ``protobuf.py``;
REST ``https://api.mexc.com/api/v3/...``. Limits: "One ws connection supports a maximum of 30
subscriptions"; "The Websocket limits is: 100times/s" (a connection beyond it is closed): we
send 10 a second; "Each connection ... is valid for no more than 24 hours"; "If the
subscription is successful but there is no data flow, the server will disconnect after one
minute. The client can send a ping": ``{"method":"PING"}``, answered
``{"id":0,"code":0,"msg":"PONG"}``, every 20 s. REST: "Each endpoint with IP limits has an
independent 500 every 10 second limit" (weights: exchangeInfo 10, depth 1, trades 5); 429 over
it, 418 an IP ban ("from 2 minutes to 3 days"), 403 the WAF; no weight header documented.
Fees: https://www.mexc.com/en-IN/learn/article/calculation-of-fees-in-spot-trading/1
(2025-07-16, and the pt-PT copy of 2025-09-02: "The spot trading fee rates on the MEXC platform
are 0% for makers and 0.05% for takers"; some pairs, XRP/USDT and XRP/USDC, trade free; the
listing's per-symbol ``makerCommission``/``takerCommission`` are not read).
"""

from __future__ import annotations

from analyzer.venues.base import Fees, Market

DOCS = "https://mexcdevelop.github.io/apidocs/contract_v1_en/"
SPOT_DOCS = "https://mexcdevelop.github.io/apidocs/spot_v3_en/"
WS_URL = "wss://contract.mexc.com"
WS_PATH = "/edge"
REST_URL = "https://contract.mexc.com"
SPOT_WS_URL = "wss://wbs-api.mexc.com"
SPOT_WS_PATH = "/ws"
SPOT_REST_URL = "https://api.mexc.com"

# Futures fees for users without MX (MEXC Learn, 2025-09-02): maker 0 %, taker 0.02 %.
FUTURES_FEES = Fees(taker=0.0002, maker=0.0)
# Spot fees (MEXC Learn, 2025-07-16): maker 0 %, taker 0.05 %.
SPOT_FEES = Fees(taker=0.0005, maker=0.0)

# "If no ping is received within 1 minute, the connection will be disconnected. It is
# recommended to send a ping for 10-20 seconds" (docs "WebSocket API"); websocket ping frames do
# not count (mxcdevelop/APIDoc#57: closed with "ping check expired").
HEARTBEAT = b'{"method":"ping"}'
HEARTBEAT_SECONDS = 15.0
# The contract docs state no limit of subscriptions a connection or of messages a second. The
# spot docs allow 30 subscriptions a connection: taken here as well (each symbol takes up to four:
# depth, deals, ticker, funding rate), and our own pace of 10 subscribe messages a second (one
# subscription each: MEXC's sub.* methods name one symbol).
MAX_STREAMS = 30
SUBSCRIBE_PER_SECOND = 10.0
# REST: "20 times / 2 seconds" per market endpoint and IP (600 a minute), the listing
# (contract/detail) "1 times / 5 seconds". We allow ourselves half of the first.
WEIGHT_PER_MINUTE = 300
# Spot (module doc): 30 streams a connection, 100 messages a second (we pace 10), a PING every
# 20 s (a minute without data closes the connection); REST 500 weight per 10 s an endpoint
# (3,000 a minute): we allow ourselves 1,200 a minute over all of them.
SPOT_MAX_STREAMS = 30
SPOT_SUBSCRIBE_PER_SECOND = 10.0
SPOT_HEARTBEAT = b'{"method":"PING"}'
SPOT_HEARTBEAT_SECONDS = 20.0
SPOT_WEIGHT_PER_MINUTE = 1200

MARKETS: dict[str, Market] = {
    "mexc_futures": Market(
        "mexc_futures", "mexc", "futures", WS_URL, REST_URL, is_spot=False, fees=FUTURES_FEES,
        weight_per_minute=WEIGHT_PER_MINUTE, max_streams=MAX_STREAMS,
        max_messages_per_second=SUBSCRIBE_PER_SECOND, heartbeat=HEARTBEAT,
        heartbeat_seconds=HEARTBEAT_SECONDS, snapshot_source="rest",
        # an over-limit answer is HTTP 429 (a pause, retried); no weight header is sent
        ban_statuses=(403,), used_weight_header=None,
    ),
    "mexc_spot": Market(
        "mexc_spot", "mexc", "spot", SPOT_WS_URL, SPOT_REST_URL, is_spot=True, fees=SPOT_FEES,
        weight_per_minute=SPOT_WEIGHT_PER_MINUTE, max_streams=SPOT_MAX_STREAMS,
        max_messages_per_second=SPOT_SUBSCRIBE_PER_SECOND, heartbeat=SPOT_HEARTBEAT,
        heartbeat_seconds=SPOT_HEARTBEAT_SECONDS, snapshot_source="rest",
        # 429 over the limit (retried), 418 an IP ban, 403 the WAF
        ban_statuses=(403, 418), used_weight_header=None,
    ),
}
