"""The load test: its listings, and `make load-test` runs whose exit code follows the SLO."""

import csv
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from data_api.generator import COLUMNS, STATUSES
from tests.harness.processes import REPO_ROOT, free_port

LOCUST_DIR = Path(__file__).resolve().parents[1] / "locust"
LISTING_FIELDS = set(COLUMNS) - {"price"}  # the API's request body: a data API row without its price

RunLoadTest = Callable[..., subprocess.CompletedProcess]


def locust_failed(run: subprocess.CompletedProcess) -> bool:
    """make exits 2 when a recipe fails and names the recipe's own exit code: Locust's 1."""
    return run.returncode != 0 and "load-test] Error 1" in run.stderr


def aggregated_stats(reports: Path) -> dict[str, dict[str, str]]:
    """Rows of Locust's stats CSV by request name ("Aggregated" for the total)."""
    with open(reports / "load-test_stats.csv", newline="") as stats:
        return {row["Name"]: row for row in csv.DictReader(stats)}


def test_listing_sample_is_what_the_data_api_serves(tmp_path: Path) -> None:
    """listings.json is regenerated from the data API's code; a change there must reach it."""
    fresh = tmp_path / "listings.json"
    result = subprocess.run(
        [sys.executable, LOCUST_DIR / "sample_listings.py", "--output", fresh],
        cwd=REPO_ROOT,
        env={"PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert fresh.read_text() == (LOCUST_DIR / "listings.json").read_text(), (
        "listings.json is stale: run `PYTHONPATH=. python Servidor3/locust/sample_listings.py`"
    )


def test_listings_have_exactly_the_api_fields() -> None:
    listings = json.loads((LOCUST_DIR / "listings.json").read_text())
    assert len(listings) >= 100
    for listing in listings:
        assert set(listing) == LISTING_FIELDS
        assert listing["status"] in STATUSES
    assert len({listing["state"] for listing in listings}) > 1


def test_a_run_against_nothing_fails_on_the_failure_ratio(run_load_test: RunLoadTest, tmp_path: Path) -> None:
    run = run_load_test(
        tmp_path, LOCUST_HOST=f"http://127.0.0.1:{free_port()}", LOCUST_USERS="2", LOCUST_RUN_TIME="3s"
    )
    assert locust_failed(run), run.stderr[-3000:]
    assert "event=slo_failed" in run.stderr
    assert "failure_ratio=1.0000 max_failure_ratio=0.01" in run.stderr
    assert "breached=failure_ratio" in run.stderr
    total = aggregated_stats(tmp_path)["Aggregated"]
    assert int(total["Request Count"]) == int(total["Failure Count"]) > 0


def test_a_short_load_on_the_api_meets_the_slo_and_writes_the_reports(loaded_inference_api) -> None:
    run = loaded_inference_api.load_test
    assert run.returncode == 0, run.stderr[-3000:]
    assert "event=slo_met" in run.stderr
    stats = aggregated_stats(loaded_inference_api.reports)
    assert {"/predict", "/predict/batch", "/model"} <= stats.keys()
    assert int(stats["Aggregated"]["Request Count"]) > 0
    assert int(stats["Aggregated"]["Failure Count"]) == 0
    assert "<html" in (loaded_inference_api.reports / "load-test.html").read_text()


def test_a_run_over_the_latency_slo_fails_and_says_by_how_much(
    loaded_inference_api, run_load_test: RunLoadTest, tmp_path: Path
) -> None:
    run = run_load_test(
        tmp_path,
        LOCUST_HOST=loaded_inference_api.url,
        LOCUST_USERS="2",
        LOCUST_RUN_TIME="4s",
        LOCUST_P95_SLO_MS="1",  # no HTTP round trip with a model call is this fast
    )
    assert locust_failed(run), run.stderr[-3000:]
    assert "event=slo_failed" in run.stderr
    assert "p95_slo_ms=1 " in run.stderr
    assert "breached=p95" in run.stderr
    assert int(aggregated_stats(tmp_path)["Aggregated"]["Failure Count"]) == 0
