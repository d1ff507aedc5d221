"""The lifecycle of carry opportunities: persistence with hysteresis over the gated candidates of
``carry.candidates``, open / update / close events, and notifications.

A candidate (spot leg, derivative leg, notional) *qualifies* at a tick when every gate of
``carry.candidates`` holds (``passes_all``: economics at the entry level, liquidity, open
interest, freshness, expiry, outlier). It OPENS when it qualifies now and qualified at no less
than ``persistence_fraction`` of its ticks over the last ``persistence_window_s`` (and that
window is covered: the candidate has been evaluated for at least that long). An open opportunity
stays open while its net carry is at or above the lower ``exit_ann`` (hysteresis) and its other
gates hold; it CLOSES when the net carry falls below ``exit_ann`` (``below_exit``), when a
non-economic gate has failed for ``close_grace_s`` in a row (``gate:<name>``: a stale book or
a resync does not close it at the first tick), or when the candidate is no longer evaluated at
all for ``close_grace_s`` (``gone``: delisted or expired). When the collector stops cleanly,
every open opportunity closes with reason ``collector stopped`` (``Lifecycle.close_all``): the
lifecycle lives in memory only, and a restarted collector starts afresh, so nothing in the
store would otherwise say that nobody tracks it any more.

After a crash no close is written. A reader then tells a tracked opportunity from an orphan by
the age of its last event: while tracked, an open opportunity has an event at least every
``update_every_s``, except while a non-economic gate fails (at most ``close_grace_s``, then it
closes) and between ticks, so one whose last event is older than ``stale_after_s`` (that bound,
doubled for a slow tick and the store's flush) is shown as ``stale`` with its age, not as open
(``opportunity_status`` in sql/views.sql, ``analyzer opportunities``). The age is taken against
the reader's clock: the newest row the collector wrote would not do, since after a kill -9 it
is as old as the orphan itself.

Times are the evaluation instants (``ts``, local clock), so the same rules apply live and in a
replay of the candidates table.
"""

from __future__ import annotations

import json
import logging
import subprocess
import threading
import urllib.request
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

import polars as pl

log = logging.getLogger(__name__)

KEY = ("base", "spot_venue", "spot_symbol", "venue", "symbol", "notional_usd")
NS = 1_000_000_000
STOPPED = "collector stopped"


def stale_after_s(update_every_s: float, close_grace_s: float, interval_s: float) -> float:
    """How long an open opportunity may go without an event while a collector tracks it (see
    the module docstring); ``interval_s`` is the analytics tick."""
    return 2 * (update_every_s + close_grace_s + interval_s)


@dataclass(slots=True)
class _Track:
    """What the lifecycle remembers of one candidate."""

    samples: deque[tuple[int, bool]] = field(default_factory=deque)  # (ts, qualified)
    qualified: int = 0  # qualified samples in `samples`
    first_ts: int = 0
    last_ts: int = 0
    open: bool = False
    opened_ts: int = 0
    peak: float = 0.0
    total: float = 0.0
    n: int = 0
    failing_since: int | None = None  # a non-economic gate failing since
    last_update_ts: int = 0
    last: dict[str, Any] = field(default_factory=dict)


def pair_label(row: dict[str, Any]) -> str:
    return f"{row['spot_venue']}:{row['spot_symbol']}/{row['venue']}:{row['symbol']}"


class Lifecycle:
    """Feed it every tick's candidates (``update``); it returns the events of that tick."""

    def __init__(self, *, persistence_window_s: float, persistence_fraction: float,
                 exit_ann: float, close_grace_s: float = 30.0, update_every_s: float = 60.0
                 ) -> None:
        self.window_ns = round(persistence_window_s * NS)
        self.fraction = persistence_fraction
        self.exit_ann = exit_ann
        self.grace_ns = round(close_grace_s * NS)
        self.update_ns = round(update_every_s * NS)
        self.tracks: dict[tuple, _Track] = {}
        self.opened_total: Counter[str] = Counter()  # base -> opportunities opened
        self.closed_total: Counter[str] = Counter()  # close reason (gate: folded) -> count

    def open_rows(self) -> list[dict[str, Any]]:
        """The last candidate row of each open opportunity, with its lifecycle figures."""
        return [{**t.last, "opened_ts": t.opened_ts, "peak_net_ann": t.peak,
                 "avg_net_ann": t.total / t.n if t.n else None}
                for t in self.tracks.values() if t.open]

    def close_all(self, ts: int, reason: str = STOPPED) -> list[dict[str, Any]]:
        """Close every open opportunity now (the collector stops)."""
        return [self._close(t, ts, reason) for t in self.tracks.values() if t.open]

    def update(self, candidates: pl.DataFrame, ts: int) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        seen = set()
        for row in candidates.iter_rows(named=True):
            key = tuple(row[k] for k in KEY)
            seen.add(key)
            t = self.tracks.get(key)
            if t is None:
                t = self.tracks[key] = _Track(first_ts=ts)
            events += self._step(t, row, ts)
        for key, t in list(self.tracks.items()):
            if key in seen:
                continue
            if t.open and ts - t.last_ts >= self.grace_ns:
                events.append(self._close(t, ts, "gone"))
            if not t.open and ts - t.last_ts >= self.window_ns:
                del self.tracks[key]  # forgotten: a new listing starts afresh
        return events

    def _step(self, t: _Track, row: dict[str, Any], ts: int) -> list[dict[str, Any]]:
        ok = bool(row["passes_all"])
        t.samples.append((ts, ok))
        t.qualified += ok
        while t.samples and t.samples[0][0] < ts - self.window_ns:
            t.qualified -= t.samples.popleft()[1]
        t.last_ts = ts
        t.last = row
        net = row["net_ann"]
        if not t.open:
            covered = ts - t.first_ts >= self.window_ns
            if ok and covered and t.qualified >= self.fraction * len(t.samples):
                t.open, t.opened_ts, t.peak, t.total, t.n = True, ts, net, 0.0, 0
                t.failing_since = None
                t.last_update_ts = ts
                self.opened_total[row["base"]] += 1
                self._account(t, net)
                return [self._event("open", t, ts)]
            return []
        gate = row["reject_gate"]
        if net is not None and net < self.exit_ann and gate in (None, "economics"):
            return [self._close(t, ts, "below_exit")]
        if gate not in (None, "economics"):
            if t.failing_since is None:
                t.failing_since = ts
            if ts - t.failing_since >= self.grace_ns:
                return [self._close(t, ts, f"gate:{gate}")]
            return []
        t.failing_since = None
        self._account(t, net)
        if ts - t.last_update_ts >= self.update_ns:
            t.last_update_ts = ts
            return [self._event("update", t, ts)]
        return []

    def _account(self, t: _Track, net: float | None) -> None:
        if net is not None:
            t.peak = max(t.peak, net)
            t.total += net
            t.n += 1

    def _close(self, t: _Track, ts: int, reason: str) -> dict[str, Any]:
        ev = self._event("close", t, ts, reason)
        t.open = False
        t.samples.clear()
        t.qualified = 0
        t.first_ts = ts  # re-opening needs a whole new persistence window
        self.closed_total[reason.split(":")[0]] += 1
        return ev

    def _event(self, kind: str, t: _Track, ts: int, reason: str | None = None
               ) -> dict[str, Any]:
        row = t.last
        return {
            "ts": ts, "event": kind, **{k: row[k] for k in KEY},
            "tenor": row["tenor"],
            "pair": pair_label(row), "net_ann": row["net_ann"], "net_usd": row.get("net_usd"),
            "gross": row.get("gross"), "dte_days": row.get("dte_days"),
            "peak_net_ann": t.peak, "avg_net_ann": t.total / t.n if t.n else None,
            "opened_ts": t.opened_ts, "duration_s": (ts - t.opened_ts) / NS,
            "reason": reason,
        }


EVENT_SCHEMA = {
    "ts": pl.Int64, "event": pl.String, "base": pl.String, "spot_venue": pl.String,
    "spot_symbol": pl.String, "venue": pl.String, "symbol": pl.String,
    "notional_usd": pl.Float64, "tenor": pl.String, "pair": pl.String,
    "net_ann": pl.Float64, "net_usd": pl.Float64, "gross": pl.Float64, "dte_days": pl.Float64,
    "peak_net_ann": pl.Float64, "avg_net_ann": pl.Float64, "opened_ts": pl.Int64,
    "duration_s": pl.Float64, "reason": pl.String,
}


def events_frame(events: list[dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame(events, schema=EVENT_SCHEMA)


class Notifier:
    """The analyzer's own notifications, for users without Alertmanager: each open and close
    event POSTed as JSON to ``webhook_url`` and/or given as JSON on the standard input of
    ``command``. Runs off the event loop; a failure is logged and counted, never raised."""

    def __init__(self, webhook_url: str | None, command: list[str] | None,
                 dashboard_url: str) -> None:
        self.webhook_url = webhook_url
        self.command = command
        self.dashboard_url = dashboard_url
        self.sent = 0
        self.failed = 0

    def notify(self, events: list[dict[str, Any]]) -> threading.Thread | None:
        """Send in a new thread, returned (None: nothing to send)."""
        chosen = [e for e in events if e["event"] in ("open", "close")]
        if not chosen or not (self.webhook_url or self.command):
            return None
        thread = threading.Thread(target=self._send, args=(chosen,), daemon=True,
                                  name="notifier")
        thread.start()
        return thread

    def message(self, e: dict[str, Any]) -> dict[str, Any]:
        net = e["net_ann"]
        text = (f"{e['base']} carry {e['pair']} {'OPEN' if e['event'] == 'open' else 'CLOSED'}"
                f": net {net:.2%} a year for {e['notional_usd']:,.0f} USD"
                if net is not None else f"{e['pair']} {e['event']}")
        if e["event"] == "open":
            text += (" (gates passed: economics, persistence, liquidity, open interest, "
                     "freshness, expiry, outlier)")
        else:
            text += f" ({e['reason']}, after {e['duration_s']:.0f} s)"
        return {"text": text, "dashboard": f"{self.dashboard_url}?var-base={e['base']}",
                "event": e}

    def _send(self, events: list[dict[str, Any]]) -> None:
        for e in events:
            body = json.dumps(self.message(e)).encode()
            try:
                if self.webhook_url:
                    req = urllib.request.Request(self.webhook_url, body, method="POST",
                                                 headers={"Content-Type": "application/json"})
                    with urllib.request.urlopen(req, timeout=10):
                        pass
                if self.command:
                    subprocess.run(self.command, input=body, timeout=30, check=True,
                                   capture_output=True)
                self.sent += 1
            except (OSError, subprocess.SubprocessError) as exc:
                self.failed += 1
                log.warning("notification failed (%s): %s", e["pair"], exc)
