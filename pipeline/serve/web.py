"""The web page of the student, served at ``/demo/`` (issue: the student runs where the teacher cannot).

The page (``web/``, built into ``web/dist`` by ``make install``) featurizes in JavaScript and runs the
int8 ONNX student in onnxruntime-web, so after it loads no text leaves the browser. This module serves:

- ``GET /demo/``: the built page and its assets (``web/dist``; ``$DISTILL_WEB_DIST`` names another build);
- ``GET /demo/bundle/bundle.json``: the production model's ``bundle.json`` as the registry holds it
  (labels, featurizer config, temperature, out-of-domain cut), plus ``serving``: the version and the
  server's abstain settings, so the page abstains as ``/v1/predict`` does;
- ``GET /demo/bundle/<file>``: that model's int8 ONNX file and, for a WordPiece featurizer, its tokenizer
  file; no other file of the bundle folder.

The bundle answers carry ``Cache-Control: no-cache``: a page opened after a promotion gets the new model.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response

from pipeline.bundle import runtime_files

WEB_DIST_ENV = "DISTILL_WEB_DIST"
PREFIX = "/demo"
NO_CACHE = {"Cache-Control": "no-cache"}


def web_dist() -> Path:
    """Where the built page lies: ``$DISTILL_WEB_DIST``, else ``web/dist`` of this source tree."""
    given = os.environ.get(WEB_DIST_ENV)
    return Path(given) if given else Path(__file__).resolve().parents[2] / "web" / "dist"


def not_built(dist: Path) -> Response:
    return JSONResponse({"error": f"the web page is not built: {dist}/index.html is missing; build it with "
                                  "`make web` (npm ci and npm run build in web/)"}, status_code=503)


def add_web_routes(app, slots, cfg) -> None:
    """Mount the page, and the routes that publish the production model to it, on ``app``."""
    from starlette.staticfiles import StaticFiles

    router = APIRouter(include_in_schema=False)

    def production():
        state = slots.state
        if state.stable is None:
            return None, JSONResponse({"error": "no production model loaded yet"}, status_code=503)
        return state.stable, None

    @router.get(PREFIX)
    async def demo_root() -> Response:
        return RedirectResponse(PREFIX + "/")

    @router.get(PREFIX + "/bundle/bundle.json")
    async def demo_manifest() -> Response:
        model, refused = production()
        if refused is not None:
            return refused
        manifest = dict(model.bundle.manifest)
        manifest["serving"] = {"version": model.version, "ood_abstain": cfg.ood_abstain,
                               "ood_abstain_label": cfg.ood_abstain_label}
        return Response(json.dumps(manifest), media_type="application/json", headers=NO_CACHE)

    @router.get(PREFIX + "/bundle/{name}")
    async def demo_model_file(name: str) -> Response:
        model, refused = production()
        if refused is not None:
            return refused
        published = runtime_files(model.bundle.manifest)
        if name not in published:
            return JSONResponse({"error": f"not published: {name}; the page loads bundle.json and {published}"},
                                status_code=404)
        return FileResponse(model.bundle.folder / name, media_type="application/octet-stream", headers=NO_CACHE)

    app.include_router(router)
    dist = web_dist()
    if (dist / "index.html").exists():
        app.mount(PREFIX, StaticFiles(directory=dist, html=True), name="demo")
    else:
        @app.get(PREFIX + "/{path:path}", include_in_schema=False)
        async def demo_missing(path: str) -> Response:
            return not_built(dist)
