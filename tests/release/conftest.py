"""Release tests share the serving fixtures: real bundles, a workspace with its own registry, a server."""

from tests.serve.conftest import Workspace, bundles, read_json, workspace  # noqa: F401
