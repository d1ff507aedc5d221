"""Benchmark of the simulated market: the local exchange generating and sending it, and the
model alone.

Run: ``python benchmarks/bench_sim_exchange.py [--runs 3] [--seconds 300]``.

1. Frames/s the exchange generates and sends in its fastest mode (speed 0: as fast as the
   client reads; the model's throughput mode ``Rates.fast``: one-second steps, the default
   mix of events per second with lighter deep-book work) to one client
   in another process (pinned to another core when there are two). The client opens one
   connection per market, subscribes to every stream of every instrument (one depth speed per
   symbol, bookTicker, trade, aggTrade, markPrice, forceOrder, COIN-M indexPrice), and only
   walks the websocket frame headers and counts. Server CPU per frame is the CPU time of the
   exchange's process (model, rendering, writing) over the frames sent.
2. Real-time factor of the model with its realistic default rates and 0.1 s steps, for the
   default world (2 assets x 3 venues; every instrument it lists is printed): market seconds
   simulated per wall second, alone and with the frames of a client of every stream rendered
   (what the exchange does per event, minus the socket writes).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import selectors
import socket
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# path set up above
from wsframes import handshake, scan  # noqa: E402

from analyzer.events import BookChange  # noqa: E402
from analyzer.exchange import LocalExchange, Simulation, markets  # noqa: E402
from analyzer.sim import MarketModel  # noqa: E402
from analyzer.venues.binance.emulate import render as rb  # noqa: E402

FEEDS = ("binance_spot", "binance_usdm", "binance_coinm")


def _pin(core: int) -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {core % (os.cpu_count() or 1)})


def counting_client(host: str, port: int, paths: list[str], out: mp.Queue) -> None:
    """Count text frames on several connections until the server closes them all. (It signals
    nothing when it is ready: the simulation's clock starts once all three are subscribed, and
    a multiprocessing Event would make the client wait for the busy server's GIL.)"""
    _pin(1)
    sel = selectors.DefaultSelector()
    bufs: dict[socket.socket, bytearray] = {}
    for path in paths:
        sock, rest = handshake(host, port, path)
        sock.setblocking(False)
        bufs[sock] = bytearray(rest)
        sel.register(sock, selectors.EVENT_READ)
    frames = nbytes = 0
    first = last = 0.0
    open_ = set(bufs)
    while open_:
        for key, _ in sel.select():
            sock = key.fileobj
            chunk = sock.recv(1 << 20)
            now = time.perf_counter()
            if not first:
                first = now
            view = bufs[sock]
            closed = not chunk
            view += chunk
            pos, n_frames, n_bytes, saw_close = scan(view)
            if n_frames:
                frames += n_frames
                nbytes += n_bytes
                last = now
            closed = closed or saw_close
            del view[:pos]
            if closed:
                sel.unregister(sock)
                sock.close()
                open_.discard(sock)
    out.put((frames, nbytes, last - first))


def all_streams(sim: Simulation, feed: str) -> list[str]:
    """Every stream of every instrument of a market, one depth speed per symbol."""
    names: list[str] = []
    for inst in sim.model.instruments():
        if inst.venue != feed:
            continue
        f = rb.SymbolFormat(markets()[feed].market, inst, 0)
        depth = f"{inst.symbol.lower()}@depth@100ms".encode()
        names += [n.decode() for n in f.streams() if b"@depth" not in n or n == depth]
    return list(dict.fromkeys(names))


async def one_run(seconds: float) -> tuple[float, float, int, int, int]:
    sim = Simulation(seed=1, speed=0, fast=True, duration_s=seconds, wait_for=FEEDS)
    ex = LocalExchange(port=0)
    ex.add_simulation(sim)
    await ex.start()
    streams = {feed: all_streams(sim, feed) for feed in FEEDS}
    paths = [f"/{feed}/stream?streams={'/'.join(names)}" for feed, names in streams.items()]
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()
    proc = ctx.Process(target=counting_client, args=(ex.host, ex.port, paths, out))
    cpu0 = time.process_time()  # the server idles until the client has subscribed
    proc.start()
    await ex.wait_replays_done(600)
    cpu = time.process_time() - cpu0
    sent = sum(ex.feed(f).frames_sent for f in FEEDS)
    for f in FEEDS:
        ex.close_clients(f, 1000)
    frames, _, elapsed = await asyncio.to_thread(out.get, True, 300)
    await asyncio.to_thread(proc.join, 60)
    events = sim.events_released
    await ex.stop()
    assert frames == sent, (frames, sent)
    return frames / elapsed, cpu / sent * 1e6, frames, events, sum(map(len, streams.values()))


def real_time_factor(seconds: float, render: bool) -> tuple[float, int, list]:
    model = MarketModel(seed=1)
    insts = model.instruments()
    formats = {
        (i.venue, i.symbol): rb.SymbolFormat(markets()[i.venue].market, i, 0) for i in insts
    }
    model.advance(model.start_ns + 10 * 10**9)  # warm up
    t0 = time.perf_counter()
    end = model.start_ns + round((10 + seconds) * 10**9)
    n = 0
    while model.now_ns < end:
        events = model.advance(model.now_ns + model.step_ns)
        n += len(events)
        if render:  # the frames of a client of every stream, one depth speed per symbol
            for ev in events:
                f = formats.get((getattr(ev, "venue", ""), getattr(ev, "symbol", "")))
                if f is None:
                    continue
                if ev.__class__ is BookChange:
                    f.depth_keys[0][1] + f.depth_data(ev) + b"}"  # one depth stream
                else:
                    f.frames(ev)
    return seconds / (time.perf_counter() - t0), n, insts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=300.0,
                        help="market seconds per run of the exchange (default 300)")
    parser.add_argument("--model-seconds", type=float, default=600.0,
                        help="market seconds for the real-time factor (default 600)")
    args = parser.parse_args()
    _pin(0)
    rates, cpus = [], []
    frames = events = streams = 0
    for _ in range(args.runs):
        rate, cpu, frames, events, streams = asyncio.run(one_run(args.seconds))
        rates.append(rate)
        cpus.append(cpu)
    print(f"exchange, fastest mode (speed 0, Rates.fast), {args.seconds:g} market seconds, "
          f"{args.runs} runs, cores: {os.cpu_count()}")
    print(f"  one client, 3 connections, {streams} streams: {frames:,} frames from "
          f"{events:,} model events per run")
    print(f"  frames/s generated and sent: median {statistics.median(rates):,.0f} "
          f"(min {min(rates):,.0f}, max {max(rates):,.0f})")
    print(f"  server CPU per frame: median {statistics.median(cpus):.2f} µs "
          f"(min {min(cpus):.2f}, max {max(cpus):.2f})")
    factor, n, insts = real_time_factor(args.model_seconds, render=False)
    with_render, _, _ = real_time_factor(args.model_seconds, render=True)
    by_venue = Counter(i.venue for i in insts)
    print(f"model, default rates and 0.1 s steps, {len(insts)} instruments "
          f"({', '.join(f'{v} {c}' for v, c in by_venue.items())}):")
    for venue in by_venue:
        print(f"  {venue}: {' '.join(i.symbol for i in insts if i.venue == venue)}")
    print(f"  {n / args.model_seconds:,.0f} events per market second")
    print(f"  real-time factor: {factor:,.0f}x alone, {with_render:,.0f}x with the frames "
          "of a client of every stream rendered")


if __name__ == "__main__":
    main()
