"""OKX's markets: endpoints, limits, heartbeat and default fees.

Docs: https://www.okx.com/docs-v5/en/#overview-websocket (connect, limits, ping/pong, notice)
Fees: https://www.okx.com/fees (spot, regular users Lv1) and
      https://www.okx.com/help/how-are-futures-trading-fees-calculated (Lv1 perpetual and expiry)

The live endpoint is ``wss://ws.okx.com:8443``; ``OkxFeed.ws_endpoint`` appends the public path
``/ws/v5/public``, so the local exchange serves OKX under ``<base>/ws/v5/public`` as well.
"""

from __future__ import annotations

from analyzer.venues.base import Fees, Market

DOCS = "https://www.okx.com/docs-v5/en/"
WS_URL = "wss://ws.okx.com:8443"
WS_PATH = "/ws/v5/public"  # public channels; candles live on /ws/v5/business (not used)
REST_URL = "https://www.okx.com"

# Regular users, Lv1 (no OKB held), as fractions of notional. Spot: maker 0.080 %, taker
# 0.100 % (okx.com/fees). Perpetual and expiry futures: maker 0.02 %, taker 0.05 % (OKX help,
# "How are futures trading fees calculated"). Expiry futures also pay a delivery fee at
# delivery: the docs give it per account (`delivery` in GET /api/v5/account/trade-fee) and the
# public fee pages stored here state no default rate, so none is assumed (0.0; an open question).
SPOT_FEES = Fees(taker=0.0010, maker=0.0008)
SWAP_FEES = Fees(taker=0.0005, maker=0.0002)
FUTURES_FEES = Fees(taker=0.0005, maker=0.0002, settlement=0.0)

# Limits (docs "WebSocket / Connect"): 3 new connections a second per IP; 480
# subscribe/unsubscribe/login requests per connection per hour; a connection that received
# nothing for 30 s is closed (so we send the text "ping" every 20 s; the venue answers "pong").
# A subscribe request holds many channels (under 64 KB), so connecting takes a request or two,
# sent a second apart; a book's resync (unsubscribe + subscribe) takes two of the 480, so a
# connection of 30 books stays within the budget unless each resyncs 8 times an hour.
SUBSCRIBE_PER_SECOND = 2.0
# The docs advise fewer than 30 depth channels (books, books50/l2-tbt) per connection; a
# connection carries at most 30 streams of any channel, which keeps books under that.
MAX_STREAMS = 30
# GET /api/v5/public/instruments: 20 requests per 2 s per IP and instrument type; we allow
# ourselves half of it.
WEIGHT_PER_MINUTE = 300


def _market(venue: str, kind: str, fees: Fees, is_spot: bool = False) -> Market:
    return Market(
        venue, "okx", kind, WS_URL, REST_URL, is_spot=is_spot, fees=fees,
        weight_per_minute=WEIGHT_PER_MINUTE, max_streams=MAX_STREAMS,
        max_messages_per_second=SUBSCRIBE_PER_SECOND, heartbeat=b"ping",
        heartbeat_seconds=20.0, snapshot_source="ws",
    )


# kind is OKX's instType: the REST listing asked for, and the markets' own names
MARKETS: dict[str, Market] = {
    "okx_spot": _market("okx_spot", "SPOT", SPOT_FEES, is_spot=True),
    # perpetual swaps: linear (USDT-, USDC-margined, BTC-USDT-SWAP) and inverse (coin-margined,
    # BTC-USD-SWAP) share one listing and one endpoint
    "okx_swap": _market("okx_swap", "SWAP", SWAP_FEES),
    # dated futures, linear (BTC-USDT-250926) and inverse (BTC-USD-250926)
    "okx_futures": _market("okx_futures", "FUTURES", FUTURES_FEES),
}
