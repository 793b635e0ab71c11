"""infra/compose.yaml, checked structurally (no Docker engine here) against the code and contracts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import pipeline
from pipeline import predlog
from pipeline.registry import store
from tests.infra.conftest import INFRA, PENDING_ENV, ROOT, code_env_names

pytestmark = [pytest.mark.unit, pytest.mark.infra]

DISTILL_IMAGE_SERVICES = {"minio-bucket", "prefect-server", "prefect-worker", "model-server", "evidently-ui"}


def _container_port(service: dict) -> int:
    return int(str(service["ports"][0]).split(":")[-1])


def test_services_references_and_volumes_are_consistent(compose):
    services = compose["services"]
    expected = DISTILL_IMAGE_SERVICES | {"postgres", "minio", "prometheus", "grafana"}
    assert set(services) == expected
    for name, svc in services.items():
        assert "image" in svc, name
        for dep in svc.get("depends_on", {}):
            assert dep in services, f"{name} depends on unknown {dep}"
        for mount in svc.get("volumes", []):
            source = mount.split(":")[0]
            if source.startswith("."):
                assert (INFRA / source).exists(), f"{name}: bind mount {source} missing"
            else:
                assert source in compose["volumes"], f"{name}: volume {source} not declared"
    for name in DISTILL_IMAGE_SERVICES:
        assert services[name]["build"] == {"context": "..", "dockerfile": "infra/Dockerfile"}
        assert (INFRA / services[name]["build"]["context"] / services[name]["build"]["dockerfile"]).is_file()
    assert len({services[n]["image"] for n in DISTILL_IMAGE_SERVICES}) == 1


def test_telemetry_off_in_every_distill_container(compose):
    for name in DISTILL_IMAGE_SERVICES:
        env = compose["services"][name]["environment"]
        for key, value in pipeline._QUIET.items():
            assert env.get(key) == value, f"{name}: {key}"


def test_model_servers_and_worker_share_the_registry_prediction_log_and_artifacts(compose):
    services = compose["services"]
    for name in ("model-server", "prefect-worker"):
        env = services[name]["environment"]
        assert re.match(r"postgresql://.*@postgres:5432/registry$", env[store.URL_ENV]), name
        assert re.match(r"postgresql://.*@postgres:5432/predictions$", env[predlog.ENV_URL]), name
        artifacts = [m for m in services[name]["volumes"] if m.startswith("artifacts:")]
        from pipeline.config.registry import RegistryConfig
        assert artifacts and artifacts[0].split(":")[1] == "/app/" + RegistryConfig().artifacts_dir, name
    assert services["model-server"]["deploy"]["replicas"] == 2
    prefect_db = services["prefect-server"]["environment"]["PREFECT_API_DATABASE_CONNECTION_URL"]
    assert re.match(r"postgresql\+asyncpg://.*@postgres:5432/prefect$", prefect_db)
    init = (INFRA / "postgres" / "init-databases.sh").read_text()
    databases = set(services["postgres"]["environment"]["DISTILL_DATABASES"].split())
    used = {url.rsplit("/", 1)[1] for url in (services["model-server"]["environment"][store.URL_ENV],
                                               services["model-server"]["environment"][predlog.ENV_URL], prefect_db)}
    assert used == databases, "the init script must create exactly the databases the URLs name"
    assert "DISTILL_DATABASES" in init


def test_ports_match_the_contract(compose, ports):
    services = compose["services"]
    assert _container_port(services["model-server"]) == ports["model server"]
    assert services["model-server"]["command"][-2:] == ["--port", str(ports["model server"])]
    assert _container_port(services["prefect-server"]) == ports["Prefect server"]
    assert _container_port(services["evidently-ui"]) == ports["Evidently UI"]
    assert _container_port(services["prometheus"]) == ports["Prometheus"]
    assert _container_port(services["grafana"]) == ports["Grafana"]
    assert services["prefect-worker"]["environment"]["PREFECT_API_URL"] == f"http://prefect-server:{ports['Prefect server']}/api"


def test_distill_env_vars_are_ones_something_reads(compose):
    """Every DISTILL_* variable set is read by the code, or by the infra file that sets it."""
    read_by_code = code_env_names()
    assert {store.URL_ENV, predlog.ENV_URL} <= read_by_code
    infra_text = "\n".join(p.read_text() for p in INFRA.rglob("*") if p.is_file() and p.suffix in {".sh", ".yaml", ".yml"})
    for name, svc in compose["services"].items():
        for key in svc.get("environment", {}):
            if not key.startswith("DISTILL_") or key in read_by_code:
                continue
            if key in PENDING_ENV:
                assert key not in read_by_code, f"{key} is read by the code now: drop it from PENDING_ENV"
                continue
            reads = re.findall(rf'(\${{?{key}\b|environ\["{key}"\])', infra_text)
            assert reads, f"{name}: {key} is set but nothing reads it"


def test_secrets_come_from_the_env_file_and_it_is_git_ignored():
    text = (INFRA / "compose.yaml").read_text()
    required = set(re.findall(r"\$\{(\w+):\?", text)) | set(re.findall(r"\$\{(\w+):-", text))
    example = {line.split("=")[0] for line in (INFRA / ".env.example").read_text().splitlines()
               if line and not line.startswith("#")}
    assert required and required <= example, required - example
    assert "/infra/.env" in (ROOT / ".gitignore").read_text().splitlines()


def test_commands_are_cli_commands(compose):
    from pipeline.cli import app

    known = {c.name for c in app.registered_commands} | {g.name for g in app.registered_groups}
    for name in ("model-server",):
        sub = compose["services"][name]["command"][0]
        if sub == "serve" and sub not in known:
            import importlib.util
            assert importlib.util.find_spec("pipeline.serve") is None, "pipeline.serve landed: `distill serve` must be a CLI command now"
            continue
        assert sub in known, sub


def test_worker_pool_matches_the_deployments(compose):
    import yaml
    cmd = compose["services"]["prefect-worker"]["command"]
    pool = cmd[cmd.index("--pool") + 1]
    deployments = yaml.safe_load((INFRA / "prefect" / "prefect.yaml").read_text())["deployments"]
    assert {d["work_pool"]["name"] for d in deployments} == {pool}
    assert cmd[cmd.index("--type") + 1] == "process"


def test_paths_under_app_match_the_image_workdir(compose):
    workdir = re.search(r"^WORKDIR (\S+)", (INFRA / "Dockerfile").read_text(), re.M).group(1)
    evidently = compose["services"]["evidently-ui"]["command"]
    assert Path(evidently[evidently.index("--workspace") + 1]).is_relative_to(workdir)


def test_every_published_port_binds_loopback_unless_told_otherwise(compose):
    """The Prefect API has no authentication: nothing is published on all interfaces by default."""
    published = [(name, str(port)) for name, svc in compose["services"].items() for port in svc.get("ports", [])]
    assert published
    for name, port in published:
        assert port.startswith("${DISTILL_BIND:-127.0.0.1}:"), (name, port)
    example = (INFRA / ".env.example").read_text()
    assert "DISTILL_BIND=127.0.0.1" in example

