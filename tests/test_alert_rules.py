"""Every metric an alert rule uses is one the exporter serves: a renamed or removed metric
breaks this test instead of silently disabling its alert (a rule over a missing series never
fires, and promtool cannot know the name is wrong).

The served names are read from the exporter's source (analyzer/metrics.py and
analyzer/analytics/gauges.py), the ``_counter("name", ...)`` / ``_gauge("name", ...)`` helpers
and the ``CounterMetricFamily`` / ``GaugeMetricFamily`` / ``HistogramMetricFamily(PREFIX +
"name", ...)`` calls, with the suffixes Prometheus sees: ``_total`` for a counter,
``_bucket``/``_sum``/``_count`` for a histogram. Their label names come along, so a selector
over a label the metric does not have fails too.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "prometheus" / "rules.yml"
SOURCES = [ROOT / "analyzer" / "metrics.py", ROOT / "analyzer" / "analytics" / "gauges.py",
           ROOT / "analyzer" / "portfolio" / "live.py"]

KINDS = {
    "_counter": "counter",
    "_gauge": "gauge",
    "CounterMetricFamily": "counter",
    "GaugeMetricFamily": "gauge",
    "HistogramMetricFamily": "histogram",
}
SUFFIXES = {"counter": ["_total"], "gauge": [""], "histogram": ["_bucket", "_sum", "_count"]}
# labels every scraped series has (the target's)
TARGET_LABELS = {"job", "instance"}

METRIC = re.compile(r"\banalyzer_[A-Za-z0-9_]+")
SELECTOR = re.compile(r"\b(analyzer_[A-Za-z0-9_]+)\s*\{([^}]*)\}")
MATCHER_LABEL = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)")


def _str(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _labels(call: ast.Call) -> list[str]:
    """The label names of a family: the third positional argument or labels=[...]."""
    node = call.args[2] if len(call.args) > 2 else next(
        (k.value for k in call.keywords if k.arg == "labels"), None)
    if not isinstance(node, ast.List):
        return []
    return [s for s in map(_str, node.elts) if s is not None]


def _family_name(call: ast.Call, prefix: str, helper: bool) -> str | None:
    if not call.args:
        return None
    first = call.args[0]
    if helper:  # _counter("name", ...): the helper adds PREFIX
        name = _str(first)
        return None if name is None else prefix + name
    # CounterMetricFamily(PREFIX + "name", ...)
    if (isinstance(first, ast.BinOp) and isinstance(first.op, ast.Add)
            and isinstance(first.left, ast.Name) and first.left.id == "PREFIX"):
        name = _str(first.right)
        return None if name is None else prefix + name
    return _str(first)


def served_metrics() -> dict[str, set[str]]:
    """{series name as Prometheus stores it: label names} for every family the exporter
    builds."""
    served: dict[str, set[str]] = {}
    for path in SOURCES:
        tree = ast.parse(path.read_text(), filename=str(path))
        prefix = next(
            _str(n.value) for n in tree.body
            if isinstance(n, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "PREFIX" for t in n.targets))
        assert prefix == "analyzer_", f"{path}: PREFIX is {prefix!r}"
        # the helpers' own bodies build PREFIX + a parameter: their calls are what counts
        helper_bodies = {
            id(n) for f in tree.body
            if isinstance(f, ast.FunctionDef) and f.name in KINDS
            for n in ast.walk(f)}
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or id(node) in helper_bodies:
                continue
            func = node.func
            fname = func.id if isinstance(func, ast.Name) else (
                func.attr if isinstance(func, ast.Attribute) else None)
            if fname not in KINDS:
                continue
            name = _family_name(node, prefix, helper=fname.startswith("_"))
            assert name is not None, f"{path}:{node.lineno}: a family name this test cannot read"
            kind = KINDS[fname]
            labels = set(_labels(node))
            for suffix in SUFFIXES[kind]:
                extra = {"le"} if suffix == "_bucket" else set()
                served.setdefault(name + suffix, set()).update(labels | extra)
    return served


def rules() -> list[dict]:
    doc = yaml.safe_load(RULES.read_text())
    return [r for g in doc["groups"] for r in g["rules"]]


def _rule_name(rule: dict) -> str:
    return rule.get("alert") or rule.get("record")


def _without_strings(expr: str) -> str:
    """The expression with its string literals blanked (label values are not metric names)."""
    return re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)


def test_the_exporter_source_is_read() -> None:
    """A sanity check of the parsing itself: a test that found no families would pass
    vacuously."""
    served = served_metrics()
    assert len(served) > 50
    assert served["analyzer_frames_total"] == {"venue", "channel"}
    assert served["analyzer_store_rows_dropped_total"] == {"table"}
    assert served["analyzer_last_message_age_seconds"] == {"venue", "channel"}
    assert served["analyzer_exchange_lag_seconds_bucket"] == {"venue", "channel", "le"}
    assert "analyzer_exchange_lag_seconds_count" in served
    assert "analyzer_opportunity_net_annualized" in served  # gauges.py
    assert "analyzer_analytics_ticks_total" in served  # gauges.py, CounterMetricFamily
    assert "analyzer_frames" not in served  # a counter is only served as ..._total


@pytest.mark.parametrize("rule", rules(), ids=_rule_name)
def test_every_metric_of_a_rule_is_served(rule: dict) -> None:
    served = served_metrics()
    expr = _without_strings(rule["expr"])
    used = set(METRIC.findall(expr))
    missing = sorted(used - served.keys())
    assert not missing, f"{_rule_name(rule)} uses metrics the exporter does not serve: {missing}"


@pytest.mark.parametrize("rule", rules(), ids=_rule_name)
def test_every_label_a_rule_selects_on_exists(rule: dict) -> None:
    served = served_metrics()
    for name, matchers in SELECTOR.findall(rule["expr"]):
        if name not in served:
            continue  # reported by test_every_metric_of_a_rule_is_served
        labels = set(MATCHER_LABEL.findall(_without_strings(matchers)))
        unknown = sorted(labels - served[name] - TARGET_LABELS)
        assert not unknown, f"{_rule_name(rule)}: {name} has no label {unknown}"


@pytest.mark.parametrize("rule", [r for r in rules() if "alert" in r], ids=_rule_name)
def test_every_metric_an_annotation_names_is_served(rule: dict) -> None:
    """Descriptions point the reader at other metrics: they must exist too."""
    served = served_metrics()
    text = " ".join(str(v) for v in rule.get("annotations", {}).values())
    missing = sorted(set(METRIC.findall(text)) - served.keys())
    assert not missing, f"{_rule_name(rule)}'s annotations name unknown metrics: {missing}"


def test_the_rules_use_the_metrics_of_issue_14() -> None:
    """The losses, store health, REST bans, reconnects, stalls and clock skew each have a rule
    (names as the exporter serves them)."""
    used = {m for r in rules() for m in METRIC.findall(_without_strings(r["expr"]))}
    assert used >= {
        "analyzer_store_rows_dropped_total",
        "analyzer_raw_capture_bytes_dropped_total",
        "analyzer_rest_rejected_total",
        "analyzer_book_buffer_overflows_total",
        "analyzer_frame_handler_errors_total",
        "analyzer_store_up",
        "analyzer_store_rows_held",
        "analyzer_rest_bans_total",
        "analyzer_reconnects_total",
        "analyzer_stream_stalls_total",
        "analyzer_exchange_lag_last_seconds",
        "analyzer_exchange_lag_seconds_bucket",
    }
