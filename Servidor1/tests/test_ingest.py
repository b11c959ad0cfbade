"""Ingestion against the real MariaDB (the pipeline's least-privilege user) and real HTTP servers.

Each test uses its own (group, day), so tests stay independent within the session's database.
"""

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sqlalchemy
from sqlalchemy import inspect, select

from realtor_pipeline.ingest import (
    EXHAUSTED_DETAIL,
    Batch,
    DataApiClient,
    DataApiError,
    Exhausted,
    current_generation,
    fetch_and_ingest,
    ingest_batch,
    restart_collection,
)
from realtor_pipeline.tables import (
    LISTING_COLUMNS,
    IngestOutcome,
    collection_generation,
    create_tables,
    ingestion_log,
    realtor_quarantine,
    realtor_raw,
)
from tests.harness.processes import free_port

FAST_RETRIES = {"retries": 2, "backoff": 0.01}


@pytest.fixture(scope="module")
def engine(mariadb) -> Iterator[sqlalchemy.Engine]:
    engine = sqlalchemy.create_engine(mariadb.url(mariadb.raw_db))
    create_tables(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def repeating_api(start_data_api):
    """Serves the same batch again on every call (MIN_UPDATE_TIME far away)."""
    return start_data_api(MIN_UPDATE_TIME="3600", DATA_API_BATCHES="3", DATA_API_BATCH_ROWS="300")


@pytest.fixture(scope="module")
def advancing_api(start_data_api):
    """Serves the next batch on every call, then the end-of-data answer."""
    return start_data_api(MIN_UPDATE_TIME="0", DATA_API_BATCHES="3", DATA_API_BATCH_ROWS="300")


def stored_rows(engine, group_number: int, day: str, *columns: str) -> list[tuple]:
    key = (realtor_raw.c.group_number == group_number, realtor_raw.c.day == day)
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(select(*realtor_raw.c[columns]).where(*key))]


def log_rows(engine, group_number: int, day: str) -> list[dict]:
    key = (ingestion_log.c.group_number == group_number, ingestion_log.c.day == day)
    query = select(ingestion_log).where(*key).order_by(ingestion_log.c.id)
    with engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(query)]


def test_tables_are_created_idempotently_with_the_batch_listing_key(engine):
    create_tables(engine)  # a second time, as the pipeline user who cannot drop anything
    inspector = inspect(engine)
    assert {"realtor_raw", "ingestion_log", "collection_generation"} <= set(inspector.get_table_names())
    [unique] = inspector.get_unique_constraints("realtor_raw")
    assert unique["column_names"] == [
        "generation", "group_number", "day", "batch_number", "listing_hash", "occurrence",
    ]  # fmt: skip
    types = {column["name"]: str(column["type"]) for column in inspector.get_columns("realtor_raw")}
    assert types["price"] == "DOUBLE" and types["prev_sold_date"] == "DATE"


def test_a_batch_served_twice_is_stored_once_and_counted_as_duplicates(engine, repeating_api):
    with DataApiClient(repeating_api.url, **FAST_RETRIES) as client:
        first = fetch_and_ingest(client, engine, 1, "Monday")
        again = fetch_and_ingest(client, engine, 1, "Monday")
        served = client.fetch_batch(1, "Monday")

    assert isinstance(served, Batch) and served.batch_number == first.batch_number == again.batch_number == 1
    assert (first.outcome, first.received, first.inserted, first.duplicate) == (
        IngestOutcome.INGESTED,
        len(served.rows),
        len(served.rows),
        0,
    )
    assert (again.outcome, again.inserted, again.duplicate) == (IngestOutcome.REPEAT, 0, len(served.rows))

    provenance = stored_rows(engine, 1, "Monday", "generation", "batch_number", "fetched_at")
    assert len(provenance) == len(served.rows)
    assert {(generation, batch) for generation, batch, _ in provenance} == {(1, 1)}
    assert all(fetched_at is not None for *_, fetched_at in provenance)
    stored = stored_rows(engine, 1, "Monday", *LISTING_COLUMNS)
    as_served = sorted(tuple(row[column] for column in LISTING_COLUMNS) for row in served.rows)
    assert sorted((*row[:-1], row[-1].isoformat()) for row in stored) == as_served

    logged = log_rows(engine, 1, "Monday")
    counts = ("id", "outcome", "rows_received", "rows_inserted", "rows_duplicate")
    assert [tuple(row[column] for column in counts) for row in logged] == [
        (report.log_id, report.outcome, report.received, report.inserted, report.duplicate)
        for report in (first, again)
    ]
    assert all(row["rows_quarantined"] == 0 and row["batch_number"] == 1 for row in logged)


def test_duplicate_rows_inside_one_batch_are_kept_and_values_round_trip(engine):
    listing = {
        "brokered_by": 103378, "status": "sold", "price": 249000.0, "bed": 3.0, "bath": 2.0,
        "acre_lot": 0.22, "street": 1234567.0, "city": "Cañón City", "state": "Colorado",
        "zip_code": 1001.0, "house_size": 1324.0, "prev_sold_date": "2022-03-04",
    }  # fmt: skip
    missing_values = {**listing, "bed": None, "bath": None, "house_size": None, "prev_sold_date": None}
    response = {
        "group_number": 9,
        "day": "Sunday",
        "batch_number": 4,
        "data": [listing, missing_values, listing],
    }

    first = ingest_batch(engine, response, generation=1)
    again = ingest_batch(engine, response, generation=1)

    assert (first.inserted, first.duplicate) == (3, 0)
    assert (again.inserted, again.duplicate, again.outcome) == (0, 3, IngestOutcome.REPEAT)
    stored = stored_rows(engine, 9, "Sunday", "occurrence", "brokered_by", "city", "bed", "prev_sold_date")
    as_text = sorted((*row[:-1], row[-1].isoformat()) for row in stored if row[3] is not None)
    assert as_text == [
        (1, 103378.0, "Cañón City", 3.0, "2022-03-04"),
        (2, 103378.0, "Cañón City", 3.0, "2022-03-04"),
    ]
    assert [row for row in stored if row[3] is None] == [(1, 103378.0, "Cañón City", None, None)]

    # Rows that cannot be stored are quarantined with the reason; the rest of the batch lands.
    bad_rows = [
        {**listing, "prev_sold_date": "2021-02-30"},
        {**listing, "price": "a lot"},
        "not a row",
        {**listing, "price": 0.0, "house_size": 1_450_112.0},  # storable, but no real listing
    ]
    bad = {**response, "batch_number": 5, "data": [listing, *bad_rows]}
    for _ in range(2):  # a batch served twice quarantines its rows once
        report = ingest_batch(engine, bad, generation=1)
    assert (report.inserted, report.quarantined, report.duplicate) == (0, 4, 1)
    assert stored_rows(engine, 9, "Sunday", "batch_number").count((5,)) == 1
    with engine.connect() as connection:
        quarantined = connection.execute(
            select(realtor_quarantine.c.position, realtor_quarantine.c.served_row, realtor_quarantine.c.rule)
            .where(realtor_quarantine.c.batch_number == 5, realtor_quarantine.c.day == "Sunday")
            .order_by(realtor_quarantine.c.position)
        ).all()
    assert [(position, json.loads(row)) for position, row, _ in quarantined] == list(enumerate(bad_rows, 1))
    assert "column prev_sold_date='2021-02-30'" in quarantined[0].rule
    assert "column price='a lot'" in quarantined[1].rule
    assert "price: in_range" in quarantined[3].rule and "house_size: in_range" in quarantined[3].rule


def test_end_of_data_is_logged_and_a_restart_starts_a_new_generation(engine, advancing_api):
    with DataApiClient(advancing_api.url, **FAST_RETRIES) as client:
        reports = [fetch_and_ingest(client, engine, 2, "Tuesday") for _ in range(4)]
        generation = restart_collection(client, engine, 2, "Tuesday", reason="test restart")
        after_restart = fetch_and_ingest(client, engine, 2, "Tuesday")

    *batches, exhausted = reports
    assert [report.batch_number for report in batches] == [1, 2, 3]
    assert all(report.outcome == IngestOutcome.INGESTED for report in batches)
    assert (exhausted.outcome, exhausted.batch_number, exhausted.received) == (
        IngestOutcome.EXHAUSTED,
        None,
        0,
    )
    assert generation == 2 == current_generation(engine, 2, "Tuesday")
    assert (after_restart.generation, after_restart.batch_number) == (2, 1)
    assert after_restart.inserted == batches[0].inserted  # the same rows again, kept apart

    generations = stored_rows(engine, 2, "Tuesday", "generation")
    assert generations.count((1,)) == sum(report.inserted for report in batches)
    assert generations.count((2,)) == after_restart.inserted
    logged = log_rows(engine, 2, "Tuesday")
    assert [row["outcome"] for row in logged] == ["ingested"] * 3 + ["exhausted", "ingested"]
    assert logged[3]["detail"] == EXHAUSTED_DETAIL and logged[3]["rows_received"] == 0
    with engine.connect() as connection:
        reasons = connection.execute(
            select(collection_generation.c.generation, collection_generation.c.reason)
            .where(collection_generation.c.group_number == 2, collection_generation.c.day == "Tuesday")
            .order_by(collection_generation.c.generation)
        ).all()
    assert reasons == [(1, "first collection"), (2, "test restart")]


def test_a_client_error_raises_naming_it_and_leaves_an_error_log_row(engine, advancing_api):
    with DataApiClient(advancing_api.url, **FAST_RETRIES) as client, pytest.raises(DataApiError) as raised:
        fetch_and_ingest(client, engine, 99, "Friday")  # the data API has groups 1 to 10

    assert "HTTP 422" in str(raised.value)
    assert f"{advancing_api.url}/data?group_number=99&day=Friday" in str(raised.value)
    assert "group_number" in str(raised.value)  # the body, which names the parameter
    [logged] = log_rows(engine, 99, "Friday")
    assert logged["outcome"] == "error" and "HTTP 422" in logged["detail"]


class ScriptedServer:
    """A real HTTP server on a free port answering GETs with the scripted (status, body) in turn."""

    def __init__(self, answers: list[tuple[int, dict]]) -> None:
        self.answers = list(answers)
        self.paths: list[str] = []
        script = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                script.paths.append(self.path)
                status, body = script.answers.pop(0)
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:  # keep pytest's output clean
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> "ScriptedServer":
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.shutdown()
        self.server.server_close()


BATCH = {"group_number": 3, "day": "Friday", "batch_number": 1, "data": []}
UNAVAILABLE = (503, {"detail": "busy"})


def test_server_errors_are_retried_and_only_exact_end_of_data_is_exhaustion():
    with ScriptedServer([UNAVAILABLE, UNAVAILABLE, (200, BATCH)]) as server:
        assert DataApiClient(server.url, **FAST_RETRIES).fetch_batch(3, "Friday") == Batch(3, "Friday", 1, [])
        assert server.paths == ["/data?group_number=3&day=Friday"] * 3

    with ScriptedServer([UNAVAILABLE] * 3) as server, pytest.raises(DataApiError, match=r"HTTP 503 .*busy"):
        DataApiClient(server.url, **FAST_RETRIES).fetch_batch(3, "Friday")

    with ScriptedServer([(400, {"detail": EXHAUSTED_DETAIL}), (400, {"detail": "otra cosa"})]) as server:
        client = DataApiClient(server.url, **FAST_RETRIES)
        assert client.fetch_batch(3, "Friday") == Exhausted(3, "Friday", EXHAUSTED_DETAIL)
        with pytest.raises(DataApiError, match=r"HTTP 400 .*otra cosa"):
            client.fetch_batch(3, "Friday")
        assert len(server.paths) == 2  # 4xx answers are not retried

    closed_port_url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(DataApiError, match=r"unreachable .* after 3 attempts"):
        DataApiClient(closed_port_url, **FAST_RETRIES).fetch_batch(3, "Friday")
