"""Node 3 fixtures that need what node 1's pipeline really leaves behind: RawData with ingestion log
and quarantine rows, and an MLflow model with decision runs, promotion history and SHAP images."""

from dataclasses import dataclass

import pytest
from threadpoolctl import threadpool_limits

from realtor_pipeline import steps
from realtor_pipeline.registry import champion_info
from realtor_pipeline.settings import PipelineSettings
from tests.harness.services import MariaDB
from tests.harness.serving import InferenceApi, tracking_uri

BATCH_ROWS = 1_500


@dataclass(frozen=True)
class PipelineRuns:
    settings: PipelineSettings
    mariadb: MariaDB
    versions: tuple[str, ...]  # registered by the two trainings, in order
    champion: str


@pytest.fixture(scope="session")
def pipeline_runs(create_mariadb, mlflow_server, start_data_api, session_id) -> PipelineRuns:
    """Three DAG runs of the real steps: train (first model), skip (no new rows), train (new rows)."""
    mariadb = create_mariadb("app")
    data_api = start_data_api(MIN_UPDATE_TIME="0", DATA_API_BATCHES="4", DATA_API_BATCH_ROWS=str(BATCH_ROWS))
    settings = PipelineSettings(
        raw_data_url=mariadb.url(mariadb.raw_db),
        clean_data_url=mariadb.url(mariadb.clean_db),
        data_api_url=data_api.url,
        model_name=f"app-{session_id}",
        experiment=f"app-{session_id}",
        new_rows_threshold=BATCH_ROWS * 3 // 2,  # more than one batch, less than two
    )
    versions = []
    with tracking_uri(mlflow_server.tracking_uri), threadpool_limits(limits=1):
        for dag_run_id, batches in (("run-1", 2), ("run-2", 0), ("run-3", 2)):
            for _ in range(batches):
                steps.extract(settings)
            if steps.decide(settings, dag_run_id).train:
                steps.split_and_clean(settings)
                versions.append(steps.train_and_promote(settings, dag_run_id).version)
        champion = champion_info(settings.model_name)["version"]
    return PipelineRuns(settings, mariadb, tuple(versions), champion)


@pytest.fixture(scope="session")
def pipeline_api(start_inference_api, pipeline_runs: PipelineRuns) -> InferenceApi:
    """An inference API serving the pipeline's champion, with /pipeline reading its RawData."""
    mariadb = pipeline_runs.mariadb
    return start_inference_api(
        MODEL_NAME=pipeline_runs.settings.model_name,
        PIPELINE_STATUS_HOST=mariadb.host,
        PIPELINE_STATUS_PORT=str(mariadb.port),
        PIPELINE_STATUS_DATABASE=mariadb.raw_db,
        PIPELINE_STATUS_USER=mariadb.status_user,
        PIPELINE_STATUS_PASSWORD=mariadb.status_password,
    )
