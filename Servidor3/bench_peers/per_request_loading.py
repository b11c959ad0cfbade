"""The seed's serving design, kept only as a peer for `make bench-serving`: never deploy it.

Every request loads `models:/<MODEL_NAME>@<MODEL_ALIAS>` from the registry (resolve the alias,
download the artefacts, unpickle) and prices one listing as a one-row DataFrame. Run with
`uvicorn --factory bench_peers.per_request_loading:create_app --workers 1`, PYTHONPATH=Servidor3,
and MLFLOW_TRACKING_URI and MODEL_NAME in the environment; it accepts the same JSON body as the
inference API's POST /predict.
"""

import os
from typing import Any

import mlflow
import pandas as pd
from fastapi import FastAPI


def create_app() -> FastAPI:
    model_uri = f"models:/{os.environ['MODEL_NAME']}@{os.environ.get('MODEL_ALIAS', 'champion')}"
    app = FastAPI(title="Per-request model loading (the seed's design)")

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    # A plain `def`, as the seed wrote it: FastAPI runs it in its thread pool.
    @app.post("/predict")
    def predict(listing: dict[str, Any]) -> dict[str, float]:
        model = mlflow.pyfunc.load_model(model_uri)
        return {"price": float(model.predict(pd.DataFrame([listing]))[0])}

    return app
