"""Binance's markets: endpoints, limits, heartbeats and default fees.

Docs: https://developers.binance.com/docs/binance-spot-api-docs/web-socket-streams
      https://developers.binance.com/docs/derivatives/usds-margined-futures/websocket-market-streams
      https://developers.binance.com/docs/derivatives/coin-margined-futures/websocket-market-streams
      https://developers.binance.com/docs/derivatives/usds-margined-futures/websocket-market-streams/Important-WebSocket-Change-Notice
      (USDⓈ-M's streams on two paths since 2026-04-23: ``routes``)
Fees (VIP0, no BNB discount): https://www.binance.com/en/fee/schedule
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from analyzer.venues.base import Fees, Market

DOCS = "https://developers.binance.com/docs"


@dataclass(frozen=True, slots=True)
class BinanceMarket(Market):
    """A Binance market: its REST path prefix, the weight of a 1000-level depth request, and
    whether its streams take two paths (``routes``: USDⓈ-M serves books and best bid/ask on
    ``/public``, every other stream on ``/market``; its root ``/stream`` and ``/ws``, retired
    on 2026-04-23, still connect but send nothing, users report)."""

    rest_prefix: str = ""
    depth_weight: int = 20
    routes: bool = False


def route_of(stream: str) -> str:
    """The path of a USDⓈ-M stream (``BinanceMarket.routes``): ``public`` for books and best
    bid/ask (``<symbol>@depth...``, ``<symbol>@bookTicker``), ``market`` for the others."""
    return "public" if "@depth" in stream or stream.endswith("@bookTicker") else "market"


# 418 is Binance's IP ban (after ignoring 429s); the weight used this minute comes back in a header
REST: dict[str, Any] = {"ban_statuses": (403, 418), "used_weight_header": "X-MBX-USED-WEIGHT-1M"}

# The venue closes a connection at 24 h and pings it itself (websocket pings: no app-level
# heartbeat). Spot accepts 5 incoming messages a second, futures 10; 1024 streams a connection.
MARKETS: dict[str, BinanceMarket] = {
    "binance_spot": BinanceMarket(
        "binance_spot", "binance", "spot", "wss://stream.binance.com:9443",
        "https://api.binance.com", is_spot=True, fees=Fees(taker=0.001, maker=0.001),
        weight_per_minute=3000, max_messages_per_second=5, **REST, rest_prefix="/api/v3",
        depth_weight=50,
    ),
    "binance_usdm": BinanceMarket(
        "binance_usdm", "binance", "usdm", "wss://fstream.binance.com",
        "https://fapi.binance.com", is_spot=False,
        fees=Fees(taker=0.0005, maker=0.0002, settlement=0.0005),
        weight_per_minute=1200, **REST, rest_prefix="/fapi/v1", routes=True,
    ),
    "binance_coinm": BinanceMarket(
        "binance_coinm", "binance", "coinm", "wss://dstream.binance.com",
        "https://dapi.binance.com", is_spot=False,
        fees=Fees(taker=0.0005, maker=0.0002, settlement=0.0005),
        weight_per_minute=1200, **REST, rest_prefix="/dapi/v1",
    ),
}
