"""Every venue's hot path through the local exchange, measured in one invocation.

    python benchmarks/bench_venues.py [--runs 3] [--minutes 5]

1. Each venue's recorded mix: the simulated market (every registered venue, BTC and ETH spot,
   perpetuals and dated futures) is collected once, with the raw capture on, for ``--minutes``
   market minutes in the throughput mode; each feed's capture is then that venue's recording
   (its own frame mix: Binance's bookTickers, Bybit's ticker deltas, OKX's checksummed books).
   Binance's real USDⓈ-M recording is measured too, as the reference of bench_pipeline.py.
2. For each feed, a fresh exchange child replays its capture as fast as the collector reads it
   over a real websocket on loopback (after a pause of 1.5 s at its start, for every
   subscription to be in place: frames/s runs from the first frame read to the last); the
   collector, unchanged, decodes, keeps the books (verifying OKX's checksum on every book
   message that carries one), and stores everything.
   Frames per second and CPU µs per frame of the collector's event-loop thread.
Feeds alternate within each run; medians over ``--runs``; each venue's figure is also given as
a ratio of Binance's (binance_usdm) in the same invocation: the machines are noisy.
3. A feed whose books carry checksums is measured again with every checksum set to 0 (as OKX
   sends them since 2026: the book keeper then verifies none): the difference is the checksum's
   share of the pipeline.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_pipeline import collect, free_port  # noqa: E402  (the same measurement)

from analyzer import config  # noqa: E402
from analyzer.collector import Collector  # noqa: E402
from analyzer.demo import listed_symbols, sim_config  # noqa: E402
from analyzer.venues import VENUES  # noqa: E402

REFERENCE = "binance_usdm"
REAL = ROOT / "tests" / "fixtures" / "binance" / "usdm_2024"
FUTURES = ["depth", "trades", "bookTicker", "markPrice", "openInterest", "liquidations"]


def exchange(*args: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "analyzer.exchange", "--port", str(port),
                             *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(400):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc, port
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("the local exchange did not start")


def record(tmp: Path, minutes: float) -> dict[str, Path]:
    """Each feed's recorded mix: its raw capture of a simulated run."""
    proc, port = exchange("--simulate", "--fast", "--speed", "0",
                          "--sim-duration", str(minutes * 60))
    try:
        cfg = sim_config(port, str(tmp / "rec"), 0, listed_symbols(port))
        asyncio.run(_run_until_quiet(cfg))
    finally:
        proc.terminate()
        proc.wait(10)
    raw = tmp / "rec" / "raw"
    return {d.name: d for d in sorted(raw.iterdir()) if d.is_dir() and any(d.iterdir())}


async def _run_until_quiet(cfg: config.Config) -> None:
    collector = Collector(cfg)
    await collector.start()
    last, quiet = -1, time.monotonic()
    try:
        while time.monotonic() - quiet < 2.0:
            await asyncio.sleep(0.1)
            n = sum(rt.frames for r in collector.runners for rt in r.feed.routes.values())
            if n != last:
                last, quiet = n, time.monotonic()
    finally:
        await collector.stop()


CHECKSUM = re.compile(rb'"checksum":-?[1-9][0-9]*')


def zero_checksums(recording: Path, out: Path) -> Path | None:
    """A copy of a feed's recording with every book checksum 0; None if it carries none."""
    found = False
    out.mkdir(parents=True)
    for f in sorted(recording.iterdir()):
        data = gzip.decompress(f.read_bytes())
        zeroed, n = CHECKSUM.subn(b'"checksum":0', data)
        found = found or n > 0
        (out / f.name).write_bytes(gzip.compress(zeroed, 1))
    return out if found else None


def replay(feed: str, recording: Path, tmp: Path, options: dict | None = None
           ) -> dict[str, float] | None:
    """The feed's figures, or None if the local exchange lists nothing of its recording (a
    venue whose replay side cannot read our captures of it yet)."""
    # paused for 1.5 s at its start: the collector's subscriptions are paced (venues that take
    # one topic a request subscribe over ~1 s), and a replay at full speed would otherwise be
    # over before the last book's topic is subscribed, measuring the pacing, not the pipeline
    proc, port = exchange("--replay", str(recording), "--market", feed, "--speed", "0",
                          "--stall-at", "0:1.5")
    try:
        base = f"127.0.0.1:{port}/{feed}"
        market = VENUES[feed][0]
        symbols = listed_symbols(port).get(feed)
        if not symbols:
            return None
        cfg = config.parse({
            "feeds": [{"venue": feed, "symbols": symbols,
                       "options": options or {},
                       "channels": ["depth", "trades", "bookTicker"] if market.is_spot
                       else FUTURES,
                       "ws_url": f"ws://{base}", "rest_url": f"http://{base}"}],
            "store": {"data_dir": str(tmp / "data"), "database": str(tmp / "data" / "a.duckdb"),
                      "raw_capture": False},
            "metrics": {"port": 0},
            "analytics": {"enabled": False},
            "log_level": "ERROR",
        })
        return asyncio.run(collect(cfg))
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--minutes", type=float, default=5.0, help="market minutes recorded")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as keep:
        t0 = time.monotonic()
        recordings = record(Path(keep), args.minutes)
        print(f"recorded {len(recordings)} feeds in {time.monotonic() - t0:.0f} s: "
              f"{', '.join(recordings)}")
        for feed, path in list(recordings.items()):
            zeroed = zero_checksums(path, Path(keep) / "zeroed" / feed)
            if zeroed is not None:
                recordings[f"{feed} (checksum 0)"] = zeroed
        recordings[f"{REFERENCE} (real 2024)"] = REAL
        results: dict[str, list[dict[str, float]]] = {f: [] for f in recordings}
        for _ in range(args.runs):
            for name, path in recordings.items():
                feed = name.split()[0]
                with tempfile.TemporaryDirectory() as d:
                    # the real recording's depth stream is the 0 ms one
                    options = {"depth_speed": "0ms"} if path == REAL else None
                    r = replay(feed, path, Path(d), options)
                    if r is not None:
                        results[name].append(r)
    skipped = [name for name, rs in results.items() if not rs]
    results = {name: rs for name, rs in results.items() if rs}
    ref = statistics.median(r["fps"] for r in results[REFERENCE])
    print(f"\n{args.runs} runs, medians; ratio: frames/s over {REFERENCE}'s in this invocation\n")
    print(f"{'feed':<26}{'frames':>9}{'frames/s':>11}{'ratio':>7}{'µs/frame':>10}"
          f"{'books in sync':>15}{'gaps':>6}{'checksums ok/bad':>18}")
    for name, rs in results.items():
        def m(k: str, rs: list[dict[str, float]] = rs) -> float:
            return statistics.median(r[k] for r in rs)
        sync = "{:.0f}/{:.0f}".format(m("in_sync"), m("books"))
        sums = "{:.0f}/{:.0f}".format(m("checksums"), m("checksums_failed"))
        print(f"{name:<26}{m('frames'):>9,.0f}{m('fps'):>11,.0f}{m('fps') / ref:>7.2f}"
              f"{m('cpu_us'):>10.1f}{sync:>15}{m('gaps'):>6.0f}{sums:>18}")
    if skipped:
        print(f"\nnot replayed (the local exchange lists nothing of their capture): "
              f"{', '.join(skipped)}")


if __name__ == "__main__":
    main()
