"""Prometheus rules and Grafana panels query only metrics and labels the server contract names;
promtool accepts the config and rules."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml

from tests.infra.conftest import INFRA, dashboard

pytestmark = [pytest.mark.unit, pytest.mark.infra]

PROMTOOL_HINT = ("promtool not found; install it with 'apt-get install -y prometheus' "
                 "(.ci/run does this in CI)")
SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "counter": ("",), "gauge": ("",)}


def _rules() -> list[dict]:
    return [r for g in yaml.safe_load((INFRA / "prometheus" / "alerts.yml").read_text())["groups"] for r in g["rules"]]


def _queries() -> list[str]:
    exprs = [r["expr"] for r in _rules()]
    exprs += [t["expr"] for p in dashboard()["panels"] for t in p["targets"]]
    return exprs


def _series(contract_metrics) -> dict[str, set[str]]:
    """Exported series name -> label names it carries."""
    out = {}
    for name, meta in contract_metrics.items():
        for suffix in SUFFIXES[meta["type"]]:
            out[name + suffix] = meta["labels"] | ({"le"} if suffix == "_bucket" else set())
    return out


def test_every_query_names_contract_metrics_and_labels(contract_metrics):
    series = _series(contract_metrics)
    for expr in _queries():
        used = re.findall(r"\b((?:distill|http)_\w+)\b(\{[^}]*\})?", expr)
        assert used or "up{" in expr, f"query reads no distill metric: {expr}"
        labels_in_expr = set()
        for name, matchers in used:
            assert name in series, f"{name} is not in the contract's server metrics: {expr}"
            for label in re.findall(r"(\w+)\s*=~?", matchers):
                # job and instance are the labels Prometheus adds to every scraped series
                assert label in series[name] | {"job", "instance"}, f"{name} has no label {label}: {expr}"
            labels_in_expr |= series[name]
        for group in re.findall(r"\bby \(([^)]*)\)", expr):
            for label in (x.strip() for x in group.split(",")):
                assert label in labels_in_expr or not used, f"grouping by {label}, which no metric carries: {expr}"


def test_every_contract_metric_is_watched(contract_metrics):
    text = "\n".join(_queries())
    unwatched = [m for m in contract_metrics if m not in text]
    assert not unwatched, f"exported but on no panel and in no rule: {unwatched}"


def test_dashboard_has_the_panels_operators_need():
    dash = dashboard()
    titles = " | ".join(p["title"].lower() for p in dash["panels"])
    for word in ("request rate", "latency", "error rate", "per model version", "canary share",
                 "agreement", "prediction-log"):
        assert word in titles, word
    latency = next(p for p in dash["panels"] if "latency" in p["title"].lower())
    assert [t["legendFormat"] for t in latency["targets"]] == ["p50", "p95", "p99"]
    assert all(t["expr"].startswith(f"histogram_quantile(0.{q}") for t, q in zip(latency["targets"], ("5,", "95", "99")))
    ds = yaml.safe_load((INFRA / "grafana" / "provisioning" / "datasources" / "prometheus.yaml").read_text())
    uid = ds["datasources"][0]["uid"]
    assert {p["datasource"]["uid"] for p in dash["panels"]} == {uid}
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))


def test_alerts_cover_the_failure_modes():
    exprs = {r["alert"]: r["expr"] for r in _rules()}
    assert 'up{job="distill-model-server"} == 0' in exprs["DistillModelServerDown"]
    assert 'http_requests_total{job="distill-model-server",code=~"5.."}' in exprs["DistillHighErrorRate"]
    assert "histogram_quantile(0.99" in exprs["DistillHighP99Latency"]
    assert "distill_predlog_dropped_total" in exprs["DistillPredictionLogDrops"]
    assert "distill_canary_agreed_total" in exprs["DistillCanaryAgreementLow"]
    jobs = {j["job_name"] for f in ("prometheus.yml", "prometheus-k8s.yml")
            for j in yaml.safe_load((INFRA / "prometheus" / f).read_text())["scrape_configs"]}
    assert "distill-model-server" in jobs


def test_server_defines_every_contract_metric_with_its_labels(contract_metrics):
    """The server's metric set (pipeline/serve/metrics.py) carries each contract metric, type and labels;
    tests/serve checks the same queries against a running server's /metrics."""
    from pipeline.serve.metrics import build_metrics

    reg = build_metrics(lambda: 0).registry
    defined = {}
    for collector in list(reg._collector_to_names):
        for family in collector.describe():
            defined[family.name] = (family.type, set(getattr(collector, "_labelnames", ())))
    for name, meta in contract_metrics.items():
        base = name.removesuffix("_total") if meta["type"] == "counter" else name
        assert base in defined, f"{name} is not defined by the server"
        kind, labels = defined[base]
        assert kind == meta["type"], (name, kind)
        assert meta["labels"] <= labels, f"{name}: labels {labels} lack {meta['labels'] - labels}"


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        raise FileNotFoundError(PROMTOOL_HINT)
    return path


def test_promtool_accepts_rules_and_config(promtool, tmp_path):
    rules = subprocess.run([promtool, "check", "rules", str(INFRA / "prometheus" / "alerts.yml")],
                           capture_output=True, text=True, timeout=60)
    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert f"SUCCESS: {len(_rules())} rules found" in rules.stdout
    # The compose config with its rule file path pointed at the repo's copy (the container path
    # /etc/prometheus does not exist here), so promtool also loads and checks the rules from it.
    config = (INFRA / "prometheus" / "prometheus.yml").read_text().replace(
        "/etc/prometheus/alerts.yml", str(INFRA / "prometheus" / "alerts.yml"))
    (tmp_path / "prometheus.yml").write_text(config)
    checked = subprocess.run([promtool, "check", "config", str(tmp_path / "prometheus.yml")],
                             capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
