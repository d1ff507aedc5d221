"""The edges of the command line (issue 14): bad arguments are one line and exit status 2
before anything starts, the demo never leaves its exchange child behind, ``analyzer sql``
formats, config URLs and enum values, loopback metrics, and SIGTERM / SIGINT stopping
``collect`` and ``exchange`` cleanly (the demo's: tests/test_demo.py)."""

from __future__ import annotations

import argparse
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import UnionType
from typing import Annotated, Literal, Union, get_args, get_origin

import msgspec
import pytest

from analyzer import cli, config, demo
from analyzer.store.research import query
from analyzer.venues import VENUES

CLI = [sys.executable, "-m", "analyzer.cli"]


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def processes_with(text: str) -> list[int]:
    """PIDs whose command line contains ``text`` (no psutil: /proc)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmd and int(pid) != os.getpid():
            found.append(int(pid))
    return found


# -- bad arguments: one line, exit status 2, nothing started --------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["demo", "--exchange-port", "70000"], "--exchange-port: must be a port number 0..65535"),
        (["demo", "--metrics-port", "70000"], "--metrics-port: must be a port number 0..65535"),
        (["demo", "--metrics-port", "-1"], "--metrics-port: must be a port number 0..65535"),
        (["demo", "--duration", "-5"], "--duration: must be positive"),
        (["demo", "--duration", "nan"], "--duration: must be a finite number"),
        (["demo", "--duration", "inf"], "--duration: must be a finite number"),
        (["demo", "--speed", "nan"], "--speed: must be a finite number"),
        (["demo", "--speed", "-1"], "--speed: must be 0 or positive"),
        (["collect", "-c", "x.toml", "--duration", "nan"], "--duration: must be a finite number"),
        (["exchange", "--simulate", "--port", "99999"], "--port: must be a port number"),
        (["exchange", "--simulate", "--speed", "inf"], "--speed: must be a finite number"),
        (["exchange", "--simulate", "--sim-duration", "nan"], "--sim-duration: must be a finite"),
        (["exchange", "--simulate", "--ping-interval", "-1"], "--ping-interval: must be positive"),
        (["sql", "SELECT 1", "--max-rows", "-1"], "--max-rows: must be 0 (all) or more"),
        (["sql", "SELECT 1", "--format", "xml"], "--format/-f: invalid choice: 'xml'"),
    ],
)
def test_bad_arguments_are_one_line(args: list[str], message: str) -> None:
    # a real process, with a timeout: a demo that starts anyway must not hang the test
    exchange_port = str(free_port())
    if args[0] == "demo":
        args = [*args, "--duration", "3"] if "--duration" not in args else args
        if "--exchange-port" not in args:
            args += ["--exchange-port", exchange_port]
    r = run_cli(*args, timeout=30)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.startswith(f"analyzer {args[0]}: error: argument "), r.stderr
    assert message in r.stderr, r.stderr
    assert not processes_with(f"--port {exchange_port} "), "an exchange child was left running"


def test_bad_arguments_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    """``main([...])`` returns 2 (not SystemExit) and prints one line."""
    assert cli.main(["demo", "--exchange-port", "70000"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "must be a port number 0..65535, not 70000" in err


def test_demo_checks_the_metrics_address_before_starting_the_exchange(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    def no_child(*a: object, **k: object) -> None:
        raise AssertionError("the exchange child was started")

    monkeypatch.setattr(demo.subprocess, "Popen", no_child)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = cli.main(["demo", "--metrics-port", str(port), "--data-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1
    assert err.startswith(f"analyzer: cannot serve metrics on 127.0.0.1:{port}: "), err
    assert "--metrics-port" in err
    code = cli.main(["demo", "--metrics-host", "no-such-host.invalid", "--data-dir",
                     str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "cannot serve metrics on no-such-host.invalid:9108" in err, err


class FakeChild:
    """A stand-in for the exchange child: records how it was stopped."""

    def __init__(self, *a: object, **k: object) -> None:
        self.stopped = False

    def poll(self) -> int | None:
        return 0 if self.stopped else None

    def terminate(self) -> None:
        self.stopped = True

    def kill(self) -> None:
        self.stopped = True

    def wait(self, timeout: float | None = None) -> int:
        return 0


@pytest.mark.parametrize("fail_at", ["listed_symbols", "sim_config", "Collector"])
def test_demo_stops_its_child_on_any_failure_after_starting_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        fail_at: str) -> None:
    children: list[FakeChild] = []

    def popen(*a: object, **k: object) -> FakeChild:
        children.append(FakeChild())
        return children[-1]

    def fail(*a: object, **k: object) -> None:
        raise config.ConfigError(f"{fail_at} failed")

    monkeypatch.setattr(demo.subprocess, "Popen", popen)
    monkeypatch.setattr(demo, "_wait_port", lambda port, proc: None)
    monkeypatch.setattr(demo, "listed_symbols", lambda port: {
        "binance_spot": ["BTCUSDT"], "binance_usdm": ["BTCUSDT"], "binance_coinm": ["BTCUSD_PERP"]})
    if fail_at == "Collector":
        import analyzer.collector

        monkeypatch.setattr(analyzer.collector, "Collector", fail)
    else:
        monkeypatch.setattr(demo, fail_at, fail)
    code = cli.main(["demo", "--metrics-port", "0", "--data-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and err == f"analyzer: {fail_at} failed\n", err
    assert len(children) == 1 and children[0].stopped


def test_demo_namespace_checks(tmp_path: Path) -> None:
    """``run_demo`` on a namespace built by hand refuses what the argument types refuse."""
    p = argparse.ArgumentParser()
    demo.add_arguments(p)
    for field, value in (("duration", float("nan")), ("speed", float("inf")),
                         ("exchange_port", 70000)):
        args = p.parse_args(["--data-dir", str(tmp_path)])
        setattr(args, field, value)
        with pytest.raises(config.ConfigError):
            demo.run_demo(args)


# -- config: URLs, enum values, loopback metrics ---------------------------------------------

FEED = {"venue": "binance_usdm", "symbols": ["BTCUSDT"]}


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("rest_url", "alsonot"),
        ("rest_url", "ws://127.0.0.1:8765/binance_usdm"),
        ("rest_url", "https://"),
        ("rest_url", "http://127.0.0.1:99999/x"),
        ("ws_url", "alsonot"),
        ("ws_url", "https://fstream.binance.com"),
        ("ws_url", "wss:///stream"),
    ],
)
def test_endpoint_urls_are_checked(key: str, value: str) -> None:
    with pytest.raises(config.ConfigError) as err:
        config.parse({"feeds": [{**FEED, key: value}]})
    msg = str(err.value)
    assert msg.startswith(f"config error at feeds[0].{key}: {value!r} is not a "), msg
    assert "URL with a host" in msg and "\n" not in msg


def test_good_endpoint_urls_pass() -> None:
    cfg = config.parse({"feeds": [{**FEED, "ws_url": "ws://127.0.0.1:8765/binance_usdm",
                                   "rest_url": "http://127.0.0.1:8765/binance_usdm"},
                                  {**FEED, "ws_url": "wss://fstream.binance.com",
                                   "rest_url": "https://fapi.binance.com"}]})
    assert cfg.feeds[1].rest_url == "https://fapi.binance.com"


def test_bad_rest_url_is_one_line_from_the_cli(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[[feeds]]\nvenue = "binance_usdm"\nsymbols = ["BTCUSDT"]\n'
                   'rest_url = "alsonot"\n')
    r = run_cli("collect", "-c", str(cfg))
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr == ("analyzer: config error at feeds[0].rest_url: 'alsonot' is not a "
                        "http:// or https:// URL with a host\n")


def test_enum_error_lists_the_valid_values() -> None:
    with pytest.raises(config.ConfigError) as err:
        config.parse({"feeds": [{**FEED, "options": {"depth_speed": "7ms"}}]})
    assert str(err.value) == ("config error at feeds[0].options.depth_speed: Invalid enum value "
                              "'7ms' (valid: 0ms, 100ms, 250ms, 500ms, 1000ms)")


def _literal_fields(t: object, path: list[str | int]) -> list[tuple[list[str | int], tuple]]:
    """Every Literal field reachable in the Config (lists of Literals at index 0)."""
    while True:
        if get_origin(t) is Annotated:
            t = get_args(t)[0]
        elif get_origin(t) in (Union, UnionType):
            rest = [a for a in get_args(t) if a is not type(None)]
            if len(rest) != 1:
                return []
            t = rest[0]
        else:
            break
    if get_origin(t) is Literal:
        return [(path, get_args(t))]
    if get_origin(t) is list:
        return _literal_fields(get_args(t)[0], [*path, 0])
    if isinstance(t, type) and issubclass(t, msgspec.Struct):
        return [found for f in msgspec.structs.fields(t)
                for found in _literal_fields(f.type, [*path, f.encode_name])]
    return []


def _put(data: dict, path: list[str | int], value: object) -> dict:
    """``data`` with ``value`` at ``path`` (a list at an int step)."""
    node: dict | list = data
    for step, nxt in itertools.pairwise(path):
        if isinstance(step, int):
            node = node[step]  # type: ignore[index]
            continue
        if step not in node:  # type: ignore[operator]
            node[step] = [{}] if isinstance(nxt, int) else {}  # type: ignore[index]
        node = node[step]  # type: ignore[index]
    last = path[-1]
    if isinstance(last, int):
        node[:] = [value]  # type: ignore[index]
    else:
        node[last] = value  # type: ignore[index]
    return data


def test_every_literal_field_lists_its_values() -> None:
    fields = _literal_fields(config.Config, [])
    assert len(fields) >= 2  # channels, log_level at least
    for path, values in fields:
        data = _put({"feeds": [dict(FEED)]}, path, "no-such-value")
        with pytest.raises(config.ConfigError) as err:
            config.parse(data)
        where = "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in path).lstrip(".")
        assert str(err.value) == (f"config error at {where}: Invalid enum value 'no-such-value' "
                                  f"(valid: {', '.join(map(str, values))})"), str(err.value)


@pytest.mark.parametrize("feed_id", sorted(VENUES))
def test_every_venue_option_lists_its_values(feed_id: str) -> None:
    """A venue's own options are checked as strictly as the config's keys."""
    market, feed_cls = VENUES[feed_id]
    symbol = "BTCUSDT" if market.exchange != "okx" else "BTC-USDT"
    for path, values in _literal_fields(feed_cls.Options, []):
        bad: object = -7 if all(isinstance(v, int) for v in values) else "no-such-value"
        data = {"feeds": [{"venue": feed_id, "symbols": [symbol],
                           "options": _put({}, path, bad)}]}
        with pytest.raises(config.ConfigError) as err:
            config.parse(data)
        where = ".".join(map(str, path))
        assert str(err.value) == (f"config error at feeds[0].options.{where}: Invalid enum value "
                                  f"{bad!r} (valid: {', '.join(map(str, values))})")


def test_metrics_listen_on_loopback_by_default() -> None:
    cfg = config.parse({"feeds": [FEED]})
    assert cfg.metrics.host == "127.0.0.1"


def test_example_config_follows_quarterlies_by_glob() -> None:
    cfg = config.load(Path(__file__).parents[1] / "examples" / "binance.toml")
    for feed in cfg.feeds:
        assert not any(s[-6:].isdigit() for s in feed.symbols), feed.symbols  # no YYMMDD
    futures = [f for f in cfg.feeds if f.venue != "binance_spot"]
    assert all(any(s.endswith("_*") for s in f.symbols) for f in futures)


# -- analyzer sql -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database with a few trades, through the store as the collector writes them."""
    from analyzer.events import Trade
    from analyzer.store import Store

    root = tmp_path_factory.mktemp("sql")
    store = Store(root / "data", root / "data" / "analyzer.duckdb")
    store.open()
    for i in range(3):
        store.add(Trade(venue="binance_usdm", symbol="BTCUSDT", ts_exchange=1_800_000_000_000 + i,
                        ts_local=1_800_000_000_100 + i, trade_id=str(100 + i),
                        price=60000.5 + i, size=0.25 * (i + 1), side="buy"))
    store.close()
    return root / "data" / "analyzer.duckdb"


SQL = "SELECT venue, symbol, trade_id, price, size, side FROM trades ORDER BY trade_id"


def test_sql_table_is_aligned(db: Path) -> None:
    r = run_cli("sql", SQL, "--db", str(db))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["venue", "symbol", "trade_id", "price", "size", "side"]
    assert set(lines[1]) == {"-", " "}
    # every column starts at the same offset on every line; numbers end at the same one
    assert len({line.index("BTCUSDT") for line in lines[2:]}) == 1
    assert {line.index("60000.5") + len("60000.5") for line in lines[2:3]} == {
        line.index("60002.5") + len("60002.5") for line in lines[4:5]}
    assert lines[2].split() == ["binance_usdm", "BTCUSDT", "100", "60000.5", "0.25", "buy"]


def test_sql_formats(db: Path) -> None:
    r = run_cli("sql", SQL, "--db", str(db), "--format", "json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert rows[0] == {"venue": "binance_usdm", "symbol": "BTCUSDT", "trade_id": "100",
                       "price": 60000.5, "size": 0.25, "side": "buy"}
    assert len(rows) == 3
    r = run_cli("sql", SQL, "--db", str(db), "--format", "csv")
    assert r.stdout.splitlines() == [
        "venue,symbol,trade_id,price,size,side",
        "binance_usdm,BTCUSDT,100,60000.5,0.25,buy",
        "binance_usdm,BTCUSDT,101,60001.5,0.5,buy",
        "binance_usdm,BTCUSDT,102,60002.5,0.75,buy",
    ]
    r = run_cli("sql", SQL, "--db", str(db), "--format", "markdown", "--max-rows", "1")
    assert r.stdout.splitlines() == [
        "| venue | symbol | trade_id | price | size | side |",
        "|---|---|---|---:|---:|---|",
        "| binance_usdm | BTCUSDT | 100 | 60000.5 | 0.25 | buy |",
    ]
    assert r.stderr == "(1 of 3 rows; --max-rows N, 0 for all)\n"


def test_sql_columns(db: Path) -> None:
    r = run_cli("sql", SQL, "--db", str(db), "--columns", "price,trade_id", "--format", "csv")
    assert r.returncode == 0 and r.stdout.splitlines()[:2] == ["price,trade_id", "60000.5,100"]
    r = run_cli("sql", SQL, "--db", str(db), "--columns", "price,nope")
    assert r.returncode == 2, r.stderr
    assert r.stderr == ("analyzer: --columns: no column nope in the result (it has: venue, "
                        "symbol, trade_id, price, size, side)\n")


def test_sql_max_rows(db: Path) -> None:
    r = run_cli("sql", SQL, "--db", str(db), "--max-rows", "2")
    assert r.returncode == 0
    assert len(r.stdout.splitlines()) == 2 + 2 + 1 and r.stdout.endswith(
        "(2 of 3 rows; --max-rows N, 0 for all)\n")


def test_missing_database_names_the_commands_not_internals(tmp_path: Path) -> None:
    r = run_cli("sql", "SELECT 1", "--db", str(tmp_path / "none.duckdb"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "run `analyzer collect` or `analyzer demo` first" in r.stderr, r.stderr
    assert "Store.open" not in r.stderr


# -- SIGTERM / SIGINT: collect and exchange stop cleanly --------------------------------------


def wait_listening(port: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1]
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on {port}")


def listen_address(port: int) -> str:
    """The local address a listening TCP socket on ``port`` is bound to (/proc/net/tcp)."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        addr, hexport = local.split(":")
        if int(hexport, 16) == port and state == "0A":
            return socket.inet_ntoa(bytes.fromhex(addr)[::-1])
    raise AssertionError(f"nothing listens on {port}")


def frames(port: int) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith('analyzer_frames_total{channel="trades"'))


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_collect_flushes_and_exits_0_on_sigterm_and_sigint(tmp_path: Path,
                                                           sig: signal.Signals) -> None:
    """Nothing is flushed while it runs (flush_seconds = 1 h): every stored trade comes from the
    final flush that the signal triggers. The metrics listen on loopback by default."""
    port, metrics_port = free_port(), free_port()
    exchange = subprocess.Popen(
        [*CLI, "exchange", "--simulate", "--speed", "10", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    collect = None
    try:
        wait_listening(port, exchange)
        data = tmp_path / "data"
        cfg = tmp_path / "c.toml"
        cfg.write_text(
            f'[[feeds]]\nvenue = "binance_usdm"\nsymbols = ["BTCUSDT"]\n'
            f'ws_url = "ws://127.0.0.1:{port}/binance_usdm"\n'
            f'rest_url = "http://127.0.0.1:{port}/binance_usdm"\n'
            f'[store]\ndata_dir = "{data}"\ndatabase = "{data}/analyzer.duckdb"\n'
            f"flush_seconds = 3600\nflush_rows = 1000000\nraw_capture = false\n"
            f"[metrics]\nport = {metrics_port}\n"
        )
        collect = subprocess.Popen([*CLI, "collect", "-c", str(cfg)], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        wait_listening(metrics_port, collect)
        assert listen_address(metrics_port) == "127.0.0.1"
        deadline = time.monotonic() + 60
        while frames(metrics_port) < 20:
            assert time.monotonic() < deadline, "no trades reached the collector"
            time.sleep(0.5)
        db = data / "analyzer.duckdb"
        assert query(db, "SELECT count(*) AS n FROM trades")["n"][0] == 0  # all still buffered
        collect.send_signal(sig)
        _, err = collect.communicate(timeout=60)
        assert collect.returncode == 0, err[-2000:]
        assert f"{sig.name}: stopping" in err and "Traceback" not in err, err[-2000:]
        assert query(db, "SELECT count(*) AS n FROM trades")["n"][0] >= 20
        exchange.send_signal(signal.SIGTERM)
        _, err = exchange.communicate(timeout=30)
        assert exchange.returncode == 0, err[-2000:]
    finally:
        for p in (collect, exchange):
            if p is not None and p.poll() is None:
                p.kill()
                p.communicate()


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_exchange_exits_0_on_sigint_and_sigterm(sig: signal.Signals) -> None:
    port = free_port()
    proc = subprocess.Popen([*CLI, "exchange", "--simulate", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_listening(port, proc)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0 and "Traceback" not in err, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
