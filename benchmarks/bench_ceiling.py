"""The ceiling: the collector against a client that only receives the frames and decodes them.

    python benchmarks/bench_ceiling.py [--runs 3] [--baseline REV] [--no-picows]

The Binance USDⓈ-M BTCUSDT 2024-08-08 recording (93,953 frames: 6,551 depth diffs, 21,313
trades, 66,089 bookTickers), replayed as fast as the client reads it by the local exchange in
another process, over a real websocket on loopback, as in ``bench_pipeline.py``. Each
measurement is a fresh child process with its own exchange; the measurements alternate within
each of ``--runs`` runs (the order reversed every other run); medians.

Clients, on three transports:

- ``wire``: the collector's own websocket client (``analyzer/feed/wire.py``);
- ``websockets library``: the websockets package's asyncio client (``recv()`` per message), the
  transport the collector used before ``wire.py``;
- ``picows`` (if installed: ``pip install picows``): a websocket client whose frame parser is
  compiled; each frame reaches Python through its ``on_ws_frame`` callback. The collector runs
  on it through an adapter with ``wire.py``'s interface (``PicowsConnection`` below: one receipt
  time per read, data frames only, fragments joined, close codes), put in place of
  ``wire.connect``.

and what each does:

- ``receive only``: counts the frames (the transport's own cost);
- ``bare client``: decodes each frame with msgspec into typed Structs of its stream (picked by
  the stream name) and nothing else; ``generic``: ``msgspec.json.decode`` into dicts;
- ``collector``: the real collector (books checked against bookTicker, trades, quotes and book
  snapshots into the store, lag histograms, analytics ticks; raw capture off).

Printed: CPU µs a frame of the event-loop thread (the one core the hot path runs on; the
Parquet writer's and analytics' threads are in "process"), frames a second (first frame to
last), the ratio collector / bare client per frame on each transport, and the collector's cost
split by stage: receive (the receive-only client), then the same frames offline, in memory,
through the feed's decoder (decode: msgspec and the events), the book keeper (book: diffs,
bookTicker check), the store (store: buffering) and the collector's own feed runner (dispatch:
duplicates, lag histograms, the calls between them), analytics (loop-thread CPU of its ticks in
the online run), and what is left of the online cost (the loop, and the caches the offline
loop keeps warm).

``--baseline REV`` measures the code at a git revision too, in the same runs (receive only,
collector, the offline split): its ``analyzer`` package and ``sql/`` are exported with
``git archive`` into a temporary directory and imported from there (the work tree and its git
state are not touched).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import io
import json
import logging
import resource
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RECORDING = ROOT / "tests" / "fixtures" / "binance" / "usdm_2024" / "btcusdt_20240808.gz"
SYMBOL = "BTCUSDT"
STREAMS = ["btcusdt@depth@0ms", "btcusdt@trade", "btcusdt@bookTicker"]
CHANNELS = ["depth", "trades", "bookTicker"]
QUIET_S = 1.0  # no frame for this long: the replay is over
WIRE, WSLIB, PICOWS = "wire", "websockets library", "picows"


# ---------------------------------------------------------------------------------------------
# the local exchange


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def exchange() -> Iterator[int]:
    """The local exchange replaying the recording once, as fast as its one client reads."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "analyzer.exchange", "--replay", str(RECORDING.parent),
         "--speed", "0", "--port", str(port)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(400):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        else:
            raise RuntimeError("the local exchange did not start")
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


# ---------------------------------------------------------------------------------------------
# picows behind wire.py's interface (imported only when measured)


def picows_connect() -> Callable[..., Any]:
    """``connect(url, on_frame, *, open_timeout, max_size)`` on picows."""
    from picows import WSCloseCode, WSError, WSListener, WSMsgType, ws_connect

    from analyzer.feed.wire import ABNORMAL, HandshakeError

    text, binary, cont = WSMsgType.TEXT, WSMsgType.BINARY, WSMsgType.CONTINUATION
    close, pong = WSMsgType.CLOSE, WSMsgType.PONG
    time_ns = time.time_ns

    class Listener(WSListener):  # type: ignore[misc]
        def __init__(self, on_frame: Callable[[bytes, int], None],
                     closed: asyncio.Future[int]) -> None:
            super().__init__()
            self.on_frame = on_frame
            self.closed = closed
            self.last_ns = 0
            self.last_pong = time.monotonic()
            self.ts = 0  # receipt time of the read being parsed (0: the next frame starts one)
            self.fragments: list[bytes] | None = None

        def on_ws_frame(self, transport: Any, frame: Any) -> None:
            kind = frame.msg_type
            ts = self.ts or time_ns()
            self.ts = 0 if frame.last_in_buffer else ts
            if (kind is text or kind is binary) and frame.fin:  # the usual frame
                self.last_ns = ts
                try:
                    self.on_frame(frame.get_payload_as_bytes(), ts)
                except Exception:
                    logging.exception("frame handler failed")
            elif kind is text or kind is binary:
                self.last_ns = ts
                self.fragments = [frame.get_payload_as_bytes()]
            elif kind is cont and self.fragments is not None:
                self.fragments.append(frame.get_payload_as_bytes())
                if frame.fin:
                    message, self.fragments = b"".join(self.fragments), None
                    self.on_frame(message, ts)
            elif kind is pong:
                self.last_pong = time.monotonic()
            elif kind is close:
                code = frame.get_close_code()
                transport.send_close(code or WSCloseCode.OK)
                transport.disconnect()
                if not self.closed.done():
                    self.closed.set_result(int(code) or 1005)

        def on_ws_disconnected(self, transport: Any) -> None:
            if not self.closed.done():
                self.closed.set_result(ABNORMAL)

    class PicowsConnection:
        def __init__(self, transport: Any, listener: Listener) -> None:
            self.transport, self.listener, self.closed = transport, listener, listener.closed

        def send(self, message: bytes) -> None:
            self.transport.send(text, message)

        def ping(self) -> None:
            self.transport.send_ping()

        @property
        def last_pong(self) -> float:
            return self.listener.last_pong

        @property
        def last_ns(self) -> int:
            return self.listener.last_ns

        async def close(self, code: int = 1000, timeout: float = 2.0) -> None:
            self.transport.send_close(WSCloseCode(code))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self.closed), timeout)
            self.abort()

        def abort(self) -> None:
            self.transport.disconnect(graceful=False)
            if not self.closed.done():
                self.closed.set_result(ABNORMAL)

    async def connect(url: str, on_frame: Callable[[bytes, int], None], *,
                      open_timeout: float = 10.0, max_size: int = 2**24) -> PicowsConnection:
        closed: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        try:
            transport, listener = await asyncio.wait_for(
                ws_connect(lambda: Listener(on_frame, closed), url, max_frame_size=max_size,
                           websocket_handshake_timeout=open_timeout), open_timeout)
        except WSError as exc:
            raise HandshakeError(str(exc)) from None
        return PicowsConnection(transport, listener)

    return connect


# ---------------------------------------------------------------------------------------------
# the bare clients (in a worker process)


def typed_decoders() -> dict[bytes, Callable[[bytes], Any]]:
    """Decoders of whole frames into plain Structs of the fields a user reads, by stream."""
    import msgspec

    class Depth(msgspec.Struct):
        E: int
        U: int
        u: int
        b: list[tuple[float, float]]
        a: list[tuple[float, float]]
        pu: int = -1

    class Trade(msgspec.Struct):
        t: int
        p: float
        q: float
        T: int
        m: bool
        X: str = "MARKET"

    class BookTicker(msgspec.Struct):
        u: int
        b: float
        B: float
        a: float
        A: float
        E: int = 0

    def frame_of(t: type) -> Callable[[bytes], Any]:
        env = msgspec.defstruct(f"{t.__name__}Frame", [("data", t)])
        return msgspec.json.Decoder(env, strict=False).decode

    kinds = (Depth, Trade, BookTicker)
    return {s.encode(): frame_of(t) for s, t in zip(STREAMS, kinds, strict=True)}


class Counter:
    """Frames seen, the first and last receipt times; ``on_frame`` decodes as asked."""

    __slots__ = ("decoders", "first_ns", "frames", "generic", "last_ns", "on_frame")

    def __init__(self, decode: str) -> None:
        import msgspec

        self.frames = 0
        self.first_ns = 0
        self.last_ns = 0
        self.generic = msgspec.json.decode
        self.decoders = typed_decoders()
        self.on_frame = {"none": self._count, "typed": self._typed,
                         "generic": self._generic}[decode]

    def _count(self, frame: bytes, ts: int) -> None:
        if not self.frames:
            self.first_ns = ts
        self.frames += 1
        self.last_ns = ts

    def _generic(self, frame: bytes, ts: int) -> None:
        if not self.frames:
            self.first_ns = ts
        self.frames += 1
        self.last_ns = ts
        self.generic(frame)

    def _typed(self, frame: bytes, ts: int) -> None:
        if not self.frames:
            self.first_ns = ts
        self.frames += 1
        self.last_ns = ts
        decode = self.decoders.get(frame[11:frame.find(b'"', 11)])
        if decode is None:
            self.generic(frame)  # the reply to the subscription
        else:
            decode(frame)


async def until_quiet(count: Callable[[], int], on_first: Callable[[], None] | None = None
                      ) -> None:
    last, since = 0, time.monotonic()
    while True:
        await asyncio.sleep(0.02)
        n = count()
        if n and not last and on_first is not None:
            on_first()
        if n != last:
            last, since = n, time.monotonic()
        elif last > 1 and time.monotonic() - since > QUIET_S:
            return


async def bare(port: int, transport: str, decode: str) -> dict[str, float]:
    """A client of ``transport`` that only receives (``decode``: none, typed, generic)."""
    counter = Counter(decode)
    url = f"ws://127.0.0.1:{port}/binance_usdm/stream"
    subscribe = json.dumps({"method": "SUBSCRIBE", "params": STREAMS, "id": 1}).encode()
    cpu0, proc0 = time.thread_time(), time.process_time()
    if transport == WSLIB:
        from websockets.asyncio.client import connect as ws_connect

        async with ws_connect(url, compression=None, max_size=2**24) as ws:
            await ws.send(subscribe.decode())

            async def read() -> None:
                on_frame = counter.on_frame
                while True:
                    on_frame(await ws.recv(decode=False), time.time_ns())  # type: ignore[arg-type]

            reader = asyncio.ensure_future(read())
            await until_quiet(lambda: counter.frames)
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
    else:
        from analyzer.feed import wire

        connect = wire.connect if transport == WIRE else picows_connect()
        conn = await connect(url, counter.on_frame)
        conn.send(subscribe)
        await until_quiet(lambda: counter.frames)
        conn.abort()
    # (the subscription's reply is not counted)
    return figures(counter.frames - 1, counter.first_ns, counter.last_ns,
                   time.thread_time() - cpu0, time.process_time() - proc0)


def figures(frames: int, first_ns: int, last_ns: int, cpu: float, proc: float
            ) -> dict[str, float]:
    return {"frames": frames, "fps": frames / ((last_ns - first_ns) / 1e9),
            "cpu_us": cpu / frames * 1e6, "proc_us": proc / frames * 1e6}


# ---------------------------------------------------------------------------------------------
# the collector (in a worker process)


def add_cpu(obj: Any, name: str, acc: list[float]) -> None:
    """Add the CPU of each call of ``obj.name`` (on the thread that runs it) to ``acc[0]``."""
    inner = getattr(obj, name)

    def timed(*a: Any, **k: Any) -> Any:
        t0 = time.thread_time()
        try:
            return inner(*a, **k)
        finally:
            acc[0] += time.thread_time() - t0

    setattr(obj, name, timed)


async def collector(port: int, transport: str, tmp: Path) -> dict[str, float]:
    from analyzer import config
    from analyzer.analytics import live
    from analyzer.collector import Collector

    if transport == PICOWS:  # the adapter in place of wire.connect, for the connections
        from analyzer.feed import connection

        connection.wire = SimpleNamespace(connect=picows_connect())  # type: ignore[assignment]
    base = f"127.0.0.1:{port}/binance_usdm"
    cfg = config.parse({
        "feeds": [{"venue": "binance_usdm", "symbols": [SYMBOL], "options": {"depth_speed": "0ms"},
                   "channels": CHANNELS, "ws_url": f"ws://{base}", "rest_url": f"http://{base}"}],
        "store": {"data_dir": str(tmp / "data"), "database": str(tmp / "data" / "a.duckdb"),
                  "raw_capture": False},
        "metrics": {"port": 0},
        "log_level": "WARNING",
    })
    c = Collector(cfg)
    on_loop, off_loop = [0.0], [0.0]
    add_cpu(c.analytics, "windows", on_loop)
    add_cpu(c.analytics, "_publish", on_loop)
    add_cpu(live, "snapshot_rows", on_loop)
    add_cpu(live, "evaluate", off_loop)  # (in a worker thread)
    await c.start()
    runner = c.runners[0]
    routes = list(runner.feed.routes.values())
    first = [0]

    def on_first() -> None:  # within 20 ms of the first frame: the earliest frame's time
        first[0] = min(r.last_ns for r in routes if r.last_ns)

    cpu0, proc0 = time.thread_time(), time.process_time()
    await until_quiet(lambda: sum(r.frames for r in routes), on_first)
    cpu, proc = time.thread_time() - cpu0, time.process_time() - proc0
    frames = sum(r.frames for r in routes)
    out = figures(frames, first[0], max(r.last_ns for r in routes), cpu, proc)
    stats = runner.books.stats
    out.update(
        bbo=stats.bbo_compared, bbo_bad=stats.bbo_mismatched, gaps=stats.gaps,
        in_sync=sum(sb.in_sync for sb in runner.books.books.values()),
        errors=runner.handler_errors + sum(runner.decode_errors.values()),
        analytics_us=on_loop[0] / frames * 1e6, analytics_thread_us=off_loop[0] / frames * 1e6,
        ticks=c.analytics.ticks, tick_ms=on_loop[0] * 1e3 / max(1, c.analytics.ticks),
    )
    await c.stop()
    return out


# ---------------------------------------------------------------------------------------------
# the offline split (in a worker process)


def load_frames() -> list[bytes]:
    with gzip.open(RECORDING, "rb") as f:
        return [line.rstrip(b"\n").split(b" ", 1)[1] for line in f]


def offline(frames: list[bytes], stages: str, tmp: Path) -> tuple[float, int]:
    """Loop-thread CPU seconds to push every frame through ``stages`` (decode; +book; +store;
    runner: the collector's feed runner, which does all three), and the bookTickers compared
    with the book."""
    from analyzer import config
    from analyzer.collector import FeedRunner
    from analyzer.feed.books import BookKeeper
    from analyzer.store import Store
    from analyzer.venues.binance import MARKETS, BinanceFeed

    store = None
    if stages != "decode" and stages != "book":
        store = Store(tmp / "data", tmp / "data" / "a.duckdb", compact_every_s=None)
        store.open()
    keeper: Any = None

    class Sink:
        def on_book(self, ev: Any) -> None:
            if keeper is not None:
                keeper.on_change(ev)

        def on_quote(self, ev: Any) -> None:
            if store is not None:
                store.add(ev)
            if keeper is not None:
                keeper.on_venue_quote(ev)

        def on_trade(self, ev: Any) -> None:
            if store is not None:
                store.add(ev)

        def on_ticker(self, ev: Any) -> None: ...
        on_liquidation = on_ticker

        def on_trade_gap(self, *a: Any) -> None: ...
        def on_duplicate(self) -> None: ...

    if stages == "runner":
        cfg = config.parse({"feeds": [{"venue": "binance_usdm", "symbols": [SYMBOL],
                                       "options": {"depth_speed": "0ms"}, "channels": CHANNELS}]})
        assert store is not None
        runner = FeedRunner(cfg.feeds[0], store, None)
        feed, keeper, on_frame = runner.feed, runner.books, runner.on_frame
    else:
        feed = BinanceFeed(MARKETS["binance_usdm"], [SYMBOL], CHANNELS, Sink(),
                           options={"depth_speed": "0ms"})
        on_frame = feed.decode
        if stages != "decode":
            keeper = BookKeeper("binance_usdm", [SYMBOL], feed.rules, lambda s: None,
                                lambda g: None, store.add if store is not None else lambda q: None)
    if keeper is not None:
        keeper.start()
    ts = time.time_ns()
    t0 = time.thread_time()
    for f in frames:
        if f.startswith(b'{"lastUpdateId"'):  # the REST snapshot
            if keeper is not None:
                keeper.on_snapshot(feed.decode_snapshot(f, SYMBOL, ts))
            continue
        on_frame(f, ts)
    spent = time.thread_time() - t0
    if store is not None:
        store.close()
    return spent, keeper.stats.bbo_compared if keeper is not None else 0


def split(tmp: Path) -> dict[str, float]:
    frames = load_frames()
    n = len(frames) - 1
    us = {}
    for s in ("decode", "book", "store", "runner"):
        spent, compared = offline(frames, s, tmp / s)
        assert s == "decode" or compared > 600, f"{s}: the book never went live"
        us[s] = spent / n * 1e6
    return {"decode": us["decode"], "book": us["book"] - us["decode"],
            "store": us["store"] - us["book"], "dispatch": us["runner"] - us["store"]}


# ---------------------------------------------------------------------------------------------
# a worker: one measurement in a fresh process


def worker(args: argparse.Namespace) -> None:
    sys.path.insert(0, args.root)
    import analyzer

    here = Path(analyzer.__file__).resolve()
    assert here.is_relative_to(Path(args.root).resolve()), f"imported {here}, not {args.root}"
    with tempfile.TemporaryDirectory() as d:
        if args.worker == "split":
            out = split(Path(d))
        elif args.worker == "collector":
            out = asyncio.run(collector(args.port, args.transport, Path(d)))
        else:
            out = asyncio.run(bare(args.port, args.transport, args.decode))
    out["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))


def measure(what: str, root: Path, transport: str, decode: str) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--worker", what, "--root", str(root),
           "--transport", transport, "--decode", decode]
    if what == "split":
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    else:
        with exchange() as port:
            done = subprocess.run([*cmd, "--port", str(port)], capture_output=True, text=True,
                                  check=False)
    if done.returncode:
        raise RuntimeError(f"{what} ({transport}, {root}) failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


@contextlib.contextmanager
def export(rev: str) -> Iterator[Path]:
    """``analyzer/`` and ``sql/`` at ``rev``, in a temporary directory."""
    with tempfile.TemporaryDirectory(prefix="ceiling-") as d:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "analyzer", "sql"],
                                 capture_output=True, check=True).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(d, filter="data")
        yield Path(d)


# ---------------------------------------------------------------------------------------------


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--baseline", metavar="REV", help="also measure the code at this git rev")
    p.add_argument("--no-picows", action="store_true", help="leave picows out")
    p.add_argument("--worker", choices=("bare", "collector", "split"), help=argparse.SUPPRESS)
    p.add_argument("--root", default=str(ROOT), help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    p.add_argument("--transport", default=WIRE, help=argparse.SUPPRESS)
    p.add_argument("--decode", default="typed", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args)
        return

    transports = [WIRE]
    if not args.no_picows:
        try:
            import picows
        except ImportError:
            print("(picows is not installed: pip install picows to measure it)\n")
        else:
            transports.append(PICOWS)
            print(f"picows {picows.__version__}")
    with contextlib.ExitStack() as stack:
        old = stack.enter_context(export(args.baseline)) if args.baseline else None
        plan: list[tuple[str, str, Path, str, str]] = []  # row, worker, root, transport, decode
        for t in transports:
            plan += [(f"receive only, {t}", "bare", ROOT, t, "none"),
                     (f"bare client, {t}", "bare", ROOT, t, "typed"),
                     (f"collector, {t}", "collector", ROOT, t, "typed")]
        plan += [(f"bare client (generic decode), {WIRE}", "bare", ROOT, WIRE, "generic"),
                 (f"bare client, {WSLIB}", "bare", ROOT, WSLIB, "typed"),
                 ("split", "split", ROOT, WIRE, "")]
        if old is not None:
            plan += [(f"receive only, {WIRE} at {args.baseline}", "bare", old, WIRE, "none"),
                     (f"collector, {WIRE} at {args.baseline}", "collector", old, WIRE, "typed"),
                     (f"split at {args.baseline}", "split", old, WIRE, "")]
        results: dict[str, list[dict[str, float]]] = {row: [] for row, *_ in plan}
        for run in range(args.runs):
            for row, what, root, t, decode in plan if run % 2 == 0 else plan[::-1]:
                results[row].append(measure(what, root, t, decode))
            print(f"run {run + 1} of {args.runs} done", file=sys.stderr)
    report(results, transports, args.baseline, args.runs)


def report(results: dict[str, list[dict[str, float]]], transports: list[str],
           baseline: str | None, runs: int) -> None:
    def m(row: str, key: str) -> float:
        return statistics.median(r[key] for r in results[row])

    n = m(f"collector, {WIRE}", "frames")
    print(f"{RECORDING.name}: {n:,.0f} frames; {runs} run(s), medians, each measurement a fresh "
          "process with its own exchange\n")
    print(f"  {'':48}{'µs/frame':>9}{'process':>9}{'frames/s':>11}")
    for row in results:
        if not row.startswith("split"):
            print(f"  {row:48}{m(row, 'cpu_us'):>9.2f}{m(row, 'proc_us'):>9.2f}"
                  f"{m(row, 'fps'):>11,.0f}")

    def ratio(collector: str, client: str) -> str:
        return f"{m(collector, 'cpu_us') / m(client, 'cpu_us'):.2f}"

    print("\ncollector / bare client, CPU a frame of the loop thread (target: 1.5 at most):")
    for t in transports:
        print(f"  on {t}: {ratio(f'collector, {t}', f'bare client, {t}')}"
              f"   (against the generic decode on {WIRE}: "
              f"{ratio(f'collector, {t}', f'bare client (generic decode), {WIRE}')}; "
              f"against the {WSLIB}'s bare client: "
              f"{ratio(f'collector, {t}', f'bare client, {WSLIB}')})")
    if baseline:
        old = f"collector, {WIRE} at {baseline}"
        print(f"  at {baseline}, on {WIRE}: {ratio(old, f'bare client, {WIRE}')}; "
              f"the collector now / then: {ratio(f'collector, {WIRE}', old)}, receive only now /"
              f" then: {ratio(f'receive only, {WIRE}', f'receive only, {WIRE} at {baseline}')}")

    cols = [(f"now, {t}", f"collector, {t}", f"receive only, {t}", "split") for t in transports]
    if baseline:
        cols.append((f"{baseline}, {WIRE}", f"collector, {WIRE} at {baseline}",
                     f"receive only, {WIRE} at {baseline}", f"split at {baseline}"))
    print("\nthe collector's CPU a frame by stage (µs, loop thread; decode to dispatch offline):")
    print(f"  {'':34}" + "".join(f"{name:>18}" for name, *_ in cols))

    def stage(label: str, f: Callable[[str, str, str], float]) -> None:
        print(f"  {label:34}" + "".join(f"{f(c, r, s):>18.2f}" for _, c, r, s in cols))

    offline_keys = ("decode", "book", "store", "dispatch")
    stage("receive (the transport)", lambda c, r, s: m(r, "cpu_us"))
    stage("decode (msgspec, events)", lambda c, r, s: m(s, "decode"))
    stage("book (diffs, bookTicker check)", lambda c, r, s: m(s, "book"))
    stage("store (buffering)", lambda c, r, s: m(s, "store"))
    stage("dispatch (dups, lag histograms)", lambda c, r, s: m(s, "dispatch"))
    stage("analytics (ticks, loop thread)", lambda c, r, s: m(c, "analytics_us"))
    stage("online rest (loop, cold caches)",
          lambda c, r, s: m(c, "cpu_us") - m(r, "cpu_us") - m(c, "analytics_us")
          - sum(m(s, k) for k in offline_keys))
    stage("total", lambda c, r, s: m(c, "cpu_us"))
    print(f"  (analytics: {m(cols[0][1], 'ticks'):.0f} tick(s) in the run, "
          f"{m(cols[0][1], 'tick_ms'):.1f} ms of loop CPU each)")
    print("\nchecks (every run): bookTickers compared / differing, gaps, books in sync, "
          "frames failed")
    for row in results:
        if row.startswith("collector"):
            rs = results[row]
            print(f"  {row:48}" + "; ".join(
                f"{r['bbo']:,.0f} / {r['bbo_bad']:.0f}, {r['gaps']:.0f}, {r['in_sync']:.0f}, "
                f"{r['errors']:.0f}" for r in rs))


if __name__ == "__main__":
    main()
