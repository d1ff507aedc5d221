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
        ({"feeds": [{"venue": "binance_spot", "symbols": ["BTCUSDT"], "depth_speed": "0ms"}]},
         "config error at feeds[0].depth_speed: spot offers 100ms or 1000ms"),
        ({"feeds": [{"venue": "binance_usdm", "symbols": ["BTC USDT"]}]},
         "config error at feeds[0].symbols[0]"),
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
    bad.write_text(GOOD + 'depth_speed = "7ms"\n')
    r = run_cli("collect", "--config", str(bad))
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0, r.stderr
    assert r.stderr.startswith("analyzer: config error at feeds[0].depth_speed")
    (tmp_path / "broken.toml").write_text("[[feeds]\n")
    r = run_cli("collect", "--config", str(tmp_path / "broken.toml"))
    assert r.returncode == 2 and "is not valid TOML" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("collect", "--config", str(tmp_path / "missing.toml"))
    assert r.returncode == 2 and r.stderr.startswith("analyzer: cannot read config")


def test_cli_bad_arguments() -> None:
    r = run_cli("collect", "--config", "x.toml", "--duration", "-5")
    assert r.returncode == 2 and "must be positive" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("frobnicate")
    assert r.returncode == 2 and "invalid choice" in r.stderr


def test_cli_sql_errors_are_one_line(tmp_path: Path) -> None:
    r = run_cli("sql", "SELECT 1", "--db", str(tmp_path / "none.duckdb"))
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.count("\n") == 1
