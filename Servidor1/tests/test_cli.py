"""`python -m realtor_pipeline train` end to end, as a user runs it, on a CSV and on API-shaped JSON."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from data_api.generator import COLUMNS, generate_listings
from data_api.sources import batch_records
from realtor_pipeline.split import priced_rows, split_of

REPO_ROOT = Path(__file__).resolve().parents[2]
TABLE_ROWS = ("ours: ", "recipe A (Ridge)", "recipe B (GradientBoosting)")


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = os.environ | {
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "Servidor1" / "pipeline"), str(REPO_ROOT)])
    }
    return subprocess.run(
        [sys.executable, "-m", "realtor_pipeline", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def complete_capped_rows(state: str, rows: int) -> pd.DataFrame:
    listings = generate_listings(state, 12 * rows, seed=5).dropna()
    return listings[listings["price"] <= 300_000].head(rows)


def assert_table_and_predictions(
    result: subprocess.CompletedProcess, listings: pd.DataFrame, out: Path
) -> None:
    assert result.returncode == 0, result.stderr
    table_lines = [line for line in result.stdout.splitlines() if line.startswith(TABLE_ROWS)]
    assert len(table_lines) == len(TABLE_ROWS), result.stdout
    header = next(line for line in result.stdout.splitlines() if "MAE" in line)
    assert header.split() == ["MAE", "MAPE", "%", "MdAPE", "%", "R²", "train", "s"]
    for line in table_lines:
        mae = line.split()[-5].replace(",", "")
        assert float(mae) > 0, line

    predictions = pd.read_csv(out)
    priced = priced_rows(listings)
    expected_test = priced[split_of(priced) == "test"]
    assert list(predictions.columns) == [*COLUMNS, "predicted_price"]
    assert sorted(predictions["street"].dropna()) == sorted(expected_test["street"].dropna())
    assert np.isfinite(predictions["predicted_price"]).all() and (predictions["predicted_price"] > 0).all()


def test_trains_on_a_kaggle_csv(tmp_path):
    listings = pd.concat(
        [complete_capped_rows(state, 1_500) for state in ("Maine", "Vermont")], ignore_index=True
    )
    data, out = tmp_path / "listings.csv", tmp_path / "out" / "predictions.csv"
    listings.to_csv(data, index=False)

    result = run_cli("train", "--data", str(data), "--out", str(out))

    assert_table_and_predictions(result, listings, out)


def test_trains_on_api_responses_with_nulls_and_unpriced_rows(tmp_path):
    listings = generate_listings("Rhode Island", 5_000, seed=6)
    listings.loc[listings.index[:25], "price"] = np.nan
    halves = (listings.iloc[:2_500], listings.iloc[2_500:])
    responses = [
        {"group_number": 9, "day": "Monday", "batch_number": number, "data": batch_records(half)}
        for number, half in enumerate(halves, start=1)
    ]
    data, out = tmp_path / "batches.json", tmp_path / "predictions.csv"
    data.write_text(json.dumps(responses))

    result = run_cli("train", "--data", str(data), "--out", str(out))

    assert_table_and_predictions(result, listings, out)


def test_a_file_without_a_column_fails_naming_it(tmp_path):
    data = tmp_path / "listings.csv"
    complete_capped_rows("Maine", 50).drop(columns=["house_size"]).to_csv(data, index=False)

    result = run_cli("train", "--data", str(data))

    assert result.returncode == 1
    assert "house_size" in result.stderr
