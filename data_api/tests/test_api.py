"""Contract tests of the listing data API over HTTP, against the real process (uvicorn)."""

import json
import time

import pandas as pd
import pytest
import requests

from data_api.app import EXHAUSTED_DETAIL
from data_api.generator import COLUMNS, generate_listings

SMALL = {"DATA_API_BATCHES": "3", "DATA_API_BATCH_ROWS": "300", "MIN_UPDATE_TIME": "0"}


def get_batch(api, group=5, day="Wednesday") -> requests.Response:
    return requests.get(f"{api.url}/data", params={"group_number": group, "day": day}, timeout=30)


def test_batch_has_the_real_servers_shape(data_api):
    response = get_batch(data_api, group=2, day="Tuesday")
    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["group_number", "day", "batch_number", "data"]
    assert (body["group_number"], body["day"], body["batch_number"]) == (2, "Tuesday", 1)
    rows = body["data"]
    assert len(rows) == 500
    assert all(list(row) == list(COLUMNS) for row in rows)
    for column in ("brokered_by", "price", "bed", "bath", "acre_lot", "street", "zip_code", "house_size"):
        assert all(isinstance(row[column], float) for row in rows), column
    frame = pd.DataFrame(rows)
    assert frame.notna().all().all(), "the default slice serves complete rows only"
    assert frame["state"].nunique() == 1
    assert frame["price"].max() <= 300_000
    assert frame["zip_code"].is_monotonic_increasing, "rows come ordered by zip code"
    assert frame["prev_sold_date"].str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()


def test_batches_advance_then_exhaust_then_restart(start_data_api):
    api = start_data_api(**SMALL)
    first = get_batch(api).json()
    assert [get_batch(api).json()["batch_number"] for _ in range(2)] == [2, 3]
    for _ in range(2):  # stays exhausted, with the exact words the pipeline recognises
        exhausted = get_batch(api)
        assert exhausted.status_code == 400
        assert exhausted.json() == {"detail": EXHAUSTED_DETAIL}

    other_day = get_batch(api, day="Thursday").json()
    assert other_day["batch_number"] == 1, "each (group, day) has its own progress"
    assert other_day["data"] != first["data"], "each (group, day) has its own slice"

    restart = requests.get(
        f"{api.url}/restart_data_generation", params={"group_number": 5, "day": "Wednesday"}
    )
    assert restart.status_code == 200 and restart.json()["generation"] == 2
    again = get_batch(api).json()
    assert again["batch_number"] == 1
    assert again["data"] == first["data"], "a restart serves the same deterministic slice again"


def test_the_same_batch_is_served_again_until_min_update_time_passes(start_data_api):
    api = start_data_api(**{**SMALL, "MIN_UPDATE_TIME": "2"})
    first, repeated = get_batch(api).json(), get_batch(api).json()
    assert repeated == first
    time.sleep(2.1)
    assert get_batch(api).json()["batch_number"] == 2


def test_progress_survives_a_process_restart_and_slices_are_deterministic(start_data_api):
    api = start_data_api(**SMALL)
    batches = [get_batch(api).json() for _ in range(2)]
    api.process.stop()

    resumed = start_data_api(state_file=api.state_file, **SMALL)
    third = get_batch(resumed).json()
    assert third["batch_number"] == 3

    fresh = start_data_api(**SMALL)  # a new state file: starts over, same rows
    assert [get_batch(fresh).json() for _ in range(2)] == batches


@pytest.mark.parametrize(
    ("params", "field", "expected"),
    [
        ({"group_number": 0, "day": "Monday"}, "group_number", "greater than or equal to 1"),
        ({"group_number": 11, "day": "Monday"}, "group_number", "less than or equal to 10"),
        ({"group_number": "five", "day": "Monday"}, "group_number", "valid integer"),
        ({"group_number": 5, "day": "Funday"}, "day", "'Monday', 'Tuesday', 'Wednesday'"),
        ({"group_number": 5, "day": "wednesday"}, "day", "'Sunday'"),
        ({"group_number": 5}, "day", "Field required"),
    ],
)
@pytest.mark.parametrize("path", ["/data", "/restart_data_generation"])
def test_bad_parameters_say_what_is_valid(data_api, path, params, field, expected):
    response = requests.get(f"{data_api.url}{path}", params=params, timeout=10)
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["query", field]
    assert expected in error["msg"]


def test_health_and_openapi_docs(data_api):
    assert requests.get(f"{data_api.url}/health", timeout=5).json() == {"status": "ok"}
    spec = requests.get(f"{data_api.url}/openapi.json", timeout=5).json()
    assert {"/data", "/restart_data_generation", "/health"} <= set(spec["paths"])
    assert requests.get(f"{data_api.url}/docs", timeout=5).status_code == 200


def test_raw_slice_keeps_the_files_missing_values_and_every_price(start_data_api):
    api = start_data_api(**SMALL, DATA_API_COMPLETE_ROWS_ONLY="false", DATA_API_PRICE_CAP="0")
    frame = pd.DataFrame(get_batch(api).json()["data"])
    assert frame[["bed", "bath", "house_size", "prev_sold_date"]].isna().any().all()
    assert frame["price"].max() > 300_000


@pytest.fixture(scope="module")
def listing_file_rows() -> pd.DataFrame:
    """Listings of two states, as the Kaggle file holds them."""
    return pd.concat(
        [generate_listings("Vermont", 4000, seed=1), generate_listings("Rhode Island", 4000, seed=2)],
        ignore_index=True,
    )


@pytest.mark.parametrize("file_format", ["csv", "json"])
def test_serves_a_users_file(start_data_api, tmp_path, listing_file_rows, file_format):
    path = tmp_path / f"listings.{file_format}"
    if file_format == "csv":
        listing_file_rows.to_csv(path, index=False)
    else:
        rows = json.loads(listing_file_rows.to_json(orient="records"))
        path.write_text(json.dumps({"group_number": 1, "day": "Tuesday", "batch_number": 1, "data": rows}))
    api = start_data_api(
        DATA_API_SOURCE=str(path), DATA_API_BATCHES="2", MIN_UPDATE_TIME="0", DATA_API_GROUPS="2"
    )

    served = pd.concat(
        [
            pd.DataFrame(get_batch(api, group=group, day="Monday").json()["data"])
            for group in (1, 2)
            for _ in range(2)
        ]
    )
    expected = listing_file_rows.dropna()
    expected = expected[expected["price"] <= 300_000]
    assert set(served["state"]) == {"Rhode Island", "Vermont"}
    assert len(served) == len(expected), "the two batches of each group hold its whole slice"
    key = ["street", "zip_code", "price", "house_size", "prev_sold_date"]
    assert sorted(map(tuple, served[key].values.tolist())) == sorted(
        map(tuple, expected[key].values.tolist())
    )
    assert get_batch(api, group=1, day="Monday").status_code == 400
