"""dvc.lock, as committed, records the code and params the committed dvc.yaml stages run: a clone of the
repository shows every stage's code and params unchanged. (Refresh it with `make demo` or `dvc repro`
and commit it with the code that changed.)"""

from __future__ import annotations

import shutil

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.integration


def test_dvc_lock_matches_the_committed_code_and_params(repo_copy, monkeypatch):
    from dvc.repo import Repo

    if not (ROOT / "dvc.lock").is_file():
        pytest.fail("dvc.lock is not in the repository: run `make demo` and commit it")
    shutil.copy2(ROOT / "dvc.lock", repo_copy / "dvc.lock")
    monkeypatch.chdir(repo_copy)
    with Repo(str(repo_copy)) as repo:
        status = repo.status()
    stale = {}
    for stage, changes in status.items():
        for change in changes:
            if not isinstance(change, dict):  # "changed command", "always changed"
                stale.setdefault(stage, []).append(str(change))
                continue
            for path, what in (change.get("changed deps") or {}).items():  # params.yaml: {key: change}
                # outputs of other stages are absent in a clone ("deleted"); code and params are not
                if what != "deleted" and not path.startswith(("data/", "models/", "metrics/", "feedback")):
                    stale.setdefault(stage, []).append(f"{path}: {what}")
    assert not stale, f"dvc.lock is out of date with the code (run `make demo`, commit dvc.lock): {stale}"
