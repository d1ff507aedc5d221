"""The analyzer side by side with cryptofeed and CCXT (``ccxt.pro``, its websocket ``watch*``
API) on the same recorded frames, from the same local exchange, over loopback, in one invocation.

    python benchmarks/bench_peers.py [--runs 3] [--venvs DIR] [--chain 150]

Peers. Each is installed once from PyPI, at the version pinned in ``PEERS``, into its own
virtual environment under ``--venvs`` (default ``~/.cache/analyzer-bench``), and runs as a child
process from its script in ``benchmarks/peers/``; the analyzer runs the same way, from the
project's environment. Every consumer connects to a fresh local exchange child (``python -m
analyzer.exchange --replay ... --speed 0 --stall-at 0:1.5``: as fast as the consumer reads,
after a pause of 1.5 s for every subscription to be in place) pointed at by the library's own
configuration; each prints what it overrode.

What each stores is what a user of it would: the analyzer everything (trades, quotes, book
snapshots into Parquet/DuckDB, each book checked against bookTicker where subscribed); a peer its
trades and tickers, and the best bid/ask read from its book after every book update (mode
``book``), or nothing, its callbacks returning at once (mode ``null``). Measured per consumer:
frames a second (first frame to last, the consumer's own clock), CPU µs a frame (the consumer
process's CPU over the same span, all its threads: the analyzer's Parquet writer's too; its
final flush at stop is printed apart), peak RSS of the process, and whether its final top of
book equals every other consumer's.

Mixes: Binance USDⓈ-M's real recording (``tests/fixtures/binance/usdm_2024``, as
``bench_pipeline.py``), full and depth-only; Bybit's and OKX's real recordings
(``tests/fixtures/bybit``, ``tests/fixtures/okx``), each replayed ``--chain`` times over (they
are 50 and ~130 frames long: every pass opens with the venue's book snapshot, which resets the
book). A peer that cannot consume a mix is listed with the reason, not run.

The Binance recording's trades are given to every consumer as ``aggTrade`` frames (one trade an
aggregate: ``a = f = l`` = the trade id, the other fields as recorded): cryptofeed 2.4 subscribes
``aggTrade`` only, and the same frames must go to all; the analyzer (``trade_stream``) and CCXT
(``watchTrades.name``) take them by their documented options.

Runs alternate consumers (the order rotating every run) and every figure is a median over
``--runs``: the machines are shared, compare the ratios, taken within one invocation. The load
average is printed with the figures.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_pipeline import RECORDING, depth_only_recording, free_port  # noqa: E402

PEERS = {"cryptofeed": "cryptofeed==2.4.1", "ccxt": "ccxt==4.5.90"}
SCRIPTS = ROOT / "benchmarks" / "peers"
FIXTURES = ROOT / "tests" / "fixtures"
TARGET_BOOK, TARGET_NULL = 20.0, 3.0  # the analyzer's frames/s over a peer's (issue 18)
QUIET_S = 1.5  # no frame for this long: the replay is over
TIMEOUT_S = 600.0


@dataclass
class Mix:
    name: str
    feed: str  # the local exchange's market (feed id)
    recordings: list[Path]  # replayed one after the other
    symbol: str
    channels: list[str]
    analyzer_options: dict[str, Any] = field(default_factory=dict)
    unsupported: dict[str, str] = field(default_factory=dict)  # peer -> why it is not run


def agg_trade_recording(tmp: Path) -> Path:
    """The USDⓈ-M recording with each ``trade`` frame rewritten as the one-trade ``aggTrade``."""
    out = tmp / "usdm_aggtrade" / RECORDING.name
    out.parent.mkdir(parents=True)
    with gzip.open(RECORDING, "rb") as src, gzip.open(out, "wb", compresslevel=1) as dst:
        for line in src:
            ts, frame = line.rstrip(b"\n").split(b" ", 1)
            if b'@trade"' in frame[:40]:
                msg = json.loads(frame)
                d = msg["data"]
                agg = {"e": "aggTrade", "E": d["E"], "a": d["t"], "s": d["s"], "p": d["p"],
                       "q": d["q"], "f": d["t"], "l": d["t"], "T": d["T"], "m": d["m"]}
                stream = msg["stream"].replace("@trade", "@aggTrade")
                frame = json.dumps({"stream": stream, "data": agg}, separators=(",", ":")).encode()
            dst.write(ts + b" " + frame + b"\n")
    return out.parent


def mixes(tmp: Path, chain: int) -> list[Mix]:
    full = ["depth", "trades", "bookTicker"]
    bybit_why = {
        "cryptofeed": "subscribes orderbook.200 for every Bybit market, fixed in its code "
                      "(exchanges/bybit.py subscribe); the recording is orderbook.500",
        "ccxt": "watchOrderBook takes limits 1/50/200/1000 on Bybit linear (BadRequest "
                "otherwise); the recording is orderbook.500 (Bybit removed 500 for futures "
                "in 2025-09)",
    }
    return [
        Mix("binance_usdm real, full mix", "binance_usdm", [agg_trade_recording(tmp)],
            "BTCUSDT", full, {"depth_speed": "0ms", "trade_stream": "aggTrade"}),
        Mix("binance_usdm real, depth only", "binance_usdm", [depth_only_recording(tmp)],
            "BTCUSDT", ["depth"], {"depth_speed": "0ms"}),
        Mix(f"bybit_linear ob500 x{chain}", "bybit_linear",
            [FIXTURES / "bybit" / "ob500_XRPUSDT_2024-12-01.ndjson"] * chain, "XRPUSDT",
            ["depth"], {"depth": 500}, bybit_why),
        Mix(f"okx_spot 2022 books+trades x{chain}", "okx_spot",
            [FIXTURES / "okx"] * chain, "BTC-USDT", ["depth", "trades"]),
    ]


# ---------------------------------------------------------------------------------------------
# Environments


def venv_python(root: Path, peer: str) -> Path:
    """The peer's interpreter, its environment made and the pinned version installed once."""
    pin = PEERS[peer]
    env = root / peer
    python = env / "bin" / "python"
    marker = env / "pinned.txt"
    if marker.exists() and marker.read_text() == pin and python.exists():
        return python
    shutil.rmtree(env, ignore_errors=True)
    print(f"installing {pin} into {env} ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    pin], check=True)
    marker.write_text(pin)
    return python


def installed(python: Path, dist: str) -> str:
    out = subprocess.run([str(python), "-c", "import importlib.metadata as m, sys; "
                          f"print(m.version({dist!r}), sys.version.split()[0])"],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


# ---------------------------------------------------------------------------------------------
# One consumer on one mix


def exchange(mix: Mix) -> tuple[subprocess.Popen, int]:
    port = free_port()
    args = [sys.executable, "-m", "analyzer.exchange", "--port", str(port), "--market", mix.feed,
            "--speed", "0", "--stall-at", "0:1.5"]
    for rec in mix.recordings:
        args += ["--replay", str(rec)]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(600):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc, port
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"the local exchange did not start for {mix.name}")


def consume(mix: Mix, python: Path, script: str, mode: str) -> dict[str, Any]:
    """Run one consumer child against a fresh exchange; its report (or the error)."""
    proc, port = exchange(mix)
    try:
        base = f"127.0.0.1:{port}/{mix.feed}"
        spec = {"feed": mix.feed, "ws": f"ws://{base}", "rest": f"http://{base}",
                "symbol": mix.symbol, "channels": mix.channels, "mode": mode,
                "analyzer_options": mix.analyzer_options, "quiet_s": QUIET_S,
                "timeout_s": TIMEOUT_S}
        child = subprocess.Popen([str(python), str(SCRIPTS / script), json.dumps(spec)],
                                 cwd=SCRIPTS, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 env={**os.environ, "PYTHONPATH": str(SCRIPTS)})
        out, err = child.communicate(timeout=TIMEOUT_S + 60)
        lines = [ln for ln in out.decode().splitlines() if ln.startswith("{")]
        if child.returncode != 0 or not lines:
            tail = err.decode().strip().splitlines()[-3:]
            return {"error": " | ".join(tail) or f"exit {child.returncode}"}
        return json.loads(lines[-1])
    finally:
        proc.terminate()
        proc.wait(10)


# ---------------------------------------------------------------------------------------------


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--venvs", type=Path, default=Path.home() / ".cache" / "analyzer-bench")
    p.add_argument("--chain", type=int, default=150,
                   help="passes of the short Bybit and OKX recordings (default 150)")
    p.add_argument("--peers", default=",".join(PEERS), help="peers to run (default all)")
    args = p.parse_args()
    peers = [x for x in args.peers.split(",") if x]
    pythons = {peer: venv_python(args.venvs, peer) for peer in peers}
    pythons["analyzer"] = Path(sys.executable)
    print("consumers:")
    print(f"  analyzer    this tree (Python {sys.version.split()[0]})")
    for peer in peers:
        version, py = installed(pythons[peer], peer).split()
        print(f"  {peer:<11} {version} from PyPI, pinned {PEERS[peer]} (Python {py}) "
              f"in {args.venvs / peer}")
    consumers = [("analyzer", "all")] + [(peer, mode) for peer in peers
                                         for mode in ("book", "null")]

    with tempfile.TemporaryDirectory() as keep:
        all_mixes = mixes(Path(keep), args.chain)
        results: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        errors: dict[tuple[str, str, str], str] = {}
        overrides: dict[tuple[str, str], list[str]] = {}
        loads = [os.getloadavg()[0]]
        t0 = time.monotonic()
        for run in range(args.runs):
            for mix in all_mixes:
                todo = [c for c in consumers if c[0] not in mix.unsupported]
                k = run % len(todo)
                for name, mode in todo[k:] + todo[:k]:
                    script = f"{name}_consumer.py"
                    try:
                        res = consume(mix, pythons[name], script, mode)
                    except Exception as exc:  # reported with the figures; the bench goes on
                        res = {"error": repr(exc)}
                    key = (mix.name, name, mode)
                    if "error" in res:
                        errors[key] = res["error"]
                        continue
                    overrides.setdefault((mix.name, name), res.pop("overrides", []))
                    results.setdefault(key, []).append(res)
                    loads.append(os.getloadavg()[0])
    elapsed = time.monotonic() - t0
    print(f"\n{args.runs} run(s) in {elapsed:.0f} s, medians; load average (1 min) during the "
          f"runs {min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} cores")
    report(all_mixes, consumers, results, errors, overrides)


def report(all_mixes: list[Mix], consumers: list[tuple[str, str]],
           results: dict[tuple[str, str, str], list[dict[str, Any]]],
           errors: dict[tuple[str, str, str], str],
           overrides: dict[tuple[str, str], list[str]]) -> None:
    verdicts = []
    for mix in all_mixes:
        print(f"\n{mix.name} ({', '.join(mix.channels)}; {mix.symbol})")
        print(f"  {'consumer':<18}{'frames':>8}{'frames/s':>10}{'µs/frame':>10}{'RSS MB':>8}"
              f"{'top of book':>22}{'same':>6}{'analyzer x':>12}{'CPU x':>8}")
        rows: dict[tuple[str, str], dict[str, Any]] = {}
        for name, mode in consumers:
            rs = results.get((mix.name, name, mode))
            if not rs:
                continue

            def med(k: str, rs: list[dict[str, Any]] = rs) -> float:
                return statistics.median(r[k] for r in rs)

            fps = statistics.median(r["frames"] / r["wall_s"] for r in rs if r["wall_s"] > 0)
            cpu_us = statistics.median(r["cpu_s"] / r["frames"] * 1e6 for r in rs if r["frames"])
            tops = [json.dumps(r["top"], sort_keys=True) for r in rs]
            rows[(name, mode)] = {"fps": fps, "cpu_us": cpu_us, "frames": med("frames"),
                                  "rss": med("rss_mb"), "top": tops[-1],
                                  "tops": set(tops), "res": rs[-1]}
        ref = rows.get(("analyzer", "all"))
        all_tops = {t for row in rows.values() for t in row["tops"]}
        for (name, mode), row in rows.items():
            label = name if name == "analyzer" else f"{name} ({mode})"
            top = json.loads(row["top"]).get(mix.symbol)
            top_s = f"{top[0]:g} / {top[1]:g}" if top else "none"
            same = "yes" if len(all_tops) == 1 else ("yes*" if ref and row["top"] == ref["top"]
                                                      else "NO")
            ratio = cpu = ""
            if ref and name != "analyzer":
                ratio = f"{ref['fps'] / row['fps']:.1f}"
                cpu = f"{row['cpu_us'] / ref['cpu_us']:.1f}"
            print(f"  {label:<18}{row['frames']:>8,.0f}{row['fps']:>10,.0f}"
                  f"{row['cpu_us']:>10.1f}{row['rss']:>8.0f}{top_s:>22}{same:>6}"
                  f"{ratio:>12}{cpu:>8}")
            if ref and name != "analyzer":
                target = TARGET_BOOK if mode == "book" else TARGET_NULL
                met = ref["fps"] / row["fps"] >= target
                verdicts.append(
                    f"  {mix.name}: analyzer {ref['fps'] / row['fps']:.1f}x {name} ({mode}) "
                    f"in frames/s, {row['cpu_us'] / ref['cpu_us']:.1f}x in CPU a frame; "
                    f"target {target:g}x: {'met' if met else 'NOT met'}")
        if ref is not None:
            a = ref["res"]
            extra = f"  analyzer: {a['rows']:,} rows stored, books in sync {a['in_sync']}"
            if a["bbo"]:
                extra += f", bookTickers checked {a['bbo']:,} / differing {a['bbo_bad']}"
            if a["checksums"] or a["checksums_failed"]:
                extra += f", checksums ok {a['checksums']:,} / failed {a['checksums_failed']}"
            print(extra + f", gaps {a['gaps']}; its final flush {a['flush_cpu_s'] * 1e3:.0f} ms "
                  "CPU (not in µs/frame)")
        for (name, mode), row in rows.items():
            if name != "analyzer":
                r = row["res"]
                print(f"  {name} ({mode}): trades {r['trades']:,}, tickers {r['quotes']:,}, "
                      f"book reads {r['book_reads']:,}"
                      + (f", errors {r['errors']}" if r.get("errors") else ""))
        for (m, name), items in overrides.items():
            if m == mix.name:
                print(f"  {name} overrides: " + "; ".join(items))
        for peer, why in mix.unsupported.items():
            print(f"  {peer}: not run: {why}")
        for (m, name, mode), err in errors.items():
            if m == mix.name:
                print(f"  {name} ({mode}): FAILED: {err}")
        if len(all_tops) > 1:
            print("  tops differ: " + "; ".join(sorted(all_tops)))
    print("\ntargets (issue 18: the analyzer at 20x a peer reading the best bid/ask per update, "
          "3x a peer doing nothing):")
    print("\n".join(verdicts) if verdicts else "  no peer ran")


if __name__ == "__main__":
    main()
