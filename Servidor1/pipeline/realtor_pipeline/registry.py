"""The model registry on node 2's MLflow: register a trained model, promote it when it beats the champion,
roll back, and keep the history of those decisions.

Aliases: `@champion` is the version the inference API serves; `@previous` is the version a rollback
restores. A promotion moves `@champion` to the candidate and the old champion to `@previous`. A
rollback swaps the two, so `@previous` then holds the version just rolled back (tagged
`rolled_back=true` until it is champion again) and a second rollback undoes the first.

Each version carries its verdict in tags: `promotion` (promoted | rejected), `promotion_reason`,
`promotion_candidate_mae`, `promotion_champion_mae`, `promotion_champion_version`,
`promotion_dag_run_id`. A version is judged once: asking again returns the recorded verdict, so a
re-run Airflow task neither re-scores nor records twice.

History: MLflow keeps none for aliases, so every decision is one finished MLflow run in the
experiment `<model name>-promotion-history` (apart from the training runs, so that searching
them by metric never meets an event). Each run is tagged `event` (promotion | rollback),
`outcome` (promoted | rejected | rolled_back), `model_name`, `from_version` and `to_version` (the
`@champion` before and after; equal for a rejection, "" when there was none), `candidate_version`,
`reason`, `dag_run_id` ("" by hand), `margin`; it logs the metrics `candidate_mae` and
`champion_mae` when they were measured; its start time is the event's time. Query it with
`promotion_history`, or `mlflow.search_runs(experiment_names=[...], filter_string="tags.outcome =
'rejected'")`.

The client reads the ambient tracking URI (`MLFLOW_TRACKING_URI` or `mlflow.set_tracking_uri`)
and never needs S3 credentials: artefacts go through the tracking server's proxy. This module
must never touch a version's aliases except through `promote_if_better` and `rollback`, and never
score a candidate on anything but the fixed test rows.
"""

import logging
import math
from dataclasses import dataclass
from datetime import date
from importlib.metadata import version as distribution_version
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature, infer_signature
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode
from mlflow.types import ColSpec, DataType, Schema
from mlflow.types.schema import AnyType

from realtor_pipeline.evaluate import TARGET, regression_metrics
from realtor_pipeline.tables import DATE_COLUMNS, LISTING_COLUMNS, TEXT_COLUMN_LENGTHS
from realtor_pipeline.validate import listing_schema

logger = logging.getLogger(__name__)

MODEL_ARTIFACT = "model"
# skops refuses to load any class it does not know; these are ours and HistGradientBoosting's trees
# (the Ridge pipeline needs only the first).
SKOPS_TRUSTED_TYPES = [
    "realtor_pipeline.features.ListingFeatures",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
]
# Logged with the model, so it loads where realtor_pipeline is not installed (the inference API).
PACKAGE_DIR = str(Path(__file__).resolve().parent)
# What loading the model imports, pinned to this environment's versions. Declared, because MLflow's
# inference loads the model in a subprocess (~7 s a version) and also picks up whatever the
# calling process imported (pytest, rich).
MODEL_REQUIREMENTS = ("mlflow", "numpy", "pandas", "scikit-learn", "scipy", "skops")
INPUT_EXAMPLE_ROWS = 5

CHAMPION, PREVIOUS = "champion", "previous"
PROMOTED, REJECTED, ROLLED_BACK = "promoted", "rejected", "rolled_back"
PROMOTION_EVENT, ROLLBACK_EVENT = "promotion", "rollback"
VERDICT_TAG = "promotion"  # on a version: PROMOTED or REJECTED
HISTORY_COLUMNS = (
    "recorded_at",
    "event",
    "outcome",
    "from_version",
    "to_version",
    "candidate_version",
    "reason",
    "dag_run_id",
    "candidate_mae",
    "champion_mae",
    "run_id",
)


@dataclass(frozen=True)
class PromotionOutcome:
    """What one promotion decision or rollback did.

    For a rollback, `candidate_version` is the version restored and `champion_version` the one
    rolled back; no MAE is measured.
    """

    model_name: str
    event: str  # PROMOTION_EVENT or ROLLBACK_EVENT
    promoted: bool  # @champion now points at candidate_version
    reason: str
    candidate_version: str
    champion_version: str | None  # @champion before the event
    candidate_mae: float | None
    champion_mae: float | None


def history_experiment_name(model_name: str) -> str:
    return f"{model_name}-promotion-history"


def register_model(
    run_id: str, pipeline, input_example: pd.DataFrame, model_name: str, tags: dict[str, str]
) -> ModelVersion:
    """Log `pipeline` into the existing run `run_id` and register it as a new version of `model_name`.

    The version gets `tags` (lineage) and `run_id`. If a version of `model_name` already comes from
    `run_id`, that version is returned and nothing is logged. The run is resumed to log the model,
    so it ends FINISHED.
    """
    client = mlflow.MlflowClient()
    existing = client.search_model_versions(f"name = '{model_name}' and run_id = '{run_id}'")
    if existing:
        first = min(existing, key=lambda found: int(found.version))
        logger.info(
            "event=model_already_registered model=%s version=%s run_id=%s", model_name, first.version, run_id
        )
        return first
    example = as_served(input_example.head(INPUT_EXAMPLE_ROWS))
    signature = served_signature(example, pipeline.predict(example))
    active = mlflow.active_run()
    if active is not None and active.info.run_id == run_id:
        model_info = _log_pipeline(pipeline, example, signature)
    else:
        with mlflow.start_run(run_id=run_id):
            model_info = _log_pipeline(pipeline, example, signature)
    version = mlflow.register_model(model_info.model_uri, model_name, tags={**tags, "run_id": run_id})
    logger.info("event=model_registered model=%s version=%s run_id=%s", model_name, version.version, run_id)
    return version


def _log_pipeline(pipeline, example: pd.DataFrame, signature: ModelSignature):
    return mlflow.sklearn.log_model(
        pipeline,
        name=MODEL_ARTIFACT,
        signature=signature,
        input_example=example,
        code_paths=[PACKAGE_DIR],
        skops_trusted_types=SKOPS_TRUSTED_TYPES,
        pip_requirements=[f"{package}=={distribution_version(package)}" for package in MODEL_REQUIREMENTS],
    )


def as_served(rows: pd.DataFrame) -> pd.DataFrame:
    """Listing rows as the inference API receives them: every listing column but price, numbers as
    floats, text and dates (read from MySQL as date objects) as strings, unknowns as nulls."""
    served = {}
    for column in LISTING_COLUMNS:
        if column == TARGET:
            continue
        values = rows[column]
        if column in DATE_COLUMNS:
            served[column] = pd.to_datetime(values, errors="coerce", format="mixed").dt.strftime("%Y-%m-%d")
        elif column in TEXT_COLUMN_LENGTHS:
            served[column] = values.astype("str")
        else:
            served[column] = pd.to_numeric(values, errors="coerce").astype(float)
    return pd.DataFrame(served, index=rows.index)


def served_signature(example: pd.DataFrame, predictions) -> ModelSignature:
    """The inferred signature, with every column the listing schema lets be null marked optional.

    Inference alone marks a column optional only when the example happens to hold a null in it.
    """
    inferred = infer_signature(example, predictions)
    nullable = {name for name, column in listing_schema(date.today()).columns.items() if column.nullable}
    inputs = [
        # Numbers are floats by now, so only an all-null text column comes back without a type.
        ColSpec(
            DataType.string if isinstance(spec.type, AnyType) else spec.type,
            name=spec.name,
            required=spec.name not in nullable,
        )
        for spec in inferred.inputs.inputs
    ]
    return ModelSignature(inputs=Schema(inputs), outputs=inferred.outputs)


def promote_if_better(
    model_name: str, version: str, test_rows: pd.DataFrame, margin: float, dag_run_id: str
) -> PromotionOutcome:
    """Make `version` the champion when there is none, or when its MAE on `test_rows` is at most the
    champion's MAE on the same rows x (1 - margin); otherwise leave `@champion` where it is.

    `test_rows` are raw listing rows with their price. A version already judged gets its recorded
    verdict back, and nothing changes.
    """
    if not 0 <= margin < 1:
        raise ValueError(f"margin must be in [0, 1), got {margin}")
    if test_rows.empty:
        raise ValueError("promotion needs test rows to score the candidate and the champion on")
    client = mlflow.MlflowClient()
    version = str(version)
    candidate = client.get_model_version(model_name, version)
    if VERDICT_TAG in candidate.tags:
        outcome = _recorded_outcome(model_name, candidate)
        logger.info(
            "event=promotion_already_decided model=%s version=%s outcome=%s",
            model_name,
            version,
            candidate.tags[VERDICT_TAG],
        )
        return outcome
    aliases = _aliases(client, model_name)
    # The candidate is champion already when an earlier call moved the aliases and stopped before
    # recording: then @previous is the champion it was judged against.
    champion = aliases.get(PREVIOUS) if aliases.get(CHAMPION) == version else aliases.get(CHAMPION)
    candidate_mae = _test_mae(model_name, version, test_rows)
    if champion is None:
        outcome = PromotionOutcome(
            model_name, PROMOTION_EVENT, True, "no champion yet", version, None, candidate_mae, None
        )
    else:
        champion_mae = _test_mae(model_name, champion, test_rows)
        bar = champion_mae * (1 - margin)
        promoted = candidate_mae <= bar
        comparison = "<=" if promoted else ">"
        reason = (
            f"candidate mae {candidate_mae:,.0f} {comparison} champion v{champion} mae {champion_mae:,.0f}"
            f" x (1 - {margin})"
        )
        outcome = PromotionOutcome(
            model_name, PROMOTION_EVENT, promoted, reason, version, champion, candidate_mae, champion_mae
        )
    if outcome.promoted:
        if champion is not None:
            client.set_registered_model_alias(model_name, PREVIOUS, champion)
        client.set_registered_model_alias(model_name, CHAMPION, version)
    _record_event(client, outcome, dag_run_id, margin)
    # Last, as the mark that the decision is complete.
    _tag_verdict(client, outcome, dag_run_id)
    logger.info(
        "event=promotion_decided model=%s version=%s outcome=%s champion_before=%s candidate_mae=%s "
        "champion_mae=%s dag_run_id=%s",
        model_name,
        version,
        PROMOTED if outcome.promoted else REJECTED,
        champion,
        candidate_mae,
        outcome.champion_mae,
        dag_run_id,
    )
    return outcome


def rollback(model_name: str, reason: str, dag_run_id: str = "") -> PromotionOutcome:
    """Swap `@champion` and `@previous`: serve the previous version again, keep the rolled-back one as
    `@previous` (tagged `rolled_back=true`), so a second rollback undoes the first."""
    client = mlflow.MlflowClient()
    aliases = _aliases(client, model_name)
    rolled_back, restored = aliases.get(CHAMPION), aliases.get(PREVIOUS)
    if rolled_back is None or restored is None:
        raise LookupError(
            f"cannot roll back model {model_name!r}: it needs both @{CHAMPION} and @{PREVIOUS}, "
            f"has @{CHAMPION}={rolled_back} and @{PREVIOUS}={restored}"
        )
    client.set_registered_model_alias(model_name, CHAMPION, restored)
    client.set_registered_model_alias(model_name, PREVIOUS, rolled_back)
    client.set_model_version_tag(model_name, rolled_back, "rolled_back", "true")
    client.set_model_version_tag(model_name, rolled_back, "rollback_reason", reason)
    if "rolled_back" in client.get_model_version(model_name, restored).tags:
        client.delete_model_version_tag(model_name, restored, "rolled_back")
        client.delete_model_version_tag(model_name, restored, "rollback_reason")
    outcome = PromotionOutcome(model_name, ROLLBACK_EVENT, True, reason, restored, rolled_back, None, None)
    _record_event(client, outcome, dag_run_id, margin=None)
    logger.info(
        "event=rollback model=%s from_version=%s to_version=%s reason=%r dag_run_id=%s",
        model_name,
        rolled_back,
        restored,
        reason,
        dag_run_id,
    )
    return outcome


def promotion_history(model_name: str) -> pd.DataFrame:
    """Every promotion decision and rollback of `model_name`, newest first (columns: HISTORY_COLUMNS)."""
    experiment = mlflow.MlflowClient().get_experiment_by_name(history_experiment_name(model_name))
    if experiment is None:
        return pd.DataFrame(columns=list(HISTORY_COLUMNS))
    runs = mlflow.search_runs(
        experiment_ids=[experiment.experiment_id],
        filter_string=f"tags.model_name = '{model_name}'",
        order_by=["attributes.start_time DESC"],
        output_format="list",
    )
    rows = [
        {
            "recorded_at": pd.Timestamp(run.info.start_time, unit="ms", tz="UTC"),
            **{name: run.data.tags.get(name, "") for name in HISTORY_COLUMNS[1:8]},
            "candidate_mae": run.data.metrics.get("candidate_mae", math.nan),
            "champion_mae": run.data.metrics.get("champion_mae", math.nan),
            "run_id": run.info.run_id,
        }
        for run in runs
    ]
    return pd.DataFrame(rows, columns=list(HISTORY_COLUMNS))


def champion_info(model_name: str) -> dict | None:
    """The `@champion` version, its run and that run's metrics; None when there is no champion."""
    client = mlflow.MlflowClient()
    champion = _aliases(client, model_name).get(CHAMPION)
    if champion is None:
        return None
    version = client.get_model_version(model_name, champion)
    return {
        "model_name": model_name,
        "version": version.version,
        "run_id": version.run_id,
        "tags": dict(version.tags),
        "metrics": dict(client.get_run(version.run_id).data.metrics),
    }


def _aliases(client: mlflow.MlflowClient, model_name: str) -> dict[str, str]:
    """Alias → version of `model_name`; empty when the model is not registered yet."""
    try:
        registered = client.get_registered_model(model_name)
    except MlflowException as error:
        if error.error_code == ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            return {}
        raise
    return {alias: str(version) for alias, version in registered.aliases.items()}


def _test_mae(model_name: str, version: str, test_rows: pd.DataFrame) -> float:
    model = mlflow.sklearn.load_model(f"models:/{model_name}/{version}")
    return regression_metrics(test_rows[TARGET], model.predict(test_rows))["mae"]


def _tag_verdict(client: mlflow.MlflowClient, outcome: PromotionOutcome, dag_run_id: str) -> None:
    verdict = {
        "promotion_reason": outcome.reason,
        "promotion_candidate_mae": repr(outcome.candidate_mae),
        "promotion_champion_mae": "" if outcome.champion_mae is None else repr(outcome.champion_mae),
        "promotion_champion_version": outcome.champion_version or "",
        "promotion_dag_run_id": dag_run_id,
        VERDICT_TAG: PROMOTED if outcome.promoted else REJECTED,
    }
    for key, value in verdict.items():
        client.set_model_version_tag(outcome.model_name, outcome.candidate_version, key, value)


def _recorded_outcome(model_name: str, version: ModelVersion) -> PromotionOutcome:
    tags = version.tags
    return PromotionOutcome(
        model_name,
        PROMOTION_EVENT,
        tags[VERDICT_TAG] == PROMOTED,
        tags["promotion_reason"],
        version.version,
        tags["promotion_champion_version"] or None,
        float(tags["promotion_candidate_mae"]),
        float(tags["promotion_champion_mae"]) if tags["promotion_champion_mae"] else None,
    )


def _record_event(
    client: mlflow.MlflowClient, outcome: PromotionOutcome, dag_run_id: str, margin: float | None
) -> None:
    """One finished run in the model's history experiment; a promotion decision is recorded once."""
    experiment_id = _history_experiment_id(client, outcome.model_name)
    if outcome.event == PROMOTION_EVENT:
        same_decision = (
            f"tags.event = '{PROMOTION_EVENT}' and tags.candidate_version = '{outcome.candidate_version}'"
        )
        if client.search_runs([experiment_id], filter_string=same_decision, max_results=1):
            return
        outcome_name = PROMOTED if outcome.promoted else REJECTED
    else:
        outcome_name = ROLLED_BACK
    before = outcome.champion_version or ""
    after = outcome.candidate_version if outcome.promoted else before
    run = client.create_run(
        experiment_id,
        run_name=f"{outcome_name} v{outcome.candidate_version}",
        tags={
            "event": outcome.event,
            "outcome": outcome_name,
            "model_name": outcome.model_name,
            "from_version": before,
            "to_version": after,
            "candidate_version": outcome.candidate_version,
            "reason": outcome.reason,
            "dag_run_id": dag_run_id,
            "margin": "" if margin is None else str(margin),
        },
    )
    for name, value in (("candidate_mae", outcome.candidate_mae), ("champion_mae", outcome.champion_mae)):
        if value is not None:
            client.log_metric(run.info.run_id, name, value)
    client.set_terminated(run.info.run_id)


def _history_experiment_id(client: mlflow.MlflowClient, model_name: str) -> str:
    name = history_experiment_name(model_name)
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    return client.create_experiment(name, tags={"model_name": model_name, "purpose": "promotion history"})
