"""Bybit's v5 public markets: endpoints, limits, heartbeat and default fees.

Docs: https://bybit-exchange.github.io/docs/v5/ws/connect (endpoints, ping, args limits, IP limits)
      https://bybit-exchange.github.io/docs/v5/rate-limit (REST and websocket IP limits)
Fees: https://www.bybit.com/en/help-center/article/Trading-Fee-Structure (VIP 0)

One feed per category, as Bybit splits its public streams: ``spot``, ``linear`` (USDT and USDC
perpetuals and dated futures) and ``inverse`` (coin-margined perpetuals and dated futures).
``ws_url`` is the host alone; ``BybitFeed.ws_endpoint`` appends ``/v5/public/<category>``
(``Market.kind``), so the local exchange serves Bybit under ``<base>/v5/public/<category>``
exactly as the venue does.
"""

from __future__ import annotations

from analyzer.venues.base import Fees, Market

DOCS = "https://bybit-exchange.github.io/docs/v5/intro"
WS_URL = "wss://stream.bybit.com"
WS_PATH = "/v5/public/"  # + category
REST_URL = "https://api.bybit.com"

# Trading Fee Structure (help centre), VIP 0: "Spot Trading: Taker 0.1000 %, Maker 0.1000 %;
# Perpetual & Futures Contracts Trading: Taker 0.0550 %, Maker 0.0200 %".
# Settlement of dated futures held to delivery: inverse futures "a 0.05% settlement fee will be
# charged" (help centre, "Trading and Settlement Fees (Futures Contract)"; the recorded
# BTCUSDU23 ticker carries deliveryFeeRate "0.0005"); USDC futures "The settlement fee rate is
# currently at 0%" (help centre, "FAQ — USDC Perpetual & Futures Contract") and the docs' USDT
# futures ticker example shows deliveryFeeRate "0". Each contract's own rate is
# instruments-info ``deliveryFeeRate``.
SPOT_FEES = Fees(taker=0.0010, maker=0.0010)
LINEAR_FEES = Fees(taker=0.00055, maker=0.0002, settlement=0.0)
INVERSE_FEES = Fees(taker=0.00055, maker=0.0002, settlement=0.0005)

# Websocket limits (docs "Connect"):
# - "Spot can input up to 10 args for each subscription request"; none is documented for
#   futures, where clients failing with "args size >10" were reported (nautilus_trader#1793):
#   every subscribe carries at most 10 topics, on every category.
# - "for one public connection, you cannot have length of "args" array over 21,000
#   characters": a topic is at most ~40 characters with its quotes and comma
#   (``orderbook.1000.`` and a long symbol), so 500 topics a connection stay below it.
# - "Do not build over 500 connections in 5 minutes", per domain (reconnects count).
# - Send ``{"op":"ping"}`` "every 20 seconds"; without ping-pong or data "the connection will
#   be cut off after 10 minutes". No inbound message rate and no connection age are documented
#   for public streams: 10 messages a second and the default daily rotation are our own pace.
ARGS_PER_SUBSCRIBE = 10
MAX_STREAMS = 500
HEARTBEAT = b'{"op":"ping"}'
HEARTBEAT_SECONDS = 20.0
# REST (docs "Rate Limit Rules"): "600 requests within a 5-second window per IP" across all of
# api.bybit.com (7,200 a minute, shared by our three feeds); a breach is "403, access too
# frequent" and a ban of at least 10 minutes. Each feed allows itself 2,000 a minute.
WEIGHT_PER_MINUTE = 2000


def _market(category: str, fees: Fees) -> Market:
    return Market(
        f"bybit_{category}", "bybit", category, WS_URL, REST_URL, is_spot=category == "spot",
        fees=fees, weight_per_minute=WEIGHT_PER_MINUTE, max_streams=MAX_STREAMS,
        max_messages_per_second=10.0, heartbeat=HEARTBEAT, heartbeat_seconds=HEARTBEAT_SECONDS,
        snapshot_source="ws",
        # 403 "access too frequent" is the IP ban (the default ban_statuses); Bybit reports
        # the requests left (X-Bapi-Limit-Status, per UID), not a weight used: no header here
        ban_statuses=(403,), used_weight_header=None,
    )


# kind is Bybit's ``category``: the websocket path and the REST listing's parameter
MARKETS: dict[str, Market] = {
    "bybit_spot": _market("spot", SPOT_FEES),
    "bybit_linear": _market("linear", LINEAR_FEES),
    "bybit_inverse": _market("inverse", INVERSE_FEES),
}
