"""The inference API's read-only /pipeline endpoints over rows node 1's ingestion really wrote."""

import MySQLdb
import pytest
import requests
import sqlalchemy
from fastapi import FastAPI
from fastapi.testclient import TestClient

from inference_api.pipeline_status import PipelineStatusSettings, router
from tests.harness.processes import free_port


def table_rows(pipeline_runs, sql: str) -> list[tuple]:
    engine = sqlalchemy.create_engine(pipeline_runs.settings.raw_data_url)
    with engine.connect() as connection:
        rows = [tuple(row) for row in connection.exec_driver_sql(sql)]
    engine.dispose()
    return rows


def test_ingestion_log_comes_newest_first_as_the_table_holds_it(pipeline_api, pipeline_runs):
    response = requests.get(f"{pipeline_api.url}/pipeline/ingestion", params={"limit": 3}, timeout=10)
    assert response.status_code == 200, response.text
    served = response.json()
    expected = table_rows(
        pipeline_runs,
        "SELECT id, generation, batch_number, rows_received, rows_inserted, rows_duplicate,"
        " rows_quarantined, outcome FROM ingestion_log ORDER BY id DESC LIMIT 3",
    )
    assert [
        tuple(row[key] for key in ("id", "generation", "batch_number", "rows_received", "rows_inserted",
                                   "rows_duplicate", "rows_quarantined", "outcome"))
        for row in served
    ] == expected  # fmt: skip
    assert len(table_rows(pipeline_runs, "SELECT id FROM ingestion_log")) == 4  # the fixture's 4 batches
    assert (
        requests.get(f"{pipeline_api.url}/pipeline/ingestion", params={"limit": 0}, timeout=10).status_code
        == 422
    )


def test_quarantine_counts_each_broken_rule_and_lists_the_newest_rows(pipeline_api, pipeline_runs):
    response = requests.get(f"{pipeline_api.url}/pipeline/quarantine", params={"limit": 5}, timeout=10)
    assert response.status_code == 200, response.text
    summary = response.json()
    rules = [rule for (rule,) in table_rows(pipeline_runs, "SELECT rule FROM realtor_quarantine")]
    assert summary["total_rows"] == len(rules) > 0, "the generator serves some invalid rows"
    each_rule = [single for rule in rules for single in rule.split("; ")]
    assert {item["reason"]: item["rows"] for item in summary["reasons"]} == {
        rule: each_rule.count(rule) for rule in set(each_rule)
    }
    assert [item["rows"] for item in summary["reasons"]] == sorted(
        (item["rows"] for item in summary["reasons"]), reverse=True
    )
    newest = table_rows(pipeline_runs, "SELECT id, rule FROM realtor_quarantine ORDER BY id DESC LIMIT 5")
    assert [(row["id"], row["rule"]) for row in summary["recent"]] == newest


def test_the_status_user_can_read_but_not_write(pipeline_runs):
    mariadb = pipeline_runs.mariadb
    connection = MySQLdb.connect(
        host=mariadb.host,
        port=mariadb.port,
        user=mariadb.status_user,
        password=mariadb.status_password,
        database=mariadb.raw_db,
    )
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM ingestion_log")
            assert cursor.fetchone()[0] > 0
            with pytest.raises(MySQLdb.OperationalError, match="command denied"):
                cursor.execute("DELETE FROM ingestion_log")
    finally:
        connection.close()


def test_without_a_host_the_endpoints_say_they_are_off():
    off = status_client(host="")
    for path in ("/pipeline/ingestion", "/pipeline/quarantine"):
        response = off.get(path)
        assert response.status_code == 503
        assert "PIPELINE_STATUS_HOST is not set" in response.json()["detail"]


def status_client(**settings) -> TestClient:
    app = FastAPI()
    app.include_router(router(PipelineStatusSettings(**settings)))
    return TestClient(app)


def test_an_unreachable_mysql_is_a_503_and_tables_not_created_yet_are_empty(create_mariadb):
    unreachable = status_client(host="127.0.0.1", port=free_port(), password="x")
    response = unreachable.get("/pipeline/ingestion")
    assert response.status_code == 503 and "is not reachable" in response.json()["detail"]

    fresh = create_mariadb("nopipeline")  # the pipeline has not run: its tables do not exist
    before_first_run = status_client(
        host=fresh.host,
        port=fresh.port,
        database=fresh.raw_db,
        user=fresh.status_user,
        password=fresh.status_password,
    )
    assert before_first_run.get("/pipeline/ingestion").json() == []
    assert before_first_run.get("/pipeline/quarantine").json() == {
        "total_rows": 0,
        "reasons": [],
        "recent": [],
    }
