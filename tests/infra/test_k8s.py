"""infra/k8s/: references resolve, and the manifests agree with compose, the code and the contract."""

from __future__ import annotations

import re

import pytest
import yaml

import pipeline
from pipeline import predlog
from pipeline.registry import store
from tests.infra.conftest import INFRA, load_yaml_docs

pytestmark = [pytest.mark.unit, pytest.mark.infra]


def _by_kind(docs, kind):
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def _containers(workload):
    return workload["spec"]["template"]["spec"]["containers"]


def test_kustomization_lists_every_manifest_but_the_secret_example():
    kust = yaml.safe_load((INFRA / "k8s" / "kustomization.yaml").read_text())
    files = {p.name for p in (INFRA / "k8s").glob("*.yaml")} - {"kustomization.yaml", "secret.example.yaml"}
    assert sorted(kust["resources"]) == sorted(files)
    assert kust["namespace"] == "distill"


def test_generated_configmaps_are_up_to_date():
    import importlib.util

    spec = importlib.util.spec_from_file_location("render_configmaps", INFRA / "k8s" / "render_configmaps.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.render() == (INFRA / "k8s" / "generated-configmaps.yaml").read_text(), \
        "stale: run python infra/k8s/render_configmaps.py"


def test_every_reference_resolves(k8s):
    workloads = {**_by_kind(k8s, "Deployment"), **_by_kind(k8s, "StatefulSet")}
    configmaps = _by_kind(k8s, "ConfigMap")
    secret = load_yaml_docs(INFRA / "k8s" / "secret.example.yaml")[0]
    claims = _by_kind(k8s, "PersistentVolumeClaim")
    assert all(v == "REPLACE_ME" or "REPLACE_ME" in v or v == "" for v in secret["stringData"].values()), "no real secrets"
    for name, wl in workloads.items():
        labels = wl["spec"]["template"]["metadata"]["labels"]
        assert wl["spec"]["selector"]["matchLabels"].items() <= labels.items(), name
        pod = wl["spec"]["template"]["spec"]
        for vol in pod.get("volumes", []):
            if "configMap" in vol:
                assert vol["configMap"]["name"] in configmaps, f"{name}: {vol}"
            if "persistentVolumeClaim" in vol:
                assert vol["persistentVolumeClaim"]["claimName"] in claims, f"{name}: {vol}"
        for c in pod["containers"]:
            mounts = {m["name"] for m in c.get("volumeMounts", [])}
            declared = {v["name"] for v in pod.get("volumes", [])} | {t["metadata"]["name"] for t in wl["spec"].get("volumeClaimTemplates", [])}
            assert mounts <= declared, f"{name}: {mounts - declared}"
            for ref in c.get("envFrom", []):
                assert ref["configMapRef"]["name"] in configmaps
            for env in c.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["name"] == secret["metadata"]["name"] and ref["key"] in secret["stringData"], f"{name}: {ref}"
    for name, svc in _by_kind(k8s, "Service").items():
        targets = [wl for wl in workloads.values() if svc["spec"]["selector"].items() <= wl["spec"]["template"]["metadata"]["labels"].items()]
        assert len(targets) == 1, f"Service {name} selects {len(targets)} workloads"
        port_names = {p.get("name") for c in _containers(targets[0]) for p in c.get("ports", [])}
        for port in svc["spec"]["ports"]:
            assert port["targetPort"] in port_names, f"Service {name}: {port}"


def test_ports_and_probes_match_the_contract(k8s, ports, contract_text):
    services = _by_kind(k8s, "Service")
    expected = {"model-server": "model server", "prefect-server": "Prefect server", "evidently-ui": "Evidently UI",
                "prometheus": "Prometheus", "grafana": "Grafana"}
    for svc, component in expected.items():
        assert services[svc]["spec"]["ports"][0]["port"] == ports[component], svc
    server = _by_kind(k8s, "Deployment")["model-server"]
    assert server["spec"]["replicas"] == 2
    (c,) = _containers(server)
    assert c["args"][-2:] == ["--port", str(ports["model server"])]
    assert c["ports"][0]["containerPort"] == ports["model server"]
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        assert f"`GET {path}`" in contract_text
        assert c[probe]["httpGet"]["path"] == path
    notes = server["spec"]["template"]["metadata"]["annotations"]
    assert notes["prometheus.io/scrape"] == "true" and int(notes["prometheus.io/port"]) == ports["model server"]
    assert f"`GET {notes['prometheus.io/path']}`" in contract_text
    assert _by_kind(k8s, "ConfigMap")["distill-env"]["data"]["PREFECT_API_URL"] == f"http://prefect-server:{ports['Prefect server']}/api"


def test_same_images_and_env_as_compose(k8s, compose):
    env = _by_kind(k8s, "ConfigMap")["distill-env"]["data"]
    for key, value in pipeline._QUIET.items():
        assert env[key] == value, key
    images = {c["image"] for wl in {**_by_kind(k8s, "Deployment"), **_by_kind(k8s, "StatefulSet")}.values() for c in _containers(wl)}
    assert images == {svc["image"] for svc in compose["services"].values() if svc["image"] != compose["services"]["minio"]["image"]}
    deployments = _by_kind(k8s, "Deployment")
    for name in ("model-server", "prefect-worker"):
        (c,) = _containers(deployments[name])
        names = {e["name"] for e in c["env"]}
        assert {store.URL_ENV, predlog.ENV_URL} <= names, name
        compose_cmd = compose["services"][name]["command"]
        assert [*c.get("command", []), *c["args"]][-len(compose_cmd):] == compose_cmd, name
        assert [m["mountPath"] for m in c["volumeMounts"] if m["name"] == "artifacts"] == \
               [m.split(":")[1] for m in compose["services"][name]["volumes"] if m.startswith("artifacts:")]


def test_prometheus_k8s_keeps_only_the_model_server_pods(k8s):
    config = yaml.safe_load((INFRA / "prometheus" / "prometheus-k8s.yml").read_text())
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "distill-model-server")
    keep = {tuple(r["source_labels"]): r["regex"] for r in job["relabel_configs"] if r.get("action") == "keep"}
    labels = _by_kind(k8s, "Deployment")["model-server"]["spec"]["template"]["metadata"]["labels"]
    assert re.fullmatch(keep[("__meta_kubernetes_pod_label_app_kubernetes_io_name",)], labels["app.kubernetes.io/name"])
    assert job["kubernetes_sd_configs"][0]["namespaces"]["names"] == list(_by_kind(k8s, "Namespace"))
