"""The soak's three-minute version (benchmarks/soak.py; the hour-long run is not in CI, and
three minutes keep CI's time for the venues' suites): the
simulated market of Binance's three markets at ~20,000 frames/s, a fault a minute, then its
verdict (with every venue, memory grows past the 10 % of the verdict within five minutes: the
trade-id sets of venues whose ids are not consecutive fill their hour-long window, see the
README's Reliability):
memory flat, every trade exactly once, every gap recorded, every book back in sync within 5 s
of its fault."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


def test_three_minute_soak(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "soak.py"), "--minutes", "3",
         "--venues", "binance",
         "--data-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=900, cwd=ROOT)
    print(r.stdout)
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    assert r.stdout.rstrip().endswith("PASS")
