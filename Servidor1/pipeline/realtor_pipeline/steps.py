"""The pipeline's steps as the DAG and the command line run them: each one call, safe to re-run.

extract → (exhausted: reset) → decide → split_and_clean → train_and_promote. Every step takes
`PipelineSettings`; the ones that touch MLflow take the run id of the orchestrator (Airflow's
`dag_run_id`, or any label by hand), which tags every MLflow run and model version they create.
"""

import json
import logging
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import mlflow
import mlflow.sklearn
import pandas as pd
from mlflow.entities import Run
from sqlalchemy import create_engine, select
from sqlalchemy.engine import Engine

from realtor_pipeline.datasets import (
    SplitReport,
    load_split,
    place_new_rows,
    rebuild_clean_tables,
    store_splits,
)
from realtor_pipeline.decide import DRIFT_FEATURES, Decision, decide_to_train
from realtor_pipeline.evaluate import TARGET, fit_recipe_a, fit_recipe_b, regression_metrics
from realtor_pipeline.explain import log_explanations
from realtor_pipeline.ingest import DataApiClient, IngestReport, fetch_and_ingest, restart_collection
from realtor_pipeline.registry import PromotionOutcome, champion_info, promote_if_better, register_model
from realtor_pipeline.settings import PipelineSettings
from realtor_pipeline.tables import LISTING_COLUMNS, create_tables, realtor_raw
from realtor_pipeline.train import train_best

log = logging.getLogger(__name__)

# What a prediction request carries: every served column but the price.
MODEL_INPUT_COLUMNS = tuple(column for column in LISTING_COLUMNS if column != TARGET)


def engines(settings: PipelineSettings) -> tuple[Engine, Engine]:
    raw, clean = create_engine(settings.raw_data_url), create_engine(settings.clean_data_url)
    create_tables(raw, clean)
    return raw, clean


def extract(settings: PipelineSettings) -> IngestReport:
    """Fetch the current batch of the configured group and day and store it."""
    raw, _ = engines(settings)
    with DataApiClient(settings.data_api_url) as client:
        return fetch_and_ingest(client, raw, settings.group_number, settings.day)


def reset(settings: PipelineSettings) -> int:
    """The data API is exhausted: start it over under a new collection generation (history stays)."""
    raw, _ = engines(settings)
    with DataApiClient(settings.data_api_url) as client:
        return restart_collection(
            client, raw, settings.group_number, settings.day, reason="data API exhausted"
        )


def _experiment_id(settings: PipelineSettings) -> str:
    experiment = mlflow.get_experiment_by_name(settings.experiment)
    return experiment.experiment_id if experiment else mlflow.create_experiment(settings.experiment)


def _last_training_run(experiment_id: str) -> Run | None:
    runs = mlflow.search_runs(
        [experiment_id],
        filter_string="tags.event = 'training' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
        output_format="list",
    )
    return runs[0] if runs else None


def decide(settings: PipelineSettings, dag_run_id: str) -> Decision:
    """Apply the decision rules and log the decision, train or not, as an MLflow run."""
    raw, _ = engines(settings)
    experiment_id = _experiment_id(settings)
    last_training = _last_training_run(experiment_id)
    watermark = int(last_training.data.tags["raw_watermark"]) if last_training else 0
    columns = [realtor_raw.c[name] for name in DRIFT_FEATURES]
    new_rows = pd.read_sql(select(*columns).where(realtor_raw.c.id > watermark), raw)
    reference_rows = pd.read_sql(select(*columns).where(realtor_raw.c.id <= watermark), raw)
    decision = decide_to_train(
        has_champion=champion_info(settings.model_name) is not None,
        new_rows=new_rows,
        reference_rows=reference_rows,
        new_rows_threshold=settings.new_rows_threshold,
        drift_psi_threshold=settings.drift_psi_threshold,
        drift_min_rows=settings.drift_min_rows,
    )
    tags = {
        "event": "decision",
        "decision": "train" if decision.train else "skip",
        "rule": decision.rule,
        "reason": decision.reason,
        "dag_run_id": dag_run_id,
        "raw_watermark_before": str(watermark),
    }
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"decision {dag_run_id}", tags=tags):
        mlflow.log_metrics(decision.numbers)
    log.info("event=decision train=%s rule=%s reason=%r dag_run_id=%s", decision.train, decision.rule,
             decision.reason, dag_run_id)  # fmt: skip
    return decision


def split_data(settings: PipelineSettings) -> dict[str, int]:
    """Place the rows stored since the last split in RawData.train|validation|test."""
    raw, _ = engines(settings)
    new_rows = place_new_rows(raw)
    log.info("event=split new_rows=%s", new_rows)
    return new_rows


def preprocess_data(settings: PipelineSettings) -> dict[str, tuple[int, int]]:
    """Rebuild CleanData.*_clean from the splits with the outlier policy."""
    raw, clean = engines(settings)
    counts = rebuild_clean_tables(raw, clean)
    log.info("event=clean rows_and_clean_rows=%s", counts)
    return counts


def split_and_clean(settings: PipelineSettings) -> SplitReport:
    raw, clean = engines(settings)
    report = store_splits(raw, clean)
    log.info("event=split new=%s rows=%s clean=%s", report.new_rows, report.rows, report.clean_rows)
    return report


@dataclass(frozen=True)
class TrainingRun:
    run_id: str
    version: str
    test_metrics: dict[str, float]


@dataclass(frozen=True)
class TrainingOutcome:
    run_id: str
    version: str
    test_metrics: dict[str, float]
    promotion: PromotionOutcome


def _git_sha() -> str:
    if os.environ.get("GIT_SHA"):  # set by the image build
        return os.environ["GIT_SHA"]
    here = Path(__file__).parent
    result = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, check=False
    )
    return result.stdout.strip() or "unknown"


def _metrics(prefix: str, truth: pd.Series, predictions) -> dict[str, float]:
    return {f"{prefix}_{name}": value for name, value in regression_metrics(truth, predictions).items()}


def _training_run_of(experiment_id: str, dag_run_id: str) -> Run | None:
    """The finished training run this DAG run already made, if any."""
    runs = mlflow.search_runs(
        [experiment_id],
        filter_string=f"tags.event = 'training' and tags.dag_run_id = '{dag_run_id}' "
        "and attributes.status = 'FINISHED'",
        output_format="list",
    )
    return runs[0] if runs else None


def _test_rows(settings: PipelineSettings) -> pd.DataFrame:
    raw, _ = engines(settings)
    return load_split(raw, "test")


def train_candidates(settings: PipelineSettings, dag_run_id: str) -> TrainingRun:
    """Train on the clean training split, pick the best on validation, log and register it.

    Re-running for the same `dag_run_id` returns its finished training run instead of registering
    a second version."""
    experiment_id = _experiment_id(settings)
    done = _training_run_of(experiment_id, dag_run_id)
    if done is not None:
        log.info("event=training_reused run_id=%s dag_run_id=%s", done.info.run_id, dag_run_id)
        metrics = {name: value for name, value in done.data.metrics.items() if name.startswith("test_")}
        return TrainingRun(done.info.run_id, done.data.tags["model_version"], metrics)
    raw, clean = engines(settings)
    train = load_split(clean, "train", clean=True)
    validation, test = load_split(raw, "validation"), load_split(raw, "test")
    if train.empty or validation.empty or test.empty:
        counts = f"train={len(train)} validation={len(validation)} test={len(test)}"
        raise ValueError(f"cannot train: {counts} rows")
    trained = train_best(train, validation)
    test_clean = load_split(clean, "test", clean=True)
    all_rows = pd.concat([train, validation, test])
    lineage = {
        "dag_run_id": dag_run_id,
        "git_sha": _git_sha(),
        "raw_watermark": str(max(frame["raw_id"].max() for frame in (train, validation, test))),
        "rows_train": str(len(train)),
        "rows_validation": str(len(validation)),
        "rows_test": str(len(test)),
        "batches": str(all_rows[["generation", "batch_number"]].drop_duplicates().shape[0]),
        "generations": ",".join(map(str, sorted(all_rows["generation"].unique()))),
    }
    with mlflow.start_run(
        experiment_id=experiment_id, run_name=f"training {dag_run_id}", tags={"event": "training", **lineage}
    ) as run:
        mlflow.log_params({"model": trained.name, **trained.params})
        mlflow.log_dict({"search": trained.search}, "search.json")
        test_metrics = _metrics("test", test[TARGET], trained.pipeline.predict(test))
        mlflow.log_metrics(
            {f"validation_{name}": value for name, value in trained.validation_metrics.items()}
            | test_metrics
            | _metrics("clean_test", test_clean[TARGET], trained.pipeline.predict(test_clean))
            | {f"{name}_test_mae": regression_metrics(test[TARGET], recipe.predict(test))["mae"]
               for name, recipe in (("recipe_a", fit_recipe_a(train)), ("recipe_b", fit_recipe_b(train)))}
            | {"train_seconds": trained.train_seconds}
        )  # fmt: skip
        example = test[list(MODEL_INPUT_COLUMNS)]  # register_model keeps the first few
        version = register_model(run.info.run_id, trained.pipeline, example, settings.model_name, lineage)
        # Set last: a run tagged with its version is a finished training a re-run may reuse.
        mlflow.set_tag("model_version", version.version)
    log.info("event=trained run_id=%s version=%s model=%s test_mae=%.0f lineage=%s", run.info.run_id,
             version.version, trained.name, test_metrics["test_mae"], json.dumps(lineage))  # fmt: skip
    return TrainingRun(run.info.run_id, version.version, test_metrics)


def evaluate_and_promote(
    settings: PipelineSettings, training: TrainingRun, dag_run_id: str
) -> PromotionOutcome:
    """Score the candidate and the champion on the same test rows; promote only if better."""
    promotion = promote_if_better(
        settings.model_name, training.version, _test_rows(settings), settings.promotion_margin, dag_run_id
    )
    mlflow.MlflowClient().set_tag(training.run_id, "promoted", str(promotion.promoted).lower())
    return promotion


def explain(settings: PipelineSettings, training: TrainingRun) -> list[str]:
    """SHAP images of the registered version, logged to its training run (re-running overwrites)."""
    pipeline = mlflow.sklearn.load_model(f"models:/{settings.model_name}/{training.version}")
    return log_explanations(training.run_id, pipeline, _test_rows(settings))


def train_and_promote(settings: PipelineSettings, dag_run_id: str) -> TrainingOutcome:
    """train_candidates → evaluate_and_promote → explain, as the DAG runs them."""
    training = train_candidates(settings, dag_run_id)
    promotion = evaluate_and_promote(settings, training, dag_run_id)
    explain(settings, training)
    return TrainingOutcome(training.run_id, training.version, training.test_metrics, promotion)
