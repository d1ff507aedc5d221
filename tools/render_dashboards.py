"""Render the main panels of the Grafana dashboards to one PNG, from a running Prometheus.

    python tools/render_dashboards.py --prometheus http://localhost:9090 --out docs/dashboards.png

The same queries and variables as the dashboards (grafana/dashboards/*.json), drawn with
matplotlib, so that a reader sees what the dashboards show without Grafana. The README's picture
comes from ``RENDER_DASHBOARDS=docs/dashboards.png pytest tests/test_prometheus.py``, which runs
this against the test's Prometheus scraping ``analyzer demo``.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import dashboard_queries as dq  # noqa: E402  (after the path it lives on)

# (dashboard, panel title): the panels drawn, in reading order
MAIN_PANELS = [
    ("basis-funding.json", "Annualised basis"),
    ("basis-funding.json", "Funding, annualised"),
    ("basis-funding.json", "Cross-venue basis dispersion"),
    ("liquidity.json", "Bid depth within ±$band bps"),
    ("liquidity.json", "Slippage for $notional USD"),
    ("liquidity.json", "Spread"),
    ("carry.json", "Best net carry by asset and tenor"),
    ("carry.json", "Candidates by rejecting gate"),
    ("feed-health.json", "Messages per second"),
    ("feed-health.json", "Exchange lag p50 / p99"),
]
DASHBOARD_TITLES = {"basis-funding.json": "Basis & funding", "liquidity.json": "Liquidity",
                    "carry.json": "Carry", "feed-health.json": "Feed health"}
SCALE = {"percentunit": (100.0, "%"), "currencyUSD": (1e-6, "million USD"),
         "suffix: bps": (1.0, "bps"), "s": (1.0, "s"), "cps": (1.0, "per second"),
         "none": (1.0, "")}
MAX_LINES = 8


def _panel(dash: dict[str, Any], title: str) -> dict[str, Any]:
    return next(p for p in dq.panels(dash) if p["title"] == title)


def render(base_url: str, out: Path, start: float, end: float, step: float = 2.0) -> list[str]:
    """Draw MAIN_PANELS over [start, end]; returns the panels that had no data."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    dashboards = dq.load_all()
    values: dict[str, dict[str, str] | None] = {}
    for name, d in dashboards.items():
        try:
            values[name] = dq.resolve_variables(d, dq.prom_lookup(base_url))
        except LookupError:  # a variable with no values: its panels have no data
            values[name] = None
    cols = 2
    rows = -(-len(MAIN_PANELS) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(15, 3.3 * rows), squeeze=False)
    empty = []
    for ax, (name, title) in zip(axes.flat, MAIN_PANELS, strict=False):
        panel = _panel(dashboards[name], title)
        unit = panel["fieldConfig"]["defaults"]["unit"]
        factor, label = SCALE.get(unit, (1.0, unit))
        lines = 0
        for target in panel["targets"] if values[name] is not None else []:
            expr = dq.substitute(target["expr"], values[name])
            result = dq.prom_api(base_url, "query_range", query=expr, start=start, end=end,
                                 step=step)["result"]
            result.sort(key=lambda s: -abs(float(s["values"][-1][1])) if s["values"] else 0)
            for series in result[: MAX_LINES - lines]:
                ts = [datetime.fromtimestamp(t, tz=UTC) for t, _ in series["values"]]
                ys = [float(v) * factor for _, v in series["values"]]
                ax.plot(ts, ys, linewidth=1.2,
                        label=dq.legend(target.get("legendFormat", ""), series["metric"]))
                lines += 1
        shown_title = (dq.substitute(title, values[name]) if values[name] else title)
        ax.set_title(f"{DASHBOARD_TITLES[name]}: {shown_title}", fontsize=10, loc="left")
        ax.set_ylabel(label, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S"))
        if lines:
            ax.legend(fontsize=6.5, loc="upper left", ncol=2, framealpha=0.6)
        else:
            empty.append(f"{name} / {title}")
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    for ax in list(axes.flat)[len(MAIN_PANELS):]:
        ax.set_visible(False)
    fig.suptitle("analyzer demo (simulated market: calm contango, then steep), as the Grafana "
                 "dashboards show it", fontsize=12)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return empty


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--prometheus", default="http://localhost:9090")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "dashboards.png")
    p.add_argument("--minutes", type=float, default=15, help="time range to draw")
    args = p.parse_args()
    end = time.time()
    empty = render(args.prometheus, args.out, end - args.minutes * 60, end)
    print(f"wrote {args.out}" + (f"; no data: {', '.join(empty)}" if empty else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
