"""Reading the Grafana dashboards as Grafana would: their queries, variables and datasources.

Shared by ``test_dashboards.py`` (offline checks) and ``test_prometheus.py`` (every query against a
real Prometheus) and by ``tools/render_dashboards.py``.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DASHBOARDS = ROOT / "grafana" / "dashboards"

# Grafana's built-in variables, as a Prometheus test substitutes them (rate windows of a few
# scrapes; the live test scrapes every second).
BUILTINS = {"__rate_interval": "15s", "__interval": "15s", "__range": "1h"}
_VAR = re.compile(r"\$(\w+)|\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]")
_LABEL_VALUES = re.compile(r"^label_values\((?:(.*),\s*)?(\w+)\)$", re.DOTALL)


@dataclass(frozen=True)
class Query:
    dashboard: str  # file name
    panel: str  # panel title, or "annotation: name" / "variable: name"
    ref: str  # refId
    expr: str

    def __str__(self) -> str:
        return f"{self.dashboard} / {self.panel} / {self.ref}: {self.expr}"


def load_all() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text()) for p in sorted(DASHBOARDS.glob("*.json"))}


def panels(dash: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, rows' nested panels included, rows themselves included."""
    for p in dash.get("panels", []):
        yield p
        yield from p.get("panels", [])


def panel_queries(name: str, dash: dict[str, Any]) -> list[Query]:
    return [Query(name, p["title"], t.get("refId", ""), t["expr"])
            for p in panels(dash) if p.get("type") != "row" for t in p.get("targets", [])]


def annotation_queries(name: str, dash: dict[str, Any]) -> list[Query]:
    return [Query(name, f"annotation: {a['name']}", "", a["expr"])
            for a in dash.get("annotations", {}).get("list", []) if a.get("expr")]


def variables(dash: dict[str, Any]) -> list[dict[str, Any]]:
    return dash.get("templating", {}).get("list", [])


def variable_definition(var: dict[str, Any]) -> str:
    q = var.get("query")
    return q.get("query", "") if isinstance(q, dict) else (q or var.get("definition", ""))


def label_values(definition: str) -> tuple[str | None, str]:
    """``label_values(selector, label)`` -> (selector or None, label)."""
    m = _LABEL_VALUES.match(definition.strip())
    if not m:
        raise ValueError(f"not a label_values() query: {definition!r}")
    return m.group(1), m.group(2)


def used_variables(text: str) -> set[str]:
    return {a or b or c for a, b, c in _VAR.findall(text)}


def regex_value(values: list[str]) -> str:
    """What Grafana puts in a query for several values of a multi-value variable."""
    escaped = [re.sub(r"([\\.+*?^$()\[\]{}|])", r"\\\\\1", v) for v in values]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


def substitute(text: str, values: dict[str, str]) -> str:
    def repl(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2) or m.group(3)
        if name in values:
            return values[name]
        if name in BUILTINS:
            return BUILTINS[name]
        raise KeyError(f"undefined variable ${name} in {text!r}")

    return _VAR.sub(repl, text)


def resolve_variables(dash: dict[str, Any], lookup: Callable[[str | None, str], list[str]]
                      ) -> dict[str, str]:
    """Each variable's value as Grafana would set it by default: a query variable's values come
    from ``lookup(selector, label)`` (the selector with the earlier variables substituted); a
    multi-value variable defaults to All (every value), a single one to its ``current`` value if
    the query returns it, else the first."""
    out: dict[str, str] = {}
    for var in variables(dash):
        if var["type"] == "custom":
            opts = [o["value"] for o in var.get("options", [])]
            values = opts or var["query"].split(",")
        elif var["type"] == "query":
            selector, label = label_values(variable_definition(var))
            values = sorted(lookup(substitute(selector, out) if selector else None, label))
            if not values:
                raise LookupError(f"variable ${var['name']}: {variable_definition(var)} "
                                  f"returned no values")
        else:
            raise ValueError(f"variable type {var['type']} not handled")
        if var.get("multi") or var.get("includeAll"):
            out[var["name"]] = regex_value(values)
        else:
            current = (var.get("current") or {}).get("value")
            out[var["name"]] = current if current in values else values[0]
    return out


# --------------------------------------------------------------------------------------------
# against a running Prometheus (the test's, or docker-compose's on :9090)


def prom_api(base_url: str, path: str, **params: str | float) -> Any:
    """GET ``/api/v1/<path>``; returns ``data`` or raises with Prometheus's error."""
    url = f"{base_url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            body = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        body = json.loads(exc.read() or b"{}")
    if body.get("status") != "success":
        raise RuntimeError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
    return body["data"]


def prom_lookup(base_url: str) -> Callable[[str | None, str], list[str]]:
    """``label_values()`` as Grafana's Prometheus datasource answers it."""

    def lookup(selector: str | None, label: str) -> list[str]:
        if selector is None:
            return list(prom_api(base_url, f"label/{label}/values"))
        series = prom_api(base_url, "series", **{"match[]": selector})
        return sorted({s[label] for s in series if label in s})

    return lookup


def legend(fmt: str, labels: dict[str, str]) -> str:
    """A Grafana legendFormat with ``{{label}}`` filled in."""
    text = re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), fmt)
    return " ".join(text.split()) or ",".join(f"{k}={v}" for k, v in sorted(labels.items())
                                             if k != "__name__")
