"""The inference API as a process, serving versions registered in the real `mlflow server`, logging
to the real MariaDB: predictions, errors, hot swaps, outages and metrics."""

import json
import math
import os
import secrets
import statistics
import subprocess
import threading
import time
from pathlib import Path

import mlflow
import numpy as np
import pytest
import requests
import sqlalchemy

from inference_api.schemas import Listing
from realtor_pipeline import registry
from tests.harness.processes import REPO_ROOT, ServiceProcess, free_port, http_ok

# The OpenAPI example: a complete, valid listing.
LISTING = Listing.model_config["json_schema_extra"]["examples"][0]


def as_json(rows) -> list[dict]:
    """DataFrame rows as a client sends them: NaN becomes null."""
    return [
        {
            key: (None if isinstance(value, float) and math.isnan(value) else value)
            for key, value in row.items()
        }
        for row in rows.to_dict("records")
    ]


def model_output(tracking_uri: str, name: str, version: str, rows) -> np.ndarray:
    mlflow.set_tracking_uri(tracking_uri)
    try:
        return mlflow.sklearn.load_model(f"models:/{name}/{version}").predict(rows)
    finally:
        mlflow.set_tracking_uri(None)


def test_single_and_batch_predictions_equal_the_registered_models_own_output(
    inference_api, served_models, mlflow_server
):
    rows = served_models.test_rows.head(200)
    expected = model_output(mlflow_server.tracking_uri, served_models.name, served_models.versions[0], rows)
    listings = as_json(rows)

    batch = requests.post(f"{inference_api.url}/predict/batch", json={"listings": listings}, timeout=30)
    assert batch.status_code == 200, batch.text
    assert batch.json()["model_version"] == served_models.versions[0]
    np.testing.assert_allclose(batch.json()["prices"], expected, rtol=1e-9)

    for listing, price in zip(listings[:20], expected[:20], strict=True):
        single = requests.post(f"{inference_api.url}/predict", json=listing, timeout=10)
        assert single.status_code == 200, single.text
        assert single.json()["price"] == pytest.approx(price, rel=1e-9)

    described = requests.get(f"{inference_api.url}/model", timeout=10).json()
    assert described["model_name"] == served_models.name
    assert described["model_version"] == served_models.versions[0]
    assert described["alias"] == "champion"
    assert described["metrics"] == {"test_mae": 1.0}


def test_optional_fields_may_be_null_or_absent_and_explanations_add_up(inference_api):
    sparse = {"status": "sold", "state": "Massachusetts", "bed": None, "prev_sold_date": None}
    response = requests.post(f"{inference_api.url}/predict", json=sparse, timeout=10)
    assert response.status_code == 200, response.text
    assert response.json()["price"] > 0

    explained = requests.post(f"{inference_api.url}/explain", json=LISTING, timeout=30)
    assert explained.status_code == 200, explained.text
    body = explained.json()
    pushes = {item["feature"]: item["shap_value"] for item in body["contributions"]}
    assert {"bed", "log_house_size", "zip_code_mean_target"} <= set(pushes)
    # SHAP is additive: the base value plus every push is the model's log(1 + price).
    assert body["base_value"] + sum(pushes.values()) == pytest.approx(math.log1p(body["price"]), abs=1e-6)


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({key: value for key, value in LISTING.items() if key != "status"}, "status", "Field required"),
        ({**LISTING, "bed": "three"}, "bed", "valid number"),
        ({**LISTING, "bath": True}, "bath", "valid number"),
        ({**LISTING, "house_size": -20.0}, "house_size", "greater than 100"),
        ({**LISTING, "bed": 500.0}, "bed", "less than or equal to 50"),
        ({**LISTING, "status": "rented"}, "status", "for_sale"),
        ({**LISTING, "price": 250_000.0}, "price", "Extra inputs are not permitted"),
        ({**LISTING, "prev_sold_date": "2999-01-01"}, "prev_sold_date", "future"),
        ({**LISTING, "prev_sold_date": "20140620"}, "prev_sold_date", "YYYY-MM-DD"),
        ({**LISTING, "prev_sold_date": 20140620}, "prev_sold_date", "as text"),
        ({**LISTING, "state": ""}, "state", "at least 1 character"),
        ({**LISTING, "brokered_by": float("inf")}, "brokered_by", "finite number"),  # JSON's Infinity
    ],
)
def test_bad_listings_get_a_422_naming_the_field(inference_api, body, field, words):
    # json.dumps, not requests' json=: it writes Infinity, as some clients do.
    response = requests.post(
        f"{inference_api.url}/predict",
        data=json.dumps(body),
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 422
    errors = response.json()["detail"]
    assert [error["loc"][-1] for error in errors] == [field]
    assert words in errors[0]["msg"]


def test_malformed_bodies_and_oversized_batches_get_a_422(inference_api):
    not_json = requests.post(
        f"{inference_api.url}/predict",
        data="{bed: 3",
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert not_json.status_code == 422
    assert not_json.json()["detail"][0]["type"] == "json_invalid"

    one_bad = [LISTING, {**LISTING, "acre_lot": -1.0}]
    response = requests.post(f"{inference_api.url}/predict/batch", json={"listings": one_bad}, timeout=10)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "listings", 1, "acre_lot"]

    too_many = requests.post(
        f"{inference_api.url}/predict/batch", json={"listings": [LISTING] * 1001}, timeout=30
    )
    assert too_many.status_code == 422
    assert too_many.json()["detail"] == [
        {
            "type": "too_long",
            "loc": ["body", "listings"],
            "msg": "at most 1000 listings per request, got 1001",
        }
    ]
    empty = requests.post(f"{inference_api.url}/predict/batch", json={"listings": []}, timeout=10)
    assert empty.status_code == 422


def test_predictions_land_in_the_inference_log_table(inference_api, mariadb, admin_credentials):
    response = requests.post(
        f"{inference_api.url}/predict/batch", json={"listings": [LISTING] * 3}, timeout=10
    )
    request_id = response.json()["request_id"]
    admin = sqlalchemy.create_engine(
        f"mysql+mysqldb://{admin_credentials['LOCAL_ADMIN_USER']}:{admin_credentials['LOCAL_ADMIN_PASSWORD']}"
        f"@127.0.0.1:3306/{mariadb.inference_log_db}"
    )
    deadline, rows = time.monotonic() + 30, []
    while time.monotonic() < deadline and len(rows) < 3:
        with admin.connect() as connection:
            rows = connection.exec_driver_sql(
                "SELECT row_in_request, endpoint, model_version, predicted_price, state, bed, prev_sold_date"
                " FROM inference_log WHERE request_id = %s ORDER BY row_in_request",
                (request_id,),
            ).all()
        time.sleep(0.2)
    admin.dispose()
    assert [row[0] for row in rows] == [0, 1, 2]
    assert {row[1:3] for row in rows} == {("batch", response.json()["model_version"])}
    assert [row[3] for row in rows] == pytest.approx(response.json()["prices"])
    assert rows[0][4:6] == ("Massachusetts", 3.0)
    assert str(rows[0][6]) == "2014-06-20"


def scrape(url: str) -> str:
    return requests.get(f"{url}/metrics", timeout=10).text


def sample(metrics_text: str, series: str) -> float:
    """The value of one exposition line `series value`; 0 when absent."""
    for line in metrics_text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_expose_each_serving_metric_with_its_labels(inference_api, served_models):
    requests.post(f"{inference_api.url}/predict", json=LISTING, timeout=10)
    requests.post(f"{inference_api.url}/predict/batch", json={"listings": [LISTING] * 4}, timeout=10)
    requests.post(f"{inference_api.url}/predict", json={**LISTING, "bed": -1.0}, timeout=10)
    text = scrape(inference_api.url)
    version = requests.get(f"{inference_api.url}/model", timeout=10).json()["model_version"]
    for series in (
        'http_requests_total{handler="/predict",method="POST",status="2xx"}',
        'http_requests_total{handler="/predict",method="POST",status="4xx"}',
        'http_request_duration_seconds_count{handler="/predict",method="POST"}',
        f'realtor_predictions_total{{endpoint="single",model_version="{version}"}}',
        f'realtor_predictions_total{{endpoint="batch",model_version="{version}"}}',
        'realtor_model_latency_seconds_count{endpoint="single"}',
        'realtor_batch_size_bucket{le="5.0"}',
        'realtor_prediction_errors_total{kind="validation"}',
        'realtor_predicted_price_dollars_bucket{le="5e+06"}',
        "realtor_model_loaded",
        "realtor_model_reloads_total",
    ):
        assert sample(text, series) >= 1, f"{series} missing or zero in /metrics"
    assert sample(text, 'realtor_prediction_errors_total{kind="model_error"}') == 0
    # Millisecond buckets, not the instrumentator's default 0.1 / 0.5 / 1 s.
    for bucket in (
        'http_request_duration_seconds_bucket{handler="/predict",le="0.001",method="POST"}',
        'realtor_model_latency_seconds_bucket{endpoint="single",le="0.0025"}',
    ):
        assert f"\n{bucket} " in text
    info = [line for line in text.splitlines() if line.startswith("realtor_model_info{")]
    assert len(info) == 1 and f'model_version="{version}"' in info[0] and info[0].endswith(" 1.0")
    for name in (
        "realtor_model_reload_failures_total",
        "realtor_inference_log_rows_written_total",
        "realtor_inference_log_rows_dropped_total",
        "realtor_inference_log_queue_depth",
    ):
        assert f"\n{name} " in text


def test_a_moved_alias_is_served_within_the_poll_interval_without_failed_requests(
    start_inference_api, served_models, mlflow_server
):
    api = start_inference_api()
    client = mlflow.MlflowClient(tracking_uri=mlflow_server.tracking_uri)
    first, second = served_models.versions
    seen, failures, stop = [], [], threading.Event()

    def keep_calling():
        with requests.Session() as session:
            while not stop.is_set():
                response = session.post(f"{api.url}/predict", json=LISTING, timeout=10)
                if response.status_code == 200:
                    seen.append(response.json()["model_version"])
                else:
                    failures.append(response.status_code)

    caller = threading.Thread(target=keep_calling)
    caller.start()
    try:
        time.sleep(0.5)
        client.set_registered_model_alias(served_models.name, registry.CHAMPION, second)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (not seen or seen[-1] != second):
            time.sleep(0.1)
        time.sleep(0.5)
    finally:
        stop.set()
        caller.join()
        client.set_registered_model_alias(served_models.name, registry.CHAMPION, first)
    assert failures == []
    assert seen[0] == first and seen[-1] == second
    assert sorted(set(seen)) == sorted({first, second})  # one swap: first…first, second…second
    assert seen == sorted(seen, key=lambda version: version != first)


def test_waits_for_mlflow_at_start_and_keeps_serving_through_an_outage(start_inference_api, mlflow_server):
    mlflow_server.process.stop()
    try:
        api = start_inference_api(wait_for_model=False)
        assert requests.get(f"{api.url}/ready", timeout=5).status_code == 503
        refused = requests.post(f"{api.url}/predict", json=LISTING, timeout=5)
        assert refused.status_code == 503 and "no model loaded yet" in refused.json()["detail"]
    finally:
        mlflow_server.process.start(http_ok(f"{mlflow_server.tracking_uri}/health"), timeout=240)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not http_ok(f"{api.url}/ready")():
        time.sleep(0.5)
    assert requests.get(f"{api.url}/ready", timeout=5).status_code == 200

    mlflow_server.process.stop()
    try:
        failures_before = sample(scrape(api.url), "realtor_model_reload_failures_total")
        time.sleep(3)  # a few polls against the stopped server
        for _ in range(20):
            assert requests.post(f"{api.url}/predict", json=LISTING, timeout=5).status_code == 200
        assert requests.get(f"{api.url}/ready", timeout=5).status_code == 200
        assert sample(scrape(api.url), "realtor_model_reload_failures_total") > failures_before
    finally:
        mlflow_server.process.start(http_ok(f"{mlflow_server.tracking_uri}/health"), timeout=240)


def test_admin_reload_needs_the_key(inference_api):
    url = f"{inference_api.url}/admin/reload"
    assert requests.post(url, headers={"X-API-Key": "wrong"}, timeout=10).status_code == 401
    assert requests.post(url, timeout=10).status_code == 422
    response = requests.post(url, headers={"X-API-Key": inference_api.admin_api_key}, timeout=30)
    assert response.status_code == 200
    assert response.json() == {"reloaded": False, "model_version": response.json()["model_version"]}


class PrivateMariaDB:
    """A MariaDB server this test owns (own data directory, socket and port), so it can stop it."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.port = folder, free_port()
        self.socket = folder / "mariadb.sock"
        self.password = secrets.token_hex(8)
        self.process: ServiceProcess | None = None

    def start(self) -> None:
        self.process = ServiceProcess(
            "private MariaDB",
            [
                "/usr/sbin/mariadbd",
                "--no-defaults",
                f"--datadir={self.folder / 'data'}",
                "--user=root",  # pytest's folders are private to root: no mysql user here
                f"--socket={self.socket}",
                f"--port={self.port}",
                "--bind-address=127.0.0.1",
                "--skip-name-resolve",  # 127.0.0.1 must match '%' users, not install-db's 'localhost' ones
            ],
            self.folder / "mariadb.log",
        ).start(lambda: self.socket.exists(), timeout=60)

    def install(self) -> None:
        subprocess.run(
            ["mariadb-install-db", "--no-defaults", "--user=root", f"--datadir={self.folder / 'data'}"],
            check=True,
            capture_output=True,
        )
        self.start()
        subprocess.run(
            [REPO_ROOT / "Servidor1" / "mysql" / "init-databases.sh"],
            env={
                **os.environ,
                "MYSQL_UNIX_PORT": str(self.socket),
                "PIPELINE_DB_PASSWORD": secrets.token_hex(8),
                "INFERENCE_LOG_PASSWORD": self.password,
            },
            check=True,
            capture_output=True,
        )

    def rows(self) -> int:
        count = subprocess.run(
            ["mariadb", "--no-defaults", f"--socket={self.socket}", "-N", "-e",
             "SELECT COUNT(*) FROM InferenceLog.inference_log"],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        return int(count.stdout)


def median_latency(url: str, calls: int) -> float:
    seconds = []
    with requests.Session() as session:
        for _ in range(calls):
            started = time.perf_counter()
            assert session.post(f"{url}/predict", json=LISTING, timeout=10).status_code == 200
            seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def test_a_lost_log_database_neither_slows_nor_fails_predictions(start_inference_api, tmp_path):
    database = PrivateMariaDB(tmp_path)
    database.install()
    api = start_inference_api(
        INFERENCE_LOG_PORT=str(database.port),
        INFERENCE_LOG_DATABASE="InferenceLog",
        INFERENCE_LOG_USER="inference_logger",
        INFERENCE_LOG_PASSWORD=database.password,
        INFERENCE_LOG_QUEUE_SIZE="50",
    )
    try:
        with_database = median_latency(api.url, 100)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and database.rows() < 100:
            time.sleep(0.2)
        assert database.rows() == 100

        database.process.stop()
        without_database = median_latency(api.url, 200)
        text = scrape(api.url)
        # 200 rows for a 50-row queue (plus the batch the writer holds): the overflow is counted.
        dropped = sample(text, "realtor_inference_log_rows_dropped_total")
        assert 100 <= dropped <= 150
        assert sample(text, "realtor_inference_log_queue_depth") == 50
        assert sample(text, "realtor_inference_log_rows_written_total") == 100
        # Relative to the same process a moment ago, with a generous margin for a shared machine.
        assert without_database < 2 * with_database + 0.005, (with_database, without_database)

        database.start()  # the writer reconnects and stores the rows it held
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and database.rows() == 100:
            time.sleep(0.5)
        assert database.rows() > 100
    finally:
        database.process.stop()
