"""Capacity: how large a simulated market the collector keeps exact, per core.

    python benchmarks/bench_capacity.py [--quick] [--window 30] [--steps 0,25,50,100]

Grows the simulated market (``analyzer/sim``: every market of the six venues, BTC and ETH
spot, perpetuals and dated futures, plus a long tail of small coins' perpetuals and spot pairs)
in steps, served by the local exchange in child processes of its own (one per ~12,000 frames/s,
feeds split between them), and collects it with ``analyzer collect`` as a user runs it: first
in one process, then sharded (``[cluster] shards = "exchange"``: a process per exchange, the
analytics process, a nats-server), from the largest market one process held. At each step, for
``--window`` seconds once every book is in sync:

- instruments held exact: books in sync at every metrics sample of the window (every 10 s)
  and without a ``gaps`` row (sequence gap, crossed book, stale stream) in it;
- frames/s received (``analyzer_frames_total``), and what the chosen rates promise;
- lag from the venue's event time to receipt (the row's ``ts_local``: decode and book follow
  inline) and to the row flushed into the store (the modification time of the Parquet segment
  holding it), p50 and p99 over every quote and trade received in the window. The simulated
  venue's clock is the exchange child's model clock, started at a wall time given here; each
  child reports when it really started (its offset) and, every 100 ms of market time, how late
  it releases the market's events: the exchange's own lateness, which the lags include (a
  "net" column subtracts it, interpolated);
- cores used by the collector's processes and by the exchange's, and the CPU of each split by
  stage from ``py-spy`` (in the venv): each sample goes to the innermost frame of a known
  module. Collector: receive (``analyzer/feed`` transport and REST queue, websockets,
  asyncio), decode (``analyzer/venues``, the collector's event handlers), book
  (``feed/books.py``, ``feed/book.py``), store (``analyzer/store``: buffering, the writer
  thread, Parquet, the raw capture), analytics (``analyzer/analytics``, ``analyzer/cluster``:
  a shard's window cut and state, polars), other (the metrics exporter, the rest). Exchange:
  model (``analyzer/sim``), render (the venues' emulators), server;
- resident memory of the collector's processes, per book; bytes written (segments and raw
  capture) per second.

A step passes when every book is held exact, the lag to receipt has its p99 under
``--max-lag-ms`` (250) and the store keeps up (no rows held back or dropped, no raw capture
shed). The lag to the store is reported, not judged: rows wait for the next flush by design
(``[store] flush_seconds``, 1 s by default, kept here), so its p99 is over a second at any
load. A failing step says "exchange late" when the exchange child's own lateness p99 was over
100 ms: the machine could not serve that market in real time, whoever is to blame. A mode's
ladder stops at its first failure.

Rates (printed first): per instrument and channel, counted in the recordings of
``tests/fixtures``. BTC and ETH ("majors") take, per market type, BTC's rates on Binance (spot
and USDⓈ-M 2024, six minutes each; COIN-M's BTC quarterly 2021 for dated futures): no recording
has ETH outside a COIN-M quarterly, where it sends as many book frames as BTC's and twice the
best bid/ask, so ETH is given BTC's rates. The long tail takes the median, per channel, of the
small coins recorded: Binance USDⓈ-M SUSHI, AKRO, KEEP, CTK (2021) for perpetuals, Binance spot
NKN, BLZ, LRC, RUNE (2021) for spot pairs. A venue's own recording replaces the channels it
has: OKX (spot and quarterly BTC, UNI's swap for the tail, 2022), Bybit (XRPUSDT's linear book,
2024, for the tail), WEEX (BTCUSDT's book, 2026). Venues without a recording (BingX, MEXC) take
Binance's: the busiest venue, so the estimate errs heavy. The tail lists linear perpetuals and
spot pairs on every venue; inverse and dated contracts are listed for BTC and ETH only, as on
the venues (the simulation lists the tail's quarterlies on the two venues whose perpetual
market has them: simulated idle, not collected). BingX's books take ``max_id_skip = 9``: its
simulation, like the venue, skips ids forward a couple of times a minute a stream. Books: 1000
levels a side for the majors, 500 for the tail (the venues' snapshots hold 400-1000).

The simulation keeps, per book, ~1.2 MB of precomputed random tables; the exchange children
share them between books of identical parameters (``share_sim_tables``), so that thousands
of books fit in memory; the frames are unchanged in kind.

The paper estimate at the end prices every perpetual and dated future of the six venues and
their top spot pairs with the measured costs of the largest step profiled (sharded if
measured): CPU a frame outside analytics, analytics a book a second, memory a book, bytes a
frame on disk. The listing's counts and their sources are printed with it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analyzer.exchange.recordings import FRAME, Recording  # noqa: E402
from analyzer.sim import AssetSpec, Rates, VenueSpec, World, default_world  # noqa: E402
from analyzer.sim.spec import BTC, ETH  # noqa: E402
from analyzer.venues import VENUES  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures"
MAJORS = ("BTC", "ETH")
MAJOR_LEVELS, TAIL_LEVELS, IDLE_LEVELS = 1000, 500, 50
STEP_S = 0.1  # the model's step (its default)
SPOT_CHANNELS = ["depth", "trades", "bookTicker"]
DERIVATIVE_CHANNELS = ["depth", "trades", "bookTicker", "markPrice", "openInterest",
                       "liquidations"]
STEPS = (0, 25, 50, 100, 200, 400)  # tail assets (each: 6 perpetuals, 6 spot pairs)
QUICK_STEPS = (0, 25)
SAMPLE_S = 10.0  # metrics samples during the window (Prometheus' default is 15 s)
LATE_EVERY_NS = 100_000_000  # exchange lateness samples, market time
EXCHANGE_FRAMES_PER_PROCESS = 12_000.0  # frames/s one exchange child is given at most
HEADROOM = 0.7  # the share of a core the paper estimate loads each collector core to


# ---------------------------------------------------------------------------------------------
# Rates from the recordings


@dataclass(frozen=True)
class Rate:
    """Per instrument: frames a second of its book, best bid/ask and trade channels, and the
    median number of levels a book frame changes."""

    depth: float = 0.0
    bbo: float = 0.0
    trades: float = 0.0
    levels: float = 0.0

    def frames(self, derivative: bool) -> float:
        return self.depth + self.bbo + self.trades + (1.0 if derivative else 0.0)  # + markPrice


# name: (recording, symbols as the streams spell them, what it is); several symbols: the
# median per channel
PROFILES: dict[str, tuple[Path | list[Path], tuple[str, ...], str]] = {
    "spot_btc": (FIXTURES / "binance/spot_2024", ("btcusdt",),
                 "Binance spot BTCUSDT 2024-08-08"),
    "usdm_btc": (FIXTURES / "binance/usdm_2024", ("btcusdt",),
                 "Binance USDⓈ-M BTCUSDT 2024-08-08 (depth@0ms)"),
    "coinm_btc_quarterly": (FIXTURES / "binance/coinm_2021", ("btcusd_211231",),
                            "Binance COIN-M BTCUSD_211231 2021-07-22"),
    "spot_small": (FIXTURES / "binance/spot_2021", ("nknusdt", "blzeth", "lrcbtc", "runeeur"),
                   "Binance spot NKN, BLZ, LRC, RUNE 2021-10-12 (median)"),
    "usdm_small": (FIXTURES / "binance/usdm_2021",
                   ("sushiusdt", "akrousdt", "keepusdt", "ctkusdt"),
                   "Binance USDⓈ-M SUSHI, AKRO, KEEP, CTK 2021-07-22 (median)"),
    "okx_spot_btc": (FIXTURES / "okx/OKX.ws.1.0.txt", ("BTC-USDT",), "OKX BTC-USDT 2022-05-13"),
    "okx_quarterly_btc": (FIXTURES / "okx/OKX.ws.1.0.txt", ("BTC-USD-220527",),
                          "OKX BTC-USD-220527 2022-05-13"),
    "okx_swap_small": (FIXTURES / "okx/OKX.ws.1.0.txt", ("UNI-USD-SWAP",),
                       "OKX UNI-USD-SWAP 2022-05-13"),
    "bybit_linear_small": (FIXTURES / "bybit/ob500_XRPUSDT_2024-12-01.ndjson", ("XRPUSDT",),
                           "Bybit XRPUSDT orderbook.500 2024-12-01"),
    "weex_perp_btc": ([FIXTURES / "weex/depth_snapshot.ndjson",
                       FIXTURES / "weex/depth_deltas.ndjson"], ("BTCUSDT",),
                      "WEEX BTCUSDT depth 2026-09-06"),
}
# (market type, major) -> the profile every venue takes unless it has its own
GENERIC = {("spot", True): "spot_btc", ("perpetual", True): "usdm_btc",
           ("future", True): "coinm_btc_quarterly", ("spot", False): "spot_small",
           ("perpetual", False): "usdm_small"}
# (exchange, market type, major) -> the venue's own recording (overrides the channels it has)
OWN = {("okx", "spot", True): "okx_spot_btc", ("okx", "future", True): "okx_quarterly_btc",
       ("okx", "perpetual", False): "okx_swap_small",
       ("bybit", "perpetual", False): "bybit_linear_small",
       ("weex", "perpetual", True): "weex_perp_btc"}


def _stream_channel(stream: bytes) -> tuple[str, str] | None:
    """(symbol, channel) of a recorded stream, channel one of depth, bbo, trades (None: a
    stream not counted, klines and tickers)."""
    s = stream.decode()
    if ":" in s:  # channel:instId
        ch, sym = s.split(":", 1)
        kind = {"books": "depth", "bbo-tbt": "bbo", "trades": "trades"}.get(ch)
    elif "@" in s:  # symbol@channel
        sym, ch = s.split("@", 1)
        kind = ("depth" if ch.startswith("depth") else "bbo" if ch == "bookTicker"
                else "trades" if ch in ("trade", "aggTrade") else None)
    else:  # topic.depth.symbol
        parts = s.split(".")
        sym = parts[-1]
        kind = ("depth" if parts[0] == "orderbook" else "trades" if parts[0] == "publicTrade"
                else None)
    return None if kind is None else (sym, kind)


def _levels(frame: bytes) -> int:
    """Levels a book frame carries (bids and asks)."""
    msg = msgspec.json.decode(frame)
    data = msg.get("data", msg) if isinstance(msg, dict) else msg
    if isinstance(data, list):
        data = data[0] if data else {}
    return sum(len(data.get(k) or ()) for k in ("b", "a", "bids", "asks"))


def recorded_rates() -> dict[str, Rate]:
    """Each profile's rates, counted in its recording (frames of a stream over the recording's
    span, first frame to last)."""
    cache: dict[str, tuple[float, dict[tuple[str, str], int], dict[str, list[int]]]] = {}
    out = {}
    for name, (path, symbols, _) in PROFILES.items():
        key = str(path)
        if key not in cache:
            counts: dict[tuple[str, str], int] = {}
            levels: dict[str, list[int]] = {}
            t0 = t1 = None
            for ts, kind, stream, payload in Recording.open(path).events():
                if kind != FRAME:
                    continue
                t0 = ts if t0 is None else min(t0, ts)
                t1 = ts if t1 is None else max(t1, ts)
                got = _stream_channel(stream)
                if got is None:
                    continue
                sym, ch = got[0].lower(), got[1]
                counts[(sym, ch)] = counts.get((sym, ch), 0) + 1
                if ch == "depth":
                    levels.setdefault(sym, []).append(_levels(payload))
            cache[key] = (max((t1 or 0) - (t0 or 0), 1) / 1e9, counts, levels)
        span, counts, levels = cache[key]
        syms = [s.lower() for s in symbols]
        out[name] = Rate(
            depth=statistics.median(counts.get((s, "depth"), 0) / span for s in syms),
            bbo=statistics.median(counts.get((s, "bbo"), 0) / span for s in syms),
            trades=statistics.median(counts.get((s, "trades"), 0) / span for s in syms),
            levels=statistics.median(statistics.median(levels.get(s) or [0]) for s in syms),
        )
    return out


def target(profiles: dict[str, Rate], exchange: str, market: str, major: bool) -> Rate | None:
    """The rates of an instrument (None: listed by the simulation, not collected here: the
    tail's dated futures)."""
    generic = GENERIC.get((market, major))
    if generic is None:
        return None
    rate = profiles[generic]
    own = OWN.get((exchange, market, major))
    if own is not None:
        o = profiles[own]
        rate = Rate(o.depth or rate.depth, o.bbo or rate.bbo, o.trades or rate.trades,
                    o.levels or rate.levels)
    return rate


def targets_table(profiles: dict[str, Rate]) -> dict[str, list[float]]:
    """Every (exchange, market, major) the simulated world lists, for the exchange children."""
    out = {}
    for v in default_world().venues:
        for market in ("spot", "perpetual", "future"):
            for major in (True, False):
                r = target(profiles, v.exchange, market, major)
                if r is not None:
                    out[f"{v.exchange}|{market}|{int(major)}"] = [r.depth, r.bbo, r.trades,
                                                                  r.levels]
    return out


# ---------------------------------------------------------------------------------------------
# The simulated world


def tail_asset(i: int) -> AssetSpec:
    """A small coin: a 1 USD price on a 5 bp tick (its price moves a tick every few seconds,
    as small coins' do, so that the recentring of the book adds few changes to the chosen
    rates), books ~5k USD at the top."""
    return AssetSpec(
        name=f"T{i:03d}", start_price=1.0, vol_annual=0.9, jumps_per_day=0.5,
        tick={"spot": 0.0005, "perpetual": 0.0005, "future": 0.0005},
        lot={"spot": 0.1, "perpetual": 1.0, "future": 1.0}, inverse_contract_size=10.0,
        top_size=5000.0, trade_size=300.0, levels_per_bp=1.0, open_interest_usd=2e7,
    )


def world_specs(feeds: Iterable[str] | None = None) -> list[VenueSpec]:
    """The registered venues' market specs (of ``feeds``), inverse and dated-only markets
    restricted to the majors."""
    wanted = None if feeds is None else set(feeds)
    out = []
    for v in default_world().venues:
        if wanted is not None and v.feed not in wanted:
            continue
        if v.kind == "inverse" or (v.kind != "spot" and not v.perpetual):
            v = msgspec.structs.replace(v, assets=MAJORS)
        out.append(v)
    return out


def build_world(feeds: Iterable[str], n_tail: int) -> World:
    return World(assets=(BTC, ETH, *(tail_asset(i) for i in range(n_tail))),
                 venues=tuple(world_specs(feeds)),
                 rates=Rates(step_s=STEP_S, levels=MAJOR_LEVELS)).validate()


def instruments_of(v: VenueSpec, n_tail: int) -> list[tuple[str, bool]]:
    """(market type, major) of each instrument the spec lists, collected or not."""
    out = []
    for major, n in ((True, len(MAJORS)), (False, n_tail)):
        if not major and v.assets is not None:
            continue
        for _ in range(n):
            out += [(m, major) for m in v.markets() if m != "future"]
            out += [("future", major)] * v.quarterlies
    return out


def expected_frames(profiles: dict[str, Rate], n_tail: int) -> dict[str, float]:
    """Frames/s each feed should send to the collector at these rates."""
    out: dict[str, float] = {}
    for v in world_specs():
        for market, major in instruments_of(v, n_tail):
            r = target(profiles, v.exchange, market, major)
            if r is not None:
                out[v.feed] = out.get(v.feed, 0.0) + r.frames(market != "spot")
    return out


def plan_exchanges(load: dict[str, float]) -> list[list[str]]:
    """Feeds split over exchange children, heaviest first into the lightest child."""
    n = max(1, min(len(load), math.ceil(sum(load.values()) / EXCHANGE_FRAMES_PER_PROCESS)))
    groups: list[list[str]] = [[] for _ in range(n)]
    weights = [0.0] * n
    for feed in sorted(load, key=lambda f: -load[f]):
        i = weights.index(min(weights))
        groups[i].append(feed)
        weights[i] += load[feed]
    return [g for g in groups if g]


# ---------------------------------------------------------------------------------------------
# The exchange child


def share_sim_tables() -> None:
    """Make the simulation's books share their precomputed random tables (sizes, gaps, the
    patterns of refills and deep modifies: ~1.2 MB a book) between books of the same
    parameters, in this process only. Without it a few thousand books need gigabytes."""
    from analyzer.sim import book as simbook

    original = simbook.SimBook._tables
    shared = ("_gapm", "_sizes", "_szr", "_tsizes", "_topv", "_topf", "_cum", "_noise", "_refv",
              "_reff", "_dpat")
    cache: dict[tuple[Any, ...], tuple[Any, ...]] = {}

    def tables(self: Any, fair: float) -> None:
        p = self.p
        key = (p.tick, p.lot, p.levels, p.levels_per_bp, p.top_size_lots, p.trade_size_lots,
               self.depth, round(math.log(fair), 2), self._dmax)
        got = cache.get(key)
        if got is None:
            original(self, fair)
            cache[key] = tuple(getattr(self, a) for a in shared)
            return
        for a, value in zip(shared, got, strict=True):
            setattr(self, a, value)
        self.mid_scale = simbook.SIZE_BUCKETS_PER_BP / (fair * self.td / self.tn / 1e4)

    simbook.SimBook._tables = tables  # type: ignore[method-assign]


def flow_for(rate: Rate | None) -> tuple[int, Any]:
    """Book changes a model step and the order flow of each, for an instrument's rates: each
    best bid/ask event (a top update or a taker order) is a Quote, each taker order at least
    one Trade; deep updates fill the rest of the changes (a change holds ``levels`` levels when
    nearly every interval changes, else just enough updates for the rate of changes)."""
    from analyzer.sim.book import Flow

    if rate is None:
        return 1, Flow(updates=0.0, trades=0.0, top_share=0.0)
    n = max(1, round(rate.depth * STEP_S))
    per = STEP_S / n
    p = min(1.0, rate.depth * per)  # the chance an interval holds a change
    lam = max(rate.levels, 3.0) if p >= 0.9 else -math.log(1.0 - p)
    events = rate.bbo * per
    trades = min(rate.trades * per, events)
    top = events - trades
    deep = max(0.0, lam - events)
    updates = top + deep
    return n, Flow(updates=updates, trades=trades, top_share=top / updates if updates else 0.0)


def tune_books(model: Any, targets: dict[str, list[float]]) -> None:
    """Give every simulated book its instrument's rates and depth (a fresh book, made with the
    simulation's own constructor, before anything is released)."""
    from analyzer.sim.book import BookParams, SimBook

    for info in model.instruments():
        si = model.find(info.venue, info.symbol)
        major = info.base in MAJORS
        got = targets.get(f"{si.venue.exchange}|{info.market}|{int(major)}")
        rate = Rate(*got) if got else None
        old = si.book
        p = old.p
        params = BookParams(
            tick=p.tick, lot=p.lot,
            levels=MAJOR_LEVELS if major else TAIL_LEVELS if rate else IDLE_LEVELS,
            levels_per_bp=p.levels_per_bp, top_size_lots=p.top_size_lots,
            trade_size_lots=p.trade_size_lots, spread_ticks=p.spread_ticks,
            sends_prev_id=p.sends_prev_id, is_derivative=p.is_derivative, liq_share=p.liq_share)
        n, flow = flow_for(rate)
        si.book = SimBook(info.venue, info.symbol, params, model.rng, fair=si.fair,
                          first_id=old.uid, first_trade_id=old.tid, n_intervals=n, flow=flow)


def exchange_child(argv: Sequence[str]) -> int:
    """``--exchange-child``: serve some feeds of the simulated market until SIGTERM; prints
    its port, writes its clock offset and lateness samples to ``--report``."""
    import asyncio

    from analyzer.exchange.server import LocalExchange
    from analyzer.exchange.simulate import Simulation

    p = argparse.ArgumentParser()
    p.add_argument("--feeds", required=True)
    p.add_argument("--tail", type=int, required=True)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--start-ns", type=int, required=True)
    p.add_argument("--targets", required=True)
    p.add_argument("--report", required=True)
    args = p.parse_args(argv)
    share_sim_tables()
    world = build_world(args.feeds.split(","), args.tail)
    sim = Simulation(world, seed=args.seed, speed=1.0, start_ns=args.start_ns, autostart=False)
    tune_books(sim.model, json.loads(Path(args.targets).read_text()))
    exchange = LocalExchange("127.0.0.1", 0, rest_weight_limit=10**9)
    exchange.add_simulation(sim)
    report = open(args.report, "w", buffering=1)  # noqa: SIM115 (open for the run)
    gate: list[int] = []

    def sample(t: int) -> None:
        if sim.started_wall is not None:
            if not gate:  # the wall time (epoch ns) the clock started
                gate.append(time.time_ns() - int((time.monotonic() - sim.started_wall) * 1e9))
                report.write(f"offset {gate[0] - sim.start_ns}\n")
            report.write(f"late {t} {time.time_ns() - (gate[0] + t - sim.start_ns)}\n")
        sim.at(t + LATE_EVERY_NS, lambda: sample(t + LATE_EVERY_NS))

    async def main() -> None:
        await exchange.start()
        print(f"port {exchange.port}", flush=True)
        loop = asyncio.get_running_loop()
        loop.call_later(max(0.0, (args.start_ns - time.time_ns()) / 1e9), sim.start)
        first = args.start_ns + LATE_EVERY_NS
        sim.at(first, lambda: sample(first))
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await exchange.stop()

    asyncio.run(main())
    report.close()
    return 0


# ---------------------------------------------------------------------------------------------
# Processes: start, stop, CPU and memory from /proc

TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def descendants(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            for child in (task / "children").read_text().split():
                out += [int(child), *descendants(int(child))]
    return out


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def stop(proc: subprocess.Popen, timeout: float = 60.0) -> None:
    """SIGTERM (the collector flushes, the exchange closes), then SIGKILL if it hangs."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@dataclass
class Exchange:
    feeds: list[str]
    proc: subprocess.Popen
    port: int
    report: Path

    def offset_and_lateness(self) -> tuple[int, list[tuple[int, int]]]:
        """The clock's offset (its start's wall time minus the market time it started at)
        and the lateness samples: (market time, ns late)."""
        offset, late = 0, []
        for line in self.report.read_text().splitlines():
            kind, *vals = line.split()
            if kind == "offset":
                offset = int(vals[0])
            elif kind == "late":
                late.append((int(vals[0]), max(0, int(vals[1]))))
        return offset, late


def start_exchanges(groups: list[list[str]], n_tail: int, seed: int, start_ns: int,
                    targets: Path, tmp: Path) -> list[Exchange]:
    out = []
    for i, feeds in enumerate(groups):
        report = tmp / f"exchange-{i}.txt"
        proc = subprocess.Popen(
            [sys.executable, __file__, "--exchange-child", "--feeds", ",".join(feeds),
             "--tail", str(n_tail), "--seed", str(seed), "--start-ns", str(start_ns),
             "--targets", str(targets), "--report", str(report)],
            stdout=subprocess.PIPE, cwd=ROOT, text=True)
        out.append(Exchange(feeds, proc, 0, report))
    try:
        for ex in out:
            assert ex.proc.stdout is not None
            line = ex.proc.stdout.readline()
            if not line.startswith("port "):
                raise RuntimeError(f"exchange child for {ex.feeds} did not start")
            ex.port = int(line.split()[1])
    except BaseException:
        for ex in out:
            stop(ex.proc)
        raise
    return out


# ---------------------------------------------------------------------------------------------
# The collector's configuration


def listing(exchange: Exchange) -> dict[str, dict[str, Any]]:
    """What each of the child's feeds lists, read and decoded as the collector reads it."""
    out = {}
    for feed_id in exchange.feeds:
        market, feed_cls = VENUES[feed_id]
        feed = feed_cls(market, [], [], None)
        bodies = []
        for path in feed.instrument_paths():
            url = f"http://127.0.0.1:{exchange.port}/{feed_id}{path}"
            with urllib.request.urlopen(url, timeout=60) as resp:
                bodies.append(resp.read())
        out[feed_id] = feed.decode_instruments(bodies, time.time_ns())
    return out


def collected(instruments: dict[str, Any]) -> list[str]:
    """The symbols collected: every majors' contract, the tail's perpetuals and spot pairs."""
    return sorted(s for s, i in instruments.items()
                  if i.base in MAJORS or i.market in ("spot", "perpetual"))


# BingX's book ids skip forward by 2-9 a couple of times a minute a stream (as the venue's do,
# and its simulation): a user collecting it live accepts them (the README's max_id_skip)
OPTIONS = {"bingx_swap": {"max_id_skip": 9}}


def collector_config(exchanges: list[Exchange], symbols: dict[str, list[str]], data: Path,
                     metrics_port: int, flush_s: float, shards: str | None) -> dict[str, Any]:
    port_of = {f: ex.port for ex in exchanges for f in ex.feeds}
    feeds = []
    for feed_id, syms in symbols.items():
        base = f"127.0.0.1:{port_of[feed_id]}/{feed_id}"
        spot = VENUES[feed_id][0].is_spot
        feeds.append({
            "venue": feed_id, "symbols": syms, "ws_url": f"ws://{base}",
            "rest_url": f"http://{base}",
            "channels": SPOT_CHANNELS if spot else DERIVATIVE_CHANNELS,
            # the local exchange answers as fast as it can: a cold start of thousands of books
            # is not what is measured here
            "rest_weight_per_minute": 10**7,
            **({"options": OPTIONS[feed_id]} if feed_id in OPTIONS else {}),
        })
    cfg: dict[str, Any] = {
        "log_level": "WARNING",
        "store": {"data_dir": str(data), "database": str(data / "analyzer.duckdb"),
                  "flush_seconds": flush_s},
        "metrics": {"port": metrics_port, "host": "127.0.0.1"},
        "feeds": feeds,
    }
    if shards:
        cfg["cluster"] = {"shards": shards}
    return cfg


def toml(cfg: dict[str, Any]) -> str:
    """The few TOML shapes the configuration above uses."""
    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return "{" + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + "}"

    lines = [f"{k} = {value(v)}" for k, v in cfg.items() if not isinstance(v, (dict, list))]
    for k, v in cfg.items():
        if isinstance(v, dict):
            lines += ["", f"[{k}]", *(f"{a} = {value(b)}" for a, b in v.items())]
        elif isinstance(v, list):
            for item in v:
                lines += ["", f"[[{k}]]", *(f"{a} = {value(b)}" for a, b in item.items())]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# Metrics


def scrape(port: int) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Samples by name from a metrics endpoint ({} if it does not answer)."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=20) as resp:
            text = resp.read().decode()
    except (OSError, urllib.error.URLError):
        return {}
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def total(samples: dict[str, list[tuple[dict[str, str], float]]], name: str,
          **match: str) -> float:
    return sum(v for labels, v in samples.get(name, ())
               if all(labels.get(k) == want for k, want in match.items()))


def books_in_sync(samples: dict[str, list[tuple[dict[str, str], float]]]
                  ) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """(books in sync, every book) as (venue, symbol)."""
    every, ok = set(), set()
    for labels, v in samples.get("analyzer_book_in_sync", ()):
        key = (labels["venue"], labels["symbol"])
        every.add(key)
        if v == 1.0:
            ok.add(key)
    return ok, every


def frames_by_venue(samples: dict[str, list[tuple[dict[str, str], float]]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for labels, v in samples.get("analyzer_frames_total", ()):
        out[labels["venue"]] = out.get(labels["venue"], 0.0) + v
    return out


# ---------------------------------------------------------------------------------------------
# CPU by stage (py-spy)

STAGES = ("receive", "decode", "book", "store", "analytics", "other")
# a sample anywhere under these is the metrics exporter's: other
METRICS = ("analyzer/metrics.py", "analyzer/cluster/metrics.py", "prometheus_client/")
# (path fragment, stage), tried from a sample's innermost frame outwards (py-spy shows paths
# from their package: "analyzer/feed/book.py", "asyncio/events.py")
STAGE_RULES = (
    ("analyzer/store/", "store"), ("pyarrow/", "store"), ("duckdb/", "store"),
    ("analyzer/analytics/", "analytics"), ("analyzer/cluster/", "analytics"),
    ("analyzer/portfolio/", "analytics"), ("polars/", "analytics"), ("nats/", "analytics"),
    ("analyzer/feed/books.py", "book"), ("analyzer/feed/book.py", "book"),
    ("analyzer/venues/", "decode"), ("analyzer/collector.py", "decode"),
    ("analyzer/feed/", "receive"), ("websockets/", "receive"), ("asyncio/", "receive"),
    ("(selectors.py", "receive"), ("(socket.py", "receive"), ("(ssl.py", "receive"),
    ("http/client.py", "receive"),
)


# innermost frames of a thread waiting (py-spy counts a thread in a short epoll_wait as running)
IDLE = ("select (selectors.py", "Condition.wait (threading.py", "Event.wait (threading.py")


def py_spy() -> Path | None:
    exe = Path(sys.executable).parent / "py-spy"
    return exe if exe.exists() else None


def start_profiles(pids: list[int], seconds: float, tmp: Path) -> list[tuple[subprocess.Popen,
                                                                              Path]]:
    exe = py_spy()
    if exe is None:
        return []
    out = []
    for pid in pids:
        path = tmp / f"pyspy-{pid}.txt"
        proc = subprocess.Popen(
            [str(exe), "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))),
             "--rate", "100", "--format", "raw", "--nonblocking", "-o", str(path)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        out.append((proc, path))
    return out


# the exchange children's own split: the model, the venues' renderers, the server
EXCHANGE_STAGES = ("model", "render", "server", "other")
EXCHANGE_RULES = (
    ("analyzer/sim/", "model"), ("/emulate/", "render"), ("analyzer/venues/", "render"),
    ("analyzer/exchange/", "server"), ("websockets/", "server"), ("asyncio/", "server"),
    ("(selectors.py", "server"), ("(socket.py", "server"),
)


def stage_shares(profiles: list[tuple[subprocess.Popen, Path]],
                 stages: tuple[str, ...] = STAGES,
                 rules: tuple[tuple[str, str], ...] = STAGE_RULES) -> dict[str, float]:
    """Share of the sampled CPU by stage, over every profiled process."""
    counts = dict.fromkeys(stages, 0)
    for proc, path in profiles:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(30)
        if proc.poll() is None:
            proc.kill()
        if not path.exists():
            continue
        for line in path.read_text(errors="replace").splitlines():
            stack, _, n = line.rpartition(" ")
            if not n.isdigit():
                continue
            frames = stack.split(";")
            if frames[-1].startswith(IDLE) or ".select (selectors.py" in frames[-1]:
                continue
            stage = "other"
            for frame in reversed(frames):
                if any(m in frame for m in METRICS):
                    break  # (the exporter's, whatever it calls)
                hit = next((s for frag, s in rules if frag in frame), None)
                if hit is not None and not any(m in f for f in frames for m in METRICS):
                    stage = hit
                    break
            counts[stage] += int(n)
    n = sum(counts.values())
    return {s: c / n for s, c in counts.items()} if n else {}


# ---------------------------------------------------------------------------------------------
# Lags and gaps, from the store's segments


def _segments(data: Path, table: str, since_ns: int) -> list[tuple[Path, int]]:
    root = data / "segments" / table
    out = []
    for p in root.glob("*/*.parquet"):
        with contextlib.suppress(OSError):
            mtime = p.stat().st_mtime_ns
            if mtime >= since_ns:
                out.append((p, mtime))
    return out


@dataclass
class Lags:
    """Percentiles (p50, p99) in ms over the quotes and trades received in the window, from
    the venue's event time: to receipt and to the flushed segment; ``net``: the same less the
    exchange child's own lateness at that market time (interpolated between its samples)."""

    receipt: list[float] = field(default_factory=lambda: [math.nan, math.nan])
    stored: list[float] = field(default_factory=lambda: [math.nan, math.nan])
    receipt_net: list[float] = field(default_factory=lambda: [math.nan, math.nan])
    stored_net: list[float] = field(default_factory=lambda: [math.nan, math.nan])
    rows: int = 0


def lags(data: Path, t0: int, t1: int, offsets: dict[str, int],
         lateness: dict[str, list[tuple[int, int]]]) -> Lags:
    import numpy as np
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    series = {v: (np.array([t for t, _ in late], dtype=np.float64),
                  np.array([n for _, n in late], dtype=np.float64))
              for v, late in lateness.items() if late}
    receipt, stored, late_of = [], [], []
    for table in ("quotes", "trades"):
        for path, mtime in _segments(data, table, t0):
            t = pq.read_table(path, columns=["venue", "ts_local", "ts_exchange"])
            t = t.filter(pc.and_(pc.and_(pc.greater_equal(t["ts_local"], t0),
                                        pc.less_equal(t["ts_local"], t1)),
                                 pc.greater(t["ts_exchange"], 0)))  # (0: no venue time)
            if not t.num_rows:
                continue
            venue = t["venue"].to_numpy(zero_copy_only=False)
            exch = t["ts_exchange"].to_numpy().astype(np.int64)
            off = np.array([offsets.get(v, 0) for v in venue], dtype=np.int64)
            event = exch + off  # the event's wall time
            receipt.append(t["ts_local"].to_numpy().astype(np.int64) - event)
            stored.append(mtime - event)
            late = np.zeros(len(exch))
            for v in set(venue):
                if v in series:
                    rows = venue == v
                    late[rows] = np.interp(exch[rows], *series[v])
            late_of.append(late)
    if not receipt:
        return Lags()
    r, st = np.concatenate(receipt) / 1e6, np.concatenate(stored) / 1e6
    late = np.concatenate(late_of) / 1e6
    q = [50, 99]
    return Lags(list(np.percentile(r, q)), list(np.percentile(st, q)),
                list(np.percentile(r - late, q)), list(np.percentile(st - late, q)), len(r))


def gapped_books(data: Path, t0: int, t1: int) -> dict[tuple[str, str], str]:
    """Books with a ``gaps`` row (a gap, crossed book, stale stream, mismatch) in [t0, t1],
    and the reason of the first."""
    import pyarrow.parquet as pq

    out: dict[tuple[str, str], str] = {}
    for path, _ in _segments(data, "gaps", t0):
        t = pq.read_table(path, columns=["venue", "symbol", "ts_local", "reason"]).to_pydict()
        for v, s, ts, why in zip(t["venue"], t["symbol"], t["ts_local"], t["reason"],
                                 strict=True):
            if t0 <= ts <= t1:
                out.setdefault((v, s), why)
    return out


def disk_bytes(data: Path) -> int:
    n = 0
    for root, _, files in os.walk(data):
        for f in files:
            with contextlib.suppress(OSError):
                n += os.stat(os.path.join(root, f)).st_size
    return n


# ---------------------------------------------------------------------------------------------
# One step


@dataclass
class Step:
    mode: str
    n_tail: int
    instruments: int = 0  # collected (each with a book)
    synced: int = 0  # books in sync when the window opened
    exact: int = 0
    sync_s: float = 0.0  # from the collector's start to every book in sync
    fps: float = 0.0
    expected_fps: float = 0.0
    lag: Lags = field(default_factory=Lags)
    late_ms: list[float] = field(default_factory=lambda: [math.nan, math.nan])  # exchange's
    collector_cores: float = 0.0
    exchange_cores: float = 0.0
    exchanges: int = 0
    nats_cores: float = 0.0
    processes: int = 0  # collector processes (shards and analytics)
    rss_mb: float = 0.0
    exchange_rss_mb: float = 0.0
    disk_bytes_per_s: float = 0.0
    raw_bytes_per_s: float = 0.0  # of which the raw capture
    compaction: float = 1.0  # segments' size after compaction / before
    process_cores: dict[str, float] = field(default_factory=dict)  # by process role
    stages: dict[str, float] = field(default_factory=dict)  # share of the collector's CPU
    exchange_stages: dict[str, float] = field(default_factory=dict)
    frames_by_feed: dict[str, float] = field(default_factory=dict)
    expected_by_feed: dict[str, float] = field(default_factory=dict)
    note: str = ""
    max_lag_ms: float = 250.0


    store_behind: float = 0.0  # rows the store held back or dropped, raw capture bytes shed

    def add_note(self, text: str) -> None:
        self.note = f"{self.note}; {text}" if self.note else text

    @property
    def passed(self) -> bool:
        """Every book exact, the lag p99 to receipt (the book is current from then) under the
        limit, and the store and raw capture keeping up (nothing held back, dropped or
        shed). The lag to the store is reported, not judged: it is the flush interval's by
        construction."""
        return (self.instruments > 0 and self.exact == self.instruments
                and self.lag.receipt[1] <= self.max_lag_ms and not self.store_behind)

    @property
    def verdict(self) -> str:
        if self.passed:
            return "ok"
        if self.late_ms[1] > 100.0:  # the exchange child itself was late: the machine's limit
            return "FAIL (exchange late)"
        return "FAIL"


def role(pid: int) -> str:
    """A collector process's name: collector, shard:<exchange>, analytics."""
    args = cmdline(pid).split()
    if "analyzer.cluster.child" in args:
        return args[args.index("analyzer.cluster.child") + 1]
    return "collector"


def compaction_ratio(data: Path) -> float:
    """The segments' size after the store's compaction (every table and day merged, as the
    compactor does five minutes on) over their size before: what a day of them keeps."""
    import itertools

    from analyzer.store import compact

    root = data / "segments"
    before = disk_bytes(root)
    seq = itertools.count(10**6)
    compact.compact(root, 0, time.time_ns(), lambda: next(seq), fsync=False)
    return disk_bytes(root) / before if before else 1.0


def collector_pids(root: int) -> tuple[list[int], list[int]]:
    """(python processes collecting: the collector, or its shards and analytics process;
    helpers: a sharded collector's supervisor and nats-server)."""
    kids = descendants(root)
    py = [p for p in kids if "analyzer.cluster.child" in cmdline(p)]
    if not py:
        return [root], kids
    return py, [root, *(p for p in kids if p not in py)]


def run_step(mode: str, n_tail: int, args: argparse.Namespace, profiles: dict[str, Rate],
             targets: Path, tmp: Path) -> Step:
    step = Step(mode, n_tail, max_lag_ms=args.max_lag_ms)
    load = expected_frames(profiles, n_tail)
    step.expected_by_feed = load
    step.expected_fps = sum(load.values())
    groups = plan_exchanges(load)
    step.exchanges = len(groups)
    work = tmp / f"{mode}-{n_tail}"
    work.mkdir()
    # the market's clock starts a few seconds from now, when the collector will be subscribing
    start_ns = time.time_ns() + int((6 + 0.004 * n_tail * 15) * 1e9)
    exchanges = start_exchanges(groups, n_tail, args.seed, start_ns, targets, work)
    collector = None
    try:
        symbols: dict[str, list[str]] = {}
        for ex in exchanges:
            for feed_id, inst in listing(ex).items():
                symbols[feed_id] = collected(inst)
        step.instruments = sum(len(s) for s in symbols.values())
        data = work / "data"
        port = free_port()
        cfg_path = work / "analyzer.toml"
        cfg_path.write_text(toml(collector_config(
            exchanges, symbols, data, port, args.flush_seconds,
            "exchange" if mode == "sharded" else None)))
        t_start = time.monotonic()
        collector = subprocess.Popen(
            [sys.executable, "-c", "import sys; from analyzer.cli import main; sys.exit(main())",
             "collect", "-c", str(cfg_path)], cwd=ROOT)
        # every book in sync (or the wait is over)
        deadline = t_start + args.sync_timeout + 0.02 * step.instruments
        while True:
            time.sleep(2.0)
            if collector.poll() is not None:
                raise RuntimeError(f"the collector exited ({collector.returncode})")
            ok, every = books_in_sync(scrape(port))
            if len(every) >= step.instruments and len(ok) == len(every):
                break
            if time.monotonic() > deadline:
                step.note = f"{len(every) - len(ok)} books never in sync"
                break
        step.sync_s = time.monotonic() - t_start
        time.sleep(3.0)  # past the first snapshots' writes
        # the snapshots the collector asked for at its start cost the exchange children time:
        # the window opens once they release the market on time again (or the wait is over)
        until = time.monotonic() + args.catch_up_timeout
        while time.monotonic() < until:
            latest = [ex.offset_and_lateness()[1][-1:] for ex in exchanges]
            if all(late and late[0][1] < 50_000_000 for late in latest):
                break
            time.sleep(1.0)
        else:
            step.add_note("the exchange never caught up with the market's clock")
        # the window
        py_pids, helpers = collector_pids(collector.pid)
        ex_pids = [ex.proc.pid for ex in exchanges]
        m0 = scrape(port)
        in_sync, every = books_in_sync(m0)
        step.synced = len(in_sync)
        cpu0 = ([cpu_seconds(p) for p in py_pids], [cpu_seconds(p) for p in helpers],
                [cpu_seconds(p) for p in ex_pids])
        disk0 = disk_bytes(data), disk_bytes(data / "raw")
        t0_ns, w0 = time.time_ns(), time.monotonic()
        profiles_run = start_profiles(py_pids, args.window, work) if args.stages else []
        ex_profiles = start_profiles(ex_pids, args.window, work) if args.stages else []
        while time.monotonic() - w0 < args.window - 0.5:
            time.sleep(min(SAMPLE_S, max(0.1, args.window - (time.monotonic() - w0))))
            ok, seen = books_in_sync(scrape(port))
            in_sync -= seen - ok  # (a shard that did not answer this scrape: no verdict)
        m1 = scrape(port)
        wall = time.monotonic() - w0
        t1_ns = time.time_ns()
        ok, seen = books_in_sync(m1)
        in_sync -= seen - ok
        cpu1 = ([cpu_seconds(p) for p in py_pids], [cpu_seconds(p) for p in helpers],
                [cpu_seconds(p) for p in ex_pids])
        step.collector_cores = (sum(cpu1[0]) - sum(cpu0[0])) / wall
        step.process_cores = {role(pid): (b - a) / wall
                              for pid, a, b in zip(py_pids, cpu0[0], cpu1[0], strict=True)}
        step.nats_cores = (sum(cpu1[1]) - sum(cpu0[1])) / wall
        step.exchange_cores = (sum(cpu1[2]) - sum(cpu0[2])) / wall
        step.processes = len(py_pids)
        step.rss_mb = sum(rss_mb(p) for p in py_pids)
        step.exchange_rss_mb = sum(rss_mb(p) for p in ex_pids)
        step.disk_bytes_per_s = (disk_bytes(data) - disk0[0]) / wall
        step.raw_bytes_per_s = (disk_bytes(data / "raw") - disk0[1]) / wall
        step.store_behind = sum(
            total(m1, name) - total(m0, name) for name in (
                "analyzer_store_backpressure_total", "analyzer_store_rows_dropped_total",
                "analyzer_raw_capture_bytes_dropped_total")) + total(m1,
                                                                     "analyzer_store_rows_held")
        if step.store_behind:
            step.add_note("the store fell behind")
        f0, f1 = frames_by_venue(m0), frames_by_venue(m1)
        step.frames_by_feed = {v: (f1.get(v, 0) - f0.get(v, 0)) / wall for v in f1}
        step.fps = sum(step.frames_by_feed.values())
        step.stages = stage_shares(profiles_run)
        step.exchange_stages = stage_shares(ex_profiles, EXCHANGE_STAGES, EXCHANGE_RULES)
        time.sleep(2.0 + args.flush_seconds)  # the window's last rows reach the store
        offsets, lateness, late = {}, {}, []
        for ex in exchanges:
            off, ex_late = ex.offset_and_lateness()
            late += [n for t, n in ex_late if t0_ns <= t + off <= t1_ns]
            for feed_id in ex.feeds:
                offsets[feed_id], lateness[feed_id] = off, ex_late
        if late:
            late.sort()
            step.late_ms = [late[len(late) // 2] / 1e6,
                            late[min(len(late) - 1, int(0.99 * len(late)))] / 1e6]
        step.lag = lags(data, t0_ns, t1_ns, offsets, lateness)
        gapped = gapped_books(data, t0_ns, t1_ns)
        step.exact = len(in_sync - set(gapped))
        lost = sorted(set(every) - (in_sync - set(gapped)))
        if lost:
            step.add_note(", ".join(f"{v} {s}: {gapped.get((v, s), 'out of sync')}"
                                  for v, s in lost[:4]) + (" ..." if len(lost) > 4 else ""))
        stop(collector, 120.0)
        step.compaction = compaction_ratio(data)
    finally:
        if collector is not None:
            stop(collector, 120.0)
        for ex in exchanges:
            stop(ex.proc)
        if not args.keep:
            import shutil

            shutil.rmtree(work, ignore_errors=True)
    return step


# ---------------------------------------------------------------------------------------------
# Report


def _f(x: float, fmt: str = ",.0f") -> str:
    return "-" if x != x else format(x, fmt)  # NaN: not measured


def print_rates(profiles: dict[str, Rate]) -> None:
    print("rates per instrument, counted in tests/fixtures (frames/s; levels: median a book "
          "frame)")
    print(f"  {'profile':<22}{'book':>8}{'bbo':>8}{'trades':>8}{'levels':>8}  recording")
    for name, r in profiles.items():
        print(f"  {name:<22}{r.depth:>8.2f}{r.bbo:>8.2f}{r.trades:>8.2f}{r.levels:>8.1f}  "
              f"{PROFILES[name][2]}")
    print("  majors (BTC, ETH): spot_btc, usdm_btc (perpetuals), coinm_btc_quarterly (dated); "
          "tail: spot_small, usdm_small;\n  a venue's own recording replaces the channels it "
          "has (OKX, Bybit's tail, WEEX); no bbo recorded: the generic rate\n")


def busiest(s: Step) -> str:
    if not s.process_cores:
        return "-"
    name = max(s.process_cores, key=lambda r: s.process_cores[r])
    return f"{name} {s.process_cores[name]:.2f}"


def print_steps(steps: list[Step]) -> None:
    """Markdown tables: the market and the verdict, lags, costs."""
    def ms(pair: list[float]) -> str:
        return f"{_f(pair[0])} / {_f(pair[1])}"

    print("\n| mode | tail assets | books | exact | frames/s (rates promise) | lag to receipt "
          "p50 / p99 ms | to store p50 / p99 ms | exchange late p99 ms | net of it: receipt "
          "/ store p99 ms | verdict |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for s in steps:
        print(f"| {s.mode} | {s.n_tail} | {s.instruments:,} | {s.exact:,} | {_f(s.fps)} "
              f"({_f(s.expected_fps)}) | {ms(s.lag.receipt)} | {ms(s.lag.stored)} | "
              f"{_f(s.late_ms[1])} | {_f(s.lag.receipt_net[1])} / {_f(s.lag.stored_net[1])} | "
              f"{s.verdict}{f' ({s.note})' if s.note else ''} |")
    print("\n| mode | tail assets | collector cores (processes) | exchange cores (processes) "
          "| busiest process, cores | collector RSS MB | MB a book | disk KB/s (raw capture) "
          "| sync s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for s in steps:
        nats = (f" + {s.nats_cores:.2f} supervisor and nats" if s.mode == "sharded" else "")
        print(f"| {s.mode} | {s.n_tail} | {s.collector_cores:.2f} ({s.processes}){nats} | "
              f"{s.exchange_cores:.2f} ({s.exchanges}) | {busiest(s)} | {s.rss_mb:,.0f} | "
              f"{s.rss_mb / max(s.instruments, 1):.2f} | {s.disk_bytes_per_s / 1e3:,.0f} "
              f"({s.raw_bytes_per_s / 1e3:,.0f}) | "
              f"{s.sync_s:.0f} |")
    print("\nCPU of the collector per frame by stage, µs (all its processes and threads, "
          "shares from py-spy); analytics also per book a second")
    print("\n| mode | tail assets | " + " | ".join(STAGES) + " | total | analytics µs a book "
          "a second |")
    print("|---|---|" + "---|" * (len(STAGES) + 2))
    for s in steps:
        if not s.stages or not s.fps:
            continue
        us = s.collector_cores / s.fps * 1e6
        book_us = s.stages["analytics"] * s.collector_cores * 1e6 / max(s.instruments, 1)
        print(f"| {s.mode} | {s.n_tail} | "
              + " | ".join(f"{s.stages[st] * us:.1f}" for st in STAGES)
              + f" | {us:.1f} | {book_us:.0f} |")
    print("\nCPU of the exchange children per frame sent, µs (shares from py-spy)")
    print("\n| mode | tail assets | " + " | ".join(EXCHANGE_STAGES) + " | total |")
    print("|---|---|" + "---|" * (len(EXCHANGE_STAGES) + 1))
    for s in steps:
        if not s.exchange_stages or not s.fps:
            continue
        us = s.exchange_cores / s.fps * 1e6
        print(f"| {s.mode} | {s.n_tail} | "
              + " | ".join(f"{s.exchange_stages[st] * us:.1f}" for st in EXCHANGE_STAGES)
              + f" | {us:.1f} |")


# The full listing of the six venues (what the paper estimate prices). Counted from listings
# where one is at hand, else the venue's own statement, else assumed (said so).
LISTING = (
    # (venue, perpetuals, dated futures, top spot pairs, source)
    ("Binance USDⓈ-M + COIN-M", 119 + 18, 2 + 18, 100,
     "exchangeInfo 2021-07-22 in tests/fixtures/binance/{usdm,coinm}_2021 (119 + 18 "
     "perpetuals, 2 + 18 quarterlies); spot: the top 100 of 315 USDT pairs trading in "
     "cryptofeed's sample_data/BINANCE.0 (2021-10-12)"),
    ("OKX", 126 + 40, 52 + 52, 100,
     "cryptofeed's sample_data/OKX.0 (2022-05-13; tests/fixtures/okx/OKX.0.txt is its "
     "trimmed copy): 126 linear + 40 inverse swaps, 104 futures, 513 spot pairs"),
    ("Bybit", 500, 10, 100, "assumed: no listing at hand"),
    ("BingX", 500, 0, 100, "assumed: no listing at hand (perpetuals only, as simulated)"),
    ("MEXC", 800, 0, 100, "'800+ perpetual contract pairs' (MEXC guides); no listing at hand"),
    ("WEEX", 500, 0, 100, "assumed: no listing at hand"),
)


def listing_load(profiles: dict[str, Rate]) -> list[tuple[str, float, int]]:
    """(venue, frames/s, books) of the full listing: BTC and ETH perpetuals and spot pairs at
    the majors' rates, dated futures at the majors' dated rates, the rest at the tail's."""
    major_perp = profiles["usdm_btc"].frames(True)
    major_spot = profiles["spot_btc"].frames(False)
    dated = profiles["coinm_btc_quarterly"].frames(True)
    tail_perp = profiles["usdm_small"].frames(True)
    tail_spot = profiles["spot_small"].frames(False)
    return [(venue, 2 * major_perp + (perps - 2) * tail_perp + futures * dated
             + 2 * major_spot + (spot - 2) * tail_spot, perps + futures + spot)
            for venue, perps, futures, spot, _ in LISTING]


def paper_estimate(steps: list[Step], profiles: dict[str, Rate]) -> None:
    """Cores, memory and disk a day for the full listing, from the measured costs of the
    largest step profiled (sharded if measured: an 8-core machine runs sharded)."""
    measured = [s for s in steps if s.stages and s.fps]
    if not measured:
        print("\nno step profiled: no per-core figures to price the full listing with")
        return
    sharded = [s for s in measured if s.mode == "sharded"]
    ref = max(sharded or measured, key=lambda s: s.fps)
    us_frame = ref.collector_cores * (1 - ref.stages["analytics"]) / ref.fps * 1e6
    us_book = ref.collector_cores * ref.stages["analytics"] / ref.instruments * 1e6
    mb_book = ref.rss_mb / ref.instruments
    for mode in (ref.mode, "one"):  # the memory a book adds: between two steps of a mode
        ladder = sorted((s for s in steps if s.mode == mode), key=lambda s: s.instruments)
        if len(ladder) > 1 and ladder[-1].instruments > ladder[0].instruments:
            mb_book = ((ladder[-1].rss_mb - ladder[0].rss_mb)
                       / (ladder[-1].instruments - ladder[0].instruments))
            break
    raw_frame = ref.raw_bytes_per_s / ref.fps
    seg_frame = (ref.disk_bytes_per_s - ref.raw_bytes_per_s) / ref.fps * ref.compaction
    load = listing_load(profiles)
    fps = sum(f for _, f, _ in load)
    books = sum(b for _, _, b in load)
    print(f"\nper core, from {ref.mode} {ref.n_tail} ({ref.instruments:,} books, {ref.exact:,} "
          f"exact, {ref.fps:,.0f} frames/s on {ref.collector_cores:.2f} collector cores, "
          f"{ref.verdict}):")
    print(f"  {us_frame:.1f} µs a frame (receive, decode, book, store, other) and "
          f"{us_book:.0f} µs a book a second (analytics): {1e6 / us_frame:,.0f} frames/s or "
          f"{1e6 / us_book:,.0f} books a core; {mb_book:.2f} MB a book (resident memory "
          f"added a book between two steps); on disk {raw_frame:.0f} bytes a frame of raw "
          f"capture and {seg_frame:.0f} of Parquet once compacted ({ref.compaction:.0%} of "
          "the segments' size before)")
    print("\nthe full listing of the six venues, on paper:")
    print(f"  {'venue':<24}{'perpetuals':>11}{'dated':>7}{'spot':>6}{'frames/s':>10}  source")
    for (venue, perps, futures, spot, src), (_, f, _) in zip(LISTING, load, strict=True):
        print(f"  {venue:<24}{perps:>11}{futures:>7}{spot:>6}{f:>10,.0f}  {src}")
    print(f"  {'all':<24}{sum(x[1] for x in LISTING):>11,}{sum(x[2] for x in LISTING):>7}"
          f"{sum(x[3] for x in LISTING):>6}{fps:>10,.0f}  = {books:,} books")
    if ref.mode == "sharded":
        shard_cores = sum(c for r, c in ref.process_cores.items() if r.startswith("shard:"))
        analytics_cores = ref.process_cores.get("analytics", 0.0)
        us_shard = shard_cores / ref.fps * 1e6  # a shard's frames and its books' window cuts
        us_analytics = analytics_cores / ref.instruments * 1e6
        needs = [(f"shard {venue}", f * us_shard / 1e6) for venue, f, _ in load]
        needs.append(("analytics process", books * us_analytics / 1e6))
        needs.append(("supervisor, nats", ref.nats_cores * books / ref.instruments))
        cpu = sum(n for _, n in needs)
        print(f"  sharded by exchange: {us_shard:.1f} µs a frame in the shards, "
              f"{us_analytics:.0f} µs a book a second in the analytics process")
        print("  " + ", ".join(f"{name} {n:.2f}" for name, n in needs) + " cores")
        over = [name for name, n in needs[:-1] if n > HEADROOM]  # (two processes, last)
        if over:
            print(f"  over {HEADROOM:.0%} of one core, which one process cannot exceed: "
                  f"{', '.join(over)} (the analytics process is one whatever the shards; a "
                  "shard splits further by venue or [[cluster.shard]] symbols)")
    else:
        cpu = (fps * us_frame + books * us_book) / 1e6
    print(f"  collector CPU {cpu:.1f} cores; at {HEADROOM:.0%} of each core (headroom for "
          f"bursts): {math.ceil(cpu / HEADROOM)} cores (target: 8); memory "
          f"{(ref.rss_mb + (books - ref.instruments) * mb_book) / 1024:.1f} GB; disk "
          f"{fps * (raw_frame + seg_frame) * 86400 / 1e9:,.0f} GB a day, "
          f"{fps * raw_frame * 86400 / 1e9:,.0f} of it the raw capture")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--exchange-child"]:
        return exchange_child(argv[1:])
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true",
                   help=f"steps {','.join(map(str, QUICK_STEPS))}, 15 s windows, one sharded "
                        "step: under 5 minutes")
    p.add_argument("--steps", type=lambda t: [int(x) for x in t.split(",")],
                   help=f"tail assets at each step (default {','.join(map(str, STEPS))})")
    p.add_argument("--modes", default="one,sharded",
                   help="one (one process), sharded, or both (default)")
    p.add_argument("--window", type=float, help="seconds measured at each step (default 30)")
    p.add_argument("--max-lag-ms", type=float, default=250.0)
    p.add_argument("--flush-seconds", type=float, default=1.0,
                   help="[store] flush_seconds of the collector (default 1, the default's)")
    p.add_argument("--sync-timeout", type=float, default=90.0,
                   help="seconds (plus 0.02 a book) to wait for every book in sync")
    p.add_argument("--catch-up-timeout", type=float, default=60.0,
                   help="seconds to wait for the exchange children to be on time again")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--no-stages", dest="stages", action="store_false",
                   help="no py-spy profile")
    p.add_argument("--keep", action="store_true", help="keep each step's data directory")
    args = p.parse_args(argv)
    steps_plan = args.steps or list(QUICK_STEPS if args.quick else STEPS)
    args.window = args.window or (15.0 if args.quick else 30.0)
    modes = [m for m in args.modes.split(",") if m]
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    print(f"bench_capacity: {os.cpu_count()} cores, load average {load}; steps "
          f"{steps_plan} tail assets, {args.window:g} s windows, modes {modes}; store flush "
          f"{args.flush_seconds:g} s; py-spy {'on' if args.stages and py_spy() else 'off'}\n")
    profiles = recorded_rates()
    print_rates(profiles)
    steps: list[Step] = []
    with contextlib.ExitStack() as stack:
        if args.keep:
            tmp = Path(tempfile.mkdtemp(prefix="capacity-"))
            print(f"data kept in {tmp}")
        else:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="capacity-")))
        targets = tmp / "targets.json"
        targets.write_text(json.dumps(targets_table(profiles)))
        for mode in modes:
            plan = steps_plan
            held = [s.n_tail for s in steps if s.mode == "one" and s.passed]
            if mode == "sharded" and args.quick:
                plan = steps_plan[-1:]
            elif mode == "sharded" and held:  # from the largest market one process held
                plan = [n for n in steps_plan if n >= held[-1]]
            for n_tail in plan:
                t = time.monotonic()
                s = run_step(mode, n_tail, args, profiles, targets, tmp)
                steps.append(s)
                print(f"  {mode} {n_tail} tail assets: {s.instruments} books, {s.exact} exact, "
                      f"{s.fps:,.0f} frames/s, lag p99 {_f(s.lag.receipt[1])} ms to "
                      f"receipt, {_f(s.lag.stored[1])} ms to the store, exchange late p99 "
                      f"{_f(s.late_ms[1])} ms, "
                      f"collector {s.collector_cores:.2f} cores, exchange "
                      f"{s.exchange_cores:.2f}: {s.verdict} ({time.monotonic() - t:.0f} s)",
                      flush=True)
                if not s.passed:
                    break
    print_steps(steps)
    for mode in modes:
        best = [s for s in steps if s.mode == mode and s.passed]
        if best:
            b = best[-1]
            print(f"\nlargest market held, {mode}: {b.instruments:,} books ({b.n_tail} tail "
                  f"assets), {b.fps:,.0f} frames/s, lag p99 {b.lag.receipt[1]:.0f} ms to "
                  f"receipt and {b.lag.stored[1]:.0f} ms to the store, on "
                  f"{b.collector_cores:.2f} collector cores (+{b.exchange_cores:.2f} for the "
                  "exchange)")
    paper_estimate(steps, profiles)
    with open("/proc/loadavg") as f:
        print(f"\nload average at the end {' '.join(f.read().split()[:3])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
