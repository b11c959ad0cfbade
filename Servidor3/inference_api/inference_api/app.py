"""The inference API: FastAPI over the champion pipeline, with its metrics and prediction log.

Run one uvicorn worker per pod (`uvicorn --factory inference_api.app:create_app --workers 1`), so
the process's metrics are the pod's; scale with replicas. Endpoints never call the registry and
never build DataFrames: listings go to the pipeline column-wise, which its feature step reads
directly.
"""

import logging
import math
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Header, HTTPException, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_fastapi_instrumentator import Instrumentator

from inference_api.inference_log import InferenceLog
from inference_api.metrics import LATENCY_BUCKETS, ServingMetrics
from inference_api.model_store import LoadedModel, ModelStore
from inference_api.pipeline_status import router as pipeline_status_router
from inference_api.schemas import (
    LISTING_FIELDS,
    BatchPrediction,
    BatchRequest,
    Contribution,
    Explanation,
    Listing,
    ModelDescription,
    Prediction,
)
from inference_api.settings import ServingSettings

logger = logging.getLogger(__name__)


def _json_safe(value: Any) -> Any:
    """`value` with every non-finite float as its text ("inf", "nan")."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    return value


def create_app(settings: ServingSettings | None = None, registry: CollectorRegistry = REGISTRY) -> FastAPI:
    settings = settings or ServingSettings()
    metrics = ServingMetrics.create(registry)
    store = ModelStore(settings, metrics)
    inference_log = InferenceLog(settings, metrics)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        store.start()
        inference_log.start()
        yield
        store.stop()
        inference_log.stop()

    app = FastAPI(
        title="Realtor price API",
        summary="Prices US house listings with the registry's champion model.",
        version="1.0",
        lifespan=lifespan,
    )
    app.state.model_store = store
    app.include_router(pipeline_status_router())
    Instrumentator(excluded_handlers=["/metrics"], registry=registry).instrument(
        app, latency_lowr_buckets=LATENCY_BUCKETS, latency_highr_buckets=LATENCY_BUCKETS
    ).expose(app, include_in_schema=False)

    def served_model() -> LoadedModel:
        model = store.current
        if model is None:
            metrics.prediction_errors.labels("no_model").inc()
            raise HTTPException(
                503, f"no model loaded yet: waiting for {settings.model_name}@{settings.model_alias}"
            )
        return model

    def predict(model: LoadedModel, listings: Sequence[Listing], endpoint: str) -> tuple[list[float], str]:
        columns = {name: [getattr(listing, name) for listing in listings] for name in LISTING_FIELDS}
        started = time.perf_counter()
        try:
            prices = model.predict(columns).tolist()
        except Exception:
            metrics.prediction_errors.labels("model_error").inc()
            logger.exception("event=prediction_failed model_version=%s rows=%d", model.version, len(listings))
            raise
        seconds = time.perf_counter() - started
        metrics.model_latency.labels(endpoint).observe(seconds)
        metrics.predictions.labels(model.version, endpoint).inc(len(prices))
        for price in prices:
            metrics.predicted_price.observe(price)
        request_id = uuid.uuid4().hex
        logged_at = datetime.now(UTC).replace(tzinfo=None)
        common = (logged_at, endpoint, model.name, model.version, seconds * 1000)
        inference_log.record(
            (request_id, position, *common, price, *(getattr(listing, name) for name in LISTING_FIELDS))
            for position, (listing, price) in enumerate(zip(listings, prices, strict=True))
        )
        return prices, request_id

    @app.exception_handler(RequestValidationError)
    async def count_validation_errors(request: Request, error: RequestValidationError) -> JSONResponse:
        metrics.prediction_errors.labels("validation").inc()
        # FastAPI echoes each wrong input back, and a JSON response cannot hold Infinity or NaN.
        return await request_validation_exception_handler(
            request, RequestValidationError(_json_safe(error.errors()), body=error.body)
        )

    @app.post("/predict", tags=["predict"])
    async def predict_one(listing: Listing) -> Prediction:
        """Price one listing (raw fields, no `price`)."""
        model = served_model()
        prices, request_id = predict(model, [listing], "single")
        return Prediction(
            price=prices[0], model_name=model.name, model_version=model.version, request_id=request_id
        )

    @app.post("/predict/batch", tags=["predict"])
    async def predict_batch(batch: BatchRequest) -> BatchPrediction:
        """Price up to MAX_BATCH_SIZE listings in one call, vectorised."""
        if len(batch.listings) > settings.max_batch_size:
            metrics.prediction_errors.labels("batch_too_large").inc()
            message = f"at most {settings.max_batch_size} listings per request, got {len(batch.listings)}"
            # The shape of FastAPI's own 422s, so clients read one error format.
            raise HTTPException(422, [{"type": "too_long", "loc": ["body", "listings"], "msg": message}])
        model = served_model()
        metrics.batch_size.observe(len(batch.listings))
        prices, request_id = predict(model, batch.listings, "batch")
        return BatchPrediction(
            prices=prices, model_name=model.name, model_version=model.version, request_id=request_id
        )

    @app.post("/explain", tags=["predict"])
    async def explain(listing: Listing) -> Explanation:
        """The price of one listing and each feature's SHAP contribution to it."""
        model = served_model()
        columns = {name: [getattr(listing, name)] for name in LISTING_FIELDS}
        base_value, contributions = model.explain(columns)
        ranked = sorted(contributions, key=lambda item: abs(item[2]), reverse=True)
        return Explanation(
            price=float(model.predict(columns)[0]),
            model_name=model.name,
            model_version=model.version,
            base_value=base_value,
            contributions=[
                Contribution(feature=name, value=value, shap_value=shap) for name, value, shap in ranked
            ],
        )

    @app.get("/model", tags=["model"])
    async def describe_model() -> ModelDescription:
        """The version being served and its metrics."""
        model = served_model()
        return ModelDescription(
            model_name=model.name,
            model_version=model.version,
            alias=model.alias,
            run_id=model.run_id,
            metrics=model.metrics,
            loaded_at=model.loaded_at.isoformat(),
        )

    @app.get("/health", tags=["probes"])
    async def health() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok"}

    @app.get("/ready", tags=["probes"])
    async def ready() -> JSONResponse:
        """200 once a model is loaded, 503 before."""
        model = store.current
        if model is None:
            return JSONResponse({"ready": False, "model_version": None}, status_code=503)
        return JSONResponse({"ready": True, "model_version": model.version})

    @app.post("/admin/reload", tags=["admin"])
    def reload_model(x_api_key: str = Header(description="ADMIN_API_KEY")) -> dict[str, object]:
        """Check the alias now instead of at the next poll; load its version if it moved."""
        if not settings.admin_api_key:
            raise HTTPException(403, "the admin endpoint is disabled: ADMIN_API_KEY is not set")
        if not secrets.compare_digest(x_api_key.encode(), settings.admin_api_key.encode()):
            raise HTTPException(401, "wrong X-API-Key")
        try:
            swapped = store.refresh()
        except Exception as error:
            metrics.reload_failures.inc()
            raise HTTPException(502, f"could not reload from the registry: {error}") from None
        model = store.current
        return {"reloaded": swapped, "model_version": model.version if model else None}

    return app
