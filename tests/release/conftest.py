"""Release tests share the serving fixtures: real bundles, a workspace with its own registry, a server."""

from tests.serve.conftest import Workspace, read_json, workspace  # noqa: F401  (bundles: tests/conftest.py)
