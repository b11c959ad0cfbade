"""The harness's own smoke test: each real service answers and is wired the way later tests need."""

import os
import secrets
import subprocess
import time
from pathlib import Path

import boto3
import mlflow
import pytest
import requests
import sqlalchemy
from sqlalchemy.exc import OperationalError

from tests.harness.processes import REPO_ROOT, free_port


def test_mariadb_has_session_databases_and_a_least_privilege_user(mariadb):
    engine = sqlalchemy.create_engine(mariadb.url(mariadb.raw_db))
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE probe (id INT PRIMARY KEY, note VARCHAR(20))")
        connection.exec_driver_sql("INSERT INTO probe VALUES (1, 'ok')")
        assert connection.exec_driver_sql("SELECT note FROM probe").scalar_one() == "ok"
        connection.exec_driver_sql("DELETE FROM probe")
    with engine.connect() as connection:
        databases = {row[0] for row in connection.exec_driver_sql("SHOW DATABASES")}
        assert {mariadb.raw_db, mariadb.clean_db} <= databases
        assert "mysql" not in databases, "the pipeline user sees only its own databases"
        with pytest.raises(OperationalError, match="denied"):
            connection.exec_driver_sql(f"DROP DATABASE `{mariadb.clean_db}`")
    engine.dispose()


def test_the_inference_log_user_can_only_insert_predictions(mariadb):
    user = f"{mariadb.inference_log_user}:{mariadb.inference_log_password}@{mariadb.host}:{mariadb.port}"
    engine = sqlalchemy.create_engine(f"mysql+mysqldb://{user}/{mariadb.inference_log_db}")
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO inference_log (request_id, row_in_request, logged_at, endpoint, model_name,"
            " model_version, latency_ms, predicted_price, status, state)"
            " VALUES ('probe', 0, NOW(), 'single', 'm', '1', 1.0, 1.0, 'sold', 'Ohio')"
        )
    with engine.connect() as connection:
        for statement in (
            "SELECT COUNT(*) FROM inference_log",
            "DELETE FROM inference_log",
            f"SELECT COUNT(*) FROM `{mariadb.raw_db}`.realtor_raw",
            "CREATE TABLE probe (id INT)",
        ):
            with pytest.raises(OperationalError, match="denied"):
                connection.exec_driver_sql(statement)
    engine.dispose()


def test_s3_server_holds_the_artifact_bucket(s3):
    client = boto3.client(
        "s3",
        endpoint_url=s3.endpoint_url,
        aws_access_key_id=s3.access_key,
        aws_secret_access_key=s3.secret_key,
        region_name="us-east-1",
    )
    assert s3.bucket in {bucket["Name"] for bucket in client.list_buckets()["Buckets"]}


def test_mlflow_server_keeps_runs_in_postgres_and_artifacts_in_s3(
    mlflow_server, postgres, s3, tmp_path, monkeypatch
):
    # The client holds no S3 credentials: artefacts must go through the tracking server's proxy.
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "MLFLOW_S3_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    client = mlflow.MlflowClient(mlflow_server.tracking_uri)
    experiment_id = client.create_experiment("harness-smoke")
    run = client.create_run(experiment_id)
    client.log_metric(run.info.run_id, "rmse", 1.5)
    note = tmp_path / "note.txt"
    note.write_text("artefact through the proxy")
    client.log_artifact(run.info.run_id, str(note))

    engine = sqlalchemy.create_engine(postgres.url)
    with engine.connect() as connection:
        name = connection.exec_driver_sql(
            "SELECT name FROM experiments WHERE experiment_id = %(id)s", {"id": int(experiment_id)}
        ).scalar_one()
        assert name == "harness-smoke"
    engine.dispose()

    bucket = boto3.resource(
        "s3",
        endpoint_url=s3.endpoint_url,
        aws_access_key_id=s3.access_key,
        aws_secret_access_key=s3.secret_key,
        region_name="us-east-1",
    ).Bucket(s3.bucket)
    keys = [item.key for item in bucket.objects.all()]
    assert any(key.endswith(f"{run.info.run_id}/artifacts/note.txt") for key in keys), keys
    downloaded = client.download_artifacts(run.info.run_id, "note.txt", str(tmp_path / "back"))
    assert Path(downloaded).read_text() == "artefact through the proxy"


def test_prometheus_scrapes_and_answers_queries(start_prometheus, tmp_path):
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s}\nscrape_configs:\n"
        f"  - {{job_name: self, static_configs: [{{targets: ['127.0.0.1:{port}']}}]}}\n"
        f"  - {{job_name: absent, static_configs: [{{targets: ['127.0.0.1:{free_port()}']}}]}}\n"
    )
    prometheus = start_prometheus(config, port)
    deadline, up = time.monotonic() + 30, {}
    while time.monotonic() < deadline and len(up) < 2:
        result = requests.get(f"{prometheus.url}/api/v1/query", params={"query": "up"}, timeout=5).json()
        up = {sample["metric"]["job"]: sample["value"][1] for sample in result["data"]["result"]}
        time.sleep(0.5)
    assert up == {"self": "1", "absent": "0"}


def test_data_api_answers(data_api):
    assert requests.get(f"{data_api.url}/health", timeout=5).json() == {"status": "ok"}


def test_mysql_init_gives_airflow_its_own_database_and_nothing_else(mariadb, admin_credentials, session_id):
    names = {"AIRFLOW_DB": f"airflow_{session_id}", "AIRFLOW_DB_USER": f"airflow_{session_id}"}
    password = secrets.token_hex(12)
    env = {
        **os.environ,
        **names,
        "AIRFLOW_DB_PASSWORD": password,
        "MYSQL_HOST": mariadb.host,
        "MYSQL_ADMIN_USER": admin_credentials["LOCAL_ADMIN_USER"],
        "MYSQL_PWD": admin_credentials["LOCAL_ADMIN_PASSWORD"],
        "RAW_DATA_DB": mariadb.raw_db,
        "CLEAN_DATA_DB": mariadb.clean_db,
        "PIPELINE_DB_USER": mariadb.user,
        "PIPELINE_DB_PASSWORD": mariadb.password,
    }
    init = REPO_ROOT / "Servidor1" / "mysql" / "init-databases.sh"
    for _ in range(2):  # idempotent
        subprocess.run([init], env=env, check=True, capture_output=True)
    airflow = sqlalchemy.create_engine(
        f"mysql+mysqldb://{names['AIRFLOW_DB_USER']}:{password}@{mariadb.host}:{mariadb.port}/{names['AIRFLOW_DB']}"
    )
    try:
        with airflow.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE probe (id INT PRIMARY KEY)")
            connection.exec_driver_sql("DROP TABLE probe")  # Airflow's migrations need it, on its own DB
            with pytest.raises(OperationalError, match="denied"):
                connection.exec_driver_sql(f"SELECT 1 FROM `{mariadb.raw_db}`.realtor_raw")
    finally:
        airflow.dispose()
        admin = sqlalchemy.create_engine(
            f"mysql+mysqldb://{env['MYSQL_ADMIN_USER']}:{env['MYSQL_PWD']}@{mariadb.host}:{mariadb.port}/"
        )
        with admin.begin() as connection:
            connection.exec_driver_sql(f"DROP DATABASE `{names['AIRFLOW_DB']}`")
            connection.exec_driver_sql(f"DROP USER '{names['AIRFLOW_DB_USER']}'@'%%'")
        admin.dispose()
