"""Benchmark of the local exchange: how fast it replays a recording to one client.

Run: ``python benchmarks/bench_exchange.py [--runs 5] [--client raw|websockets]``.

The exchange replays the USDⓈ-M BTCUSDT recording (93,953 frames: depth@0ms, bookTicker,
trade) at speed 0, i.e. as fast as the client reads, to one client subscribed to all three
streams. The client runs in another process (pinned to another core when there are two): by
default a raw-socket reader that only walks the websocket frame headers and counts frames, so
the figure is the exchange's, not a Python websocket client's (``--client websockets`` shows
what a websockets ``recv()`` loop gets instead). Figures, median of the runs:

- frames/s: frames the client counted / time from its first to its last frame
- server CPU µs/frame: CPU time of the server process during the replay / frames sent. It
  includes everything the exchange does per frame: reading the gzip recording, keeping its
  own book (every diff decoded and applied), trade history, and writing the frames.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from wsframes import handshake, scan  # noqa: E402

from analyzer.exchange import LocalExchange, Recording, Replay  # noqa: E402  (path set up above)

RECORDING = ROOT / "tests/fixtures/binance/usdm_2024"
STREAMS = "btcusdt@depth@0ms/btcusdt@bookTicker/btcusdt@trade"


def _pin(core: int) -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {core % (os.cpu_count() or 1)})


def raw_client(host: str, port: int, path: str, expected: int, out: mp.Queue) -> None:
    """Count websocket frames straight off the socket (unmasked server frames)."""
    _pin(1)
    sock, buf = handshake(host, port, path)
    frames = 0
    nbytes = 0
    first = 0.0
    view = bytearray(buf)
    while frames < expected:
        pos, n_frames, n_bytes, _ = scan(view)
        frames += n_frames
        nbytes += n_bytes
        del view[:pos]
        if frames >= expected:
            break
        chunk = sock.recv(1 << 20)
        if not chunk:
            break
        if not first:
            first = time.perf_counter()
        view += chunk
    out.put((frames, nbytes, time.perf_counter() - first))
    sock.close()


def websockets_client(host: str, port: int, path: str, expected: int, out: mp.Queue) -> None:
    _pin(1)

    async def main() -> None:
        from websockets.asyncio.client import connect

        async with connect(f"ws://{host}:{port}{path}", compression=None, max_queue=None) as ws:
            first = 0.0
            frames = nbytes = 0
            while frames < expected:
                msg = await ws.recv(decode=False)
                if not first:
                    first = time.perf_counter()
                frames += 1
                nbytes += len(msg)
            out.put((frames, nbytes, time.perf_counter() - first))

    asyncio.run(main())


async def one_run(rec: Recording, client: str) -> tuple[float, float, int]:
    ex = LocalExchange(port=0)
    ex.add_replay(Replay(rec, speed=0))
    await ex.start()
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()
    target = raw_client if client == "raw" else websockets_client
    path = f"/binance_usdm/stream?streams={STREAMS}"
    proc = ctx.Process(target=target, args=(ex.host, ex.port, path, rec.frames, out))
    cpu0 = time.process_time()
    proc.start()
    await ex.wait_replays_done(300)
    cpu = time.process_time() - cpu0
    frames, nbytes, elapsed = await asyncio.to_thread(out.get, True, 300)
    await asyncio.to_thread(proc.join, 60)
    sent = ex.stats["feeds"]["binance_usdm"]["frames_sent"]
    await ex.stop()
    assert frames == sent == rec.frames, (frames, sent, rec.frames)
    return frames / elapsed, cpu / sent * 1e6, nbytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--client", choices=["raw", "websockets"], default="raw")
    args = parser.parse_args()
    _pin(0)
    t0 = time.perf_counter()
    rec = Recording.open(RECORDING)
    scan = time.perf_counter() - t0
    rates, cpus = [], []
    nbytes = 0
    for _ in range(args.runs):
        rate, cpu, nbytes = asyncio.run(one_run(rec, args.client))
        rates.append(rate)
        cpus.append(cpu)
    print(f"recording: {rec.name}: {rec.frames:,} frames, {nbytes / 1e6:.1f} MB of payload")
    print(f"opening it (first pass: streams, symbols, snapshots): {scan * 1000:.0f} ms")
    print(f"client: {args.client}, {args.runs} runs, cores: {os.cpu_count()}")
    print(
        f"frames/s to one client: median {statistics.median(rates):,.0f} "
        f"(min {min(rates):,.0f}, max {max(rates):,.0f})"
    )
    print(
        f"server CPU per frame: median {statistics.median(cpus):.2f} µs "
        f"(min {min(cpus):.2f}, max {max(cpus):.2f})"
    )


if __name__ == "__main__":
    main()
