"""``analyzer demo``: the whole pipeline offline.

Starts the local exchange in a child process (its own core) serving the simulated market (BTC
and ETH spot, perpetuals and dated futures on every market of every registered venue;
``--replay``: the real Binance recordings of its three markets instead), and a
collector against it with the default store and metrics port, subscribed to every symbol the
exchange lists, then prints where to look, and a status line every minute. Runs until
``--duration``, Ctrl-C or SIGTERM; each of them flushes the store and stops the exchange child
(analyzer/cli.py), and a failure at any point after the child started stops it too.

``--shards venue|exchange`` runs the collector sharded (analyzer/cluster): one process per
market or per exchange, the analytics process, and a nats-server on loopback, supervised by
the demo's own process; the metrics and the store are where they are without shards.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import shlex
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

from analyzer import config as config_mod
from analyzer.argtypes import port_number, positive_seconds, speed_factor
from analyzer.sim import DEFAULT_START_NS, Schedule
from analyzer.sim.clock import iso
from analyzer.venues import VENUES

if TYPE_CHECKING:
    from analyzer.cluster.supervisor import Supervisor
    from analyzer.collector import Collector

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "binance"
COINM_SYMBOLS = [
    "BTCUSD_211231", "ETHUSD_210924", "BCHUSD_210924", "LINKUSD_211231", "BCHUSD_PERP",
    "LINKUSD_PERP", "ETCUSD_PERP", "XRPUSD_PERP", "TRXUSD_PERP", "EOSUSD_PERP",
]


DEFAULT_SCENARIO = "calm_contango"
DEFAULT_DATA_DIR = "data"  # the default of --data-dir here, and of --data-dir / --db elsewhere


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--duration", type=positive_seconds, default=None,
                   help="stop after S seconds")
    p.add_argument("--speed", type=speed_factor, default=1.0,
                   help="market seconds per second: 1 = real time, 10 = ten times faster, "
                        "0 = flat out")
    p.add_argument("--replay", action="store_true",
                   help="replay the real Binance recordings instead of the simulated market")
    p.add_argument("--scenario", default=DEFAULT_SCENARIO, metavar="NAME[@OFFSET],...",
                   help=f"simulated scenarios (default {DEFAULT_SCENARIO}), e.g. "
                        "calm_contango,sequence_gap@2m,stale_feed@5m+90s")
    p.add_argument("--seed", type=int, default=0, help="seed of the simulated market")
    p.add_argument("--start", default="now",
                   help="market clock at the start: an ISO time or 'now' (default)")
    p.add_argument("--data-dir", default=DEFAULT_DATA_DIR,
                   help=f"where the data goes (default: {DEFAULT_DATA_DIR})")
    p.add_argument("--metrics-port", type=port_number, default=9108)
    p.add_argument("--metrics-host", default="127.0.0.1",
                   help="address the metrics listen on (0.0.0.0 in a container)")
    p.add_argument("--exchange-port", type=port_number, default=0, help="default: a free port")
    p.add_argument("--shards", choices=["venue", "exchange"], default=None,
                   help="run the collector sharded: a process per market (venue) or per "
                        "exchange, their states meeting over NATS JetStream (a nats-server on "
                        "loopback)")
    # seconds between status lines; hidden: for tests
    p.add_argument("--status-seconds", type=positive_seconds, default=60.0,
                   help=argparse.SUPPRESS)


def demo_config(port: int, data_dir: str, metrics_port: int,
                metrics_host: str = "127.0.0.1", shards: str | None = None
                ) -> config_mod.Config:
    base = f"127.0.0.1:{port}"

    def feed(venue: str, symbols: list[str], **kw: object) -> dict:
        return {"venue": venue, "symbols": symbols, "ws_url": f"ws://{base}/{venue}",
                "rest_url": f"http://{base}/{venue}", "open_interest_seconds": 5.0, **kw}

    return config_mod.parse({
        "feeds": [
            feed("binance_usdm", ["BTCUSDT"], options={"depth_speed": "0ms"}),
            feed("binance_spot", ["BTCUSDT"], channels=["depth", "trades", "bookTicker"]),
            feed("binance_coinm", COINM_SYMBOLS, options={"trade_stream": "aggTrade"},
                 channels=["depth", "trades", "bookTicker", "openInterest"]),
        ],
        "store": {"data_dir": data_dir, "database": f"{data_dir}/analyzer.duckdb"},
        "metrics": {"port": metrics_port, "host": metrics_host},
        "cluster": {"shards": shards} if shards else {},
        "log_level": "WARNING",
    })


def sim_config(port: int, data_dir: str, metrics_port: int,
               symbols: dict[str, list[str]], metrics_host: str = "127.0.0.1",
               shards: str | None = None) -> config_mod.Config:
    """Every market the simulated exchange serves, with every channel its market has, following
    every symbol it lists by the glob ``*``: the quarterlies listed at an expiry roll too."""
    base = f"127.0.0.1:{port}"
    futures = ["depth", "trades", "bookTicker", "markPrice", "openInterest", "liquidations"]
    feeds = [
        {"venue": venue, "symbols": ["*"], "ws_url": f"ws://{base}/{venue}",
         "rest_url": f"http://{base}/{venue}", "open_interest_seconds": 5.0,
         "instruments_seconds": 60.0,
         "channels": ["depth", "trades", "bookTicker"] if VENUES[venue][0].is_spot else futures}
        for venue in symbols
    ]
    return config_mod.parse({
        "feeds": feeds,
        "store": {"data_dir": data_dir, "database": f"{data_dir}/analyzer.duckdb"},
        "metrics": {"port": metrics_port, "host": metrics_host},
        "carry": {"gates": DEMO_CARRY},
        "trend": DEMO_TREND,
        "portfolio": {"file": str(DEMO_PORTFOLIO)} if DEMO_PORTFOLIO.exists() else {},
        "cluster": {"shards": shards} if shards else {},
        "log_level": "WARNING",
    })


# Carry settings of the demo: a 5 % a year financing cost (so that the calm market's ~9 % basis
# is not an opportunity) and a one-minute persistence window (so that steep_contango opens one
# within minutes). Live configs keep the defaults: financing 0, 30 minutes.
DEMO_CARRY = {"financing_rate": 0.05, "min_net_ann": 0.05, "entry_ann": 0.05, "exit_ann": 0.03,
              "persistence_window_s": 60.0}
# Trend regime of the demo: 1-minute bars refreshed every 10 s, so that a simulated market of
# minutes shows moving averages and flips within a quarter of an hour (live configs keep 4 h
# bars, 10 / 30, refreshed each minute).
DEMO_TREND = {"interval": "1m", "fast": 5, "slow": 15, "refresh_seconds": 10.0}
# The portfolio the demo watches (the Investor dashboard's data): the repository's example, a
# spot holder hedging part of it on three venues (absent from an installed package: no watch).
DEMO_PORTFOLIO = Path(__file__).resolve().parents[1] / "examples" / "portfolio.toml"


def listed_symbols(port: int) -> dict[str, list[str]]:
    """The symbols each market the exchange serves lists (what a collector may subscribe to),
    read and decoded as the collector reads them, through each venue's feed class; a market the
    exchange does not serve (404) is left out."""
    out = {}
    for venue, (market, feed_cls) in VENUES.items():
        feed = feed_cls(market, [], [], None)
        bodies = []
        try:
            for path in feed.instrument_paths():
                url = f"http://127.0.0.1:{port}/{venue}{path}"
                with urllib.request.urlopen(url, timeout=10) as resp:
                    bodies.append(resp.read())
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                continue
            raise
        out[venue] = sorted(feed.decode_instruments(bodies, time.time_ns()))
    return out


def _summary(doc: str | None, width: int = 64) -> str:
    """The start of a scenario's docstring, on one line."""
    text = " ".join((doc or "").replace("``", "").split())
    return text if len(text) <= width else text[: width - 3].rsplit(" ", 1)[0] + "..."


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, proc: subprocess.Popen, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise config_mod.ConfigError("the local exchange exited at start-up")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise config_mod.ConfigError(f"the local exchange did not listen on port {port}")


def start_exchange(port: int, speed: float, sim: argparse.Namespace | None = None
                   ) -> subprocess.Popen:
    """The local exchange in a child process: the simulated market (``sim`` holds scenario,
    seed and start) or, without ``sim``, the recordings. Stopped again if it does not come up."""
    cmd = [sys.executable, "-m", "analyzer.exchange", "--port", str(port), "--speed", str(speed)]
    if sim is not None:
        cmd += ["--simulate", "--scenario", sim.scenario, "--seed", str(sim.seed),
                "--start", sim.start]
    else:
        for rec in ("usdm_2024", "spot_2024", "coinm_2021"):
            cmd += ["--replay", str(FIXTURES / rec)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    try:
        _wait_port(port, proc)
    except BaseException:
        stop_exchange(proc)
        raise
    return proc


def stop_exchange(proc: subprocess.Popen) -> None:
    """SIGTERM (the exchange closes its connections and exits 0), then SIGKILL if it hangs."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def check_metrics_address(host: str, port: int) -> int:
    """Fail before anything starts if the metrics cannot listen there (port taken, unknown
    host); the exporter binds the same way (SO_REUSEADDR). Returns the port: a free one for 0,
    so that the printed address is the real one."""
    from analyzer.collector import CollectorError

    try:
        family, kind, proto, _, addr = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        with socket.socket(family, kind, proto) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(addr)
            return s.getsockname()[1]
    except OSError as exc:
        raise CollectorError(
            f"cannot serve metrics on {host}:{port}: {exc.strerror or exc} "
            "(--metrics-port, --metrics-host)"
        ) from None


def _check_args(args: argparse.Namespace) -> None:
    """What the argument types check, for callers that build the namespace themselves."""
    if not (math.isfinite(args.speed) and args.speed >= 0):
        raise config_mod.ConfigError(f"--speed must be 0 or positive, not {args.speed}")
    if args.duration is not None and not (math.isfinite(args.duration) and args.duration > 0):
        raise config_mod.ConfigError(f"--duration must be positive, not {args.duration}")
    if not args.metrics_host:
        raise config_mod.ConfigError("--metrics-host must not be empty")
    for name in ("metrics_port", "exchange_port"):
        if not 0 <= getattr(args, name) <= 65535:
            raise config_mod.ConfigError(
                f"--{name.replace('_', '-')} must be 0..65535, not {getattr(args, name)}")


def run_demo(args: argparse.Namespace) -> int:
    from analyzer.collector import Collector
    from analyzer.exchange.cli import start_ns

    _check_args(args)
    # everything that can be refused is refused before the exchange child starts
    args.metrics_port = check_metrics_address(args.metrics_host, args.metrics_port)
    schedule = None
    if not args.replay:
        # bad scenarios and times are one-line errors here, not a child that dies
        schedule = Schedule.parse(args.scenario)
        args.start = iso(schedule.pin_start(start_ns(args.start) or DEFAULT_START_NS))
    port = args.exchange_port or _free_port()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    proc = None
    try:
        if schedule is None:
            cfg = demo_config(port, args.data_dir, args.metrics_port, args.metrics_host,
                              getattr(args, "shards", None))
            proc = start_exchange(port, args.speed)
            text = REPLAY_TEXT.format(port=port)
        else:
            proc = start_exchange(port, args.speed, args)
            try:
                symbols = listed_symbols(port)
            except OSError as exc:
                raise config_mod.ConfigError(
                    f"the local exchange did not answer: {exc}") from None
            cfg = sim_config(port, args.data_dir, args.metrics_port, symbols, args.metrics_host,
                             getattr(args, "shards", None))
            text = SIM_TEXT.format(
                port=port, seed=args.seed, start=args.start,
                venues=", ".join(dict.fromkeys(VENUES[v][0].exchange for v in symbols)),
                pace=f"{args.speed:g}x real time" if args.speed else "full speed",
                scenarios="\n            ".join(
                    f"{sc.name}@{sc.at_s:g}s: {_summary(sc.__doc__)}" for sc in schedule
                ) or "none",
                symbols="".join(f"\n  {venue:<14}{' '.join(s)}" for venue, s in symbols.items()),
            )
        if config_mod.shards(cfg):
            _run_sharded(cfg, text, args.duration, args.status_seconds)
        else:
            collector = Collector(cfg)
            _serve_metrics(collector, cfg)
            print(text + where_text(cfg), flush=True)
            _collect(collector, args.duration, args.status_seconds)
    finally:
        if proc is not None:
            stop_exchange(proc)
    print(f"stopped; the data stays in {cfg.store.data_dir}/ "
          f"(analyzer sql \"...\"{_db_option(cfg.store.database)} to query it)", flush=True)
    return 0


def _serve_metrics(collector: Collector, cfg: config_mod.Config) -> None:
    from analyzer.metrics import serve

    serve(collector, cfg.metrics.host, cfg.metrics.port)


def _collect(collector: Collector, duration: float | None, status_seconds: float) -> None:
    """The collector, with the status line beside it, until the duration or a signal."""
    from analyzer.cli import collect
    from analyzer.signals import run_until_signal

    async def main() -> None:
        status = asyncio.create_task(status_lines(collector, status_seconds), name="status")
        try:
            await collect(collector, duration)
        finally:
            status.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await status

    run_until_signal(main)


def _run_sharded(cfg: config_mod.Config, text: str, duration: float | None,
                 status_seconds: float) -> None:
    """The sharded collector (analyzer/cluster) in place of the one-process one."""
    from analyzer.cluster.metrics import serve
    from analyzer.cluster.supervisor import Supervisor
    from analyzer.signals import run_until_signal

    sup = Supervisor(cfg)
    serve(sup, cfg.metrics.host, cfg.metrics.port)
    shards = ", ".join(c.name for c in sup.children[:-1])
    print(text + f"  shards    {shards}, and the analytics process (NATS JetStream)\n"
          + where_text(cfg), flush=True)

    async def main() -> None:
        status = asyncio.create_task(sharded_status_lines(sup, status_seconds), name="status")
        try:
            await sup.run(duration)
        finally:
            status.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await status

    run_until_signal(main)


def sharded_totals(sup: Supervisor) -> tuple[float, int, int, float, float]:
    """(frames, books in sync, books, rows stored, gaps) over every shard, from the metrics
    the supervisor serves."""
    from analyzer.cluster.metrics import ClusterMetrics

    sums = {"analyzer_frames_total": 0.0, "analyzer_rows_written_total": 0.0,
            "analyzer_book_gaps_total": 0.0}
    in_sync = books = 0
    for fam in ClusterMetrics(sup).collect():
        for sample in fam.samples:
            if sample.name in sums:
                sums[sample.name] += sample.value
            elif sample.name == "analyzer_book_in_sync":
                books += 1
                in_sync += sample.value == 1.0
    return (sums["analyzer_frames_total"], in_sync, books, sums["analyzer_rows_written_total"],
            sums["analyzer_book_gaps_total"])


async def sharded_status_lines(sup: Supervisor, interval: float) -> None:
    """``status_lines`` of a sharded collector (rows: every process's, analytics included)."""
    last, last_t = (await asyncio.to_thread(sharded_totals, sup))[0], time.monotonic()
    while True:
        await asyncio.sleep(interval)
        frames, in_sync, books, rows, gaps = await asyncio.to_thread(sharded_totals, sup)
        t = time.monotonic()
        print(f"{time.strftime('%H:%M:%S')} status: {(frames - last) / (t - last_t):,.0f} "
              f"frames/s, books {in_sync}/{books} in sync, {rows:,.0f} rows stored, "
              f"{gaps:,.0f} gaps", flush=True)
        last, last_t = frames, t


def _frames(collector: Collector) -> int:
    return sum(route.frames for r in collector.runners for route in r.feed.routes.values())


def status_line(collector: Collector, frames_per_s: float) -> str:
    """``02:15:00 status: 1,234 frames/s, books 14/14 in sync, 123,456 rows stored, 0 gaps``;
    gaps: the book invalidations (sequence gaps, crossed books, best bid/ask mismatches), each a
    row of the gaps table."""
    books = [sb for r in collector.runners for sb in r.books.books.values()]
    in_sync = sum(sb.in_sync for sb in books)
    rows = sum(collector.store.stats["rows_written"].values())
    gaps = sum(r.books.stats.gaps + r.books.stats.crossed + r.books.stats.bbo_mismatched
               for r in collector.runners)
    return (f"{time.strftime('%H:%M:%S')} status: {frames_per_s:,.0f} frames/s, "
            f"books {in_sync}/{len(books)} in sync, {rows:,} rows stored, {gaps:,} gaps")


async def status_lines(collector: Collector, interval: float) -> None:
    """A status line every ``interval`` seconds, so that a calm demo shows it is alive."""
    last_frames, last_t = _frames(collector), time.monotonic()
    while True:
        await asyncio.sleep(interval)
        frames, t = _frames(collector), time.monotonic()
        print(status_line(collector, (frames - last_frames) / (t - last_t)), flush=True)
        last_frames, last_t = frames, t


def _db_option(database: str) -> str:
    default = f"{DEFAULT_DATA_DIR}/analyzer.duckdb"
    return "" if database == default else f" --db {shlex.quote(database)}"


def _data_option(data_dir: str) -> str:
    return "" if data_dir == DEFAULT_DATA_DIR else f" --data-dir {shlex.quote(data_dir)}"


def where_text(cfg: config_mod.Config) -> str:
    """Where the metrics and the data are, and commands to read them: each names this demo's
    database or data directory unless it is the default one."""
    host = cfg.metrics.host
    host = "127.0.0.1" if host in ("0.0.0.0", "::") else f"[{host}]" if ":" in host else host
    return WHERE_TEXT.format(
        metrics=f"http://{host}:{cfg.metrics.port}/metrics", db=cfg.store.database,
        data=cfg.store.data_dir, db_opt=_db_option(cfg.store.database),
        data_opt=_data_option(cfg.store.data_dir),
    )


REPLAY_TEXT = """\
analyzer demo: replaying real Binance recordings (USDⓈ-M BTCUSDT 2024-08-08, spot BTCUSDT
2024-08-08, COIN-M 10 symbols 2021-07-22) through a local exchange on 127.0.0.1:{port}
"""

SIM_TEXT = """\
analyzer demo: a simulated market, BTC and ETH spot, perpetuals and dated futures on every
venue it speaks ({venues}), through a local exchange on 127.0.0.1:{port}

  market    seed {seed}, clock from {start} at {pace}
  scenario  {scenarios}
  carry     opportunities open at 5 %/yr net of fees and 5 %/yr financing, held 60 s (demo)
            (--scenario NAME[@OFFSET],... for others, --replay for the real recordings){symbols}
"""

WHERE_TEXT = """
  metrics   {metrics}
  database  {db}   (views over Parquet segments in {data}/segments; raw frames in {data}/raw)

Query while it runs, from another terminal:
  analyzer metrics --asset BTC{data_opt}
  analyzer opportunities{data_opt}
  analyzer sql "SELECT * FROM latest_basis"{db_opt}
  analyzer sql "SELECT * FROM latest_liquidity"{db_opt}
  analyzer sql "SELECT venue, symbol, count(*) AS trades FROM trades GROUP BY ALL"{db_opt}
  analyzer sql "SELECT venue, symbol, reason, count(*) FROM gaps GROUP BY ALL"{db_opt}
  analyzer sql "SELECT * FROM trades_1m ORDER BY minute DESC LIMIT 10"{db_opt}

A status line every minute; Ctrl-C (or SIGTERM) stops it, flushing the store.
"""
