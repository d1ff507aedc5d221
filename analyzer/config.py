"""The collector's TOML configuration, decoded and validated with msgspec.

A wrong value is a ``ConfigError`` whose one-line message names the key, e.g.
``config error at feeds[0].depth_speed: Expected `str` matching regex ...``.
Endpoints default to the live venues; point them at ``analyzer exchange`` to run offline.

Example::

    [store]
    data_dir = "data"                  # Parquet segments, raw capture
    database = "data/analyzer.duckdb"  # views over the segments, for research

    [metrics]
    port = 9108

    [[feeds]]
    venue = "binance_usdm"
    symbols = ["BTCUSDT", "ETHUSDT"]
    channels = ["depth", "trades", "bookTicker", "markPrice", "openInterest"]
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from analyzer.venues import VENUES
from analyzer.venues.base import CHANNELS

Positive = Annotated[float, msgspec.Meta(gt=0)]
Channel = Literal["depth", "trades", "bookTicker", "markPrice", "openInterest", "liquidations"]
assert set(CHANNELS) == set(Channel.__args__)  # type: ignore[attr-defined]


class ConfigError(Exception):
    """The configuration is invalid; the message is one line naming the key."""


class Feed(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    venue: str
    # venue symbols; a glob (``BTCUSDT_*``) follows every listed symbol it matches, including
    # quarterlies listed later (the expiry roll)
    symbols: Annotated[list[Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_\-*?]+$")]],
                       msgspec.Meta(min_length=1)]
    channels: list[Channel] = msgspec.field(
        default_factory=lambda: ["depth", "trades", "bookTicker", "markPrice", "openInterest"]
    )
    ws_url: str | None = None  # default: the venue's live endpoint
    rest_url: str | None = None
    depth_speed: Literal["0ms", "100ms", "250ms", "500ms", "1000ms"] = "100ms"
    trade_stream: Literal["trade", "aggTrade"] = "trade"
    streams_per_connection: Annotated[int, msgspec.Meta(ge=1, le=1024)] = 200
    open_interest_seconds: Positive = 10.0
    instruments_seconds: Positive = 300.0  # re-read exchangeInfo: expiries, new listings
    rest_weight_per_minute: Annotated[int, msgspec.Meta(ge=1)] | None = None
    api_key: str | None = None  # sent as X-MBX-APIKEY (Binance futures trade backfill)
    stall_seconds: Positive = 30.0
    max_connection_age_seconds: Positive = 23.5 * 3600


class Store(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    data_dir: str = "data"
    database: str = "data/analyzer.duckdb"
    flush_seconds: Positive = 1.0
    flush_rows: Annotated[int, msgspec.Meta(ge=1)] = 50_000
    book_snapshot_seconds: Positive = 1.0
    book_snapshot_levels: Annotated[int, msgspec.Meta(ge=1, le=5000)] = 20
    raw_capture: bool = True


class Metrics(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 9108
    host: str = "0.0.0.0"


class Config(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    feeds: Annotated[list[Feed], msgspec.Meta(min_length=1)]
    store: Store = msgspec.field(default_factory=Store)
    metrics: Metrics = msgspec.field(default_factory=Metrics)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


def _path_of(message: str) -> str:
    """``... - at `$.feeds[0].venue``` -> ``feeds[0].venue``."""
    m = re.search(r"at `\$\.?(.*?)`", message)
    return m.group(1) if m else ""


def parse(data: dict) -> Config:
    try:
        cfg = msgspec.convert(data, Config)
    except msgspec.ValidationError as exc:
        msg = str(exc)
        key = _path_of(msg)
        text = msg.split(" - at ")[0]
        raise ConfigError(f"config error at {key or 'top level'}: {text}") from None
    for i, feed in enumerate(cfg.feeds):
        if feed.venue not in VENUES:
            raise ConfigError(
                f"config error at feeds[{i}].venue: unknown venue {feed.venue!r} "
                f"(known: {', '.join(sorted(VENUES))})"
            )
        market = VENUES[feed.venue][0]
        if market.kind == "spot" and feed.depth_speed not in ("100ms", "1000ms"):
            raise ConfigError(
                f"config error at feeds[{i}].depth_speed: spot offers 100ms or 1000ms, "
                f"not {feed.depth_speed}"
            )
    return cfg


def load(path: str | Path) -> Config:
    p = Path(path)
    try:
        text = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config {p}: {exc.strerror}") from None
    try:
        data = tomllib.loads(text.decode())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config {p} is not valid TOML: {exc}") from None
    return parse(data)
