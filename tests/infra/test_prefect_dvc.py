"""infra/prefect/prefect.yaml deploys real flows with valid schedules and triggers; the DVC recipe in
infra/dvc/README.md produces infra/dvc/config.local.example."""

from __future__ import annotations

import configparser
import importlib
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.infra.conftest import INFRA, PENDING_FLOWS, ROOT

pytestmark = [pytest.mark.infra]

PREFECT = yaml.safe_load((INFRA / "prefect" / "prefect.yaml").read_text())


@pytest.mark.unit
def test_deployments_point_at_flows_with_their_parameters():
    from prefect import Flow

    assert {d["name"].split("-")[0] for d in PREFECT["deployments"]} == {"retrain", "canary", "monitor"}
    for dep in PREFECT["deployments"]:
        path, func = dep["entrypoint"].split(":")
        if path in PENDING_FLOWS:
            assert not (ROOT / path).exists(), f"{path} landed: remove it from PENDING_FLOWS"
            continue
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        flow = getattr(module, func)
        assert isinstance(flow, Flow), dep["entrypoint"]
        assert set(dep.get("parameters", {})) <= set(inspect.signature(flow.fn).parameters), dep["name"]


@pytest.mark.unit
def test_schedules_and_triggers_are_valid_prefect_objects():
    from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule
    from prefect.events import DeploymentEventTrigger

    from flows.retrain import retrain

    kinds = {}
    for dep in PREFECT["deployments"]:
        for sched in dep.get("schedules", []):
            obj = CronSchedule(**sched) if "cron" in sched else IntervalSchedule(**sched)
            kinds[dep["name"]] = type(obj).__name__
        for trig in dep.get("triggers", []):
            trigger = DeploymentEventTrigger(**trig)
            kinds[dep["name"]] = "event"
            # The canary follows the retrain flow: the trigger must name that flow as Prefect does.
            assert trigger.match_related.root.get("prefect.resource.name") == retrain.name
    assert kinds == {"retrain-nightly": "CronSchedule", "canary-on-retrain": "event", "monitor-hourly": "IntervalSchedule"}


@pytest.mark.unit
def test_pull_steps_run_a_script_that_exists():
    steps = [next(iter(s.items())) for s in PREFECT["pull"]]
    assert steps[0][0] == "prefect.deployments.steps.git_clone"
    script = steps[1][1]["script"].split()[-1]
    assert (ROOT / script).is_file()
    assert f"{{{{ {steps[0][1]['id']}.directory }}}}" == steps[1][1]["directory"]
    from pipeline.config.registry import RegistryConfig
    text = (ROOT / script).read_text()
    assert "artifacts" in text and RegistryConfig().artifacts_dir.startswith(".distill/")


@pytest.mark.integration
def test_dvc_recipe_writes_the_example_config(tmp_path):
    """Run the `dvc remote` commands of infra/dvc/README.md in a scratch repo (~3 s)."""
    commands = [line.split("#")[0].split() for line in (INFRA / "dvc" / "README.md").read_text().splitlines()
                if line.startswith("dvc remote")]
    assert len(commands) == 2
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    run = lambda *cmd: subprocess.run(cmd, cwd=tmp_path, env=env, check=True, capture_output=True, text=True)  # noqa: E731
    run("git", "init", "-q")
    run(sys.executable, "-m", "dvc", "init", "-q")
    for cmd in commands:
        run(sys.executable, "-m", *cmd)
    written, example = configparser.ConfigParser(), configparser.ConfigParser()
    written.read_string(re.sub(r"(?m)^\s+", "", (tmp_path / ".dvc" / "config.local").read_text()))
    example.read_string(re.sub(r"(?m)^\s+", "", "\n".join(
        l for l in (INFRA / "dvc" / "config.local.example").read_text().splitlines() if not l.startswith("#"))))
    as_dict = lambda c: {s: dict(c[s]) for s in c.sections()}  # noqa: E731
    assert as_dict(written) == as_dict(example)
    assert "secret" not in (tmp_path / ".dvc" / "config.local").read_text()
