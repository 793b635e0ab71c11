"""The model server: FastAPI + onnxruntime over the registry's ``production`` (and ``canary``) bundles.

    distill serve --host 127.0.0.1 --port 8000          # uvicorn, app factory pipeline.serve.app:create_app

Parts, one small file each: ``app`` (factory and lifespan), ``models`` (loaded bundles, smoke check,
atomic swap), ``follower`` (polls the registry's state token), ``routing`` (sticky canary split),
``router`` (the HTTP endpoints), ``limits`` (input checks), ``logwriter`` (bounded background writer
of the prediction log), ``metrics`` (Prometheus, every name ``distill_*``). docs/serving.md describes
the behaviour.
"""
