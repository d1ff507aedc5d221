"""The Grafana dashboards, written as Python and generated to ``grafana/dashboards/*.json``.

    python tools/dashboards.py            # regenerate the JSON
    python tools/dashboards.py --check    # exit 1 if the JSON is not what this file generates

Grafana reads the JSON (provisioned by ``grafana/provisioning/dashboards/analyzer.yml``); this
file is the source, so that a panel is a few lines that say what it shows and a query, and the
repetitive JSON (grid positions, ids, datasource references, legends) is right by construction.
``tests/test_dashboards.py`` checks the JSON offline and that it matches this file;
``tests/test_prometheus.py`` runs every query against a real Prometheus scraping the demo.

Conventions: every query uses only series the analyzer exports (and Prometheus's own ``ALERTS``
and ``up`` about it); fractions are shown with Grafana's ``percentunit`` (0.05 = 5%); basis
points with a ``bps`` suffix (Grafana's own ``bps`` unit is bits per second).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "grafana" / "dashboards"
DS = {"type": "prometheus", "uid": "prometheus"}  # grafana/provisioning/datasources
SCHEMA_VERSION = 39  # Grafana 10.4 / 11
BPS = "suffix: bps"
PCT = "percentunit"
USD = "currencyUSD"


@dataclass
class Panel:
    title: str
    description: str
    unit: str
    targets: list[tuple[str, str]]  # (expr, legend)
    type: str = "timeseries"
    w: int = 12
    h: int = 8
    instant: bool = False
    table: bool = False
    extra: dict[str, Any] = field(default_factory=dict)  # merged into fieldConfig.defaults
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Row:
    title: str


def query_var(name: str, label: str, definition: str, *, multi: bool = False,
              default: str | None = None) -> dict[str, Any]:
    """A variable filled from Prometheus: ``label_values(series, label)``."""
    current = ({"selected": True, "text": default, "value": default} if default else {})
    if multi:
        current = {"selected": True, "text": ["All"], "value": ["$__all"]}
    return {
        "name": name, "label": label, "type": "query", "datasource": DS,
        "definition": definition, "query": {"query": definition, "refId": f"var-{name}"},
        "refresh": 2, "sort": 3 if name in ("notional", "band") else 1,
        "multi": multi, "includeAll": multi, "current": current, "options": [], "hide": 0,
        "regex": "", "skipUrlSync": False,
    }


def custom_var(name: str, label: str, values: list[str]) -> dict[str, Any]:
    options = [{"selected": i == 0, "text": v, "value": v} for i, v in enumerate(values)]
    return {
        "name": name, "label": label, "type": "custom", "query": ",".join(values),
        "multi": False, "includeAll": False, "current": {**options[0]}, "options": options,
        "hide": 0, "skipUrlSync": False,
    }


def _panel_json(p: Panel, pid: int, x: int, y: int) -> dict[str, Any]:
    targets = []
    for i, (expr, legend) in enumerate(p.targets):
        t: dict[str, Any] = {"datasource": DS, "refId": chr(ord("A") + i), "expr": expr,
                             "legendFormat": legend, "range": not p.instant,
                             "instant": p.instant}
        if p.table:
            t["format"] = "table"
        targets.append(t)
    defaults: dict[str, Any] = {"unit": p.unit, **p.extra}
    options: dict[str, Any] = {}
    if p.type == "timeseries":
        defaults.setdefault("custom", {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 0,
                                       "showPoints": "never", "spanNulls": False})
        options = {"legend": {"displayMode": "table", "placement": "right",
                              "showLegend": True, "calcs": ["lastNotNull"]},
                   "tooltip": {"mode": "multi", "sort": "desc"}}
    elif p.type == "bargauge":
        options = {"orientation": "horizontal", "displayMode": "gradient", "showUnfilled": True,
                   "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}}
    elif p.type == "stat":
        options = {"colorMode": "value", "graphMode": "area", "textMode": "value_and_name",
                   "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}}
    elif p.type == "state-timeline":
        options = {"showValue": "never", "mergeValues": True, "rowHeight": 0.8,
                   "legend": {"displayMode": "list", "placement": "bottom",
                              "showLegend": False}}
    elif p.type == "table":
        options = {"showHeader": True, "cellHeight": "sm"}
    options.update(p.options)
    panel: dict[str, Any] = {
        "id": pid, "type": p.type, "title": p.title, "description": p.description,
        "datasource": DS, "gridPos": {"h": p.h, "w": p.w, "x": x, "y": y},
        "targets": targets, "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options,
    }
    if p.table:
        panel["transformations"] = [{"id": "organize", "options": {
            "excludeByName": {"Time": True, "__name__": True, "job": True, "instance": True}}}]
    return panel


def dashboard(uid: str, title: str, description: str, tags: list[str],
              variables: list[dict[str, Any]], items: list[Panel | Row],
              annotations: list[dict[str, Any]] = (), links: list[dict[str, Any]] = ()
              ) -> dict[str, Any]:
    panels: list[dict[str, Any]] = []
    x = y = row_h = 0
    pid = 1
    for item in items:
        if isinstance(item, Row):
            if x:
                y += row_h
            x, row_h = 0, 0
            panels.append({"id": pid, "type": "row", "title": item.title, "collapsed": False,
                           "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []})
            y += 1
        else:
            if x + item.w > 24:
                x, y, row_h = 0, y + row_h, 0
            panels.append(_panel_json(item, pid, x, y))
            x += item.w
            row_h = max(row_h, item.h)
        pid += 1
    builtin = {"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
               "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
               "name": "Annotations & Alerts", "type": "dashboard"}
    return {
        "uid": uid, "title": title, "description": description, "tags": ["analyzer", *tags],
        "editable": True, "graphTooltip": 1, "timezone": "utc", "refresh": "10s",
        "time": {"from": "now-1h", "to": "now"}, "schemaVersion": SCHEMA_VERSION,
        "version": 1, "fiscalYearStartMonth": 0, "liveNow": False, "weekStart": "",
        "links": [{"title": "Analyzer dashboards", "type": "dashboards", "tags": ["analyzer"],
                   "asDropdown": True, "includeVars": False, "keepTime": True}, *links],
        "annotations": {"list": [builtin, *annotations]},
        "templating": {"list": variables},
        "panels": panels,
    }


# ---------------------------------------------------------------------------------------------
# Trend regime (analyzer/analytics/trend.py)

def trend_panels(selector: str) -> list[Panel | Row]:
    """The trend regime of every instrument the label ``selector`` picks (``base="$base"``):
    spot included, so not filtered by the derivatives' venue variable."""
    regimes = {"1": {"text": "up", "color": "green", "index": 0},
               "0": {"text": "none", "color": "text", "index": 1},
               "-1": {"text": "down", "color": "red", "index": 2}}
    return [
        Row("Trend regime"),
        Panel("Trend regime", (
            "Per instrument, over its closed bars of the interval shown: up while the fast simple "
            "moving average of the closes is above the slow one, down while below, none until "
            "the slow one has its bars. Changes at a bar's close; the TrendRegimeFlip alert "
            "fires on each change. `analyzer trend` shows the averages and the bar of the "
            "last cross."), "none",
            [(f"analyzer_trend_regime{{{selector}}}", "{{venue}} {{symbol}} {{interval}}")],
            type="state-timeline",
            extra={"mappings": [{"type": "value", "options": regimes}],
                   "color": {"mode": "fixed", "fixedColor": "text"}}),
        Panel("Fast and slow moving averages", (
            "The two simple moving averages of the closes of the last closed bars (lengths in "
            "[trend] fast and slow), per instrument, in its quote currency: where they cross, "
            "the regime flips."), USD,
            [(f"analyzer_trend_ma{{{selector}}}", "{{venue}} {{symbol}} {{ma}} ({{interval}})")]),
    ]


# ---------------------------------------------------------------------------------------------
# Basis & funding

def basis_funding() -> dict[str, Any]:
    b = 'base="$base"'
    bv = 'base="$base", venue=~"$venue"'
    variables = [
        query_var("base", "Asset", "label_values(analyzer_basis_valid, base)", default="BTC"),
        query_var("venue", "Venue", 'label_values(analyzer_basis_valid{base="$base"}, venue)',
                  multi=True),
        custom_var("reference", "Basis against", ["spot", "index"]),
    ]
    anomalies = {
        "name": "Anomalies", "datasource": DS, "enable": True, "hide": False,
        "iconColor": "orange", "step": "1m",
        "expr": f"sum by (venue, tenor, metric, reason) "
                f"(increase(analyzer_anomalies_total{{{b}}}[1m])) > 0",
        "titleFormat": "Anomaly: {{venue}} {{tenor}} {{metric}}",
        "textFormat": "{{reason}}: flagged as an anomaly (not an opportunity)",
        "tagKeys": "venue,tenor,metric,reason", "useValueForTime": False,
    }
    items: list[Panel | Row] = [
        Row("Term structure"),
        Panel("Annualised basis by tenor", (
            "Term structure now: each dated future's basis (F - ref) / ref against $reference, "
            "simple annualised by the exact time to expiry, per venue. Only contracts whose "
            "legs are in sync and fresh are shown."),
            PCT, [(f'analyzer_basis_annualized{{{bv}, reference="$reference"}}',
                   "{{venue}} {{tenor}}")], type="bargauge", w=8, instant=True),
        Panel("Days to expiry", "Days from now to each dated future's expiry (tenor q1 is the "
              "nearest quarterly).", "d",
              [(f"analyzer_days_to_expiry{{{bv}}}", "{{venue}} {{tenor}}")],
              type="bargauge", w=8, instant=True, extra={"decimals": 1}),
        Panel("Constant-maturity basis", (
            "Annualised basis interpolated linearly in time to expiry between the two "
            "quarterlies that bracket each maturity (days), per venue: comparable across "
            "days, unlike a contract whose maturity shrinks."), PCT,
            [(f"analyzer_constant_maturity_basis_annualized{{{bv}}}",
              "{{venue}} {{days}} d")], type="bargauge", w=8, instant=True),
        Row("Basis over time"),
        Panel("Annualised basis", "Each dated future's basis against $reference, simple "
              "annualised, over time. Anomalies appear as annotations.", PCT,
              [(f'analyzer_basis_annualized{{{bv}, reference="$reference"}}',
                "{{venue}} {{tenor}}")]),
        Panel("Basis (not annualised)", "(F - ref) / ref of each dated future: converges to 0 "
              "at expiry.", PCT,
              [(f'analyzer_basis{{{bv}, reference="$reference"}}', "{{venue}} {{tenor}}")]),
        Panel("Perpetual premium", "(perpetual mid, else mark, - $reference) / $reference: what "
              "funding follows.", PCT,
              [(f'analyzer_perp_premium{{{bv}, reference="$reference"}}', "{{venue}}")]),
        Panel("Constant-maturity basis over time", "Interpolated annualised basis at fixed "
              "maturities (days), per venue.", PCT,
              [(f"analyzer_constant_maturity_basis_annualized{{{bv}}}", "{{venue}} {{days}} d")]),
        Panel("Tradable basis by notional", (
            "Gross cash-and-carry, annualised: sell the future at its bid VWAP and buy spot at "
            "its ask VWAP for each USD notional. Missing where a book cannot fill the "
            "notional. Before fees and financing (the Carry dashboard nets them)."), PCT,
            [(f"analyzer_tradable_basis_annualized{{{bv}}}",
              "{{venue}} {{tenor}} {{notional_usd}} USD")], w=24),
        Row("Funding"),
        Panel("Funding, annualised", "Each perpetual's funding rate annualised by its own "
              "interval: rate * 24 / hours * 365. Positive: longs pay shorts.", PCT,
              [(f"analyzer_funding_rate_annualized{{{bv}}}", "{{venue}}")]),
        Panel("OI-weighted funding", "Funding across venues weighted by each perpetual's open "
              "interest, annualised: what the market as a whole pays.", PCT,
              [(f"analyzer_funding_oi_weighted_annualized{{{b}}}", "OI-weighted")]),
        Panel("Funding rate per interval", "The rate paid each funding interval, as the venue "
              "publishes it.", PCT,
              [(f"analyzer_funding_rate{{{bv}}}", "{{venue}}")], type="stat", w=8,
              extra={"decimals": 4}),
        Panel("Funding interval", "Hours between funding settlements: venues and contracts "
              "differ (1, 4, 8 h) and change it.", "h",
              [(f"analyzer_funding_interval_hours{{{bv}}}", "{{venue}}")], type="stat", w=8),
        Panel("Legs in sync and fresh", "1 where both legs of a basis (the contract and its "
              "reference) were in sync and fresh at the last analytics tick; 0 hides its "
              "basis.", "bool_yes_no",
              [(f"analyzer_basis_valid{{{bv}}}", "{{venue}} {{tenor}}")], type="stat", w=8),
        Row("Across venues"),
        Panel("Cross-venue basis dispersion", "Across venues, per tenor: max - min (range) and "
              "standard deviation of the annualised basis. Wide: one venue is out of line.",
              PCT, [(f"analyzer_basis_dispersion_annualized{{{b}}}", "{{tenor}} {{stat}}")]),
        Panel("Open interest", "Open interest in USD per venue and tenor, and summed across "
              "venues.", USD,
              [(f"analyzer_open_interest_usd{{{bv}}}", "{{venue}} {{tenor}}"),
               (f"analyzer_open_interest_aggregated_usd{{{b}}}", "all venues {{tenor}}")]),
        Panel("Anomalies flagged", (
            "Samples flagged as anomalies in the last 10 minutes (far from the venue's own "
            "history or from the cross-venue median), and samples not scored because a leg "
            "was stale, out of sync or missing. Zero when none."), "short",
            [(f"sum by (venue, tenor, metric, reason) "
              f"(increase(analyzer_anomalies_total{{{b}}}[10m])) "
              f"or sum by (venue) (analyzer_basis_valid{{{b}}}) * 0", "{{venue}} {{tenor}} "
              "{{metric}} {{reason}}"),
             ("sum by (reason) (increase(analyzer_anomalies_suppressed_total[10m])) "
              "or vector(0)", "not scored: {{reason}}")], w=24),
        *trend_panels(b),
    ]
    return dashboard("analyzer-basis", "Basis & funding", (
        "Term structure, basis, perpetual premium and funding of one asset across venues, and "
        "the trend regime of its instruments"),
        ["basis", "funding"], variables, items, annotations=[anomalies])


# ---------------------------------------------------------------------------------------------
# Liquidity

def liquidity() -> dict[str, Any]:
    s = 'venue=~"$venue", symbol=~"$symbol"'
    variables = [
        query_var("base", "Asset", "label_values(analyzer_basis_valid, base)", default="BTC"),
        query_var("venue", "Venue", "label_values(analyzer_book_depth_usd, venue)", multi=True),
        query_var("symbol", "Instrument",
                  'label_values(analyzer_book_depth_usd{venue=~"$venue", symbol=~"$base.*"}, '
                  'symbol)', multi=True),
        query_var("band", "Band (± bps)", "label_values(analyzer_book_depth_usd, band_bps)",
                  default="50"),
        query_var("notional", "Notional (USD)",
                  "label_values(analyzer_slippage_bps, notional_usd)", default="100000"),
    ]
    items: list[Panel | Row] = [
        Row("Depth"),
        Panel("Bid depth within ±$band bps", "USD resting on the bid side within $band bps "
              "of the mid, per instrument.", USD,
              [(f'analyzer_book_depth_usd{{{s}, band_bps="$band", side="bid"}}',
                "{{venue}} {{symbol}}")]),
        Panel("Ask depth within ±$band bps", "USD resting on the ask side within $band bps "
              "of the mid, per instrument.", USD,
              [(f'analyzer_book_depth_usd{{{s}, band_bps="$band", side="ask"}}',
                "{{venue}} {{symbol}}")]),
        Panel("Depth by band now", "USD within each band around the mid, per side: how the "
              "book thickens away from the mid.", USD,
              [(f"analyzer_book_depth_usd{{{s}}}", "{{symbol}} ±{{band_bps}} {{side}}")],
              type="bargauge", w=24, h=10, instant=True),
        Row("Cost of trading"),
        Panel("Slippage for $notional USD", "Distance of a market order's VWAP from the mid for "
              "$notional USD (buy walks the asks, sell the bids). Missing when the visible "
              "book cannot fill it.", BPS,
              [(f'analyzer_slippage_bps{{{s}, notional_usd="$notional"}}',
                "{{venue}} {{symbol}} {{side}}")]),
        Panel("Slippage by notional now", "Slippage of a market order for each configured "
              "notional, per side: the cost curve of size.", BPS,
              [(f"analyzer_slippage_bps{{{s}}}", "{{symbol}} {{notional_usd}} USD {{side}}")],
              type="bargauge", instant=True),
        Panel("Spread", "Best ask minus best bid over the mid, of the rebuilt book.", BPS,
              [(f"analyzer_spread_bps{{{s}}}", "{{venue}} {{symbol}}")]),
        Panel("Book imbalance", "(bid size - ask size) / (bid size + ask size) over the top "
              "levels: +1 all bids, -1 all asks.", "none",
              [(f"analyzer_book_imbalance{{{s}}}", "{{venue}} {{symbol}}")],
              extra={"min": -1, "max": 1}),
        Panel("Microprice minus mid", "Size-weighted mid of the best levels relative to the "
              "mid: where the next trade is likelier to print.", BPS,
              [(f"1e4 * (analyzer_microprice{{{s}}} - analyzer_mid_price{{{s}}}) "
                f"/ analyzer_mid_price{{{s}}}", "{{venue}} {{symbol}}")]),
        Panel("Mid price", "(best bid + best ask) / 2 of each rebuilt book, in the quote "
              "currency (USD or USDT).", USD,
              [(f"analyzer_mid_price{{{s}}}", "{{venue}} {{symbol}}")]),
    ]
    return dashboard("analyzer-liquidity", "Liquidity", (
        "Depth within bands, slippage by notional, spread and imbalance of each order book"),
        ["liquidity"], variables, items)


# ---------------------------------------------------------------------------------------------
# Carry

def carry() -> dict[str, Any]:
    b = 'base=~"$base"'
    variables = [
        query_var("base", "Asset", "label_values(analyzer_opportunities_open, base)",
                  multi=True),
    ]
    items: list[Panel | Row] = [
        Panel("Open opportunities", "Cash-and-carry opportunities open now (every gate passed, "
              "persistent): 0 when none.", "none",
              [(f"sum by (base) (analyzer_opportunities_open{{{b}}})", "{{base}}")],
              type="stat", w=6, h=6),
        Panel("Opened in the last 24 h", "Opportunities opened over the last 24 hours.",
              "none",
              [(f"sum by (base) (increase(analyzer_opportunities_opened_total{{{b}}}[24h])) "
                f"or sum by (base) (analyzer_opportunities_open{{{b}}}) * 0", "{{base}}")],
              type="stat", w=6, h=6),
        Panel("Best net carry now", "Best net annualised carry among the candidates of each "
              "asset and tenor, after fees, settlement, slippage and financing, whatever the "
              "gates say.", PCT,
              [(f"analyzer_carry_best_net_annualized{{{b}}}", "{{base}} {{tenor}}")],
              type="bargauge", w=12, h=6, instant=True),
        Panel("Open opportunities", "Each open opportunity: long the spot leg, short the "
              "future; net annualised carry at its notional.", PCT,
              [(f"analyzer_opportunity_net_annualized{{{b}}}", "")],
              type="table", w=24, h=7, instant=True, table=True),
        Panel("Best net carry by asset and tenor", "Best net annualised carry among the "
              "candidates, over time: how close the market is to an opportunity.", PCT,
              [(f"analyzer_carry_best_net_annualized{{{b}}}", "{{base}} {{tenor}}")]),
        Panel("Net carry of open opportunities", "Net annualised carry of each open "
              "opportunity while it stays open.", PCT,
              [(f"analyzer_opportunity_net_annualized{{{b}}}",
                "{{pair}} {{notional_usd}} USD")]),
        Panel("Candidates by rejecting gate", (
            "Candidates at the last analytics tick, by the gate that rejected them (economics, "
            "persistence, liquidity, open interest, freshness, expiry, outlier); none = passed "
            "every gate. Why nothing alerted."), "none",
            [(f"sum by (gate) (analyzer_carry_candidates{{{b}}})", "{{gate}}")],
            extra={"custom": {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 60,
                              "stacking": {"mode": "normal", "group": "A"},
                              "showPoints": "never"}}),
        Panel("Notifications", "Opportunity notifications the analyzer itself sent (its "
              "[alerts] webhook or command) over the last 24 hours, and those that failed.",
              "none",
              [("sum by (result) (increase(analyzer_notifications_total[24h]))", "{{result}}")],
              type="stat", w=6),
        Panel("CarryOpportunity alert", (
            "State of Prometheus's CarryOpportunity alert (prometheus/rules.yml) per pair and "
            "notional: pending until it has held for 2 minutes, then firing."), "none",
            [(f'ALERTS{{alertname="CarryOpportunity", {b}}}',
              "{{alertstate}} {{pair}} {{notional_usd}} USD")], type="state-timeline",
            extra={"mappings": [{"type": "value", "options": {"1": {"text": "active"}}}],
                   "color": {"mode": "fixed", "fixedColor": "orange"}}),
    ]
    return dashboard("analyzer-carry", "Carry", (
        "Cash-and-carry opportunities: open ones, best net carry, why candidates are rejected, "
        "alert state"), ["carry"], variables, items)


# ---------------------------------------------------------------------------------------------
# Feed health

def feed_health() -> dict[str, Any]:
    v = 'venue=~"$venue"'
    vc = 'venue=~"$venue", channel=~"$channel"'
    ri = "$__rate_interval"
    variables = [
        query_var("venue", "Venue", "label_values(analyzer_frames_total, venue)", multi=True),
        query_var("channel", "Channel",
                  'label_values(analyzer_frames_total{venue=~"$venue"}, channel)', multi=True),
    ]
    items: list[Panel | Row] = [
        Row("Flow"),
        Panel("Messages per second", "Frames received per second, by venue and channel.",
              "cps", [(f"sum by (venue, channel) (rate(analyzer_frames_total{{{vc}}}[{ri}]))",
                       "{{venue}} {{channel}}")]),
        Panel("Seconds since last message", "Age of the newest frame per venue and channel: a "
              "quiet depth or bookTicker stream means stale books (FeedStale alert at 30 s).",
              "s", [(f"analyzer_last_message_age_seconds{{{vc}}}", "{{venue}} {{channel}}")]),
        Panel("Exchange lag p50 / p99", "Local receive time minus the venue's event time, "
              "quantiles over the interval (clock offset included).", "s",
              [(f"histogram_quantile(0.5, sum by (venue, channel, le) "
                f"(rate(analyzer_exchange_lag_seconds_bucket{{{vc}}}[{ri}])))",
                "p50 {{venue}} {{channel}}"),
               (f"histogram_quantile(0.99, sum by (venue, channel, le) "
                f"(rate(analyzer_exchange_lag_seconds_bucket{{{vc}}}[{ri}])))",
                "p99 {{venue}} {{channel}}")]),
        Panel("Connections up", "Open websocket connections per venue.", "none",
              [(f"analyzer_connections_up{{{v}}}", "{{venue}}")]),
        Row("Integrity"),
        Panel("Books in sync", "Order books in sync with the venue out of those followed; a "
              "book out of sync is resyncing and its analytics are withheld.", "none",
              [(f"sum by (venue) (analyzer_book_in_sync{{{v}}})", "{{venue}} in sync"),
               (f"count by (venue) (analyzer_book_in_sync{{{v}}})", "{{venue}} followed")]),
        Panel("Book gaps", "Books invalidated per interval, by reason: a sequence gap, a "
              "crossed book, or a mismatch with the venue's own best bid/ask.", "short",
              [(f"sum by (venue, reason) (increase(analyzer_book_gaps_total{{{v}}}[{ri}]))",
                "{{venue}} {{reason}}")]),
        Panel("Resyncs", "Book resyncs (snapshot fetched again) per interval.", "short",
              [(f"sum by (venue) (increase(analyzer_book_resyncs_total{{{v}}}[{ri}]))",
                "{{venue}}")]),
        Panel("Reconnects", "Connection endings per interval by reason (close code, stall, "
              "rotation, error); 0 when none.", "short",
              [(f"sum by (venue, reason) (increase(analyzer_reconnects_total{{{v}}}[{ri}])) "
                f"or sum by (venue) (analyzer_connections_up{{{v}}}) * 0",
                "{{venue}} {{reason}}")]),
        Panel("Decode errors and unknown frames", "Frames that failed to decode (counted, "
              "skipped, the stream goes on) and frames of no known stream, per interval.",
              "short",
              [(f"sum by (venue, channel) (increase(analyzer_decode_errors_total{{{vc}}}[{ri}]))",
                "decode {{venue}} {{channel}}"),
               (f"sum by (venue) (increase(analyzer_unknown_frames_total{{{v}}}[{ri}]))",
                "unknown {{venue}}"),
               (f"sum by (venue) (increase(analyzer_venue_errors_total{{{v}}}[{ri}]))",
                "venue error {{venue}}")]),
        Panel("Checksums, gap fills and rule cases", "Per interval: venue checksums verified on "
              "the rebuilt books by result (a mismatch resyncs the book); gaps mended from the "
              "venue's latest changes, or not (a snapshot followed); and the cases a venue's book "
              "rule lets through that its docs leave open (e.g. an id skipping forward), so that "
              "live traffic shows how often each happens.", "short",
              [(f"sum by (venue, result) (increase(analyzer_book_checksums_total{{{v}}}[{ri}]))",
                "checksum {{venue}} {{result}}"),
               (f"sum by (venue, result) (increase(analyzer_book_gap_fills_total{{{v}}}[{ri}]))",
                "gap fill {{venue}} {{result}}"),
               (f"sum by (venue, case) (increase(analyzer_book_rule_cases_total{{{v}}}[{ri}]))",
                "rule {{venue}} {{case}}")]),
        Panel("Best bid/ask cross-checks", "bookTickers compared with the rebuilt book per "
              "second, by result: any mismatch is a bug or a lost update.", "cps",
              [(f"sum by (venue, result) (rate(analyzer_bbo_checks_total{{{v}}}[{ri}]))",
                "{{venue}} {{result}}")]),
        Row("REST and storage"),
        Panel("REST queue depth", "Requests waiting in each venue's rate-limited REST queue.",
              "none", [(f"analyzer_queue_depth{{{v}}}", "{{venue}} {{queue}}")]),
        Panel("REST requests", "REST requests per second by HTTP status, and answers 429/418 "
              "(throttled).", "reqps",
              [(f"sum by (venue, status) (rate(analyzer_rest_requests_total{{{v}}}[{ri}]))",
                "{{venue}} {{status}}"),
               (f"sum by (venue) (rate(analyzer_rest_throttled_total{{{v}}}[{ri}]))",
                "{{venue}} throttled")]),
        Panel("Write throughput", "Rows written to the store per second, by table.", "cps",
              [(f"sum by (table) (rate(analyzer_rows_written_total[{ri}]))", "{{table}}")]),
        Panel("Flush duration", "Duration of the store's last flush, and of the last "
              "analytics tick.", "s",
              [("analyzer_last_flush_duration_seconds", "last flush"),
               ("analyzer_analytics_tick_seconds", "analytics tick")]),
        Panel("Store and analytics errors", "Store write errors and failed analytics ticks "
              "per interval: both should stay 0.", "short",
              [(f"increase(analyzer_store_write_errors_total[{ri}])", "store write errors"),
               (f"increase(analyzer_analytics_errors_total[{ri}])", "analytics errors")]),
        Row("Losses"),
        Panel("Data lost", "What was counted as lost per interval (each has an alert): store rows "
              "dropped by table (a writer far behind, over the retry cap), raw-capture bytes shed, "
              "REST requests refused by a full queue, frames whose handling failed, book buffer "
              "overflows. All should stay 0.", "short",
              [(f"sum by (table) (increase(analyzer_store_rows_dropped_total[{ri}]))",
                "store rows {{table}}"),
               (f"sum by (venue) (increase(analyzer_raw_capture_bytes_dropped_total{{{v}}}"
                f"[{ri}]))", "raw capture bytes {{venue}}"),
               (f"sum by (venue) (increase(analyzer_rest_rejected_total{{{v}}}[{ri}]))",
                "REST refused {{venue}}"),
               (f"sum by (venue) (increase(analyzer_frame_handler_errors_total{{{v}}}[{ri}]))",
                "handler errors {{venue}}"),
               (f"sum by (venue) (increase(analyzer_book_buffer_overflows_total{{{v}}}[{ri}]))",
                "book buffer overflows {{venue}}")]),
        Panel("Store health", "1 while the store writes (0: a failed write waits for its retry; "
              "StoreWritesFailing), rows held for room in the writer's queue (StoreBehind: the "
              "disk is slower than the market) and rows of failed writes held for retry.",
              "short",
              [("analyzer_store_up", "store up"),
               ("analyzer_store_rows_held", "rows held"),
               ("analyzer_store_rows_pending_retry", "rows pending retry")]),
        Panel("REST bans", "418/403 answers per interval: the venue banned this IP for a while "
              "(RestBanned); the queue pauses with its own backoff.", "short",
              [(f"sum by (venue) (increase(analyzer_rest_bans_total{{{v}}}[{ri}]))",
                "{{venue}}")]),
        Panel("Clock: last lag, signed", "The last frame's local receipt minus the venue's event "
              "time: below 0 our clock is behind the venue's (ClockBehindVenue at -0.5 s).",
              "s", [(f"analyzer_exchange_lag_last_seconds{{{vc}}}", "{{venue}} {{channel}}")]),
        Panel("Analyzer up", "1 while Prometheus scrapes the analyzer (AnalyzerDown alert "
              "after a minute at 0).", "bool_yes_no",
              [('up{job="analyzer"}', "{{instance}}")], type="stat"),
    ]
    return dashboard("analyzer-feed", "Feed health", (
        "Messages, staleness, lag, gaps, resyncs, reconnects, decode errors, queues and writes "
        "by venue and channel"), ["feed"], variables, items)


# ---------------------------------------------------------------------------------------------
# Investor (analyzer/portfolio/live.py: the [portfolio] file, valued live)

def investor() -> dict[str, Any]:
    pos = 'venue=~"$venue"'
    variables = [
        query_var("venue", "Venue", "label_values(analyzer_portfolio_margin_ratio, venue)",
                  multi=True),
        query_var("asset", "Asset", "label_values(analyzer_portfolio_net_exposure_usd, asset)",
                  multi=True),
    ]
    items: list[Panel | Row] = [
        Panel("Equity, spot and net exposure", (
            "The watched portfolio in USD: equity (spot, cash, margins and unrealised P&L), "
            "spot value (holdings and coin collateral), the futures' notional (negative: "
            "short) and the net exposure (spot plus the futures' exposure)."), USD,
            [("analyzer_portfolio_value_usd", "{{kind}}")], type="stat", w=12, h=6,
            instant=True),
        Panel("Inside its profile", (
            "1 while the portfolio's spot share and net futures exposure are inside the ranges "
            "of the allocation profile it chose; the PortfolioOutsideProfile alert fires after "
            "15 minutes outside."), "none",
            [("analyzer_portfolio_inside_profile", "{{profile}}")], type="state-timeline",
            w=12, h=6,
            extra={"mappings": [{"type": "value", "options": {
                "1": {"text": "inside", "color": "green", "index": 0},
                "0": {"text": "outside", "color": "orange", "index": 1}}}],
                "color": {"mode": "fixed", "fixedColor": "text"}}),
        Row("Positions"),
        Panel("Distance to liquidation", (
            "Per position, its liquidation price's distance from the mark (positive: above, a "
            "short's; negative: below, a long's), from the venue's maintenance-margin tiers. "
            "LiquidationNear fires within 10 %. A position without one (a short backed by the "
            "coin it hedges) has no series."), PCT,
            [(f"analyzer_portfolio_liquidation_distance{{{pos}}}",
              "{{venue}} {{symbol}} {{side}}")]),
        Panel("Margin ratio", (
            "Maintenance margin / equity per position (1: liquidated); cross positions share "
            "their venue's collateral."), PCT,
            [(f"analyzer_portfolio_margin_ratio{{{pos}}}", "{{venue}} {{symbol}} {{side}}")]),
        Panel("Funding a day", (
            "USD a position receives a day in funding (negative: it pays), at the current "
            "predicted rate and at the 7-day realised mean."), USD,
            [(f"analyzer_portfolio_funding_usd_per_day{{{pos}}}",
              "{{venue}} {{symbol}} {{side}} {{rate}}")]),
        Panel("Funding, annualised", (
            "Funding a position receives a year at the current rate, a fraction of its notional "
            "(negative: a cost). HedgeFundingTurnedCost fires when a hedge that earned within a "
            "day costs more than 5 % a year for 15 minutes."), PCT,
            [(f"analyzer_portfolio_funding_annualized{{{pos}}}",
              "{{venue}} {{symbol}} {{side}}")]),
        Row("Allocation"),
        Panel("Spot share and net futures exposure", (
            "spot_share: spot value / equity; net_futures: the futures' exposure / spot value "
            "(0 unhedged, -1 fully hedged). The chosen profile's ranges: analyzer/portfolio/"
            "profiles.py and the portfolio file."), "percentunit",
            [("analyzer_portfolio_allocation", "{{kind}} ({{profile}})")]),
        Panel("Net exposure by asset", (
            "Spot value plus the futures' exposure, per asset, in USD: what a move of the asset "
            "does to the portfolio."), USD,
            [('analyzer_portfolio_net_exposure_usd{asset=~"$asset"}', "{{asset}}")]),
        Panel("What brings it inside its profile", (
            "Futures exposure and spot (USD) to add to reach the nearest edge of the profile's "
            "ranges (negative: short more, sell spot); 0 inside."), USD,
            [("analyzer_portfolio_profile_move_usd", "{{kind}} ({{profile}})")]),
        Panel("Valuations", (
            "When the portfolio was last valued, and valuations refused since start by reason "
            "(a stale price, an instrument not collected): its gauges are left out then."),
            "none",
            [("time() - analyzer_portfolio_last_refresh_timestamp_seconds", "seconds since")],
            type="stat", w=12, h=6, instant=True),
        *trend_panels('base=~"$asset"'),
    ]
    return dashboard("analyzer-investor", "Investor", (
        "The watched portfolio: equity and exposure, distance to liquidation, margin, funding "
        "earned or paid, allocation against its profile, the trend regime of its assets"),
        ["portfolio"], variables, items)


DASHBOARDS = {
    "basis-funding.json": basis_funding,
    "liquidity.json": liquidity,
    "carry.json": carry,
    "feed-health.json": feed_health,
    "investor.json": investor,
}


def render() -> dict[str, str]:
    return {name: json.dumps(build(), indent=2, ensure_ascii=False) + "\n"
            for name, build in DASHBOARDS.items()}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--check", action="store_true", help="fail if the JSON is out of date")
    args = p.parse_args()
    stale = []
    for name, text in render().items():
        path = OUT / name
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            OUT.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if stale:
        print(f"out of date (run python tools/dashboards.py): {', '.join(stale)}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
