"""The realtor_price_model DAG run with `dag.test()` against the real data API, MariaDB and MLflow.

Airflow's metadata database is SQLite in a temporary AIRFLOW_HOME, migrated once per module; the
DAG reads its connections from AIRFLOW_CONN_* JSON variables, as it does in production. Airflow
reads its configuration once, at import, so every DAG run happens in a fresh process with the
environment of that moment (as a real task would); pytest's own process never imports Airflow.
"""

import json
import os
import subprocess
import sys
import time

import mlflow
import pytest
from sqlalchemy import create_engine, func, select

from realtor_pipeline.tables import collection_generation, realtor_raw
from tests.harness.processes import REPO_ROOT, VENV_BIN, free_port

DAG_FILE = REPO_ROOT / "Servidor1" / "airflow" / "dags" / "realtor_price_model.py"
BATCH_ROWS = 1_500
EDGES = {
    "extract_data": {"branch_on_exhaustion", "validate"},
    "branch_on_exhaustion": {"reset_data", "validate"},
    "reset_data": {"end_after_reset"},
    "end_after_reset": {"end"},
    "validate": {"decide_to_train"},
    "decide_to_train": {"split_data", "end_no_train"},
    "end_no_train": {"end"},
    "split_data": {"preprocess_data"},
    "preprocess_data": {"train_candidates"},
    "train_candidates": {"evaluate_and_promote", "explain"},
    "evaluate_and_promote": {"explain"},
    "explain": {"end"},
    "end": set(),
}


def connection(conn_type: str, host: str, port: int, **fields) -> str:
    return json.dumps({"conn_type": conn_type, "host": host, "port": port, **fields})


@pytest.fixture(scope="module")
def airflow(create_mariadb, mlflow_server, start_data_api, tmp_path_factory):
    """Environment of node 1 (as its manifests set it) and a migrated Airflow metadata database."""
    home = tmp_path_factory.mktemp("airflow_home")
    mariadb = create_mariadb("dag")
    api = start_data_api(MIN_UPDATE_TIME="0", DATA_API_BATCHES="3", DATA_API_BATCH_ROWS=str(BATCH_ROWS))
    mysql = {"login": mariadb.user, "password": mariadb.password}
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAG_FILE.parent),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW_CONN_RAW_DATA": connection(
            "mysql", mariadb.host, mariadb.port, schema=mariadb.raw_db, **mysql
        ),
        "AIRFLOW_CONN_CLEAN_DATA": connection(
            "mysql", mariadb.host, mariadb.port, schema=mariadb.clean_db, **mysql
        ),
        "AIRFLOW_CONN_DATA_API": connection("http", "127.0.0.1", int(api.url.rsplit(":", 1)[1])),
        "MLFLOW_TRACKING_URI": mlflow_server.tracking_uri,
        "PIPELINE_MODEL_NAME": "realtor-dag",
        "PIPELINE_EXPERIMENT": "realtor-dag",
        "PIPELINE_NEW_ROWS_THRESHOLD": str(BATCH_ROWS * 3 // 2),
        "PIPELINE_TASK_RETRIES": "2",
        "PIPELINE_RETRY_DELAY_SECONDS": "1",
        "OMP_NUM_THREADS": "1",
    }
    with pytest.MonkeyPatch.context() as patch:
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "MLFLOW_S3_ENDPOINT_URL"):
            patch.delenv(name, raising=False)
        for name, value in env.items():
            patch.setenv(name, value)
        migrate = subprocess.run([VENV_BIN / "airflow", "db", "migrate"], capture_output=True, text=True)
        assert migrate.returncode == 0, migrate.stderr[-2000:]
        mlflow.set_tracking_uri(mlflow_server.tracking_uri)
        yield {"raw": create_engine(mariadb.url(mariadb.raw_db)), "api": api, "patch": patch}


# Loads the DAG file, then prints either its graph or, after dag.test(), each task's state.
RUNNER = """
import json, runpy, sys
dag = runpy.run_path(sys.argv[1])["realtor_price_model"]()
if sys.argv[2] == "graph":
    print(json.dumps({
        "edges": {task.task_id: sorted(task.downstream_task_ids) for task in dag.tasks},
        "max_active_runs": dag.max_active_runs, "catchup": dag.catchup,
        "end_trigger_rule": getattr(dag.task_dict["end"].trigger_rule, "value", None),
        "extract_retries": dag.task_dict["extract_data"].retries,
        "extract_backoff": dag.task_dict["extract_data"].retry_exponential_backoff,
    }))
else:
    run = dag.test()
    print(json.dumps({ti.task_id: getattr(ti.state, "value", ti.state) for ti in run.get_task_instances()}))
"""


def dag_process(mode: str, env: dict[str, str] | None = None) -> dict:
    pythonpath = f"{REPO_ROOT / 'Servidor1' / 'pipeline'}"
    result = subprocess.run(
        [sys.executable, "-c", RUNNER, str(DAG_FILE), mode],
        capture_output=True, text=True, timeout=900,
        env={**(env or os.environ), "PYTHONPATH": pythonpath},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def run_dag() -> dict[str, str]:
    return dag_process("test")


def rows_stored(raw) -> int:
    with raw.connect() as connection:
        return connection.execute(select(func.count()).select_from(realtor_raw)).scalar_one()


def test_dag_file_parses_fast_without_io_and_wires_the_expected_graph():
    probe = (
        "import sys, time, runpy; started = time.perf_counter(); "
        f"runpy.run_path({str(DAG_FILE)!r}); "
        "print(time.perf_counter() - started); "
        "print(sorted(m for m in ('mlflow', 'sklearn', 'shap', 'realtor_pipeline') "
        "if m in sys.modules))"
    )
    env = {"PATH": "/usr/bin:/bin", "AIRFLOW_HOME": "/tmp/realtor-dag-parse"}
    parsed = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env
    )
    seconds, heavy = parsed.stdout.strip().splitlines()[-2:]
    print(f"dag_parse_seconds={float(seconds):.2f}")
    assert heavy == "[]", f"parsing the DAG imported {heavy}"

    graph = dag_process("graph", {**env, "PATH": os.environ["PATH"]})
    assert {task: set(downstream) for task, downstream in graph["edges"].items()} == EDGES
    assert graph["max_active_runs"] == 1 and not graph["catchup"]
    assert graph["end_trigger_rule"] == "none_failed_min_one_success"
    assert graph["extract_retries"] >= 1 and graph["extract_backoff"]


def test_first_run_trains_then_no_train_then_retrains_then_resets(airflow):
    started = time.perf_counter()
    first = run_dag()
    print(f"train_run_seconds={time.perf_counter() - started:.1f}")
    assert first["explain"] == first["evaluate_and_promote"] == first["end"] == "success"
    assert first["end_no_train"] == first["reset_data"] == "skipped"
    client = mlflow.MlflowClient()
    champion = client.get_model_version_by_alias("realtor-dag", "champion")

    below = run_dag()  # one more batch: under the new-rows threshold
    assert below["end_no_train"] == "success" and below["split_data"] == "skipped"
    decisions = mlflow.search_runs(experiment_names=["realtor-dag"], filter_string="tags.event = 'decision'",
                                   order_by=["attributes.start_time ASC"])  # fmt: skip
    assert list(decisions["tags.decision"]) == ["train", "skip"]
    assert "new rows < threshold" in decisions["tags.reason"].iloc[-1]
    assert decisions["tags.dag_run_id"].str.startswith("manual__").all()

    # Enough new rows to train again, but a candidate must now beat the champion by 99%.
    airflow["patch"].setenv("PIPELINE_PROMOTION_MARGIN", "0.99")
    retrained = run_dag()
    airflow["patch"].delenv("PIPELINE_PROMOTION_MARGIN")
    assert retrained["train_candidates"] == retrained["end"] == "success"
    assert len(client.search_model_versions("name = 'realtor-dag'")) == 2
    assert client.get_model_version_by_alias("realtor-dag", "champion").version == champion.version

    stored = rows_stored(airflow["raw"])
    exhausted = run_dag()  # the three batches are used up
    assert exhausted["reset_data"] == exhausted["end_after_reset"] == exhausted["end"] == "success"
    assert exhausted["validate"] == "skipped"
    with airflow["raw"].connect() as connection:
        generations = connection.execute(select(func.max(collection_generation.c.generation))).scalar_one()
    assert generations == 2 and rows_stored(airflow["raw"]) == stored, "history kept across the reset"


def test_data_api_down_fails_after_retries_and_a_rerun_ingests_each_row_once(airflow, start_data_api):
    dead = connection("http", "127.0.0.1", free_port())
    airflow["patch"].setenv("AIRFLOW_CONN_DATA_API", dead)
    down = run_dag()
    assert down["extract_data"] == "failed" and down["end"] != "success"

    # Recovery: an API that keeps serving its first batch, so a second run sees it again.
    steady = start_data_api(MIN_UPDATE_TIME="3600", DATA_API_BATCHES="2", DATA_API_BATCH_ROWS="400",
                            DATA_API_SEED="7")  # fmt: skip
    airflow["patch"].setenv(
        "AIRFLOW_CONN_DATA_API", connection("http", "127.0.0.1", int(steady.url.rsplit(":", 1)[1]))
    )
    before = rows_stored(airflow["raw"])
    assert run_dag()["extract_data"] == "success"
    once = rows_stored(airflow["raw"])
    assert 0 < once - before <= 400
    assert run_dag()["extract_data"] == "success"
    assert rows_stored(airflow["raw"]) == once, "the same batch again adds nothing"
