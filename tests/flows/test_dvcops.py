"""The stage-at-a-time DVC runner on a toy pipeline: order, skip-when-unchanged, push."""

import subprocess
import sys

import pytest

from pipeline import dvcops

pytestmark = pytest.mark.e2e

DVC_YAML = """\
stages:
  second:
    cmd: python -c "open('m.json','w').write('{}'); open('b.txt','w').write(open('a.txt').read().upper())"
    deps: [a.txt]
    outs: [b.txt]
    metrics:
      - m.json:
          cache: false
  first:
    cmd: python -c "open('a.txt','w').write('hello')"
    outs: [a.txt]
"""


@pytest.fixture
def toy_repo(tmp_path):
    root = tmp_path / "toy"
    root.mkdir()
    (root / "dvc.yaml").write_text(DVC_YAML)
    run = lambda *c: subprocess.run(c, cwd=root, check=True, capture_output=True)  # noqa: E731
    run("git", "init", "-q")
    run(sys.executable, "-m", "dvc", "init", "-q")
    run(sys.executable, "-m", "dvc", "remote", "add", "-d", "local", str(tmp_path / "remote"))
    return root


def test_order_run_skip_and_push(toy_repo, tmp_path):
    assert dvcops.stage_order(toy_repo) == ["first", "second"]
    first = [dvcops.repro_stage(name, toy_repo) for name in dvcops.stage_order(toy_repo)]
    assert [r.ran for r in first] == [True, True]
    assert (toy_repo / "b.txt").read_text() == "HELLO"
    again = [dvcops.repro_stage(name, toy_repo) for name in dvcops.stage_order(toy_repo)]
    assert [r.ran for r in again] == [False, False]
    assert dvcops.metrics_files(toy_repo) == {"second": ["m.json"], "first": []}
    assert dvcops.has_remote(toy_repo)
    assert "pushed" in dvcops.push(toy_repo)
    assert any((tmp_path / "remote").rglob("*")), "remote holds the pushed outputs"


def test_failing_stage_raises_with_output(toy_repo):
    (toy_repo / "dvc.yaml").write_text("stages:\n  boom:\n    cmd: python -c \"import sys; print('bad input'); sys.exit(3)\"\n")
    with pytest.raises(dvcops.StageFailed, match="bad input"):
        dvcops.repro_stage("boom", toy_repo)
