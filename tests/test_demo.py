"""`make demo`'s script, run as a user runs it: the whole stack up to a served champion, then down.

Its databases are this session's (a RawData/CleanData/InferenceLog set of its own, SQLite for
MLflow's metadata: the embedded default), so the machine's own demo data is untouched.
"""

import re
import socket
import subprocess
import sys

import pytest

from tests.harness.processes import REPO_ROOT


@pytest.mark.slow
def test_demo_runs_the_dag_until_a_champion_serves_a_prediction_then_stops(create_mariadb, tmp_path):
    databases = create_mariadb("demo")
    result = subprocess.run(
        [sys.executable, "scripts/demo.py", "--once", "--free-ports", "--state-dir", str(tmp_path / "demo")],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        env={
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": str(tmp_path),
            "REALTOR_CREDENTIALS_FILE": str(tmp_path / "unused-credentials.env"),
            "PIPELINE_RAW_DATA_URL": databases.url(databases.raw_db),
            "PIPELINE_CLEAN_DATA_URL": databases.url(databases.clean_db),
            "MLFLOW_BACKEND_STORE_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
            "INFERENCE_LOG_HOST": databases.host,
            "INFERENCE_LOG_DATABASE": databases.inference_log_db,
            "INFERENCE_LOG_USER": databases.inference_log_user,
            "INFERENCE_LOG_PASSWORD": databases.inference_log_password,
            "PIPELINE_STATUS_HOST": databases.host,
            "PIPELINE_STATUS_DATABASE": databases.raw_db,
            "PIPELINE_STATUS_USER": databases.status_user,
            "PIPELINE_STATUS_PASSWORD": databases.status_password,
        },
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    # Progress: each step, and the DAG's tasks as they finish.
    assert "[1/4]" in out and "[4/4]" in out
    assert re.search(r"· train_candidates: success", out)
    assert re.search(r"Champion: realtor-price version 1 \(test_mae=[\d,.]+", out)
    price = re.search(r"Sample prediction: .* \$([\d,]+) \(listed at \$([\d,]+)\)", out)
    assert price and int(price[1].replace(",", "")) > 10_000
    urls = dict(
        re.findall(r"^  (Airflow|MLflow|Inference API|Streamlit|Prometheus).*?(http://\S+)$", out, re.M)
    )
    assert set(urls) >= {"Airflow", "MLflow", "Inference API", "Prometheus"}
    for name in ("prometheus", "inference-api", "airflow", "mlflow", "data-api"):
        assert f"stopped {name}" in out
    for url in urls.values():  # every service is down again
        host, port = url.removeprefix("http://").split(":")
        with socket.socket() as probe:
            assert probe.connect_ex((host, int(port))) != 0, f"{url} still answers"
