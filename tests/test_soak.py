"""The soak's three-minute version (benchmarks/soak.py; the hour-long run is not in CI): the
simulated market at ~20,000 frames/s across every venue, a fault a minute, then its verdict:
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
         "--data-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=900, cwd=ROOT)
    print(r.stdout)
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    assert r.stdout.rstrip().endswith("PASS")
