"""Fixtures for node 3's tests: registered model versions and the inference API serving them.

The models are trained with node 1's library on generated listings and registered in the
session's real `mlflow server`, the way the DAG does; the API then runs as its own process
(`uvicorn --factory inference_api.app:create_app`, as its image runs it) that cannot import the
training code, so it serves exactly what the registry holds.
"""

import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import mlflow
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import Ridge
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from data_api.generator import generate_listings
from realtor_pipeline import registry
from realtor_pipeline.evaluate import TARGET
from realtor_pipeline.features import ListingFeatures
from realtor_pipeline.split import clean_training_rows, priced_rows, split_of
from realtor_pipeline.train import on_log_price
from realtor_pipeline.validate import validate_listings
from tests.harness.processes import REPO_ROOT, VENV_BIN, ServiceProcess, free_port, http_ok
from tests.harness.services import MariaDB, MLflowServer

STATES = ("Massachusetts", "Florida")
ROWS_PER_STATE = 2_000
SEED = 23


@dataclass(frozen=True)
class ServedModels:
    name: str
    versions: tuple[str, ...]  # boosting first (the champion at the start), then ridge
    test_rows: pd.DataFrame  # valid listing rows as the API receives them (no price)


@contextmanager
def tracking_uri(uri: str) -> Iterator[None]:
    """MLflow's ambient tracking URI for a session-scoped fixture (monkeypatch is per test)."""
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    try:
        yield
    finally:
        if previous is None:
            del os.environ["MLFLOW_TRACKING_URI"]
        else:
            os.environ["MLFLOW_TRACKING_URI"] = previous


@pytest.fixture(scope="session")
def served_models(mlflow_server: MLflowServer, session_id: str) -> ServedModels:
    """Two registered versions of one model, `@champion` on the first."""
    listings = pd.concat(
        [generate_listings(state, ROWS_PER_STATE, SEED) for state in STATES], ignore_index=True
    )
    priced = priced_rows(validate_listings(listings).valid)  # what the pipeline would keep
    split = split_of(priced)
    train = clean_training_rows(priced[split == "train"])
    models = (
        on_log_price(
            [("features", ListingFeatures()), ("model", HistGradientBoostingRegressor(max_iter=60))]
        ),
        on_log_price([("features", ListingFeatures()), ("scale", StandardScaler()), ("model", Ridge())]),
    )
    name = f"serving-{session_id}"
    versions = []
    with tracking_uri(mlflow_server.tracking_uri), threadpool_limits(limits=1):
        mlflow.set_experiment(name)
        for model in models:
            model.fit(train, train[TARGET])
            with mlflow.start_run() as run:
                mlflow.log_metric("test_mae", 1.0)  # what GET /model reports; the value is the test's
                version = registry.register_model(run.info.run_id, model, train, name, {"source": "tests"})
            versions.append(version.version)
        mlflow.MlflowClient().set_registered_model_alias(name, registry.CHAMPION, versions[0])
    test_rows = registry.as_served(priced[split == "test"]).reset_index(drop=True)
    return ServedModels(name, tuple(versions), test_rows)


@dataclass(frozen=True)
class InferenceApi:
    url: str
    admin_api_key: str
    process: ServiceProcess


@pytest.fixture(scope="session")
def start_inference_api(
    served_models: ServedModels, mlflow_server: MLflowServer, mariadb: MariaDB, tmp_path_factory
) -> Iterator[Callable[..., InferenceApi]]:
    """Starts an inference API serving `served_models`; `env` overrides its settings. Waits for
    `/ready` (a model loaded) unless `wait_for_model=False`, then only for `/health`."""
    started: list[ServiceProcess] = []

    def start(wait_for_model: bool = True, **env: str) -> InferenceApi:
        port = free_port()
        admin_api_key = secrets.token_hex(8)
        folder = tmp_path_factory.mktemp("inference_api")
        process = ServiceProcess(
            "inference API",
            [
                str(VENV_BIN / "uvicorn"),
                "--factory",
                "inference_api.app:create_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
            ],
            folder / "inference_api.log",
            {
                "PYTHONPATH": str(REPO_ROOT / "Servidor3" / "inference_api"),
                "OMP_NUM_THREADS": "1",
                "MLFLOW_TRACKING_URI": mlflow_server.tracking_uri,
                "MODEL_NAME": served_models.name,
                "MODEL_POLL_SECONDS": "1",
                "INFERENCE_LOG_HOST": mariadb.host,
                "INFERENCE_LOG_PORT": str(mariadb.port),
                "INFERENCE_LOG_DATABASE": mariadb.inference_log_db,
                "INFERENCE_LOG_USER": mariadb.inference_log_user,
                "INFERENCE_LOG_PASSWORD": mariadb.inference_log_password,
                "INFERENCE_LOG_FLUSH_SECONDS": "0.2",
                "PIPELINE_STATUS_HOST": mariadb.host,
                "PIPELINE_STATUS_PORT": str(mariadb.port),
                "PIPELINE_STATUS_DATABASE": mariadb.raw_db,
                "PIPELINE_STATUS_USER": mariadb.status_user,
                "PIPELINE_STATUS_PASSWORD": mariadb.status_password,
                "ADMIN_API_KEY": admin_api_key,
                **env,
            },
        )
        url = f"http://127.0.0.1:{port}"
        started.append(
            process.start(http_ok(f"{url}/ready" if wait_for_model else f"{url}/health"), timeout=120)
        )
        return InferenceApi(url, admin_api_key, process)

    yield start
    for process in started:
        process.stop()


@pytest.fixture(scope="session")
def inference_api(start_inference_api: Callable[..., InferenceApi]) -> InferenceApi:
    """A shared inference API serving the champion of `served_models`."""
    return start_inference_api()
