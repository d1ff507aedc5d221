"""MEXC's contract (futures) market: endpoints, limits, heartbeat and default fees.

Docs: https://mexcdevelop.github.io/apidocs/contract_v1_en/ (stored as
      mexcdevelop/apidocs ``contract_v1_en/index.html``, 2025-08: "WebSocket API", "Market
      endpoints", "How is depth information maintained")
Fees: https://www.mexc.com/en-GB/learn/article/how-to-use-mx-token-for-mexc-trading-fee-discounts-get-up-to-50-off/1
      (2025-09-02, "Futures Fee Rates ... without holding MX": maker 0 %, taker 0.02 %; the
      docs' ``contract/detail`` example shows the older 0.02 % / 0.06 %, and each contract
      carries its own ``makerFeeRate`` / ``takerFeeRate``: 0 / 0.0002 in a 2025 ``push.contract``)

One feed, ``mexc_futures``: the USDT-margined perpetual contracts (``BTC_USDT``) of
``wss://contract.mexc.com/edge`` and ``https://contract.mexc.com/api/v1/contract/...``. The
coin-margined contracts (``BTC_USD``) share the endpoints but are left out of the listing
(``rest.py``). MEXC's spot market is not offered: its public websocket (v3) sends protobuf
frames only since 2025 (the JSON channels were retired, mexcdevelop/apidocs#264), which this
analyzer does not decode.
"""

from __future__ import annotations

from analyzer.venues.base import Fees, Market

DOCS = "https://mexcdevelop.github.io/apidocs/contract_v1_en/"
WS_URL = "wss://contract.mexc.com"
WS_PATH = "/edge"
REST_URL = "https://contract.mexc.com"

# Futures fees for users without MX (MEXC Learn, 2025-09-02): maker 0 %, taker 0.02 %.
FUTURES_FEES = Fees(taker=0.0002, maker=0.0)

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

MARKETS: dict[str, Market] = {
    "mexc_futures": Market(
        "mexc_futures", "mexc", "futures", WS_URL, REST_URL, is_spot=False, fees=FUTURES_FEES,
        weight_per_minute=WEIGHT_PER_MINUTE, max_streams=MAX_STREAMS,
        max_messages_per_second=SUBSCRIBE_PER_SECOND, heartbeat=HEARTBEAT,
        heartbeat_seconds=HEARTBEAT_SECONDS, snapshot_source="rest",
        # an over-limit answer is HTTP 429 (a pause, retried); no weight header is sent
        ban_statuses=(403,), used_weight_header=None,
    ),
}
