"""The pipeline's steps end to end against the real data API, MariaDB and `mlflow server`."""

import os
import subprocess
import sys

import mlflow
import pandas as pd
import pytest
from sqlalchemy import create_engine, func, select

from data_api.generator import generate_listings
from realtor_pipeline import steps
from realtor_pipeline.datasets import load_split
from realtor_pipeline.decide import decide_to_train
from realtor_pipeline.ingest import IngestReport
from realtor_pipeline.settings import PipelineSettings
from realtor_pipeline.tables import IngestOutcome, realtor_raw
from tests.harness.processes import REPO_ROOT

BATCH_ROWS = 1_500


@pytest.fixture
def settings(request, create_mariadb, mlflow_server, start_data_api, monkeypatch) -> PipelineSettings:
    """Databases, a model name and an experiment of this test's own: each test starts from nothing."""
    unique = f"{request.node.name[5:15]}{pd.Timestamp.now():%H%M%S%f}"
    mariadb = create_mariadb(f"s{pd.Timestamp.now():%H%M%S%f}")
    api = start_data_api(MIN_UPDATE_TIME="0", DATA_API_BATCHES="4", DATA_API_BATCH_ROWS=str(BATCH_ROWS))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "MLFLOW_S3_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)  # node 1 reaches artefacts through MLflow only
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.tracking_uri)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    mlflow.set_tracking_uri(mlflow_server.tracking_uri)
    return PipelineSettings(
        raw_data_url=mariadb.url(mariadb.raw_db),
        clean_data_url=mariadb.url(mariadb.clean_db),
        data_api_url=api.url,
        model_name=f"realtor-{unique}",
        experiment=f"realtor-{unique}",
        new_rows_threshold=BATCH_ROWS * 3 // 2,  # more than one batch, less than two
    )


def decision_runs(settings: PipelineSettings) -> pd.DataFrame:
    return mlflow.search_runs(
        experiment_names=[settings.experiment],
        filter_string="tags.event = 'decision'",
        order_by=["attributes.start_time ASC"],
    )


def raw_count(settings: PipelineSettings, table=realtor_raw) -> int:
    with create_engine(settings.raw_data_url).connect() as connection:
        return connection.execute(select(func.count()).select_from(table)).scalar_one()


def ingest(settings: PipelineSettings, batches: int) -> list[IngestReport]:
    return [steps.extract(settings) for _ in range(batches)]


def test_collect_decide_train_promote_then_retrain_on_enough_new_rows(settings):
    reports = ingest(settings, 2)
    assert [report.outcome for report in reports] == [IngestOutcome.INGESTED] * 2
    stored = raw_count(settings)
    assert stored == sum(report.inserted for report in reports) > 0.9 * 2 * BATCH_ROWS

    first = steps.decide(settings, "run-1")
    assert (first.train, first.rule) == (True, "first_model")
    split = steps.split_and_clean(settings)
    assert sum(split.rows.values()) <= stored and split.clean_rows["train"] <= split.rows["train"]
    assert 0.5 < split.rows["train"] / sum(split.rows.values()) < 0.7
    outcome = steps.train_and_promote(settings, "run-1")
    assert outcome.promotion.promoted
    champion = mlflow.MlflowClient().get_model_version_by_alias(settings.model_name, "champion")
    assert champion.version == outcome.version
    assert (
        champion.tags["dag_run_id"] == "run-1"
        and int(champion.tags["rows_train"]) == split.clean_rows["train"]
    )
    assert outcome.test_metrics["test_mae"] > 0

    # Re-running the same DAG run's training registers nothing new.
    again = steps.train_and_promote(settings, "run-1")
    assert again.version == outcome.version
    assert len(mlflow.MlflowClient().search_model_versions(f"name = '{settings.model_name}'")) == 1

    # No new rows: no training, and the reason is logged.
    idle = steps.decide(settings, "run-2")
    assert (idle.train, idle.rule) == (False, "none")
    assert "0 new rows" in idle.reason

    train_before = load_split(create_engine(settings.raw_data_url), "train").set_index("raw_id")
    ingest(settings, 2)
    enough = steps.decide(settings, "run-3")
    assert (enough.train, enough.rule) == (True, "new_rows")
    steps.split_and_clean(settings)
    train_after = load_split(create_engine(settings.raw_data_url), "train").set_index("raw_id")
    assert train_before.index.isin(train_after.index).all(), "a row never leaves its split"
    assert len(train_after) > len(train_before)
    retrained = steps.train_and_promote(settings, "run-3")
    assert retrained.version != outcome.version

    logged = decision_runs(settings)
    assert list(logged["tags.decision"]) == ["train", "skip", "train"]
    assert list(logged["tags.dag_run_id"]) == ["run-1", "run-2", "run-3"]
    assert logged["tags.reason"].str.len().gt(0).all()


def test_exhaustion_then_reset_keeps_history_and_re_ingests_as_a_new_generation(settings):
    reports = ingest(settings, 5)
    assert [report.outcome for report in reports][-1] == IngestOutcome.EXHAUSTED
    before = raw_count(settings)
    assert steps.reset(settings) == 2
    after_reset = steps.extract(settings)
    assert (after_reset.outcome, after_reset.generation, after_reset.batch_number) == (
        IngestOutcome.INGESTED,
        2,
        1,
    )
    assert raw_count(settings) == before + after_reset.inserted, "earlier generations are kept"
    # The re-served listings are the same listings: the splits store them once.
    split = steps.split_and_clean(settings)
    assert sum(split.rows.values()) < raw_count(settings)


def test_drift_rule_fires_on_shifted_prices_and_not_on_more_of_the_same():
    reference = generate_listings("Vermont", 6_000, seed=1).dropna()
    same = generate_listings("Vermont", 6_000, seed=2).dropna()
    shifted = same.assign(price=same["price"] * 1.6)
    common = {"has_champion": True, "reference_rows": reference, "new_rows_threshold": 100_000,
              "drift_psi_threshold": 0.2, "drift_min_rows": 500}  # fmt: skip
    steady = decide_to_train(new_rows=same, **common)
    drift = decide_to_train(new_rows=shifted, **common)
    assert (steady.train, steady.rule) == (False, "none") and steady.numbers["psi_price"] < 0.1
    assert (drift.train, drift.rule) == (True, "drift") and drift.numbers["psi_price"] > 0.2
    assert "psi_price" in drift.reason
    too_few = decide_to_train(new_rows=shifted.head(100), **common)
    assert not too_few.train and "not checked" in too_few.reason


def test_command_line_runs_one_dag_run_and_refuses_a_rollback_without_previous(settings, tmp_path):
    env = {
        "PATH": os.environ["PATH"],
        "OMP_NUM_THREADS": "1",
        "MLFLOW_TRACKING_URI": os.environ["MLFLOW_TRACKING_URI"],
        "PYTHONPATH": f"{REPO_ROOT / 'Servidor1' / 'pipeline'}",
        **{f"PIPELINE_{name.upper()}": str(value) for name, value in settings.model_dump().items()},
    }

    def cli(*arguments: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "realtor_pipeline", *arguments], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)  # fmt: skip

    first = cli("run-once", "--run-id", "cli-1")
    assert first.returncode == 0, first.stderr
    assert "decide: train=True reason=no champion model yet" in first.stdout
    champion = mlflow.MlflowClient().get_model_version_by_alias(settings.model_name, "champion")
    assert champion.tags["dag_run_id"] == "cli-1"

    refused = cli("rollback", "--reason", "checking")
    assert refused.returncode == 1 and "previous" in refused.stderr

    history = cli("history")
    assert history.returncode == 0 and "promoted" in history.stdout


def test_a_shifted_batch_triggers_the_drift_rule_and_its_logged_run(settings, start_data_api, tmp_path):
    ingest(settings, 1)
    steps.decide(settings, "drift-1")
    steps.split_and_clean(settings)
    steps.train_and_promote(settings, "drift-1")

    # Fewer new rows than the threshold, but priced far above what the model learned from.
    shifted = generate_listings("Massachusetts", 8_000, seed=9).dropna()
    shifted = shifted[shifted["price"] <= 300_000].head(1_000).assign(price=lambda rows: rows["price"] * 1.8)
    shifted.to_csv(tmp_path / "shifted.csv", index=False)
    other_api = start_data_api(DATA_API_SOURCE=str(tmp_path / "shifted.csv"), DATA_API_BATCHES="1",
                               DATA_API_PRICE_CAP="0", MIN_UPDATE_TIME="0")  # fmt: skip
    report = steps.extract(settings.model_copy(update={"data_api_url": other_api.url}))
    assert report.inserted > settings.drift_min_rows

    drift = steps.decide(settings, "drift-2")
    assert (drift.train, drift.rule) == (True, "drift")
    logged = decision_runs(settings).iloc[-1]
    assert (logged["tags.rule"], logged["tags.dag_run_id"]) == ("drift", "drift-2")
    assert logged["metrics.psi_price"] > settings.drift_psi_threshold
