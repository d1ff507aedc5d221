"""``analyzer demo``: the whole pipeline offline.

Starts the local exchange in a child process (its own core) replaying real Binance recordings of
all three markets, and a collector against it with the default store and metrics port, then
prints where to look. Runs until Ctrl-C or ``--duration``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import socket
import subprocess
import sys
import time
from pathlib import Path

from analyzer import config as config_mod

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "binance"
COINM_SYMBOLS = [
    "BTCUSD_211231", "ETHUSD_210924", "BCHUSD_210924", "LINKUSD_211231", "BCHUSD_PERP",
    "LINKUSD_PERP", "ETCUSD_PERP", "XRPUSD_PERP", "TRXUSD_PERP", "EOSUSD_PERP",
]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--duration", type=float, default=None, help="stop after S seconds")
    p.add_argument("--speed", type=float, default=1.0,
                   help="replay speed: 1 = recorded pace, 10 = ten times faster, 0 = flat out")
    p.add_argument("--data-dir", default="data", help="where the data goes (default: data)")
    p.add_argument("--metrics-port", type=int, default=9108)
    p.add_argument("--exchange-port", type=int, default=0, help="default: a free port")


def demo_config(port: int, data_dir: str, metrics_port: int) -> config_mod.Config:
    base = f"127.0.0.1:{port}"

    def feed(venue: str, symbols: list[str], **kw: object) -> dict:
        return {"venue": venue, "symbols": symbols, "ws_url": f"ws://{base}/{venue}",
                "rest_url": f"http://{base}/{venue}", "open_interest_seconds": 5.0, **kw}

    return config_mod.parse({
        "feeds": [
            feed("binance_usdm", ["BTCUSDT"], depth_speed="0ms"),
            feed("binance_spot", ["BTCUSDT"], channels=["depth", "trades", "bookTicker"]),
            feed("binance_coinm", COINM_SYMBOLS, trade_stream="aggTrade",
                 channels=["depth", "trades", "bookTicker", "openInterest"]),
        ],
        "store": {"data_dir": data_dir, "database": f"{data_dir}/analyzer.duckdb"},
        "metrics": {"port": metrics_port, "host": "127.0.0.1"},
        "log_level": "WARNING",
    })


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


def start_exchange(port: int, speed: float) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "analyzer.exchange", "--port", str(port), "--speed", str(speed)]
    for rec in ("usdm_2024", "spot_2024", "coinm_2021"):
        cmd += ["--replay", str(FIXTURES / rec)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    _wait_port(port, proc)
    return proc


def run_demo(args: argparse.Namespace) -> int:
    from analyzer.collector import Collector
    from analyzer.metrics import serve

    port = args.exchange_port or _free_port()
    cfg = demo_config(port, args.data_dir, args.metrics_port)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    proc = start_exchange(port, args.speed)
    try:
        collector = Collector(cfg)
        serve(collector, cfg.metrics.host, cfg.metrics.port)
        print(DEMO_TEXT.format(port=port, metrics=cfg.metrics.port, db=cfg.store.database,
                               data=cfg.store.data_dir), flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(collector.run(args.duration))
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)
    print(f"stopped; the data stays in {cfg.store.data_dir}/ (analyzer sql \"...\" to query it)")
    return 0


DEMO_TEXT = """\
analyzer demo: replaying real Binance recordings (USDⓈ-M BTCUSDT 2024-08-08, spot BTCUSDT
2024-08-08, COIN-M 10 symbols 2021-07-22) through a local exchange on 127.0.0.1:{port}

  metrics   http://127.0.0.1:{metrics}/metrics
  database  {db}   (views over Parquet segments in {data}/segments; raw frames in {data}/raw)

Query while it runs, from another terminal:
  analyzer sql "SELECT venue, symbol, count(*) AS trades FROM trades GROUP BY ALL"
  analyzer sql "SELECT * FROM latest_quotes"
  analyzer sql "SELECT venue, symbol, reason, count(*) FROM gaps GROUP BY ALL"
  duckdb -readonly {db} "SELECT * FROM trades_1m ORDER BY minute DESC LIMIT 10"

Ctrl-C to stop.
"""
