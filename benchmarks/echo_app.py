"""A bare FastAPI endpoint for benchmarks/serve_load.py: ``POST /v1/predict`` answers the body it got.

Served by uvicorn exactly like the model server, it is the floor: what HTTP + FastAPI cost on this
machine with no model, no routing, no metrics and no logging.
"""

from fastapi import FastAPI, Request
from fastapi.responses import Response

app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)


@app.post("/v1/predict")
async def echo(request: Request) -> Response:
    return Response(await request.body(), media_type="application/json")
