"""The monitoring stack, checked offline (no Docker, no Grafana here): the dashboards as Grafana
reads them, their PromQL (promtool), the provisioning against the compose mounts, the compose
file against the Compose specification's schema, and the Dockerfile's steps.

The same queries run against a real Prometheus scraping the demo in ``test_prometheus.py``.
"""

from __future__ import annotations

import ast
import fnmatch
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import urllib.parse
from pathlib import Path
from typing import Any

import dashboard_queries as dash_mod
import jsonschema
import pytest
import yaml
from dashboard_queries import ROOT
from harness import tool

from analyzer import config as config_mod
from analyzer.cli import build_parser
from analyzer.cluster.supervisor import plan
from analyzer.venues import EXCHANGES, VENUES

COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
PROVISIONING = ROOT / "grafana" / "provisioning"
SCHEMA = ROOT / "tests" / "fixtures" / "compose-spec" / "compose-spec.json"
DASHBOARDS = dash_mod.load_all()
DASHBOARD_NAMES = ["basis-funding.json", "liquidity.json", "carry.json", "feed-health.json",
                   "investor.json"]

# Grafana unit ids used here (grafana/packages/grafana-data/src/valueFormats/categories.ts),
# plus custom "suffix:<text>" units
UNITS = {"percentunit", "currencyUSD", "s", "h", "d", "cps", "reqps", "short", "none",
         "bool_yes_no"}
# what Prometheus adds about the analyzer (not exported by it, but about it)
PROMETHEUS_SERIES = {"ALERTS", "up"}
PANEL_TYPES = {"timeseries", "stat", "bargauge", "table", "state-timeline", "row"}
# PromQL words that are not metric names
PROMQL_WORDS = {
    "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile",
    "count_values", "group", "by", "without", "on", "ignoring", "group_left", "group_right",
    "and", "or", "unless", "bool", "offset", "rate", "irate", "increase", "delta", "idelta",
    "deriv", "changes", "resets", "histogram_quantile", "vector", "scalar", "abs", "clamp_min",
    "clamp_max", "label_replace", "label_join", "time", "timestamp", "absent", "sort",
    "sort_desc", "avg_over_time", "max_over_time", "min_over_time", "sum_over_time",
    "last_over_time", "e", "inf", "nan",
}


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def compose() -> dict[str, Any]:
    return load_yaml(COMPOSE)


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """Bind mounts of a compose service: host path (relative to the repo) -> container path."""
    out = {}
    for v in service.get("volumes", []):
        src, dst, *_ = v.split(":") if isinstance(v, str) else (v["source"], v["target"])
        if src.startswith("."):
            out[os.path.normpath(src)] = dst
    return out


def all_queries() -> list[dash_mod.Query]:
    return [q for name, d in DASHBOARDS.items()
            for q in dash_mod.panel_queries(name, d) + dash_mod.annotation_queries(name, d)]


def offline_values(dash: dict[str, Any]) -> dict[str, str]:
    """Variable values for parsing only: a plausible value of each label."""
    return dash_mod.resolve_variables(dash, lambda _sel, label: [f"x_{label}"])


# --------------------------------------------------------------------------------------------
# dashboards


def test_the_dashboards_are_generated_from_tools_dashboards() -> None:
    assert sorted(DASHBOARDS) == sorted(DASHBOARD_NAMES)
    spec = importlib.util.spec_from_file_location("dashboards_src",
                                                  ROOT / "tools" / "dashboards.py")
    assert spec and spec.loader
    src = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = src  # dataclasses look their module up
    try:
        spec.loader.exec_module(src)
    finally:
        del sys.modules[spec.name]
    rendered = src.render()
    for name in DASHBOARD_NAMES:
        assert (ROOT / "grafana" / "dashboards" / name).read_text() == rendered[name], (
            f"{name} differs from tools/dashboards.py: run python tools/dashboards.py")


@pytest.mark.parametrize("name", DASHBOARD_NAMES)
def test_dashboard_has_what_grafana_requires(name: str) -> None:
    d = DASHBOARDS[name]
    for key in ("uid", "title", "schemaVersion", "panels", "templating", "annotations", "time"):
        assert key in d, f"{name}: no {key}"
    assert re.fullmatch(r"[a-zA-Z0-9_-]{1,40}", d["uid"]), d["uid"]
    assert isinstance(d["schemaVersion"], int) and d["schemaVersion"] >= 36
    assert d["time"]["from"] and d["time"]["to"]
    ids = [p["id"] for p in dash_mod.panels(d)]
    assert len(ids) == len(set(ids)), f"{name}: duplicate panel ids"
    assert all(isinstance(i, int) for i in ids)


def test_dashboard_uids_and_titles_are_unique() -> None:
    for key in ("uid", "title"):
        values = [d[key] for d in DASHBOARDS.values()]
        assert len(values) == len(set(values)), key


def test_carry_dashboard_is_where_the_alert_links() -> None:
    rules = (ROOT / "prometheus" / "rules.yml").read_text()
    link = re.search(r"http://localhost:3000/d/([\w-]+)/[\w-]+\?var-(\w+)=", rules)
    assert link, "the CarryOpportunity alert links a dashboard"
    uid, var = link.groups()
    carry = DASHBOARDS["carry.json"]
    assert carry["uid"] == uid
    assert var in {v["name"] for v in dash_mod.variables(carry)}


@pytest.mark.parametrize("name", DASHBOARD_NAMES)
def test_every_panel_has_title_description_unit_and_a_query(name: str) -> None:
    for p in dash_mod.panels(DASHBOARDS[name]):
        assert p["type"] in PANEL_TYPES, p["type"]
        g = p["gridPos"]
        assert g["w"] > 0 and g["h"] > 0 and g["x"] >= 0 and g["x"] + g["w"] <= 24
        if p["type"] == "row":
            continue
        where = f"{name} / {p.get('title')!r}"
        assert p.get("title", "").strip(), f"{where}: no title"
        assert len(p.get("description", "")) >= 20, f"{where}: no description"
        unit = p["fieldConfig"]["defaults"].get("unit", "")
        assert unit in UNITS or unit.startswith("suffix:"), f"{where}: unit {unit!r}"
        assert p["targets"], f"{where}: no query"
        for t in p["targets"]:
            assert t.get("expr", "").strip() and t.get("refId"), where
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs)), f"{where}: duplicate refIds"


@pytest.mark.parametrize("name", DASHBOARD_NAMES)
def test_panels_do_not_overlap(name: str) -> None:
    cells: dict[tuple[int, int], str] = {}
    for p in dash_mod.panels(DASHBOARDS[name]):
        g = p["gridPos"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{p['title']!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = p["title"]


def provisioned_datasource() -> dict[str, Any]:
    sources = load_yaml(PROVISIONING / "datasources" / "prometheus.yml")["datasources"]
    assert len(sources) == 1
    return sources[0]


@pytest.mark.parametrize("name", DASHBOARD_NAMES)
def test_datasource_references_resolve_to_the_provisioned_one(name: str) -> None:
    ds = provisioned_datasource()
    d = DASHBOARDS[name]
    refs = []
    for p in dash_mod.panels(d):
        if p["type"] != "row":
            refs += [p["datasource"], *(t["datasource"] for t in p["targets"])]
    refs += [v["datasource"] for v in dash_mod.variables(d) if v["type"] == "query"]
    refs += [a["datasource"] for a in d["annotations"]["list"] if not a.get("builtIn")]
    for ref in refs:
        assert ref == {"type": ds["type"], "uid": ds["uid"]}, f"{name}: datasource {ref}"


@pytest.mark.parametrize("name", DASHBOARD_NAMES)
def test_variables_used_are_defined_and_in_order(name: str) -> None:
    d = DASHBOARDS[name]
    defined: list[str] = []
    for var in dash_mod.variables(d):
        assert var.get("label"), var["name"]
        if var["type"] == "query":
            dash_mod.label_values(dash_mod.variable_definition(var))  # well formed
        for used in dash_mod.used_variables(dash_mod.variable_definition(var)):
            assert used in defined, f"${var['name']} uses ${used} before it is defined"
        defined.append(var["name"])
    texts = [q.expr for q in dash_mod.panel_queries(name, d)]
    texts += [p["title"] + p.get("description", "") for p in dash_mod.panels(d)]
    for text in texts:
        for used in dash_mod.used_variables(text):
            assert used in defined or used in dash_mod.BUILTINS, f"{name}: ${used} in {text!r}"
    # every variable filters something
    used_anywhere = set().union(*(dash_mod.used_variables(t) for t in texts))
    for var in defined:
        assert var in used_anywhere or any(
            f"${var}" in dash_mod.variable_definition(v) for v in dash_mod.variables(d)
        ), f"{name}: ${var} is used by no query"


def _metric_names(expr: str) -> set[str]:
    """The series names a PromQL expression reads (good enough for these dashboards)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    words = {m.group() for m in re.finditer(r"(?<![\w.])[a-zA-Z_:][\w:]*", text)
             if not text[m.end():].lstrip().startswith("(")}  # not a function call
    return {w for w in words if w.lower() not in PROMQL_WORDS}


def exported_names() -> set[str]:
    """Every metric family name the analyzer's source declares: string literals in the calls
    that build families (``_gauge("name", ...)``, ``PREFIX + "name"``)."""
    names = set()
    for path in (ROOT / "analyzer").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and node.args:
                first = node.args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    names.add(first.value)
                elif (isinstance(first, ast.BinOp) and isinstance(first.right, ast.Constant)
                      and isinstance(first.right.value, str)):
                    names.add(first.right.value)
    return {n if n.startswith("analyzer_") else "analyzer_" + n for n in names
            if re.fullmatch(r"[a-z_]+", n)}


def test_queries_use_only_metrics_the_analyzer_exports() -> None:
    exported = exported_names()
    missing = {}
    for q in all_queries():
        for name in _metric_names(q.expr):
            if name in PROMETHEUS_SERIES:
                continue
            assert name.startswith("analyzer_"), f"{q}: {name} is not the analyzer's"
            family = re.sub(r"_(total|bucket|sum|count)$", "", name)
            if family not in exported and name not in exported:
                missing.setdefault(name, q)
    assert not missing, "not exported by analyzer/: " + "; ".join(
        f"{n} ({q.dashboard} / {q.panel})" for n, q in sorted(missing.items()))


def test_every_query_parses_with_promtool(tmp_path: Path) -> None:
    """Each query, its variables substituted, as a recording rule: ``promtool check rules``
    parses every expression (and names the bad one)."""
    promtool = tool("promtool")
    rules = []
    for name, d in DASHBOARDS.items():
        values = offline_values(d)
        queries = dash_mod.panel_queries(name, d) + dash_mod.annotation_queries(name, d)
        for var in dash_mod.variables(d):
            if var["type"] == "query":
                selector, _ = dash_mod.label_values(dash_mod.variable_definition(var))
                if selector:
                    queries.append(dash_mod.Query(name, f"variable: {var['name']}", "", selector))
        for i, q in enumerate(queries):
            rules.append({"record": f"dashboard:{Path(name).stem.replace('-', '_')}:q{i}",
                          "expr": dash_mod.substitute(q.expr, values)})
    path = tmp_path / "queries.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    r = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{len(rules)} rules found" in r.stdout


def test_metric_name_extraction() -> None:
    assert _metric_names(
        'sum by (venue, le) (rate(analyzer_x_bucket{a=~"b|c"}[1m])) or '
        "analyzer_y * 0 + 1e4 or vector(0)") == {"analyzer_x_bucket", "analyzer_y"}
    assert _metric_names('ALERTS{alertname="CarryOpportunity"}') == {"ALERTS"}


# --------------------------------------------------------------------------------------------
# provisioning and compose


def test_compose_validates_against_the_compose_specification() -> None:
    schema = json.loads(SCHEMA.read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    errors = sorted(cls(schema).iter_errors(compose()), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_a_wrong_compose_file_fails_the_schema() -> None:
    schema = json.loads(SCHEMA.read_text())
    bad = compose()
    bad["services"]["grafana"]["port"] = ["3000:3000"]  # typo
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validators.validator_for(schema)(schema).validate(bad)


def test_grafana_provisioning_paths_match_the_compose_mounts() -> None:
    grafana = compose()["services"]["grafana"]
    m = mounts(grafana)
    assert m["grafana/provisioning"] == "/etc/grafana/provisioning"
    providers = load_yaml(PROVISIONING / "dashboards" / "analyzer.yml")["providers"]
    assert [p["options"]["path"] for p in providers] == [m["grafana/dashboards"]]
    assert all(p["type"] == "file" for p in providers)
    home = grafana["environment"].get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
    if home:
        assert home.startswith(m["grafana/dashboards"] + "/")
        assert Path(home).name in DASHBOARDS


def test_the_datasource_points_at_the_compose_prometheus() -> None:
    ds = provisioned_datasource()
    services = compose()["services"]
    host, port = re.fullmatch(r"http://([\w-]+):(\d+)", ds["url"]).groups()
    assert host in services and port == "9090"
    assert ds["uid"] == "prometheus" and ds["type"] == "prometheus"


def test_prometheus_configuration_matches_the_compose_mounts() -> None:
    services = compose()["services"]
    prom = services["prometheus"]
    config_dir = mounts(prom)["prometheus"]
    config_file = next(a.split("=", 1)[1] for a in prom["command"]
                       if a.startswith("--config.file="))
    assert Path(config_file).parent == Path(config_dir)
    cfg = load_yaml(ROOT / "prometheus" / Path(config_file).name)
    for rule_file in cfg["rule_files"]:
        assert (ROOT / "prometheus" / rule_file).exists(), rule_file
    # the alertmanager and the analyzer, by their compose names (or aliases)
    am = cfg["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert am == ["alertmanager:9093"] and "alertmanager" in services
    am_file = next(a.split("=", 1)[1] for a in services["alertmanager"]["command"]
                   if a.startswith("--config.file="))
    assert mounts(services["alertmanager"])["prometheus/alertmanager.yml"] == am_file
    job = next(j for j in cfg["scrape_configs"] if j["job_name"] == "analyzer")
    assert job["static_configs"][0]["targets"] == ["analyzer:9108"]
    for name in ("analyzer", "demo"):
        aliases = (services[name].get("networks") or {}).get("default", {}) or {}
        assert name == "analyzer" or "analyzer" in aliases.get("aliases", [])


def _cli_args(service: dict[str, Any]) -> list[str]:
    cmd = service["command"]
    return shlex.split(cmd) if isinstance(cmd, str) else list(cmd)


def test_compose_commands_are_analyzer_commands_serving_metrics_on_9108() -> None:
    services = compose()["services"]
    parser = build_parser()
    # the live collector: its config, mounted from the repository, serves 0.0.0.0:9108
    live = parser.parse_args(_cli_args(services["analyzer"]))
    assert live.command == "collect"
    host_config = next(src for src, dst in mounts(services["analyzer"]).items()
                       if dst == live.config)
    cfg = config_mod.load(str(ROOT / host_config))
    assert (cfg.metrics.host, cfg.metrics.port) == ("0.0.0.0", 9108)
    # the demo: the simulated market, metrics reachable from the other containers
    demo = parser.parse_args(_cli_args(services["demo"]))
    assert demo.command == "demo" and not demo.replay
    assert demo.metrics_port == 9108
    assert getattr(demo, "metrics_host", None) == "0.0.0.0", (
        "the demo must serve metrics on 0.0.0.0 for Prometheus in another container")
    assert services["demo"]["profiles"] == ["demo"]
    for name in ("analyzer", "demo"):
        assert services[name]["build"] == "." and "9108:9108" in services[name]["ports"]


def test_the_sharded_service_runs_every_exchange_over_the_compose_nats() -> None:
    """The `sharded` profile: its config shards the six venues by exchange and reaches the
    compose `nats` service (JetStream on, its store on a volume) by its service name."""
    services = compose()["services"]
    sharded, nats = services["sharded"], services["nats"]
    args = build_parser().parse_args(_cli_args(sharded))
    assert args.command == "collect"
    host_config = next(src for src, dst in mounts(sharded).items() if dst == args.config)
    cfg = config_mod.load(str(ROOT / host_config))
    assert (cfg.metrics.host, cfg.metrics.port) == ("0.0.0.0", 9108)
    url = urllib.parse.urlsplit(cfg.cluster.nats_url)
    assert url.hostname == "nats" and f"{url.port}:{url.port}" in nats["ports"]
    assert "--jetstream" in nats["command"] or "-js" in nats["command"]
    store = nats["command"][nats["command"].index("--store_dir") + 1]
    assert any(v.endswith(f":{store}") for v in nats["volumes"])
    assert sharded["depends_on"] == ["nats"] and sharded["profiles"] == nats["profiles"]
    assert "analyzer" in sharded["networks"]["default"]["aliases"]  # Prometheus's target
    children = plan(cfg)
    assert sorted(c.name for c in children) == ["analytics", *sorted(EXCHANGES)]
    assert {f.venue for f in cfg.feeds} == set(VENUES)  # every market of the six venues


# --------------------------------------------------------------------------------------------
# Dockerfile


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            op, _, rest = line.partition(" ")
            out.append((op.upper(), rest.strip()))
    return out


def dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]


def ignored(rel: str, patterns: list[str]) -> bool:
    parts = Path(rel).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(fnmatch.fnmatch(p, pat) or fnmatch.fnmatch(p, pat.removeprefix("**/"))
               or fnmatch.fnmatch(Path(p).name, pat.removeprefix("**/"))
               for pat in patterns for p in prefixes)


def test_dockerfile_steps() -> None:
    steps = dockerfile()
    ops = [op for op, _ in steps]
    assert steps[0] == ("FROM", "python:3.11-slim")
    assert ("EXPOSE", "9108") in steps
    assert json.loads(dict(steps)["ENTRYPOINT"]) == ["analyzer"]
    cmd = json.loads(dict(steps)["CMD"])
    assert cmd == _cli_args(compose()["services"]["analyzer"])
    runs = [arg for op, arg in steps if op == "RUN"]
    assert any(re.search(r"\bpip install\b.*(\s\.|-e \.)", r) for r in runs), "pip install ."
    # a non-root user, set after the install and before the entrypoint
    user = ops.index("USER")
    assert dict(steps)["USER"] not in ("root", "0")
    assert ops.index("RUN") < user < ops.index("ENTRYPOINT")


def test_the_image_context_holds_what_the_package_needs(tmp_path: Path) -> None:
    """Emulates the build: copies what the COPY steps copy (minus .dockerignore) into an empty
    directory, then imports the package from there alone and reads its SQL, as the image will."""
    patterns = dockerignore()
    app = tmp_path / "app"
    app.mkdir()
    for op, arg in dockerfile():
        if op != "COPY":
            continue
        *sources, dest = arg.split()
        assert not any(s.startswith("--") for s in sources), "COPY --from/--chown not emulated"
        for src in sources:
            path = ROOT / src
            assert path.exists(), f"COPY {src}: not in the repository"
            assert not ignored(src.rstrip("/"), patterns), f"COPY {src}: in .dockerignore"
            target = app / dest if dest not in ("./", ".") else app
            if path.is_dir():
                shutil.copytree(path, target if dest.endswith("/") and dest != "./"
                                else target / path.name,
                                ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True)
            else:
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy(path, target / path.name)
    assert (app / "pyproject.toml").exists() and (app / "analyzer" / "cli.py").exists()
    code = ("import analyzer, analyzer.cli, analyzer.store.schema as s; "
            f"assert analyzer.__file__.startswith({str(app)!r}), analyzer.__file__; "
            "assert s.SCHEMA_SQL.exists() and s.VIEWS_SQL.exists(), s.SQL_DIR; "
            "analyzer.cli.build_parser().parse_args(['demo'])")
    env = {**os.environ, "PYTHONPATH": str(app), "PYTHONSAFEPATH": "1"}
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    # the console script the ENTRYPOINT runs
    project = (app / "pyproject.toml").read_text()
    assert re.search(r'^analyzer = "analyzer\.cli:main"$', project, re.MULTILINE)


def test_dockerignore_keeps_the_repository_out_but_not_the_package() -> None:
    patterns = dockerignore()
    for path in (".git", ".venv", "data", "tests", "analyzer/__pycache__"):
        assert ignored(path, patterns), path
    for path in ("analyzer", "analyzer/cli.py", "sql/schema.sql", "pyproject.toml", "README.md"):
        assert not ignored(path, patterns), path
