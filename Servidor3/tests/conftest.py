"""Node 3's shared fixtures: a real Prometheus running node 3's own config and rules, Locust runs
through `make load-test`, and what node 1's pipeline really leaves behind (RawData with ingestion
log and quarantine rows; an MLflow model with decision runs, promotion history and SHAP images)."""

import json
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
import yaml
from threadpoolctl import threadpool_limits

from realtor_pipeline import steps
from realtor_pipeline.registry import champion_info
from realtor_pipeline.settings import PipelineSettings
from tests.harness.processes import REPO_ROOT, free_port
from tests.harness.services import MariaDB, Prometheus
from tests.harness.serving import InferenceApi, tracking_uri

SERVIDOR3 = Path(__file__).resolve().parents[1]
PROMETHEUS_DIR = SERVIDOR3 / "prometheus"


@pytest.fixture(scope="session")
def start_local_prometheus(
    start_prometheus: Callable[..., Prometheus], tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], Prometheus]:
    """Starts Prometheus on node 3's prometheus.yml and rules with only the targets moved to local
    addresses and the intervals cut to 1 s, so a test of a few seconds sees several scrapes and
    rule evaluations."""

    def start(api_target: str) -> Prometheus:
        port = free_port()
        config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
        config["global"] = {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"}
        targets = {"prometheus": f"127.0.0.1:{port}", "inference-api": api_target}
        for job in config["scrape_configs"]:
            job["static_configs"] = [{"targets": [targets[job["job_name"]]]}]
        folder = tmp_path_factory.mktemp("prometheus-config")
        (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
        (folder / "rules").symlink_to(PROMETHEUS_DIR / "rules")  # rule_files are relative
        return start_prometheus(folder / "prometheus.yml", port)

    return start


@pytest.fixture(scope="session")
def prometheus_without_api(start_local_prometheus: Callable[[str], Prometheus]) -> Prometheus:
    """Node 3's Prometheus with nothing listening at the API's target."""
    return start_local_prometheus(f"127.0.0.1:{free_port()}")


PrometheusQuery = Callable[..., dict]


@pytest.fixture(scope="session")
def prometheus_query() -> PrometheusQuery:
    """`query(prometheus, expr, at=None)`: the JSON answer of an instant query, at `at` (Unix
    time) or now. Prometheus answers status "error" to a query it cannot parse."""

    def query(prometheus: Prometheus, expr: str, at: float | None = None) -> dict:
        params = {"query": expr} | ({"time": at} if at else {})
        return requests.get(f"{prometheus.url}/api/v1/query", params=params, timeout=10).json()

    return query


@pytest.fixture(scope="session")
def run_load_test() -> Callable[..., subprocess.CompletedProcess]:
    """Runs `make load-test` with these Makefile variables, the way a person would."""

    def run(reports: Path, **variables: str) -> subprocess.CompletedProcess:
        arguments = [f"{name}={value}" for name, value in {"LOAD_TEST_REPORTS": reports, **variables}.items()]
        return subprocess.run(
            ["make", "--no-print-directory", "load-test", *arguments],
            cwd=REPO_ROOT,
            env={**os.environ, "OMP_NUM_THREADS": "1"},  # two shared cores: no thread oversubscription
            capture_output=True,
            text=True,
            timeout=90,
        )

    return run


@dataclass(frozen=True)
class LoadedApi:
    url: str
    prometheus: Prometheus
    load_test: subprocess.CompletedProcess
    reports: Path
    load_ended_at: float


@pytest.fixture(scope="session")
def loaded_inference_api(
    inference_api,
    start_local_prometheus: Callable[[str], Prometheus],
    run_load_test: Callable[..., subprocess.CompletedProcess],
    prometheus_query: PrometheusQuery,
    tmp_path_factory: pytest.TempPathFactory,
) -> LoadedApi:
    """The real inference API after a 10 s `make load-test` and a few invalid listings, scraped
    all along by node 3's Prometheus."""
    prometheus = start_local_prometheus(urlsplit(inference_api.url).netloc)
    deadline = time.monotonic() + 30
    while prometheus_query(prometheus, 'up{job="inference-api"} == 1')["data"]["result"] == []:
        assert time.monotonic() < deadline, "Prometheus never scraped the inference API"
        time.sleep(0.5)
    # The dashboards show validation errors too; the API refuses a listing with a price.
    listing = json.loads((SERVIDOR3 / "locust" / "listings.json").read_text())[0]
    for _ in range(3):
        answer = requests.post(f"{inference_api.url}/predict", json={**listing, "price": 1.0}, timeout=10)
        assert answer.status_code == 422, answer.text
    reports = tmp_path_factory.mktemp("load-test")
    load_test = run_load_test(
        reports, LOCUST_HOST=inference_api.url, LOCUST_USERS="5", LOCUST_SPAWN_RATE="5", LOCUST_RUN_TIME="10s"
    )
    load_ended_at = time.time()
    time.sleep(3)  # the last scrapes and rule evaluations after the load
    return LoadedApi(inference_api.url, prometheus, load_test, reports, load_ended_at)


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
