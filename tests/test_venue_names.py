"""Nothing outside ``analyzer/venues/`` knows a venue: a name found elsewhere fails here.

The venues are plug-ins (``analyzer/venues/base.py``): the collector, transport, books, store,
analytics, simulation and the local exchange reach one only through the registry. The only
files allowed to name one are user-facing defaults, listed below with the reason.
"""

from __future__ import annotations

import re
from pathlib import Path

from analyzer.venues import EXCHANGES

ROOT = Path(__file__).resolve().parents[1] / "analyzer"
# every registered exchange, and the ones announced but not yet registered
NAMES = sorted({*EXCHANGES, "binance", "bybit", "okx", "bingx", "mexc", "weex"})
PATTERN = re.compile("|".join(NAMES), re.IGNORECASE)

# file -> why it may name venues
ALLOWED = {
    "demo.py": "the demo's default venues and the recordings it replays (user-facing defaults)",
    "config.py": "the configuration example in its docstring (user-facing)",
}


def test_no_venue_is_named_outside_the_venue_packages() -> None:
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith("venues/") or rel in ALLOWED:
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if PATTERN.search(line):
                found.append(f"analyzer/{rel}:{n}: {line.strip()}")
    assert not found, "venue names outside analyzer/venues/:\n" + "\n".join(found)


def test_the_allowed_files_exist() -> None:
    """An allowance for a file that is gone would hide nothing, but says something false."""
    assert all((ROOT / rel).is_file() for rel in ALLOWED)
