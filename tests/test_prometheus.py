"""The Prometheus side of the monitoring stack, with the real tools (Debian packages
``prometheus`` and ``prometheus-alertmanager``, installed by ``.ci/run``).

- ``promtool``/``amtool`` check the configuration and unit-test the rules
  (prometheus/tests/rules.test.yml).
- End to end: ``analyzer demo`` on the simulated market (calm contango, then a steep one that
  opens a carry opportunity) and a real Prometheus scraping it every second with the project's
  configuration and rules; then every query of every dashboard panel, its variables set from
  the label values Prometheus holds, must return at least one series.

``RENDER_DASHBOARDS=docs/dashboards.png`` also draws the main panels from that Prometheus
(tools/render_dashboards.py): the README's picture.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import dashboard_queries as dq
import pytest
import yaml
from harness import tool

ROOT = dq.ROOT
PROM = ROOT / "prometheus"
SCENARIO = "calm_contango,steep_contango@0s"
SPEED = "20"
DEADLINE_S = 165  # the carry opportunity opens within ~2 minutes at this speed


def run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=ROOT)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------------------------
# configuration


def test_promtool_checks_the_configuration_and_rules() -> None:
    promtool = tool("promtool")
    r = run(promtool, "check", "config", str(PROM / "prometheus.yml"))
    assert r.returncode == 0, r.stdout + r.stderr
    r = run(promtool, "check", "rules", str(PROM / "rules.yml"))
    assert r.returncode == 0, r.stdout + r.stderr


def test_rules_unit_tests_pass() -> None:
    r = run(tool("promtool"), "test", "rules", str(PROM / "tests" / "rules.test.yml"))
    assert r.returncode == 0, r.stdout + r.stderr


def test_amtool_checks_the_alertmanager_configuration() -> None:
    r = run(tool("amtool"), "check-config", str(PROM / "alertmanager.yml"))
    assert r.returncode == 0, r.stdout + r.stderr


# --------------------------------------------------------------------------------------------
# end to end


def prometheus_config(metrics_port: int) -> dict:
    """The project's prometheus.yml, scraping the demo every second, its rules by absolute
    path; no Alertmanager (none runs here)."""
    cfg = yaml.safe_load((PROM / "prometheus.yml").read_text())
    cfg["global"].update(scrape_interval="1s", evaluation_interval="1s")
    cfg["rule_files"] = [str(PROM / f) for f in cfg["rule_files"]]
    cfg.pop("alerting", None)
    (job,) = (j for j in cfg["scrape_configs"] if j["job_name"] == "analyzer")
    job["static_configs"] = [{"targets": [f"127.0.0.1:{metrics_port}"]}]
    return cfg


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _tail(path: Path, n: int = 3000) -> str:
    return path.read_text(errors="replace")[-n:] if path.exists() else ""


def _wait_ready(url: str, proc: subprocess.Popen, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited: {_tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"not ready at {url}: {_tail(log)}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, float]]:
    """(Prometheus URL, start time): the demo and a Prometheus scraping it."""
    prometheus = tool("prometheus")
    tmp = tmp_path_factory.mktemp("stack")
    metrics_port, prom_port = free_port(), free_port()
    start = time.time()
    demo_log, prom_log = tmp / "demo.log", tmp / "prometheus.log"
    # logs to files, not pipes: a pipe nobody reads would block a chatty child
    with demo_log.open("w") as dlog, prom_log.open("w") as plog:
        demo = subprocess.Popen(
            [sys.executable, "-m", "analyzer.cli", "demo", "--scenario", SCENARIO, "--speed",
             SPEED, "--duration", str(DEADLINE_S + 90), "--metrics-port", str(metrics_port),
             "--data-dir", str(tmp / "data")],
            stdout=subprocess.DEVNULL, stderr=dlog, cwd=tmp)
        config = tmp / "prometheus.yml"
        config.write_text(yaml.safe_dump(prometheus_config(metrics_port)))
        prom = subprocess.Popen(
            [prometheus, f"--config.file={config}", f"--storage.tsdb.path={tmp / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=warn"],
            stdout=subprocess.DEVNULL, stderr=plog, cwd=tmp)
    url = f"http://127.0.0.1:{prom_port}"
    try:
        _wait_ready(f"http://127.0.0.1:{metrics_port}/metrics", demo, demo_log, 60)
        _wait_ready(f"{url}/-/ready", prom, prom_log)
        yield url, start
    finally:
        _stop(prom)
        _stop(demo)
        if os.environ.get("STACK_LOGS"):
            print("prometheus:", _tail(prom_log), "\ndemo:", _tail(demo_log), sep="\n")


def evaluate(url: str) -> tuple[list[dq.Query], list[dq.Query], dict[str, str]]:
    """Every panel query and annotation, variables substituted: (empty panel queries, empty
    annotation queries, errors)."""
    lookup = dq.prom_lookup(url)
    empty: list[dq.Query] = []
    empty_annotations: list[dq.Query] = []
    errors: dict[str, str] = {}
    for name, dash in dq.load_all().items():
        try:
            values = dq.resolve_variables(dash, lookup)
        except LookupError as exc:
            errors[name] = str(exc)
            continue
        for q in dq.panel_queries(name, dash) + dq.annotation_queries(name, dash):
            expr = dq.substitute(q.expr, values)
            result = dq.prom_api(url, "query", query=expr)["result"]
            if not result:
                sink = empty_annotations if q.panel.startswith("annotation") else empty
                sink.append(dq.Query(q.dashboard, q.panel, q.ref, expr))
    return empty, empty_annotations, errors


@pytest.mark.slow
def test_every_dashboard_query_returns_data(stack: tuple[str, float]) -> None:
    url, start = stack
    # a few scrapes first, then until every query answers (the carry opportunity opens after
    # its persistence window) or the deadline
    deadline = start + DEADLINE_S
    while True:
        scrapes = dq.prom_api(url, "query", query='count_over_time(up{job="analyzer"}[5m])')
        enough = scrapes["result"] and float(scrapes["result"][0]["value"][1]) >= 10
        if enough:
            empty, _, errors = evaluate(url)
            if not empty and not errors:
                break
        if time.time() > deadline:
            break
        time.sleep(3)
    assert enough, "Prometheus did not scrape the demo"
    empty, empty_annotations, errors = evaluate(url)
    out = os.environ.get("RENDER_DASHBOARDS")
    if out:
        sys.path.insert(0, str(ROOT / "tools"))
        import render_dashboards

        render_dashboards.render(url, ROOT / out, start, time.time())
    problems = [f"{name}: {e}" for name, e in errors.items()]
    problems += [f"no series: {q}" for q in empty]
    assert not problems, (f"after {time.time() - start:.0f} s:\n" + "\n".join(problems))
    # the rules Prometheus loaded from the project are healthy
    groups = dq.prom_api(url, "rules")["groups"]
    assert {r["name"] for g in groups for r in g["rules"]} >= {"CarryOpportunity", "FeedStale"}
    assert all(r["health"] == "ok" for g in groups for r in g["rules"])
    # anomalies are events: their annotation may rightly be empty in this scenario
    del empty_annotations
