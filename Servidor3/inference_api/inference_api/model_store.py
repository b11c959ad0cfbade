"""The served model: loaded once from the MLflow registry, swapped atomically when its alias moves.

A background thread asks the registry which version the alias points at, every poll interval
(and, until the first load, retries at that pace). Requests only read `ModelStore.current`, one
reference read, so they never wait for the registry and never see half a swap. When the registry
cannot be reached the current model keeps serving and the failure is counted.
"""

import logging
import os
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import mlflow
import numpy as np
import shap
import sklearn
from mlflow.exceptions import MlflowException
from mlflow.models import Model
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode

from inference_api.metrics import ServingMetrics
from inference_api.settings import ServingSettings
from inference_api.stacked_trees import StackedTrees

logger = logging.getLogger(__name__)

# The request schema already rejects non-finite numbers, and the fitted pipeline's parameters
# were validated when it was fitted: skipping both checks halves a one-row predict (~1.9 → ~1.1 ms).
FAST_SKLEARN = {"assume_finite": True, "skip_parameter_validation": True}
# Up to this many rows, stacked trees beat sklearn's tree-by-tree loop; above, sklearn's is faster.
STACKED_TREES_MAX_ROWS = 4


@dataclass(frozen=True)
class LoadedModel:
    """One registered version, ready to predict: the whole pipeline on raw listing columns."""

    name: str
    version: str
    alias: str
    run_id: str
    metrics: dict[str, float]
    loaded_at: datetime
    pipeline: Any  # TransformedTargetRegressor around Pipeline(features…, estimator)
    explainer: shap.Explainer = field(repr=False)  # of the estimator, on the features before it
    # The estimator's trees stacked for small requests; None: every request goes through sklearn.
    stacked_trees: StackedTrees | None = field(default=None, repr=False)

    def predict(self, columns: Mapping[str, Sequence]) -> np.ndarray:
        """Prices for listings given column-wise (name → one value per listing)."""
        with sklearn.config_context(**FAST_SKLEARN):
            if self.stacked_trees is None or len(columns["status"]) > STACKED_TREES_MAX_ROWS:
                return np.asarray(self.pipeline.predict(columns), dtype=float)
            features = self.pipeline.regressor_[:-1].transform(columns)
        return _price(self.pipeline, self.stacked_trees.predict(features))

    def explain(self, columns: Mapping[str, Sequence]) -> tuple[float, list[tuple[str, float, float]]]:
        """(base value, [(feature, value, SHAP value)]) for one listing, in log(1 + price) units."""
        with sklearn.config_context(**FAST_SKLEARN):
            features = self.pipeline.regressor_[:-1].transform(columns)
        explanation = self.explainer(features)
        contributions = zip(
            explanation.feature_names, features[0].tolist(), explanation.values[0].tolist(), strict=True
        )
        return float(np.ravel(explanation.base_values)[0]), list(contributions)


def _explainer(estimator, background: np.ndarray, names: list[str]) -> shap.Explainer:
    """Trees: shap's exact path-dependent algorithm (no background needed). Linear models and the
    rest: against the version's own input example, the only rows serving has. Node 1's explain.py
    chooses the same way for its summary plots; serving keeps its own copy, never training code."""
    try:
        return shap.Explainer(estimator, feature_names=names)
    except TypeError:  # not a tree model
        pass
    try:
        return shap.Explainer(estimator, background, feature_names=names)
    except TypeError:  # no exact algorithm for this estimator
        return shap.Explainer(estimator.predict, background, feature_names=names)


def load_version(client: mlflow.MlflowClient, name: str, alias: str, version: str) -> LoadedModel:
    uri = f"models:/{name}/{version}"
    # Kept for the process's life: the model's own code (code_paths) is imported from here.
    folder = tempfile.mkdtemp(prefix=f"model-{name}-{version}-")
    local = mlflow.artifacts.download_artifacts(
        artifact_uri=uri, dst_path=folder, tracking_uri=client.tracking_uri
    )
    pipeline = mlflow.sklearn.load_model(local)
    example = Model.load(local).load_input_example(local)
    details = client.get_model_version(name, version)
    featurize, estimator = pipeline.regressor_[:-1], pipeline.regressor_[-1]
    names = [str(feature) for feature in featurize.get_feature_names_out()]
    return LoadedModel(
        name=name,
        version=str(version),
        alias=alias,
        run_id=details.run_id,
        metrics=dict(client.get_run(details.run_id).data.metrics),
        loaded_at=datetime.now(UTC),
        pipeline=pipeline,
        explainer=_explainer(estimator, featurize.transform(example), names),
        stacked_trees=_stacked_trees_if_exact(pipeline, example),
    )


def _price(pipeline, estimate: np.ndarray) -> np.ndarray:
    """What the TransformedTargetRegressor makes of its estimator's output: the price."""
    return estimate if pipeline.inverse_func is None else pipeline.inverse_func(estimate)


def _stacked_trees_if_exact(pipeline, example) -> StackedTrees | None:
    """The stacked trees, if they reproduce the pipeline on the version's input example."""
    stacked = StackedTrees.of(pipeline.regressor_[-1])
    if stacked is None:
        return None
    with sklearn.config_context(**FAST_SKLEARN):
        expected = pipeline.predict(example)
        features = pipeline.regressor_[:-1].transform(example)
    if np.allclose(_price(pipeline, stacked.predict(features)), expected, rtol=1e-9, atol=0):
        return stacked
    logger.warning("event=stacked_trees_mismatch: serving every request through sklearn")
    return None


class ModelStore:
    def __init__(self, settings: ServingSettings, metrics: ServingMetrics) -> None:
        self._settings = settings
        self._metrics = metrics
        # MLflow's client retries a dead server for minutes by default; the poll is our retry loop,
        # so each attempt fails fast and is counted. Read by MLflow per request, from the environment.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
        # Models come through the tracking server's proxy: MLflow's default hands out presigned
        # links to node 2's S3, which node 3 cannot reach (found by the three-node test).
        os.environ.setdefault("MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD", "false")
        self._client = mlflow.MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
        self._current: LoadedModel | None = None
        self._refresh_lock = threading.Lock()  # one load at a time (poll thread vs admin reload)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="model-poll", daemon=True)

    @property
    def current(self) -> LoadedModel | None:
        return self._current

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=10)

    def refresh(self) -> bool:
        """Load the version the alias points at if it is not the one served; True if swapped.

        Raises when the registry cannot be read or the version cannot be loaded; the model served
        so far stays.
        """
        name, alias = self._settings.model_name, self._settings.model_alias
        with self._refresh_lock:
            try:
                target = self._client.get_model_version_by_alias(name, alias).version
            except MlflowException as error:
                if error.error_code == ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
                    logger.info("event=no_model_version model=%s alias=%s", name, alias)
                    return False
                raise
            served = self._current
            if served is not None and served.version == str(target):
                return False
            started = time.perf_counter()
            loaded = load_version(self._client, name, alias, str(target))
            self._current = loaded
            self._publish(served, loaded)
            logger.info(
                "event=model_loaded model=%s version=%s previous=%s seconds=%.2f",
                name,
                loaded.version,
                served.version if served else None,
                time.perf_counter() - started,
            )
            return True

    def _publish(self, previous: LoadedModel | None, loaded: LoadedModel) -> None:
        if previous is not None:
            self._metrics.model_info.remove(previous.name, previous.version, previous.alias, previous.run_id)
        self._metrics.model_info.labels(loaded.name, loaded.version, loaded.alias, loaded.run_id).set(1)
        self._metrics.model_loaded.set(1)
        self._metrics.reloads.inc()

    def _poll(self) -> None:
        while not self._stopped.is_set():
            try:
                self.refresh()
            except Exception as error:  # the registry or S3 is down: keep serving what we have
                self._metrics.reload_failures.inc()
                logger.warning("event=model_reload_failed error=%r", error)
            self._stopped.wait(self._settings.model_poll_seconds)
