"""Configs and command lines: a wrong value is one line naming the key, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from analyzer import config

GOOD = """
[[feeds]]
venue = "binance_usdm"
symbols = ["BTCUSDT"]
"""


def test_defaults() -> None:
    cfg = config.parse({"feeds": [{"venue": "binance_usdm", "symbols": ["BTCUSDT"]}]})
    assert cfg.metrics.port == 9108
    assert cfg.metrics.host == "127.0.0.1"  # loopback unless configured
    assert cfg.store.database == "data/analyzer.duckdb"
    assert cfg.feeds[0].ws_url is None  # the live venue, by default
    assert cfg.feeds[0].channels == ["depth", "trades", "bookTicker", "markPrice", "openInterest"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"feeds": [{"venue": "binance_usdm", "symbols": ["BTCUSDT"]}], "metrics": {"port": "x"}},
         "config error at metrics.port: Expected `int`, got `str`"),
        ({"feeds": [{"venue": "binance_usdm", "symbols": ["BTCUSDT"]}],
          "metrics": {"port": 70000}},
         "config error at metrics.port: Expected `int` <= 65535"),
        ({"feeds": [{"venue": "kraken", "symbols": ["BTCUSDT"]}]},
         "config error at feeds[0].venue: unknown venue 'kraken'"),
        ({"feeds": [{"venue": "binance_usdm", "symbols": ["BTCUSDT"],
                     "channels": ["depth", "candles"]}]},
         "config error at feeds[0].channels[1]: Invalid enum value 'candles'"),
        ({"feeds": [{"venue": "binance_usdm", "symbols": []}]},
         "config error at feeds[0].symbols: Expected `array` of length >= 1"),
        ({"feeds": [{"venue": "binance_usdm", "symbols": ["BTCUSDT"], "depth_sped": "0ms"}]},
         "config error at feeds[0]: Object contains unknown field `depth_sped`"),
        ({"feeds": [{"venue": "binance_spot", "symbols": ["BTCUSDT"],
                     "options": {"depth_speed": "0ms"}}]},
         "config error at feeds[0].options.depth_speed: spot offers 100ms or 1000ms"),
        ({"feeds": [{"venue": "binance_usdm", "symbols": ["BTCUSDT"],
                     "options": {"depth_sped": "0ms"}}]},
         "config error at feeds[0].options: Object contains unknown field `depth_sped`"),
        ({"feeds": [{"venue": "binance_usdm", "symbols": ["BTC USDT"]}]},
         "config error at feeds[0].symbols[0]"),
        ({"feeds": [{"venue": "binance_usdm", "symbols": ["BTCUSDT"],
                     "book_refresh_fraction": 1.0}]},
         "config error at feeds[0].book_refresh_fraction: Expected `float` < 1.0"),
        ({}, "config error at top level: Object missing required field `feeds`"),
    ],
)
def test_bad_values_name_the_key(data: dict, message: str) -> None:
    with pytest.raises(config.ConfigError) as err:
        config.parse(data)
    assert str(err.value).startswith(message), str(err.value)
    assert "\n" not in str(err.value)


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "analyzer.cli", *args], capture_output=True,
                          text=True, timeout=60, cwd=cwd)


def test_cli_bad_config_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(GOOD + 'options = {depth_speed = "7ms"}\n')
    r = run_cli("collect", "--config", str(bad))
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0, r.stderr
    assert r.stderr == ("analyzer: config error at feeds[0].options.depth_speed: Invalid enum "
                        "value '7ms' (valid: 0ms, 100ms, 250ms, 500ms, 1000ms)\n")
    (tmp_path / "broken.toml").write_text("[[feeds]\n")
    r = run_cli("collect", "--config", str(tmp_path / "broken.toml"))
    assert r.returncode == 2 and "is not valid TOML" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("collect", "--config", str(tmp_path / "missing.toml"))
    assert r.returncode == 2 and r.stderr.startswith("analyzer: cannot read config")


def test_cli_bad_arguments() -> None:
    r = run_cli("collect", "--config", "x.toml", "--duration", "-5")
    assert r.returncode == 2 and "must be positive" in r.stderr and "Traceback" not in r.stderr
    assert r.stderr.count("\n") == 1, r.stderr  # no usage block
    r = run_cli("frobnicate")
    assert r.returncode == 2 and "invalid choice" in r.stderr


def test_cli_sql_errors_are_one_line(tmp_path: Path) -> None:
    r = run_cli("sql", "SELECT 1", "--db", str(tmp_path / "none.duckdb"))
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.count("\n") == 1
    from analyzer.store import Store

    store = Store(tmp_path / "data", tmp_path / "data" / "a.duckdb")
    store.open()
    store.close()
    r = run_cli("sql", "SELEC count(*) FROM trades", "--db", str(tmp_path / "data" / "a.duckdb"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "syntax error" in r.stderr, r.stderr
    r = run_cli("sql", "SELECT count(*) AS n FROM trades", "--db",
                str(tmp_path / "data" / "a.duckdb"))
    assert r.returncode == 0 and r.stdout.splitlines() == ["n", "-", "0"], r.stdout


def test_cli_unknown_symbol_is_one_line(tmp_path: Path) -> None:
    """Against the local exchange (in a thread): a symbol the venue does not list."""
    from analyzer.exchange import ExchangeThread, LocalExchange, Replay

    fixtures = Path(__file__).parent / "fixtures" / "binance"
    ex = LocalExchange(port=0)
    ex.add_replay(Replay.from_path(fixtures / "usdm_2021", speed=0))
    with ExchangeThread(ex) as thread:
        cfg = tmp_path / "c.toml"
        cfg.write_text(
            f'[[feeds]]\nvenue = "binance_usdm"\nsymbols = ["SUSHIUSDT", "NOPEUSDT"]\n'
            f'ws_url = "{thread.ws_url("binance_usdm").removesuffix("/stream")}"\n'
            f'rest_url = "{thread.base_url("binance_usdm")}"\n'
            f'[store]\ndata_dir = "{tmp_path}/data"\ndatabase = "{tmp_path}/data/a.duckdb"\n'
            f"[metrics]\nport = 0\n"
        )
        r = run_cli("collect", "-c", str(cfg), "--duration", "5")
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    assert r.stderr.splitlines()[-1] == ("analyzer: unknown symbol on binance_usdm: NOPEUSDT "
                                         "(not trading in the venue's listing)")


def test_example_config_is_valid() -> None:
    cfg = config.load(Path(__file__).parents[1] / "examples" / "binance.toml")
    assert [f.venue for f in cfg.feeds] == ["binance_spot", "binance_usdm", "binance_coinm"]
    assert all(f.ws_url is None for f in cfg.feeds)  # live endpoints by default
